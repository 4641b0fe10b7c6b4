-- The quote search projection no longer depends on the order in which the quote and order topics
-- arrive (they are independent streams): an order event for a quote not projected yet writes a
-- partial row that the quote's events complete. `last_position` stays the outbox position of the
-- last quote event applied (per-aggregate order of the quote's own stream); `latest_position` is
-- the highest outbox position of any event applied to the row, quote or order, and decides which
-- event the row's last_event_id, last_event_type and updated_at come from, so that a late older
-- event never overwrites a newer one.
ALTER TABLE quote_search ADD COLUMN latest_position bigint NOT NULL DEFAULT 0;
ALTER TABLE quote_search_rebuild ADD COLUMN latest_position bigint NOT NULL DEFAULT 0;

-- Rows projected before: their last event is the quote's last event or its order's.
UPDATE quote_search q
SET latest_position = greatest(
    q.last_position,
    coalesce((SELECT max(e.outbox_position) FROM outbox_event e
              WHERE e.aggregate_type = 'order' AND e.aggregate_id = q.order_id), 0));
