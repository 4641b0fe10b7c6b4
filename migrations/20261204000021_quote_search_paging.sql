-- GET /v1/quote-search pages like every list: newest event first with the quote id as the tie
-- breaker, so (updated_at, quote_id) is the keyset cursor. One index per filter in that order;
-- the former status index (no tie breaker) is replaced.
DROP INDEX IF EXISTS quote_search_by_status;
CREATE INDEX quote_search_by_tenant_updated ON quote_search (tenant_id, updated_at DESC, quote_id DESC);
CREATE INDEX quote_search_by_status_updated ON quote_search (tenant_id, status, updated_at DESC, quote_id DESC);
CREATE INDEX quote_search_by_customer_updated ON quote_search (tenant_id, customer_account_id, updated_at DESC, quote_id DESC);
