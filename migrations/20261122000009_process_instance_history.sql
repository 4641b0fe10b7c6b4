-- What happened to each instance, in order: every command applied by the runtime and the effects
-- it had. Operations read it to see why an instance is where it is.
CREATE TABLE process_instance_history (
    history_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           text        NOT NULL,
    process_instance_id uuid        NOT NULL REFERENCES process_instance,
    command             jsonb       NOT NULL,
    effects             jsonb       NOT NULL,
    at                  timestamptz NOT NULL
);
CREATE INDEX process_instance_history_instance ON process_instance_history (process_instance_id, history_id);
ALTER TABLE process_instance_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON process_instance_history
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON process_instance_history TO cpq_application;

-- Active instances by process and version, across tenants, for the metrics endpoint.
CREATE INDEX process_instance_active ON process_instance (bpmn_process_id, version) WHERE status = 'active';
CREATE FUNCTION workflow_active_instances()
RETURNS TABLE (bpmn_process_id text, version integer, active bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT p.bpmn_process_id, p.version, count(*) FROM process_instance p WHERE p.status = 'active'
    GROUP BY p.bpmn_process_id, p.version
$$;
REVOKE ALL ON FUNCTION workflow_active_instances() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow_active_instances() TO cpq_application;
