-- Execution listeners (issue 16, item 2): an element instance runs its listeners' jobs and its
-- own one after another, so it has one open job at a time, not one job ever.
ALTER TABLE job DROP CONSTRAINT job_process_instance_id_element_key_key;
CREATE INDEX job_instance_element ON job (process_instance_id, element_key);
CREATE UNIQUE INDEX job_open_per_element ON job (process_instance_id, element_key)
    WHERE status IN ('activatable', 'activated', 'failed');
