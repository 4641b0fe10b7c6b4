-- The event backbone: the relay's slot leases and its view of the outbox, the consumers' inbox,
-- and the first projections.

-- The outbox is split into slots by a hash of the aggregate id; each slot is published by at most
-- one relay at a time (a lease), so several relays share the work and every aggregate's events
-- still leave in order.
CREATE TABLE relay_slot (
    slot        integer     PRIMARY KEY CHECK (slot >= 0),
    owner       text,
    lease_until timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO relay_slot (slot) SELECT s FROM generate_series(0, 15) AS s;
GRANT SELECT, UPDATE ON relay_slot TO cpq_application;
-- The relays alive (each renews its row with its leases): a fair share is the slots divided by
-- how many there are, so that a relay that holds nothing yet still counts.
CREATE TABLE relay_member (
    owner      text        PRIMARY KEY,
    seen_until timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON relay_member TO cpq_application;

CREATE FUNCTION outbox_slot(aggregate uuid, slots integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((hashtextextended(aggregate::text, 0) % slots + slots) % slots)::integer
$$;

-- Pending events of the given slots, oldest first, across tenants (the relay is a platform
-- process; row-level security keeps application sessions to their tenant).
CREATE FUNCTION outbox_pending(p_slots integer[], p_slot_count integer, p_limit integer)
RETURNS TABLE (event_id uuid, outbox_position bigint, tenant_id text, aggregate_type text, aggregate_id uuid, event_type text,
               schema_version integer, occurred_at timestamptz, correlation_id text, causation_id text, payload jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT e.event_id, e.outbox_position, e.tenant_id, e.aggregate_type, e.aggregate_id, e.event_type, e.schema_version,
           e.occurred_at, e.correlation_id, e.causation_id, e.payload
    FROM outbox_event e
    WHERE e.published_at IS NULL AND outbox_slot(e.aggregate_id, p_slot_count) = ANY (p_slots)
    ORDER BY e.outbox_position
    LIMIT p_limit
$$;

CREATE FUNCTION outbox_mark_published(p_ids uuid[], p_at timestamptz) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH done AS (
        UPDATE outbox_event SET published_at = p_at WHERE event_id = ANY (p_ids) AND published_at IS NULL RETURNING 1
    )
    SELECT count(*)::integer FROM done
$$;

-- The backlog, for the relay's gauges: how many are pending and since when.
CREATE FUNCTION outbox_backlog() RETURNS TABLE (pending bigint, oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT count(*), min(occurred_at) FROM outbox_event WHERE published_at IS NULL
$$;

REVOKE ALL ON FUNCTION outbox_pending(integer[], integer, integer), outbox_mark_published(uuid[], timestamptz), outbox_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_pending(integer[], integer, integer), outbox_mark_published(uuid[], timestamptz), outbox_backlog() TO cpq_application;

-- Each consumer applies an event at most once: its inbox row is written in the same transaction
-- as the event's effects, and a redelivered event finds it there.
CREATE TABLE consumer_inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    applied_at  timestamptz NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
GRANT SELECT, INSERT, DELETE ON consumer_inbox TO cpq_application;

-- The quote search projection: one row per quote, as the events tell it, for search and for the
-- order desk. Rebuildable from the topic (cpq-admin replay).
CREATE TABLE quote_search (
    quote_id            uuid        PRIMARY KEY,
    tenant_id           text        NOT NULL,
    customer_account_id uuid,
    status              text        NOT NULL,
    revision_no         integer,
    snapshot_hash       text,
    order_id            uuid,
    last_event_id       uuid        NOT NULL,
    last_event_type     text        NOT NULL,
    events_applied      integer     NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX quote_search_by_status ON quote_search (tenant_id, status, updated_at DESC);
ALTER TABLE quote_search ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quote_search
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON quote_search TO cpq_application;

-- The audit export: every event, as received, for the audit archive.
CREATE TABLE audit_export (
    event_id       uuid        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    topic          text        NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    aggregate_id   uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    payload        jsonb       NOT NULL,
    exported_at    timestamptz NOT NULL
);
ALTER TABLE audit_export ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_export
    USING (tenant_id = current_setting('cpq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cpq.tenant_id', true));
GRANT SELECT, INSERT ON audit_export TO cpq_application;
