-- Timer start events: scheduled when a process version is deployed, for the tenant that deployed
-- it (instances belong to a tenant; definitions do not), replaced by the next version's.
CREATE TABLE start_timer (
    start_timer_id        uuid        PRIMARY KEY,
    tenant_id             text        NOT NULL,
    process_definition_id uuid        NOT NULL REFERENCES process_definition,
    bpmn_process_id       text        NOT NULL,
    event_id              text        NOT NULL,
    due_at                timestamptz NOT NULL,
    repeat                jsonb
);
CREATE INDEX start_timer_due ON start_timer (due_at);
ALTER TABLE start_timer ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON start_timer
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON start_timer TO cpq_application;

CREATE FUNCTION start_timer_due_list(p_limit integer)
RETURNS TABLE (start_timer_id uuid, tenant_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT t.start_timer_id, t.tenant_id FROM start_timer t WHERE t.due_at <= now() ORDER BY t.due_at LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION start_timer_due_list(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION start_timer_due_list(integer) TO cpq_application;
