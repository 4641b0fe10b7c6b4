#!/usr/bin/env bash
# Brings the platform up locally: installs and starts PostgreSQL, Redis and Apache Kafka (one KRaft
# node) when absent, creates the database and its roles, builds, migrates (cpq-admin migrate),
# loads the demo catalog (cpq-admin seed demo), deploys the platform's BPMN processes (cpq-admin deploy-bpmn
# processes), applies the topic catalogue (cpq-admin topics apply), starts cpq-api on
# 127.0.0.1:8080, cpq-relay, cpq-consumer, cpq-sim (the simulated external systems, on
# 127.0.0.1:8090) and cpq-worker (the fulfillment worker group; timers and quote expiry), and
# exercises them: a customer account, a catalog
# search, a configuration validation, a priced cart, then the sales flow (a quote created, priced,
# submitted into approval, approved by a manager, accepted and converted into an order) and the
# quote search projection answering for it; the order fulfilled through the simulators (its plan and
# the customer's assets printed), and a second order whose billing fails permanently, in fallout, repaired
# with a retry and completed. Safe to run again: it restarts everything on the new
# build. Stop them with: kill $(cat .run/*.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

prepare_stack
create_database

log "building (release)"
cargo build --release --locked -p cpq-api -p cpq-admin -p cpq-events -p cpq-sim -p cpq-worker
BIN="$CARGO_TARGET_DIR/release"
export CPQ_ENV=local

log "migrating"
"$BIN/cpq-admin" migrate
log "loading the demo catalog (tenant demo)"
"$BIN/cpq-admin" seed demo --tenant demo
log "applying the topic catalogue to the local broker"
"$BIN/cpq-admin" topics apply

mkdir -p .run
# (Re)start a deployable in the background: name, then its arguments. Logs and pid in .run/.
restart() {
  local name=$1
  shift
  if [ -f ".run/$name.pid" ] && kill -0 "$(cat ".run/$name.pid")" 2>/dev/null; then
    log "stopping the running $name"
    kill "$(cat ".run/$name.pid")"
    for _ in $(seq 1 50); do kill -0 "$(cat ".run/$name.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  log "starting $name (logs: .run/$name.log)"
  nohup "$BIN/$name" "$@" >>".run/$name.log" 2>&1 &
  echo $! >".run/$name.pid"
}
restart cpq-api
restart cpq-relay
restart cpq-consumer --instance-id cpq-consumer-0
# The simulated external systems (inventory, provisioning, billing, crm, notification) on
# 127.0.0.1:8090, in their own database cpq_sim (docs/simulators.md).
restart cpq-sim --listen 127.0.0.1:8090
# The fulfillment worker group (deploy/local/fulfillment-workers.toml: the job types the technical
# catalog asks of the external systems, sent to cpq-sim); it also fires due timers (approval
# reminders and escalations) and expires quotes past their validity.
restart cpq-worker --worker-config deploy/local/fulfillment-workers.toml
# A process deploys only once a worker group executes each of its job types: cpq-worker registers
# its group when it starts, so the processes are deployed after it (retried until it has).
log "deploying the platform's processes (quote approval, order fulfillment)"
for attempt in $(seq 1 40); do
  if "$BIN/cpq-admin" deploy-bpmn processes >.run/deploy-bpmn.log 2>&1; then break; fi
  [ "$attempt" = 40 ] && { cat .run/deploy-bpmn.log >&2; exit 1; }
  sleep 0.5
done
cat .run/deploy-bpmn.log

API=http://127.0.0.1:8080
for _ in $(seq 1 100); do
  curl -fsS "$API/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$API/health/ready" >/dev/null || { echo "cpq-api is not ready; see .run/cpq-api.log" >&2; tail -20 .run/cpq-api.log >&2; exit 1; }
echo
echo "cpq-api is ready on $API (pid $(cat .run/cpq-api.pid))"
SIM=http://127.0.0.1:8090
for _ in $(seq 1 100); do
  curl -fsS "$SIM/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$SIM/health/ready" >/dev/null || { echo "cpq-sim is not ready; see .run/cpq-sim.log" >&2; tail -20 .run/cpq-sim.log >&2; exit 1; }
echo "cpq-sim is ready on $SIM (pid $(cat .run/cpq-sim.pid))"

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

log "the sales flow: quote, price, submit into approval, approve as another user, accept, convert"
APPROVER=$("$BIN/cpq-admin" token --tenant demo --subject manager-1 --role approver --group manager)
call() { # method path token [if-match] [body]: prints the response body, fails on an HTTP error
  local args=(-sS -X "$1" "$API$2" -H "Authorization: Bearer $3" -H "Content-Type: application/json" -w '\n%{http_code}')
  [ -n "${4:-}" ] && args+=(-H "If-Match: \"$4\"")
  if [ "$1" != GET ]; then args+=(-d "${5:-}"); [ -n "${5:-}" ] || args[-1]='{}'; fi
  local out; out=$(curl "${args[@]}")
  local code=${out##*$'\n'}
  if [ "${code:0:1}" != 2 ]; then echo "$1 $2 -> HTTP $code: ${out%$'\n'*}" >&2; exit 1; fi
  printf '%s' "${out%$'\n'*}"
}
Q=$(call POST /v1/quotes "$TOKEN" "" "{\"customer_account_id\":\"$ID\"}")
QID=$(jq -r .id <<<"$Q")
echo "1. POST /v1/quotes -> quote $QID, status $(jq -r .status <<<"$Q"), catalog version $(jq -r .catalog_version_id <<<"$Q")"
Q=$(call POST "/v1/quotes/$QID/items" "$TOKEN" "$(jq -r .version <<<"$Q")" \
  '{"configuration":{"offering":"BIZ-INTERNET","characteristics":{"bandwidth":"500"}}}')
Q=$(call POST "/v1/quotes/$QID/items" "$TOKEN" "$(jq -r .version <<<"$Q")" \
  '{"configuration":{"offering":"CLOUD-BACKUP","characteristics":{"storage":"5TB"}},"manual_discount_percent":"20"}')
echo "2. POST /v1/quotes/$QID/items -> line 1: BIZ-INTERNET 500 Mbit/s; line 2: CLOUD-BACKUP 5TB at 20 % off"
Q=$(call POST "/v1/quotes/$QID/price" "$TOKEN" "$(jq -r .version <<<"$Q")")
echo "3. POST /v1/quotes/$QID/price -> $(jq -c '.price_snapshot.totals' <<<"$Q"), snapshot $(jq -r .snapshot_hash <<<"$Q")"
Q=$(call POST "/v1/quotes/$QID/submit" "$TOKEN" "$(jq -r .version <<<"$Q")")
echo "4. POST /v1/quotes/$QID/submit -> $(jq -r .status <<<"$Q"), levels $(jq -c .approval_decision.levels <<<"$Q"): $(jq -r '.approval_decision.reasons[0].detail' <<<"$Q")"
TASKS=$(call GET /v1/approval-tasks "$APPROVER")
TASK=$(jq -r --arg q "$QID" '[.items[] | select(.quote_id == $q)][0].task_id' <<<"$TASKS")
echo "5. GET /v1/approval-tasks (as manager-1) -> task $TASK for level $(jq -r --arg q "$QID" '[.items[] | select(.quote_id == $q)][0].level' <<<"$TASKS")"
D=$(call POST "/v1/approval-tasks/$TASK/approve" "$APPROVER" "" '{"comment":"within the quarter envelope"}')
echo "6. POST /v1/approval-tasks/$TASK/approve (as manager-1) -> quote $(jq -r .quote.status <<<"$D")"
Q=$(call POST "/v1/quotes/$QID/accept" "$TOKEN" "$(jq -r .quote.version <<<"$D")")
echo "7. POST /v1/quotes/$QID/accept -> $(jq -r .status <<<"$Q") by $(jq -r .accepted_by <<<"$Q") at $(jq -r .accepted_at <<<"$Q")"
O=$(call POST "/v1/quotes/$QID/convert" "$TOKEN" "$(jq -r .version <<<"$Q")")
OID=$(jq -r .order_id <<<"$O")
echo "8. POST /v1/quotes/$QID/convert -> order $OID, $(jq -r .status <<<"$O"), $(jq '.items | length' <<<"$O") item(s), fulfillment instance $(jq -r .fulfillment_instance_id <<<"$O")"
# Waits until order $1 has status $2 (30 s at most) and prints its plan.
wait_order() {
  local o
  for _ in $(seq 1 150); do
    o=$(call GET "/v1/orders/$1" "$TOKEN")
    [ "$(jq -r .status <<<"$o")" = "$2" ] && break
    sleep 0.2
  done
  echo "   GET /v1/orders/$1 -> $(jq -r .status <<<"$o")$(jq -r 'if .completed_at then " at " + .completed_at else "" end' <<<"$o")"
  [ "$(jq -r .status <<<"$o")" = "$2" ] || { echo "order $1 is not $2: see .run/cpq-worker.log" >&2; exit 1; }
  PLAN=$(call GET "/v1/orders/$1/fulfillment-plan" "$TOKEN")
  echo "   GET /v1/orders/$1/fulfillment-plan -> $(jq '.tasks | length' <<<"$PLAN") tasks:"
  jq -r '.tasks[] | "     \(.key) [\(.job_type) @ \(.system // "-")] \(.status), \(.attempts) attempt(s)\(if (.depends_on | length) > 0 then " after " + (.depends_on | join(", ")) else "" end)"' <<<"$PLAN"
}
echo "   cpq-worker runs the plan against cpq-sim (provisioning calls back to POST /v1/callbacks/provisioning):"
wait_order "$OID" completed
ASSETS=$(call GET "/v1/customer-accounts/$ID/assets" "$TOKEN")
echo "   GET /v1/customer-accounts/$ID/assets -> $(jq '.items | length' <<<"$ASSETS") asset(s):"
jq -r '.items[] | "     \(.offering_code) \(.status), line \(.line_no) of order \(.order_id)"' <<<"$ASSETS"
AGAIN=$(curl -sS -X POST "$API/v1/quotes/$QID/convert" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -H "If-Match: \"$(jq -r .version <<<"$Q")\"" -d '{}')
echo "9. POST /v1/quotes/$QID/convert again -> $(jq -r '"\(.status) \(.title): existing \(.existing)"' <<<"$AGAIN")"

for _ in $(seq 1 100); do
  SEARCH=$(call GET "/v1/quote-search?status=converted" "$TOKEN")
  HIT=$(jq -c --arg q "$QID" '.items[] | select(.quote_id == $q)' <<<"$SEARCH")
  [ -n "$HIT" ] && break
  sleep 0.2
done
echo "10. GET /v1/quote-search?status=converted (the projection cpq-relay and cpq-consumer built from the events) ->"
echo "    ${HIT:-the quote has not reached the projection yet: see .run/cpq-relay.log and .run/cpq-consumer.log}"

log "a second order whose billing fails permanently: fallout, then repaired with a retry"
OPS=$("$BIN/cpq-admin" token --tenant demo --subject ops-1 --role order-operations)
curl -fsS -X POST "$SIM/admin/systems/billing/force" -H "Content-Type: application/json" \
  -d '{"outcome":"permanent:CREDIT_CHECK_FAILED","count":1}' >/dev/null
Q=$(call POST /v1/quotes "$TOKEN" "" "{\"customer_account_id\":\"$ID\"}")
QID=$(jq -r .id <<<"$Q")
Q=$(call POST "/v1/quotes/$QID/items" "$TOKEN" "$(jq -r .version <<<"$Q")" \
  '{"configuration":{"offering":"BIZ-INTERNET","characteristics":{"bandwidth":"250"}}}')
for step in price submit accept; do Q=$(call POST "/v1/quotes/$QID/$step" "$TOKEN" "$(jq -r .version <<<"$Q")"); done
O=$(call POST "/v1/quotes/$QID/convert" "$TOKEN" "$(jq -r .version <<<"$Q")")
OID2=$(jq -r .order_id <<<"$O")
echo "11. quote $QID accepted and converted -> order $OID2; billing is forced to refuse its next request"
wait_order "$OID2" in-fallout
CASES=$(call GET "/v1/fallout-cases?order_id=$OID2&status=open" "$OPS")
CASE=$(jq -r '.items[0].id' <<<"$CASES")
echo "12. GET /v1/fallout-cases?order_id=$OID2&status=open (as ops-1) -> $(jq -c '.items[0] | {id, task_key, system, category, error_code, attempts}' <<<"$CASES")"
R=$(call POST "/v1/fallout-cases/$CASE/retry" "$OPS" "" '{"reason":"credit limit raised by finance"}')
echo "13. POST /v1/fallout-cases/$CASE/retry -> case $(jq -r .status <<<"$R")"
wait_order "$OID2" completed
echo "14. GET $SIM/admin/stats -> $(curl -fsS "$SIM/admin/stats" | jq -c ".total | {requests, executions, duplicate_executions, permanent_failures_injected}")"

cat <<EOT

Next steps:
  export CPQ_ENV=local
  TOKEN=\$($BIN/cpq-admin token --tenant demo --subject rep-1 --role sales)
  curl -s $API/v1/customer-accounts -H "Authorization: Bearer \$TOKEN"
  curl -s $API/v1/quotes?status=converted -H "Authorization: Bearer \$TOKEN"
  curl -s $API/health/ready
  curl -s $API/metrics | grep http_request_duration
  curl -s http://127.0.0.1:8090/admin/stats        # cpq-sim: requests, executions, duplicates
  curl -s "$API/v1/fallout-cases?status=open" -H "Authorization: Bearer \$($BIN/cpq-admin token --tenant demo --subject ops-1 --role order-operations)"
EOT
