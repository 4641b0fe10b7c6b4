-- Customer accounts: the first tenant-owned business resource.
CREATE TABLE customer_account (
    customer_account_id uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    name                text        NOT NULL,
    external_ref        text,
    segment             text        NOT NULL
        CHECK (segment IN ('consumer', 'small-business', 'enterprise', 'public-sector')),
    market              text        NOT NULL,
    currency            text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('active', 'closed')),
    version             bigint      NOT NULL CHECK (version > 0),
    created_at          timestamptz NOT NULL,
    created_by          text        NOT NULL,
    updated_at          timestamptz NOT NULL,
    updated_by          text        NOT NULL,
    closed_at           timestamptz,
    close_reason        text,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- One account per CRM reference within a tenant.
CREATE UNIQUE INDEX customer_account_external_ref_key
    ON customer_account (tenant_id, external_ref) WHERE external_ref IS NOT NULL;
-- List: tenant, optional status, keyset on the id (UUIDv7, so creation order).
CREATE INDEX customer_account_tenant_list ON customer_account (tenant_id, customer_account_id);
CREATE INDEX customer_account_status_list
    ON customer_account (tenant_id, status, customer_account_id);
-- Name prefix search (case-insensitive).
CREATE INDEX customer_account_name_prefix
    ON customer_account (tenant_id, lower(name) text_pattern_ops);

ALTER TABLE customer_account ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON customer_account
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON customer_account TO cpq_application;
