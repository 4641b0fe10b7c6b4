-- The outbox position of the last event applied to each projected quote: an event older than it
-- arriving later means per-aggregate order was broken, and is refused (dead-lettered) rather than
-- applied over newer state.
ALTER TABLE quote_search ADD COLUMN last_position bigint NOT NULL DEFAULT 0;
