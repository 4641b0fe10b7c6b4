-- Timers waiting to fire and message subscriptions waiting for a message, both owned by an
-- element instance of a process instance, and messages buffered for their time to live.
CREATE TABLE timer (
    timer_id            uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    process_instance_id uuid        NOT NULL REFERENCES process_instance,
    element_key         bigint      NOT NULL,
    event_id            text        NOT NULL,
    due_at              timestamptz NOT NULL,
    repeat              jsonb,
    created_at          timestamptz NOT NULL
);
CREATE INDEX timer_due ON timer (due_at);
CREATE INDEX timer_owner ON timer (process_instance_id, element_key);
ALTER TABLE timer ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON timer
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON timer TO cpq_application;

-- The due-time scan looks across tenants (it only lists; each timer then fires in a transaction
-- scoped to its tenant, under its row lock).
CREATE FUNCTION timer_due_list(p_limit integer)
RETURNS TABLE (timer_id uuid, tenant_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT t.timer_id, t.tenant_id FROM timer t WHERE t.due_at <= now() ORDER BY t.due_at LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION timer_due_list(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION timer_due_list(integer) TO cpq_application;

CREATE TABLE message_subscription (
    message_subscription_id uuid        PRIMARY KEY,
    tenant_id               text        NOT NULL,
    process_instance_id     uuid        NOT NULL REFERENCES process_instance,
    element_key             bigint      NOT NULL,
    catch_id                text        NOT NULL,
    message_name            text        NOT NULL,
    correlation_key         text        NOT NULL,
    created_at              timestamptz NOT NULL
);
CREATE INDEX message_subscription_match ON message_subscription (tenant_id, message_name, correlation_key, created_at);
CREATE INDEX message_subscription_owner ON message_subscription (process_instance_id, element_key);
ALTER TABLE message_subscription ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_subscription
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON message_subscription TO cpq_application;

CREATE TABLE message (
    message_key     uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    message_name    text        NOT NULL,
    correlation_key text        NOT NULL,
    message_id      text,
    variables       jsonb       NOT NULL,
    published_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    correlated_at   timestamptz
);
CREATE INDEX message_buffered ON message (tenant_id, message_name, correlation_key, published_at)
    WHERE correlated_at IS NULL;
-- A message id is unique among the messages of a name still buffered (Zeebe's deduplication).
CREATE INDEX message_id_lookup ON message (tenant_id, message_name, message_id) WHERE message_id IS NOT NULL;
ALTER TABLE message ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON message TO cpq_application;

-- A worker completing a job must act in the job's tenant; this says which tenant that is.
CREATE FUNCTION job_tenant(p_job uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT tenant_id FROM job WHERE job_id = p_job
$$;
REVOKE ALL ON FUNCTION job_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION job_tenant(uuid) TO cpq_application;
