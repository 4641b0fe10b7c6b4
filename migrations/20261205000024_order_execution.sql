-- Orders you can operate (issue 15, items 5-7): order and item statuses through to completed,
-- fallout cases worked by order operations, and the customer's installed base.
--
-- An order is in-fulfillment while its process runs, in-fallout while a fallout case of it is
-- open, completed when every plan task is done or skipped, cancelled by a repair.
ALTER TABLE sales_order ADD COLUMN completed_at timestamptz;
ALTER TABLE sales_order ADD CONSTRAINT sales_order_status
    CHECK (status IN ('in-fulfillment', 'in-fallout', 'completed', 'cancelled'));
ALTER TABLE order_item ADD COLUMN status text NOT NULL DEFAULT 'in-fulfillment'
    CHECK (status IN ('in-fulfillment', 'completed', 'cancelled'));
GRANT UPDATE ON order_item TO cpq_application;

-- One case per failure of a plan task: opened by the process's `fulfillment-fallout` job (once:
-- opened_by_job is that job, so a redelivered job opens nothing twice), closed by a repair.
CREATE TABLE fallout_case (
    fallout_case_id     uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    order_id            uuid        NOT NULL REFERENCES sales_order,
    task_key            text        NOT NULL,
    job_type            text        NOT NULL,
    system              text,
    -- business-failure: the system refused the request (4xx with a business code);
    -- technical-failure: retries exhausted or the request refused as malformed;
    -- callback-failed / callback-timeout: the asynchronous outcome failed or never came.
    category            text        NOT NULL CHECK (category IN ('business-failure', 'technical-failure', 'callback-failed', 'callback-timeout')),
    status              text        NOT NULL CHECK (status IN ('open', 'retried', 'skipped', 'cancelled')),
    error_code          text,
    last_error          jsonb       NOT NULL,
    -- The request the worker sent (its body and idempotency key), when one was sent.
    request             jsonb,
    attempts            integer     NOT NULL CHECK (attempts >= 0),
    process_instance_id uuid        NOT NULL,
    opened_by_job       uuid        NOT NULL UNIQUE,
    -- {action, reason, actor, input?} once repaired.
    resolution          jsonb,
    version             bigint      NOT NULL CHECK (version > 0),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    resolved_at         timestamptz,
    FOREIGN KEY (order_id, task_key) REFERENCES fulfillment_task (order_id, task_key)
);
-- At most one open case per task.
CREATE UNIQUE INDEX fallout_case_open_task ON fallout_case (order_id, task_key) WHERE status = 'open';
-- The worklist: newest first within a status, keyset on (created_at, id).
CREATE INDEX fallout_case_worklist ON fallout_case (tenant_id, status, created_at DESC, fallout_case_id DESC);
CREATE INDEX fallout_case_by_order ON fallout_case (order_id);
ALTER TABLE fallout_case ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON fallout_case
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON fallout_case TO cpq_application;

-- The installed base: one asset per fulfilled order item, made by the order's completion.
CREATE TABLE asset (
    asset_id            uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    customer_account_id uuid        NOT NULL REFERENCES customer_account,
    offering_code       text        NOT NULL,
    configuration       jsonb       NOT NULL,
    status              text        NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
    order_id            uuid        NOT NULL REFERENCES sales_order,
    line_no             integer     NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT asset_one_per_order_item UNIQUE (order_id, line_no),
    FOREIGN KEY (order_id, line_no) REFERENCES order_item (order_id, line_no)
);
CREATE INDEX asset_by_customer ON asset (tenant_id, customer_account_id, created_at DESC, asset_id DESC);
ALTER TABLE asset ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON asset
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON asset TO cpq_application;
