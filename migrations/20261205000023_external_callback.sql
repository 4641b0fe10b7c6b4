-- Callbacks from external systems (POST /v1/callbacks/{system}, issue 15 item 2). An asynchronous
-- system answers a worker's request later, signed with the system's secret; the callback names
-- the request by the idempotency key the worker sent. Each callback is kept by its id, so that a
-- redelivery (systems deliver at least once) is recognised and changes nothing; the first is
-- published to the waiting process as the message `external-callback` in the same transaction.
CREATE TABLE external_callback (
    system          text        NOT NULL,
    callback_id     uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    idempotency_key text        NOT NULL,
    request_id      text,
    outcome         text        NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    body            jsonb       NOT NULL,
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (system, callback_id)
);
CREATE INDEX external_callback_request ON external_callback (tenant_id, idempotency_key);
ALTER TABLE external_callback ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON external_callback
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON external_callback TO cpq_application;

-- The system knows no tenant: the callback's request is found by its idempotency key across
-- tenants, through this function only (it answers the tenant and nothing else), before the
-- callback is handled in that tenant's transaction.
CREATE INDEX external_call_attempt_key ON external_call_attempt (idempotency_key);
CREATE FUNCTION external_call_tenant(p_idempotency_key text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT tenant_id FROM external_call_attempt WHERE idempotency_key = p_idempotency_key LIMIT 1
$$;
REVOKE ALL ON FUNCTION external_call_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION external_call_tenant(text) TO cpq_application;
