-- The operational order search and stuck fulfillment tasks (issue 15, items 5 and 6).
--
-- Every search pages newest first on (created_at, order_id), the key of sales_order_recent
-- (migration 13), which serves the unfiltered search and the created range. Each filter that
-- narrows the orders has an index in that order; the task filters (stuck, system) are answered
-- by small partial indexes over the tasks that are not finished, which at steady state are a
-- small fraction of all tasks.
CREATE INDEX sales_order_by_status ON sales_order (tenant_id, status, created_at DESC, order_id DESC);
CREATE INDEX sales_order_by_customer ON sales_order (tenant_id, customer_account_id, created_at DESC, order_id DESC);

-- Tasks in flight (a call made, its outcome not yet in): the stuck-task list pages on
-- (started_at, order_id, task_key), oldest first; the order search's stuck filter and the
-- worker's count across tenants read it too.
CREATE INDEX fulfillment_task_in_flight ON fulfillment_task (tenant_id, started_at, order_id, task_key)
    WHERE status IN ('running', 'waiting-callback');

-- Tasks not yet finished, by system: the order search's system filter.
CREATE INDEX fulfillment_task_unfinished ON fulfillment_task (tenant_id, system, order_id)
    WHERE status IN ('pending', 'ready', 'running', 'waiting-callback', 'failed');

-- The stuck-task gauge across tenants (row-level security hides other tenants from the
-- application's role): per system ('none' for tasks without one), how many tasks have been
-- running or waiting for a callback since before now() - older_than. Counts only.
CREATE FUNCTION fulfillment_tasks_stuck(older_than interval)
RETURNS TABLE (system text, stuck bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce(t.system, 'none'), count(*) FROM fulfillment_task t
    WHERE t.status IN ('running', 'waiting-callback') AND t.started_at < now() - older_than
    GROUP BY 1
$$;
REVOKE ALL ON FUNCTION fulfillment_tasks_stuck(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fulfillment_tasks_stuck(interval) TO cpq_application;
