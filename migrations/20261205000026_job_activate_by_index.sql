-- Job activation reads only the jobs it claims, whatever the backlog (issue 15, item 9).
--
-- The previous body (migration 19) asked for activatable jobs that are due OR leased jobs whose
-- lease has expired in one predicate: PostgreSQL answered it with a BitmapOr of the two partial
-- indexes and sorted every due job of the type to return the first p_max. With 13,000
-- fulfillment-task-done jobs waiting in the 10,000-order backlog a claim took 99 ms, and the
-- worker claims several times a second per job type (docs/BENCHMARKS.md, 2026-12-05).
--
-- Now each kind is read in its own partial index's order (job_activatable: job_type, retry_at;
-- job_leased: job_type, lease_deadline), at most p_max rows each, locked as they are read and
-- skipping rows other claimers hold, so a claim costs an index range of p_max rows (0.1 ms
-- against 7.5 ms for the old plan at 13,000 due jobs on a quiet machine). The two short lists are
-- merged by due time and the first p_max are taken: due jobs oldest first, a job whose lease
-- expired as due as its deadline. The rows read but not taken (at most p_max) stay locked only
-- until the claim's own statement commits; a concurrent claimer skips them for that instant.
-- Same signature and result, so the release before this one keeps working (expand-first).
CREATE OR REPLACE FUNCTION job_activate(p_type text, p_worker text, p_max integer, p_lease_ms integer,
                                        p_every_tenant boolean, p_tenants text[])
RETURNS TABLE (job_id uuid, tenant_id text, process_instance_id uuid, element_id text, retries integer,
               attempt integer, headers jsonb, variables jsonb, lease_deadline timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH due AS (
        SELECT j.job_id, j.retry_at AS due_at FROM job j
        WHERE j.job_type = p_type AND j.status = 'activatable' AND j.retry_at <= now()
          AND (p_every_tenant OR j.tenant_id = ANY (coalesce(p_tenants, '{}')))
        ORDER BY j.retry_at
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ), lease_expired AS (
        SELECT j.job_id, j.lease_deadline AS due_at FROM job j
        WHERE j.job_type = p_type AND j.status = 'activated' AND j.lease_deadline < now()
          AND (p_every_tenant OR j.tenant_id = ANY (coalesce(p_tenants, '{}')))
        ORDER BY j.lease_deadline
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
    ), picked AS (
        SELECT c.job_id FROM (SELECT * FROM due UNION ALL SELECT * FROM lease_expired) c
        ORDER BY c.due_at, c.job_id
        LIMIT p_max
    )
    UPDATE job j SET status = 'activated', lease_owner = p_worker,
        lease_deadline = now() + p_lease_ms * interval '1 millisecond',
        attempt = j.attempt + 1, updated_at = now()
    FROM picked WHERE j.job_id = picked.job_id
    RETURNING j.job_id, j.tenant_id, j.process_instance_id, j.element_id, j.retries, j.attempt,
              j.headers, j.variables, j.lease_deadline
$$;
REVOKE ALL ON FUNCTION job_activate(text, text, integer, integer, boolean, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION job_activate(text, text, integer, integer, boolean, text[]) TO cpq_application;
