# Shared by scripts/up.sh and scripts/test.sh: install and start what the platform needs on a
# Debian 12 machine, idempotently. Source it; do not run it.
#
# The role names and local passwords here match config/local.toml (dummy secrets for local use).

CPQ_DB_NAME="${CPQ_DB_NAME:-cpq}"
# cpq-sim's database (crates/sim): default of its --database-url.
CPQ_SIM_DB_NAME="${CPQ_SIM_DB_NAME:-cpq_sim}"
CPQ_OWNER_ROLE="cpq_owner"
CPQ_OWNER_PASSWORD="cpq_owner_local"
CPQ_APP_ROLE="cpq_app"
CPQ_APP_PASSWORD="cpq_app_local"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: PostgreSQL and Redis servers and clients, curl and jq (the demo reads JSON);
# only what is missing.
ensure_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  # librdkafka is built from source by the rdkafka crate: with OpenSSL (SASL_SSL) and zlib.
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
  command -v make >/dev/null 2>&1 || missing+=(make)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
      return 1
    fi
  fi
}

start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
  log "starting PostgreSQL"
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    as_root pg_createcluster 15 main >/dev/null
  fi
  local version
  for version in $(ls /etc/postgresql); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  local i
  for i in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 0.5
  done
  echo "PostgreSQL did not become ready on 127.0.0.1:5432" >&2
  return 1
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/cpq.log
  local i
  for i in $(seq 1 40); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "Redis did not become ready on 127.0.0.1:6379" >&2
  return 1
}

# The Kafka broker for local runs and tests: Apache Kafka 4.4.0, one KRaft node that is both broker
# and controller, on 127.0.0.1:$CPQ_KAFKA_PORT (its controller on 127.0.0.1:9093). Its jars come
# once per machine from Maven Central (mvn, deploy/local/kafka/pom.xml) into a cache folder outside
# the clone and run with java directly; its data (topics, offsets, groups) is kept in
# $CPQ_KAFKA_HOME/data across restarts. Production and staging use a Kafka cluster.
#
#   stop_kafka    stops it (SIGTERM: a controlled shutdown); the next start_kafka starts it again.
#   wipe_kafka    stops it and removes its data folder; the next start_kafka formats a fresh one.
#   kafka_tool    runs one of Kafka's command-line classes, for example
#                 kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
# Logs: $CPQ_RUN_DIR/kafka.log (Log4j 2, rolled) and kafka.out (the JVM's stdout and stderr).
CPQ_KAFKA_PORT="${CPQ_KAFKA_PORT:-9092}"
CPQ_KAFKA_VERSION=4.4.0
CPQ_KAFKA_HOME="${CPQ_CACHE_DIR:-$HOME/.cache/cpq-platform}/kafka-$CPQ_KAFKA_VERSION"
# Fixed, so that a formatted data folder always belongs to the same cluster (StorageTool random-uuid).
CPQ_KAFKA_CLUSTER_ID="TtUCafGZTHeL7f5E1wXmmQ"
CPQ_KAFKA_DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/local/kafka"

kafka_run_dir() { printf '%s' "${CPQ_RUN_DIR:-$HOME/.cache/cpq-platform/run}"; }

# Java and Maven (apt, only when missing), then Kafka's jars into $CPQ_KAFKA_HOME/libs, once: the
# marker file .complete holds the hash of the POM they were fetched with.
ensure_kafka() {
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || return 1
  fi
  local pom="$CPQ_KAFKA_DEPLOY/pom.xml" marker="$CPQ_KAFKA_HOME/.complete" want
  want="kafka $CPQ_KAFKA_VERSION pom $(sha256sum "$pom" | cut -d' ' -f1)"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then return 0; fi
  mkdir -p "$CPQ_KAFKA_HOME"
  (
    flock -w 600 9 || { echo "another fetch of Kafka holds $CPQ_KAFKA_HOME/.lock" >&2; exit 1; }
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then exit 0; fi
    log "fetching Apache Kafka $CPQ_KAFKA_VERSION from Maven Central into $CPQ_KAFKA_HOME/libs (once)"
    rm -f "$marker"
    rm -rf "$CPQ_KAFKA_HOME/libs"
    # Its output goes to a file (Maven 3.8 prints colour codes even with -q -B), shown on failure.
    if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$CPQ_KAFKA_HOME/libs" \
      >"$CPQ_KAFKA_HOME/mvn.log" 2>&1; then
      cat "$CPQ_KAFKA_HOME/mvn.log" >&2
      echo "mvn could not fetch Kafka; see above and $CPQ_KAFKA_HOME/mvn.log" >&2
      exit 1
    fi
    [ -f "$CPQ_KAFKA_HOME/libs/kafka_2.13-$CPQ_KAFKA_VERSION.jar" ] || { echo "mvn did not fetch kafka_2.13-$CPQ_KAFKA_VERSION.jar" >&2; exit 1; }
    printf '%s\n' "$want" >"$marker"
  ) 9>"$CPQ_KAFKA_HOME/.lock"
}

# Runs one of Kafka's command-line classes: kafka_tool <main class> [arguments...]. Warnings and
# errors go to stderr; the tool's output to stdout.
# CPQ_KAFKA_TOOL_TIMEOUT (seconds), when set, bounds the run.
kafka_tool() {
  local main=$1 bound=()
  shift
  if [ -n "${CPQ_KAFKA_TOOL_TIMEOUT:-}" ]; then bound=(timeout "$CPQ_KAFKA_TOOL_TIMEOUT"); fi
  "${bound[@]}" java -Xmx256m -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CPQ_KAFKA_DEPLOY/tools-log4j2.yaml" \
    -cp "$CPQ_KAFKA_HOME/libs/*" "$main" "$@"
}

# True when the broker answers a metadata request (a listening port alone is not enough: Kafka
# opens it before it serves).
kafka_ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$CPQ_KAFKA_PORT") 2>/dev/null || return 1
  [ -d "$CPQ_KAFKA_HOME/libs" ] || return 1
  local probe="$CPQ_KAFKA_HOME/config/admin-probe.properties"
  if [ ! -f "$probe" ]; then
    mkdir -p "$CPQ_KAFKA_HOME/config"
    printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=8000\n' >"$probe"
  fi
  CPQ_KAFKA_TOOL_TIMEOUT=30 kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$CPQ_KAFKA_PORT" \
    --command-config "$probe" --list >/dev/null 2>&1
}

# The pid in kafka.pid when that process is this broker (kafka.Kafka), else nothing.
kafka_pid() {
  local pidfile pid
  pidfile="$(kafka_run_dir)/kafka.pid"
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    grep -qa 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null; then
    printf '%s' "$pid"
  fi
}

start_kafka() {
  local rundir
  rundir="$(kafka_run_dir)"
  mkdir -p "$rundir" "$CPQ_KAFKA_HOME/config"
  if kafka_ready; then return 0; fi
  if [ ! -f "$CPQ_KAFKA_HOME/libs/kafka_2.13-$CPQ_KAFKA_VERSION.jar" ]; then
    echo "Kafka is not installed in $CPQ_KAFKA_HOME: run ensure_kafka first" >&2
    return 1
  fi
  (
    flock -w 120 9 || { echo "another start of Kafka holds $CPQ_KAFKA_HOME/.lock" >&2; exit 1; }
    local props="$CPQ_KAFKA_HOME/config/server.properties" data="$CPQ_KAFKA_HOME/data" pid
    sed -e "s|@KAFKA_PORT@|$CPQ_KAFKA_PORT|g" -e "s|@KAFKA_DATA_DIR@|$data|g" \
      "$CPQ_KAFKA_DEPLOY/server.properties" >"$props.tmp" && mv "$props.tmp" "$props"
    cp "$CPQ_KAFKA_DEPLOY/log4j2.yaml" "$CPQ_KAFKA_HOME/config/log4j2.yaml"
    pid=$(kafka_pid)
    if [ -z "$pid" ]; then
      if [ ! -f "$data/meta.properties" ]; then
        log "formatting Kafka's data folder $data (cluster $CPQ_KAFKA_CLUSTER_ID)"
        mkdir -p "$data"
        kafka_tool kafka.tools.StorageTool format --standalone --ignore-formatted \
          --cluster-id "$CPQ_KAFKA_CLUSTER_ID" --config "$props" >/dev/null || exit 1
      fi
      log "starting Apache Kafka $CPQ_KAFKA_VERSION on 127.0.0.1:$CPQ_KAFKA_PORT (logs: $rundir/kafka.log)"
      # In its own session, so that Ctrl-C in the calling terminal leaves it running; the inner
      # shell writes its pid and becomes java (exec), so kafka.pid holds the broker's pid.
      setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$rundir/kafka.pid" \
        java -Xms256m -Xmx768m -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true -Dkafka.logs.dir="$rundir" \
        -Dlog4j2.configurationFile="$CPQ_KAFKA_HOME/config/log4j2.yaml" \
        -cp "$CPQ_KAFKA_HOME/libs/*" kafka.Kafka "$props" \
        >>"$rundir/kafka.out" 2>&1 </dev/null 9>&- &
      sleep 1
    fi
    local deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
      kafka_ready && exit 0
      if [ -z "$(kafka_pid)" ]; then
        echo "Kafka exited while starting; see $rundir/kafka.log and $rundir/kafka.out" >&2
        tail -n 20 "$rundir/kafka.out" "$rundir/kafka.log" >&2 2>/dev/null || true
        exit 1
      fi
      sleep 1
    done
    echo "Kafka did not answer on 127.0.0.1:$CPQ_KAFKA_PORT within 60 s; see $rundir/kafka.log" >&2
    exit 1
  ) 9>"$CPQ_KAFKA_HOME/.lock"
}

# Stops the broker started by start_kafka: SIGTERM (a controlled shutdown), up to 60 s, then SIGKILL.
stop_kafka() {
  local pid _
  pid=$(kafka_pid)
  if [ -n "$pid" ]; then
    log "stopping Kafka (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "Kafka (pid $pid) did not stop within 60 s: killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$(kafka_run_dir)/kafka.pid"
}

# Stops the broker and removes its data (every topic, record, committed offset and group); the
# next start_kafka formats a new, empty data folder. The jars in $CPQ_KAFKA_HOME/libs stay.
wipe_kafka() {
  stop_kafka
  log "removing Kafka's data folder $CPQ_KAFKA_HOME/data"
  rm -rf "$CPQ_KAFKA_HOME/data"
}

psql_super() {
  # Over the local socket as the postgres OS user: peer authentication on a stock Debian install.
  as_root runuser -u postgres -- env PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"
}

# Roles: cpq_application (NOLOGIN group the migrations grant table rights to), the schema owner
# (runs migrations; CREATEDB and pg_signal_backend so that tests can clone and drop databases), and the application login role,
# which owns nothing and cannot bypass row-level security.
provision_roles() {
  log "provisioning database roles"
  psql_super -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cpq_application') THEN
    CREATE ROLE cpq_application NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${CPQ_OWNER_ROLE}') THEN
    CREATE ROLE ${CPQ_OWNER_ROLE} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${CPQ_APP_ROLE}') THEN
    CREATE ROLE ${CPQ_APP_ROLE} LOGIN;
  END IF;
END
\$\$;
ALTER ROLE ${CPQ_OWNER_ROLE} LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD '${CPQ_OWNER_PASSWORD}';
ALTER ROLE ${CPQ_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '${CPQ_APP_PASSWORD}';
GRANT cpq_application TO ${CPQ_APP_ROLE};
-- Local only: lets the owner drop test databases that application connections still hold.
GRANT pg_signal_backend TO ${CPQ_OWNER_ROLE};
SQL
}

create_database() {
  local exists db
  # The platform's database, and cpq-sim's own (the simulated external systems share no table
  # with the platform; cpq-sim migrates it at start-up as the owner role).
  for db in "${CPQ_DB_NAME}" "${CPQ_SIM_DB_NAME}"; do
    exists=$(psql_super -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")
    if [ "$exists" != "1" ]; then
      log "creating database ${db}"
      psql_super -d postgres -c "CREATE DATABASE ${db} OWNER ${CPQ_OWNER_ROLE}"
    fi
  done
}

# Everything both commands need before cargo runs.
prepare_stack() {
  ensure_packages
  start_postgres
  start_redis
  provision_roles
  use_shared_target_dir
  ensure_kafka
  start_kafka
  ensure_schemathesis
}

# schemathesis, the schema-driven API fuzzer that crates/api/tests/schemathesis.rs runs against the
# OpenAPI document: pinned, from PyPI with pip, into a virtualenv outside the clone, once per
# version (python3 and python3-venv from apt when missing). The test finds it by this version.
CPQ_SCHEMATHESIS_VERSION="4.32.5"
CPQ_SCHEMATHESIS_HOME="${CPQ_CACHE_DIR:-$HOME/.cache/cpq-platform}/schemathesis-$CPQ_SCHEMATHESIS_VERSION"

ensure_schemathesis() {
  local bin="$CPQ_SCHEMATHESIS_HOME/bin/schemathesis"
  local want="schemathesis, version $CPQ_SCHEMATHESIS_VERSION"
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$want" ]; then return 0; fi
  mkdir -p "$(dirname "$CPQ_SCHEMATHESIS_HOME")"
  (
    flock -w 600 9 || { echo "another install of schemathesis holds $CPQ_SCHEMATHESIS_HOME.lock" >&2; exit 1; }
    if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$want" ]; then exit 0; fi
    log "installing schemathesis $CPQ_SCHEMATHESIS_VERSION from PyPI into $CPQ_SCHEMATHESIS_HOME (once)"
    rm -rf "$CPQ_SCHEMATHESIS_HOME"
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv "$CPQ_SCHEMATHESIS_HOME" >/dev/null 2>&1; then
      rm -rf "$CPQ_SCHEMATHESIS_HOME"
      log "installing python3 and python3-venv"
      as_root apt-get update -qq || exit 1
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv || exit 1
      python3 -m venv "$CPQ_SCHEMATHESIS_HOME" || exit 1
    fi
    if ! "$CPQ_SCHEMATHESIS_HOME/bin/pip" install -q --disable-pip-version-check \
      "schemathesis==$CPQ_SCHEMATHESIS_VERSION"; then
      rm -rf "$CPQ_SCHEMATHESIS_HOME"
      echo "pip could not install schemathesis $CPQ_SCHEMATHESIS_VERSION" >&2
      exit 1
    fi
    [ "$("$bin" --version 2>/dev/null)" = "$want" ] || { echo "$bin does not report $want" >&2; exit 1; }
  ) 9>"$CPQ_SCHEMATHESIS_HOME.lock"
}

# Build output lives outside the clone so that repeated runs (and CI on this machine) reuse it.
use_shared_target_dir() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cpq-platform/target}"
  mkdir -p "$CARGO_TARGET_DIR"
}
