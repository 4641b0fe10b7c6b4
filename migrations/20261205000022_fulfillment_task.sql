-- The fulfillment plan of an order (issue 15, item 1): its items decomposed through the technical
-- catalog of the catalog version the order was priced with, written with the order by
-- conversion, in the same statement. One row per task; task_key is stable within the order
-- (`L1/access-line/reserve-port`, `order/notify-customer`), depends_on holds the keys of the
-- tasks that must finish first, position is the plan's topological order. A task that waits
-- for nothing starts ready, the others pending; the fulfillment process moves them on.
CREATE TABLE fulfillment_task (
    order_id     uuid        NOT NULL REFERENCES sales_order,
    task_key     text        NOT NULL,
    tenant_id    text        NOT NULL,
    position     integer     NOT NULL CHECK (position >= 0),
    -- None for order tasks (they serve the whole order).
    line_no      integer     CHECK (line_no > 0),
    item_code    text,
    spec         text,
    task_code    text        NOT NULL,
    job_type     text        NOT NULL,
    -- None when the catalog names no system for the task.
    system       text        CHECK (system IN ('inventory', 'provisioning', 'billing', 'crm', 'notification')),
    depends_on   text[]      NOT NULL,
    status       text        NOT NULL CHECK (status IN ('pending', 'ready', 'running', 'waiting-callback', 'completed', 'failed', 'skipped', 'cancelled')),
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    completed_at timestamptz,
    last_error   jsonb,
    PRIMARY KEY (order_id, task_key),
    CONSTRAINT fulfillment_task_position UNIQUE (order_id, position)
);
ALTER TABLE fulfillment_task ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON fulfillment_task
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON fulfillment_task TO cpq_application;
