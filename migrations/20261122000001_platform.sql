-- Platform tables every command relies on: idempotency records, the audit trail and the outbox.
--
-- Roles. Migrations run as the migration owner (it owns every table). The application logs in as
-- a different role that is a member of `cpq_application`, owns nothing and has no BYPASSRLS, so the
-- row-level security policies below always apply to it. Provisioning creates both roles
-- (scripts/lib.sh); this migration only refuses to run without them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cpq_application') THEN
        RAISE EXCEPTION 'role cpq_application does not exist: provision the database roles first (scripts/lib.sh provision_database)';
    END IF;
END
$$;

-- The per-transaction tenant setting. Every tenant-owned table gets the policy
--   USING (tenant_id = current_setting('cpq.tenant_id', true))
-- so that a transaction that did not set it sees and writes nothing.

-- The application reads its schema version from here for readiness.
GRANT SELECT ON _sqlx_migrations TO cpq_application;

CREATE TABLE idempotency_record (
    tenant_id        text        NOT NULL,
    idempotency_key  text        NOT NULL,
    request_method   text        NOT NULL,
    request_path     text        NOT NULL,
    request_hash     bytea       NOT NULL,
    response_status  smallint,
    response_headers jsonb,
    response_body    jsonb,
    created_at       timestamptz NOT NULL,
    completed_at     timestamptz,
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key),
    CHECK ((response_status IS NULL) = (completed_at IS NULL))
);
CREATE INDEX idempotency_record_expires_at ON idempotency_record (expires_at);
ALTER TABLE idempotency_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_record
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_record TO cpq_application;

-- Append-only: the application may insert and read, never change or delete.
CREATE TABLE audit_record (
    audit_id        uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    actor_subject   text        NOT NULL,
    action          text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    before_digest   bytea,
    after_digest    bytea,
    reason          text,
    correlation_id  text        NOT NULL,
    causation_id    text,
    occurred_at     timestamptz NOT NULL
);
CREATE INDEX audit_record_aggregate
    ON audit_record (tenant_id, aggregate_type, aggregate_id, occurred_at DESC);
ALTER TABLE audit_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_record
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON audit_record TO cpq_application;

-- Written in the command's own transaction; published to Kafka by the relay (a later deployable,
-- which gets its own role and policy). `outbox_position` orders events for the relay.
CREATE TABLE outbox_event (
    event_id         uuid        PRIMARY KEY,
    outbox_position  bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    tenant_id        text        NOT NULL,
    aggregate_type   text        NOT NULL,
    aggregate_id     uuid        NOT NULL,
    event_type       text        NOT NULL,
    schema_version   integer     NOT NULL CHECK (schema_version > 0),
    occurred_at      timestamptz NOT NULL,
    correlation_id   text        NOT NULL,
    causation_id     text,
    payload          jsonb       NOT NULL,
    published_at     timestamptz
);
CREATE INDEX outbox_event_pending ON outbox_event (outbox_position) WHERE published_at IS NULL;
CREATE INDEX outbox_event_aggregate ON outbox_event (tenant_id, aggregate_type, aggregate_id, outbox_position);
ALTER TABLE outbox_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox_event
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON outbox_event TO cpq_application;
