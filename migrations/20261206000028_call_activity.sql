-- Call activities (issue 16, item 1): a child process instance knows the call activity that
-- started it, so that its completion continues the caller and the caller's end cancels it.
ALTER TABLE process_instance
    ADD COLUMN parent_process_instance_id uuid REFERENCES process_instance,
    ADD COLUMN parent_element_key         bigint,
    ADD CONSTRAINT process_instance_parent_both
        CHECK ((parent_process_instance_id IS NULL) = (parent_element_key IS NULL));

-- The active child of a call activity, looked up when the caller ends.
CREATE INDEX process_instance_parent ON process_instance (parent_process_instance_id, parent_element_key)
    WHERE parent_process_instance_id IS NOT NULL;
