-- Job activation names the tenants served (issue 12, item 1). A worker is authorised for its own
-- tenant, the tenants its credential lists, or every tenant (a platform credential, such as the
-- platform's own cpq-worker); the caller decides which and says so: p_every_tenant must be true to
-- look across tenants, otherwise only jobs of p_tenants are claimed (none when it is NULL or
-- empty). The four-argument job_activate stays for the previous release during a rollout
-- (migrations are expand-first); nothing in this release calls it, and a later migration drops it.
CREATE FUNCTION job_activate(p_type text, p_worker text, p_max integer, p_lease_ms integer,
                             p_every_tenant boolean, p_tenants text[])
RETURNS TABLE (job_id uuid, tenant_id text, process_instance_id uuid, element_id text, retries integer,
               attempt integer, headers jsonb, variables jsonb, lease_deadline timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH picked AS (
        SELECT j.job_id FROM job j
        WHERE j.job_type = p_type
          AND (p_every_tenant OR j.tenant_id = ANY (coalesce(p_tenants, '{}')))
          AND ((j.status = 'activatable' AND j.retry_at <= now())
               OR (j.status = 'activated' AND j.lease_deadline < now()))
        ORDER BY j.retry_at, j.job_id
        LIMIT p_max
        FOR UPDATE SKIP LOCKED
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

-- Published message ids (issue 12, item 4): as in Zeebe, a message id is published once per
-- tenant and message name for the message's time to live, whether the message was buffered,
-- correlated at once or started an instance. A second publication with a live id is refused; a
-- record whose time to live has passed is replaced by the next publication, and purged by the
-- worker's scan (message_purge_expired).
CREATE TABLE message_publication (
    tenant_id    text        NOT NULL,
    message_name text        NOT NULL,
    message_id   text        NOT NULL,
    message_key  uuid        NOT NULL,
    published_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, message_name, message_id)
);
CREATE INDEX message_publication_expiry ON message_publication (expires_at);
ALTER TABLE message_publication ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_publication
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON message_publication TO cpq_application;

-- Ids of messages published before this migration and still alive keep their guarantee.
INSERT INTO message_publication (tenant_id, message_name, message_id, message_key, published_at, expires_at)
SELECT DISTINCT ON (tenant_id, message_name, message_id)
       tenant_id, message_name, message_id, message_key, published_at, expires_at
FROM message
WHERE message_id IS NOT NULL AND expires_at > now()
ORDER BY tenant_id, message_name, message_id, expires_at DESC;

-- Expired messages (buffered or correlated) and expired id records go, across tenants, a bounded
-- number per call: the worker's timer scan calls it. Nothing reads an expired row.
CREATE INDEX message_expiry ON message (expires_at);
CREATE FUNCTION message_purge_expired(p_limit integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH ids AS (
        DELETE FROM message_publication p
        WHERE (p.tenant_id, p.message_name, p.message_id) IN (
            SELECT e.tenant_id, e.message_name, e.message_id FROM message_publication e
            WHERE e.expires_at <= now() ORDER BY e.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING 1
    ), messages AS (
        DELETE FROM message m
        WHERE m.message_key IN (
            SELECT e.message_key FROM message e
            WHERE e.expires_at <= now() ORDER BY e.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING 1
    )
    SELECT ((SELECT count(*) FROM ids) + (SELECT count(*) FROM messages))::integer
$$;
REVOKE ALL ON FUNCTION message_purge_expired(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION message_purge_expired(integer) TO cpq_application;
