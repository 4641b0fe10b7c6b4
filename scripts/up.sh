#!/usr/bin/env bash
# Brings the platform up locally: installs and starts PostgreSQL and Redis when absent, creates
# the database and its roles, builds, migrates (cpq-admin migrate), starts cpq-api on
# 127.0.0.1:8080, and makes a first request. Safe to run again: it restarts the API on the new
# build. Stop it with: kill "$(cat .run/cpq-api.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

prepare_stack
create_database

log "building (release)"
cargo build --release --locked -p cpq-api -p cpq-admin
BIN="$CARGO_TARGET_DIR/release"
export CPQ_ENV=local

log "migrating"
"$BIN/cpq-admin" migrate

mkdir -p .run
if [ -f .run/cpq-api.pid ] && kill -0 "$(cat .run/cpq-api.pid)" 2>/dev/null; then
  log "stopping the running cpq-api"
  kill "$(cat .run/cpq-api.pid)"
  for _ in $(seq 1 50); do kill -0 "$(cat .run/cpq-api.pid)" 2>/dev/null || break; sleep 0.1; done
fi
log "starting cpq-api (logs: .run/cpq-api.log)"
nohup "$BIN/cpq-api" >>.run/cpq-api.log 2>&1 &
echo $! >.run/cpq-api.pid

API=http://127.0.0.1:8080
for _ in $(seq 1 100); do
  curl -fsS "$API/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$API/health/ready" >/dev/null || { echo "cpq-api is not ready; see .run/cpq-api.log" >&2; tail -20 .run/cpq-api.log >&2; exit 1; }
echo
echo "cpq-api is ready on $API (pid $(cat .run/cpq-api.pid))"

log "first request: a sales user of tenant demo creates (or finds) a customer account and reads it"
TOKEN=$("$BIN/cpq-admin" token --tenant demo --subject rep-1 --role sales)
FOUND=$(curl -fsS "$API/v1/customer-accounts?external_ref=CRM-DEMO-1" -H "Authorization: Bearer $TOKEN")
ID=$(printf '%s' "$FOUND" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
if [ -z "$ID" ]; then
  CREATED=$(curl -fsS -X POST "$API/v1/customer-accounts" \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    -H "Idempotency-Key: demo-account-$(date +%s)" \
    -d '{"name":"Acme GmbH","external_ref":"CRM-DEMO-1","segment":"enterprise","market":"DE","currency":"EUR"}')
  echo "POST /v1/customer-accounts -> $CREATED"
  ID=$(printf '%s' "$CREATED" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
fi
echo "GET /v1/customer-accounts/$ID -> $(curl -fsS "$API/v1/customer-accounts/$ID" -H "Authorization: Bearer $TOKEN")"

cat <<EOT

Next steps:
  export CPQ_ENV=local
  TOKEN=\$($BIN/cpq-admin token --tenant demo --subject rep-1 --role sales)
  curl -s $API/v1/customer-accounts -H "Authorization: Bearer \$TOKEN"
  curl -s $API/health/ready
  curl -s $API/metrics | grep http_request_duration
EOT
