-- What `POST /v1/customer-accounts` with an Idempotency-Key writes, as pgbench runs it: the same
-- six round trips in one transaction, with bodies of the API's size:
--   transaction_begin (the API sends BEGIN and the tenant's set_config as one simple query; pgbench
--     cannot put two commands in one prepared statement, so scripts/physical-limit.sh sets the
--     tenant for the whole session through PGOPTIONS instead, and BEGIN goes alone),
--   idempotency_record_insert, customer_account_insert,
--   audit_record_insert (the audit record and the outbox event in one statement, as the API does),
--   idempotency_record_complete, transaction_commit.
-- Run by scripts/physical-limit.sh as the application role over TCP, prepared (as sqlx does). The
-- physical limit is what the database does with no API in front of it.
\set n random(1, 9000000000000000000)
BEGIN;
INSERT INTO idempotency_record (tenant_id, idempotency_key, request_method, request_path, request_hash, created_at, expires_at) VALUES ('physical-limit', 'pgbench-' || :n, 'POST', '/v1/customer-accounts', sha256(('pgbench-' || :n)::bytea), now(), now() + interval '24 hours') ON CONFLICT (tenant_id, idempotency_key) DO NOTHING;
INSERT INTO customer_account (customer_account_id, tenant_id, name, external_ref, segment, market, currency, status, version, created_at, created_by, updated_at, updated_by, closed_at, close_reason) VALUES (gen_random_uuid(), 'physical-limit', 'Limit Co ' || :n, NULL, 'enterprise', 'DE', 'EUR', 'active', 1, now(), 'load-rep-1', now(), 'load-rep-1', NULL, NULL);
WITH audit AS (INSERT INTO audit_record (audit_id, tenant_id, actor_subject, action, aggregate_type, aggregate_id, before_digest, after_digest, reason, correlation_id, causation_id, occurred_at) VALUES (gen_random_uuid(), 'physical-limit', 'load-rep-1', 'customer-account.create', 'customer-account', gen_random_uuid(), NULL, sha256(('after-' || :n)::bytea), NULL, 'pgbench-' || :n, 'pgbench-' || :n, now())) INSERT INTO outbox_event (event_id, tenant_id, aggregate_type, aggregate_id, event_type, schema_version, occurred_at, correlation_id, causation_id, payload) VALUES (gen_random_uuid(), 'physical-limit', 'customer-account', gen_random_uuid(), 'customer-account.created', 1, now(), 'pgbench-' || :n, 'pgbench-' || :n, jsonb_build_object('customer_account_id', gen_random_uuid(), 'name', 'Limit Co ' || :n, 'external_ref', NULL, 'segment', 'enterprise', 'market', 'DE', 'currency', 'EUR', 'status', 'active', 'version', 1));
UPDATE idempotency_record SET response_status = 201, response_headers = jsonb_build_object('etag', 1, 'location', '/v1/customer-accounts/' || gen_random_uuid()), response_body = jsonb_build_object('id', gen_random_uuid(), 'name', 'Limit Co ' || :n, 'external_ref', NULL, 'segment', 'enterprise', 'market', 'DE', 'currency', 'EUR', 'status', 'active', 'version', 1, 'created_at', now(), 'created_by', 'load-rep-1', 'updated_at', now(), 'updated_by', 'load-rep-1', 'closed_at', NULL, 'close_reason', NULL), completed_at = now() WHERE tenant_id = 'physical-limit' AND idempotency_key = 'pgbench-' || :n;
COMMIT;
