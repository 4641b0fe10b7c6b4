-- Native user tasks (zeebe:userTask): work waiting for a person.
CREATE TABLE user_task (
    user_task_id        uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    process_instance_id uuid        NOT NULL REFERENCES process_instance,
    element_key         bigint      NOT NULL,
    element_id          text        NOT NULL,
    name                text,
    assignee            text,
    candidate_groups    text[]      NOT NULL,
    due_date            text,
    status              text        NOT NULL CHECK (status IN ('created', 'completed', 'cancelled')),
    variables           jsonb       NOT NULL,
    created_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    completed_by        text,
    UNIQUE (process_instance_id, element_key)
);
CREATE INDEX user_task_open_by_assignee ON user_task (tenant_id, assignee, user_task_id) WHERE status = 'created';
CREATE INDEX user_task_open_by_group ON user_task USING gin (candidate_groups) WHERE status = 'created';
ALTER TABLE user_task ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_task
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON user_task TO cpq_application;
