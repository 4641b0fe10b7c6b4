-- Every call a worker makes to an external system is recorded here before it is made, and its
-- outcome after: a crash between the two leaves an attempt without an outcome, and the retry
-- carries the same idempotency key so that the external system can recognise it.
CREATE TABLE external_call_attempt (
    attempt_id      uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    job_id          uuid        NOT NULL REFERENCES job,
    attempt         integer     NOT NULL,
    target          text        NOT NULL,
    idempotency_key text        NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    outcome         text CHECK (outcome IN ('success', 'business-error', 'rejected', 'failed')),
    status_code     integer,
    detail          text
);
CREATE INDEX external_call_attempt_job ON external_call_attempt (job_id, attempt);
ALTER TABLE external_call_attempt ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON external_call_attempt
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON external_call_attempt TO cpq_application;
