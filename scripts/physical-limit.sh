#!/usr/bin/env bash
# The physical-limit ratio (seed part 055 section 3; issue 14): how much of what PostgreSQL can do
# the API delivers. In one run, against the platform that scripts/up.sh started (cpq-api on
# 127.0.0.1:8080, relay and consumer running):
#   1. pgbench, 8 clients over TCP as the application role, runs deploy/bench/create-account.sql:
#      the writes of one POST /v1/customer-accounts (idempotency record, account, audit record,
#      outbox event, idempotency completion) in one transaction, in as many round trips as the API
#      sends, prepared as sqlx does;
#   2. cpq-load --profile create-accounts, 8 users, runs POST /v1/customer-accounts (each with its
#      own Idempotency-Key) against cpq-api for as long;
# then prints both throughputs and the ratio. SECONDS_EACH (default 30) sets each run's length,
# CLIENTS (default 8) both client counts, CPQ_LOAD_BIN a prebuilt cpq-load (default: built here).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
use_shared_target_dir

SECONDS_EACH=${SECONDS_EACH:-30}
CLIENTS=${CLIENTS:-8}
API=${API:-http://127.0.0.1:8080}
curl -fsS "$API/health/ready" >/dev/null || { echo "cpq-api is not ready on $API: run scripts/up.sh first" >&2; exit 1; }
if [ -z "${CPQ_LOAD_BIN:-}" ]; then
  cargo build --release --locked -q -p cpq-load -p cpq-admin
  CPQ_LOAD_BIN="$CARGO_TARGET_DIR/release/cpq-load"
fi
PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -1)

log "pgbench: $CLIENTS clients, ${SECONDS_EACH}s, deploy/bench/create-account.sql"
# The tenant for row-level security, set once per session (the API sets it per transaction in the
# same round trip as BEGIN; see the script's header).
PGOPTIONS="-c cpq.tenant_id=physical-limit" PGPASSWORD=cpq_app_local "$PGBENCH" -h 127.0.0.1 -U cpq_app -n -M prepared -c "$CLIENTS" -j 2 \
  -T "$SECONDS_EACH" -f deploy/bench/create-account.sql cpq | tee /tmp/physical-limit-pgbench.txt
DB_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' /tmp/physical-limit-pgbench.txt)

log "cpq-load --profile create-accounts: $CLIENTS users, ${SECONDS_EACH}s"
CPQ_ENV=local "$CPQ_LOAD_BIN" --profile create-accounts -H "$API" -u "$CLIENTS" -r "$CLIENTS" \
  -t "${SECONDS_EACH}s" --quiet | tee /tmp/physical-limit-api.txt
API_RPS=$(sed -n 's/^total: [0-9]* requests, [0-9]* failed, \([0-9.]*\) requests\/s.*/\1/p' /tmp/physical-limit-api.txt)

echo
awk -v db="$DB_TPS" -v api="$API_RPS" 'BEGIN {
  printf "physical limit: pgbench %.0f transactions/s, cpq-api %.0f requests/s: %.0f %%\n", db, api, 100 * api / db }'
