-- Signals (issue 16, item 1): a signal catch event, boundary event or event subprocess start
-- waits on its signal's name; a broadcast (a throw event, or POST /v1/signals) triggers every
-- subscription of that name in the tenant, and starts the processes with a signal start event.
CREATE TABLE signal_subscription (
    signal_subscription_id uuid        PRIMARY KEY,
    tenant_id              text        NOT NULL,
    process_instance_id    uuid        NOT NULL REFERENCES process_instance,
    element_key            bigint      NOT NULL,
    catch_id               text        NOT NULL,
    signal_name            text        NOT NULL,
    created_at             timestamptz NOT NULL
);
CREATE INDEX signal_subscription_match ON signal_subscription (tenant_id, signal_name, created_at);
CREATE INDEX signal_subscription_owner ON signal_subscription (process_instance_id, element_key);
ALTER TABLE signal_subscription ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signal_subscription
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON signal_subscription TO cpq_application;
