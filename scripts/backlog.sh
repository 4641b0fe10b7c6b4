#!/usr/bin/env bash
# The fulfillment backlog scenario (seed part 055 section 19; issue 15 item 9) against the platform
# that scripts/up.sh started (cpq-api on 127.0.0.1:8080, cpq-sim on :8090, cpq-worker admin :9097):
#   1. stops the running cpq-worker, so that the orders pile up as a real backlog;
#   2. cpq-load --profile backlog --backlog-phase create: ORDERS orders (default 10,000) of eight
#      fulfillment tasks, each made through the API (account, quote, two BIZ-INTERNET lines, price,
#      submit, accept, convert), their ids in .run/backlog-orders.txt;
#   3. starts cpq-worker with the throughput group deploy/local/backlog-workers.toml and a pool of
#      WORKER_POOL connections (default 32; CPQ_DATABASE__MAX_CONNECTIONS);
#   4. cpq-load --profile backlog --backlog-phase drain: sets cpq-sim's knobs (p50 500 ms, p95 2 s,
#      5 % transient, 1 % permanent failures), takes provisioning down for 60 s once half the tasks
#      are done, waits until the backlog is drained and prints the report (also in
#      .run/backlog-report.txt); cpq-load puts cpq-sim's knobs back afterwards;
#   5. whatever happened, restarts cpq-worker as up.sh runs it (deploy/local/fulfillment-workers.toml)
#      and makes sure provisioning is up.
# Environment: ORDERS, SKIP_CREATE (set: drain .run/backlog-orders.txt's orders again, e.g. after
# an interrupted drain), CREATE_CONCURRENCY (8), WORKER_POOL (32), DRAIN_TIMEOUT_SECS (1800),
# OUTAGE_SECS (60), BACKLOG_ARGS (more cpq-load options), CPQ_LOAD_BIN (a prebuilt cpq-load;
# default: cpq-load, cpq-admin and cpq-worker are built in release here).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
use_shared_target_dir
export CPQ_ENV=local

ORDERS=${ORDERS:-10000}
CREATE_CONCURRENCY=${CREATE_CONCURRENCY:-8}
WORKER_POOL=${WORKER_POOL:-32}
DRAIN_TIMEOUT_SECS=${DRAIN_TIMEOUT_SECS:-1800}
OUTAGE_SECS=${OUTAGE_SECS:-60}
API=http://127.0.0.1:8080
SIM=http://127.0.0.1:8090
BIN="$CARGO_TARGET_DIR/release"

curl -fsS "$API/health/ready" >/dev/null || { echo "cpq-api is not ready on $API: run scripts/up.sh first" >&2; exit 1; }
curl -fsS "$SIM/health/ready" >/dev/null || { echo "cpq-sim is not ready on $SIM: run scripts/up.sh first" >&2; exit 1; }
if [ -z "${CPQ_LOAD_BIN:-}" ]; then
  cargo build --release --locked -q -p cpq-load -p cpq-admin -p cpq-worker
  CPQ_LOAD_BIN="$BIN/cpq-load"
fi
mkdir -p .run

stop_worker() {
  if [ -f .run/cpq-worker.pid ] && kill -0 "$(cat .run/cpq-worker.pid)" 2>/dev/null; then
    kill "$(cat .run/cpq-worker.pid)"
    for _ in $(seq 1 100); do kill -0 "$(cat .run/cpq-worker.pid)" 2>/dev/null || break; sleep 0.1; done
  fi
}
start_worker() {
  nohup env "$@" >>.run/cpq-worker.log 2>&1 &
  echo $! >.run/cpq-worker.pid
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:9097/health/live >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "cpq-worker did not start; see .run/cpq-worker.log" >&2
  return 1
}
restore() {
  log "restarting cpq-worker as up.sh runs it (deploy/local/fulfillment-workers.toml)"
  stop_worker
  start_worker "$BIN/cpq-worker" --worker-config deploy/local/fulfillment-workers.toml || true
  curl -fsS -X PUT "$SIM/admin/systems/provisioning" -H 'Content-Type: application/json' \
    -d '{"mode":"up"}' >/dev/null || true
}
trap restore EXIT

log "stopping cpq-worker: the orders pile up"
stop_worker

if [ -n "${SKIP_CREATE:-}" ]; then
  log "SKIP_CREATE: draining the orders of .run/backlog-orders.txt again (what is left of them)"
else
  log "creating $ORDERS orders through the API ($CREATE_CONCURRENCY at a time)"
  # shellcheck disable=SC2086
  "$CPQ_LOAD_BIN" --profile backlog --backlog-phase create --orders "$ORDERS" \
    --create-concurrency "$CREATE_CONCURRENCY" --orders-file .run/backlog-orders.txt \
    -H "$API" --sim "$SIM" ${BACKLOG_ARGS:-} | tee .run/backlog-create.txt
fi

log "starting cpq-worker with deploy/local/backlog-workers.toml (pool of $WORKER_POOL connections)"
DRAIN_START=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
start_worker CPQ_DATABASE__MAX_CONNECTIONS="$WORKER_POOL" "$BIN/cpq-worker" \
  --worker-config deploy/local/backlog-workers.toml

log "draining (cpq-worker pid $(cat .run/cpq-worker.pid))"
# shellcheck disable=SC2086
"$CPQ_LOAD_BIN" --profile backlog --backlog-phase drain --orders-file .run/backlog-orders.txt \
  --worker-pid "$(cat .run/cpq-worker.pid)" --worker-started-at "$DRAIN_START" --worker-admin http://127.0.0.1:9097 \
  --drain-timeout-secs "$DRAIN_TIMEOUT_SECS" --outage-secs "$OUTAGE_SECS" \
  -H "$API" --sim "$SIM" ${BACKLOG_ARGS:-} | tee .run/backlog-report.txt
