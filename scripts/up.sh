#!/usr/bin/env bash
# Brings the platform up locally: installs and starts PostgreSQL and Redis when absent, creates
# the database and its roles, builds, migrates (cpq-admin migrate), loads the demo catalog
# (cpq-admin seed demo), starts cpq-api on 127.0.0.1:8080, and exercises it: a customer account,
# a catalog search, a configuration validation and a priced cart. Safe to run again: it restarts the API on the new
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
log "loading the demo catalog (tenant demo)"
"$BIN/cpq-admin" seed demo --tenant demo

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

log "the demo catalog: search, validate a configuration, price a cart"
echo "GET /v1/catalog/offerings?q=internet -> $(curl -fsS "$API/v1/catalog/offerings?q=internet&market=DE" -H "Authorization: Bearer $TOKEN")"
echo
echo "POST /v1/configurations/validate (platinum SLA at 100 Mbit/s) ->"
curl -fsS -X POST "$API/v1/configurations/validate" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d '{"context":{"market":"DE","channel":"direct","segment":"enterprise"},"configuration":{"offering":"BIZ-INTERNET","characteristics":{"sla":"platinum"}}}'
echo
echo
echo "POST /v1/price (internet, SD-WAN bundle, 12 mobile lines) ->"
PRICE=$(curl -fsS -X POST "$API/v1/price" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
  -d "{\"context\":{\"market\":\"DE\",\"channel\":\"direct\",\"segment\":\"enterprise\",\"currency\":\"EUR\",\"date\":\"$(date -u +%F)\",\"customer\":{\"new_customer\":true}},
       \"items\":[{\"line_id\":\"1\",\"configuration\":{\"offering\":\"BIZ-INTERNET\",\"characteristics\":{\"bandwidth\":\"500\",\"sla\":\"gold\"}}},
                {\"line_id\":\"2\",\"configuration\":{\"offering\":\"SDWAN-BUNDLE\",\"characteristics\":{\"sites\":3},\"components\":[{\"offering\":\"SDWAN-ROUTER\",\"quantity\":3},{\"offering\":\"SDWAN-LICENSE\",\"quantity\":3}]}},
                {\"line_id\":\"3\",\"configuration\":{\"offering\":\"MOBILE-FLEET\",\"quantity\":12,\"characteristics\":{\"data\":\"50GB\"}}}]}" \
  )
echo "  $(printf '%s' "$PRICE" | grep -o '"totals":{"one_time":{[^}]*},"recurring":{[^}]*}}')"
echo "  snapshot $(printf '%s' "$PRICE" | grep -o '"hash":"[0-9a-f]*"')"

cat <<EOT

Next steps:
  export CPQ_ENV=local
  TOKEN=\$($BIN/cpq-admin token --tenant demo --subject rep-1 --role sales)
  curl -s $API/v1/customer-accounts -H "Authorization: Bearer \$TOKEN"
  curl -s $API/health/ready
  curl -s $API/metrics | grep http_request_duration
EOT
