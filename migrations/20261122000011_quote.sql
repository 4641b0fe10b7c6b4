-- Quotes. The quote row holds the current revision's header, status and price snapshot; items are
-- keyed by revision so that a revision carries its items forward and earlier revisions stay
-- readable without being loaded on the command path.
CREATE TABLE quote (
    quote_id            uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    customer_account_id uuid        NOT NULL REFERENCES customer_account,
    catalog_version_id  uuid        NOT NULL REFERENCES catalog_version,
    market              text        NOT NULL,
    channel             text        NOT NULL,
    segment             text        NOT NULL,
    currency            text        NOT NULL,
    valid_until         date        NOT NULL,
    owner               text        NOT NULL,
    status              text        NOT NULL,
    revision_no         integer     NOT NULL CHECK (revision_no > 0),
    price_snapshot      jsonb,
    snapshot_hash       text,
    price_stale         boolean     NOT NULL,
    version             bigint      NOT NULL CHECK (version > 0),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    updated_by          text        NOT NULL
);
-- The worklist: newest change first, filtered by status (the seed's index), by owner, by customer,
-- or not at all; each filter has an index that delivers the order, so a page reads a page.
CREATE INDEX quote_worklist ON quote (tenant_id, status, updated_at DESC, quote_id DESC);
CREATE INDEX quote_recent ON quote (tenant_id, updated_at DESC, quote_id DESC);
CREATE INDEX quote_by_owner ON quote (tenant_id, owner, updated_at DESC, quote_id DESC);
CREATE INDEX quote_by_customer ON quote (tenant_id, customer_account_id, updated_at DESC, quote_id DESC);
ALTER TABLE quote ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quote
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON quote TO cpq_application;

CREATE TABLE quote_item (
    quote_id                uuid        NOT NULL REFERENCES quote,
    revision_no             integer     NOT NULL,
    line_no                 integer     NOT NULL CHECK (line_no > 0),
    tenant_id               text        NOT NULL,
    configuration           jsonb       NOT NULL,
    manual_discount_percent numeric,
    created_at              timestamptz NOT NULL,
    PRIMARY KEY (quote_id, revision_no, line_no)
);
ALTER TABLE quote_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quote_item
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON quote_item TO cpq_application;
