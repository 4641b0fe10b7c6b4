-- Approval decisions per level, frozen earlier revisions, and orders converted from quotes.

-- The approval process instance of the current submission, and the order a quote became.
ALTER TABLE quote ADD COLUMN approval_instance_id uuid;
ALTER TABLE quote ADD COLUMN order_id uuid;
CREATE INDEX quote_by_approval_instance ON quote (approval_instance_id) WHERE approval_instance_id IS NOT NULL;

-- Every approval decision: who decided which level of which revision, and why. Insert-only.
CREATE TABLE quote_approval (
    approval_id  uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    quote_id     uuid        NOT NULL REFERENCES quote,
    revision_no  integer     NOT NULL,
    level        text        NOT NULL,
    decision     text        NOT NULL CHECK (decision IN ('approved', 'rejected', 'returned')),
    decided_by   text        NOT NULL,
    comment      text,
    user_task_id uuid        NOT NULL UNIQUE,
    -- The approval process instance: one per submission, so a resubmission counts afresh.
    process_instance_id uuid NOT NULL,
    decided_at   timestamptz NOT NULL
);
CREATE INDEX quote_approval_by_quote ON quote_approval (quote_id, process_instance_id);
ALTER TABLE quote_approval ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quote_approval
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON quote_approval TO cpq_application;

-- A revision as it stood when it was superseded: readable, never changed (no UPDATE or DELETE
-- grant), and never read by commands, which work on the quote row and its current items.
CREATE TABLE quote_revision (
    quote_id          uuid        NOT NULL REFERENCES quote,
    revision_no       integer     NOT NULL,
    tenant_id         text        NOT NULL,
    status            text        NOT NULL,
    header            jsonb       NOT NULL,
    items             jsonb       NOT NULL,
    price_snapshot    jsonb,
    snapshot_hash     text,
    approval_decision jsonb,
    revised_at        timestamptz NOT NULL,
    revised_by        text        NOT NULL,
    PRIMARY KEY (quote_id, revision_no)
);
ALTER TABLE quote_revision ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quote_revision
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON quote_revision TO cpq_application;

-- Orders. One per quote, ever: the unique constraint is what makes a second conversion
-- impossible, whatever the application does.
CREATE TABLE sales_order (
    order_id                uuid        PRIMARY KEY,
    tenant_id               text        NOT NULL,
    quote_id                uuid        NOT NULL REFERENCES quote,
    quote_revision_no       integer     NOT NULL,
    customer_account_id     uuid        NOT NULL REFERENCES customer_account,
    currency                text        NOT NULL,
    snapshot_hash           text        NOT NULL,
    totals                  jsonb       NOT NULL,
    status                  text        NOT NULL,
    fulfillment_instance_id uuid,
    version                 bigint      NOT NULL CHECK (version > 0),
    created_at              timestamptz NOT NULL,
    created_by              text        NOT NULL,
    updated_at              timestamptz NOT NULL,
    CONSTRAINT sales_order_one_per_quote UNIQUE (quote_id)
);
CREATE INDEX sales_order_recent ON sales_order (tenant_id, created_at DESC, order_id DESC);
ALTER TABLE sales_order ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sales_order
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON sales_order TO cpq_application;

CREATE TABLE order_item (
    order_id      uuid    NOT NULL REFERENCES sales_order,
    line_no       integer NOT NULL CHECK (line_no > 0),
    tenant_id     text    NOT NULL,
    offering_code text    NOT NULL,
    configuration jsonb   NOT NULL,
    price         jsonb   NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
ALTER TABLE order_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON order_item
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON order_item TO cpq_application;

-- Expiry sweep across tenants: open quotes past their validity (quote ids and tenants only).
CREATE INDEX quote_validity ON quote (valid_until) WHERE status IN ('draft', 'priced', 'submitted', 'approval-pending', 'approved', 'rejected');
CREATE FUNCTION quote_expiry_due(today date, max_rows integer)
RETURNS TABLE (quote_id uuid, tenant_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT q.quote_id, q.tenant_id FROM quote q
    WHERE q.valid_until < today AND q.status IN ('draft', 'priced', 'submitted', 'approval-pending', 'approved', 'rejected')
    ORDER BY q.valid_until LIMIT max_rows
$$;
REVOKE ALL ON FUNCTION quote_expiry_due(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION quote_expiry_due(date, integer) TO cpq_application;
