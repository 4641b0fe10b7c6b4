# Shared by scripts/up.sh and scripts/test.sh: install and start what the platform needs on a
# Debian 12 machine, idempotently. Source it; do not run it.
#
# The role names and local passwords here match config/local.toml (dummy secrets for local use).

CPQ_DB_NAME="${CPQ_DB_NAME:-cpq}"
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

# The Kafka-protocol broker for local runs and tests: tansu 0.6.0 (the last release this machine's
# rustc builds; later ones are renamed nisshi), installed once with cargo (about 14 minutes cold on
# 2 cores) and reused, started on loopback with in-memory storage. Production uses a Kafka cluster.
CPQ_KAFKA_PORT="${CPQ_KAFKA_PORT:-9092}"

ensure_tansu() {
  if command -v tansu >/dev/null 2>&1; then return 0; fi
  if [ -x "$HOME/.cargo/bin/tansu" ]; then export PATH="$HOME/.cargo/bin:$PATH"; return 0; fi
  log "installing tansu 0.6.0 (cargo install; about 14 minutes on 2 cores, once)"
  cargo install tansu --version 0.6.0 --locked --features dynostore
  export PATH="$HOME/.cargo/bin:$PATH"
}

kafka_ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$CPQ_KAFKA_PORT") 2>/dev/null
}

start_tansu() {
  if kafka_ready; then return 0; fi
  log "starting tansu on 127.0.0.1:$CPQ_KAFKA_PORT (in-memory storage)"
  local logdir="${CPQ_RUN_DIR:-$HOME/.cache/cpq-platform/run}"
  mkdir -p "$logdir"
  nohup tansu broker --listener-url "tcp://127.0.0.1:$CPQ_KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$CPQ_KAFKA_PORT" \
    --storage-engine memory://tansu/ >>"$logdir/tansu.log" 2>&1 &
  echo $! >"$logdir/tansu.pid"
  local i
  for i in $(seq 1 100); do
    kafka_ready && return 0
    sleep 0.1
  done
  echo "tansu did not start on 127.0.0.1:$CPQ_KAFKA_PORT; see $logdir/tansu.log" >&2
  return 1
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
  local exists
  exists=$(psql_super -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '${CPQ_DB_NAME}'")
  if [ "$exists" != "1" ]; then
    log "creating database ${CPQ_DB_NAME}"
    psql_super -d postgres -c "CREATE DATABASE ${CPQ_DB_NAME} OWNER ${CPQ_OWNER_ROLE}"
  fi
}

# Everything both commands need before cargo runs.
prepare_stack() {
  ensure_packages
  start_postgres
  start_redis
  provision_roles
  use_shared_target_dir
  ensure_tansu
  start_tansu
}

# Build output lives outside the clone so that repeated runs (and CI on this machine) reuse it.
use_shared_target_dir() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cpq-platform/target}"
  mkdir -p "$CARGO_TARGET_DIR"
}
