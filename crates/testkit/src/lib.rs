//! The test harness (zero-to-production's `spawn_app`, omicron's template databases).
//!
//! - [`TestDb::fresh`]: a new database cloned from a template that holds every migration, built
//!   once per migration set (guarded by an advisory lock across test processes) and reused; the
//!   clone is dropped when the `TestDb` is.
//! - [`PrivateKafka`]: an Apache Kafka broker of a test's own; [`kafka_tool`]: Kafka's own
//!   command-line classes.
//!
//! It connects as the roles that `scripts/lib.sh` provisions (the `local` configuration, which
//! `CPQ_*` variables may override).
//!
//! It must not depend on any entry point (`cpq-api`, `cpq-admin`, the worker, the event
//! deployables): library crates use it for their own tests without compiling the API. The API's
//! in-process harness (`TestApp`) lives with the API's tests (`crates/api/tests/support`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use cpq_config::{Config, Sources};
use cpq_core::TenantId;
use cpq_db::migrations::MIGRATOR;
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;

mod kafka;
pub mod processes;
pub use kafka::{kafka_home, kafka_tool, run_tool, PrivateKafka};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A command for one of the workspace's binaries, run from the repository root, with no `CPQ_*`
/// variable inherited: the test sets exactly what it means to.
pub fn binary(path: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(path);
    cmd.current_dir(repo_root());
    for (k, _) in std::env::vars() {
        if k.starts_with("CPQ_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A child process killed when dropped, so that a failing test leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The local configuration (plus any `CPQ_*` overrides), listening on an ephemeral port.
pub fn config() -> Config {
    let mut config = cpq_config::load(&Sources::from_process(
        Some("local".to_owned()),
        Some(repo_root().join("config")),
    ))
    .unwrap_or_else(|e| panic!("test configuration does not load:\n{e}"));
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config
}

/// The local broker's settings (`[kafka]` of config/local.toml) in a topic and group namespace of
/// the caller's own, so that tests sharing the broker never read each other's records.
pub fn kafka() -> cpq_config::KafkaConfig {
    let mut k = config().kafka.expect("config/local.toml has [kafka]");
    k.namespace = format!("t{}.", uuid::Uuid::new_v4().simple());
    k
}

fn owner_options(config: &Config, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&config.database.host)
        .port(config.database.port)
        .username(&config.database.owner_user)
        .password(config.database.owner_password.expose())
        .database(database)
        .disable_statement_logging()
}

async fn maintenance_connection(config: &Config) -> PgConnection {
    owner_options(config, "postgres").connect().await.unwrap_or_else(|e| {
        panic!(
            "cannot connect to PostgreSQL as {} (run scripts/test.sh, which provisions the roles): {e}",
            config.database.owner_user
        )
    })
}

/// Name of the template holding exactly this build's migrations.
fn template_name() -> String {
    let mut h = Sha256::new();
    for m in MIGRATOR.iter() {
        h.update(m.version.to_be_bytes());
        h.update(&*m.checksum);
    }
    format!("cpq_template_{}", &hex::encode(h.finalize())[..16])
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template(config: &Config) -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = maintenance_connection(config).await;
            // Serialise template builds across test processes.
            sqlx::query("SELECT pg_advisory_lock(7305019)")
                .execute(&mut conn)
                .await
                .unwrap();
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            if !exists {
                let building = format!("{name}_building");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {building}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let pool = owner_pool_for(config, &building).await;
                cpq_db::migrations::migrate(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("migrating the template: {e}"));
                pool.close().await;
                sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            sqlx::query("SELECT pg_advisory_unlock(7305019)")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.ok();
            name
        })
        .await
        .clone()
}

async fn owner_pool_for(config: &Config, database: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(owner_options(config, database))
        .await
        .unwrap()
}

/// A database of its own for one test, dropped afterwards.
pub struct TestDb {
    pub name: String,
    config: Config,
    owned: bool,
}

impl TestDb {
    async fn create(template: Option<&str>) -> TestDb {
        let mut config = config();
        let name = format!("cpq_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = maintenance_connection(&config).await;
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        // Cloning fails while another session is connected to the template; retry briefly.
        let mut attempt = 0;
        loop {
            match sqlx::query(&sql).execute(&mut conn).await {
                Ok(_) => break,
                Err(e)
                    if attempt < 50 && e.to_string().contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{sql}: {e}"),
            }
        }
        conn.close().await.ok();
        config.database.name = name.clone();
        TestDb {
            name,
            config,
            owned: true,
        }
    }

    /// A database holding every migration.
    pub async fn fresh() -> TestDb {
        let config = config();
        let template = template(&config).await;
        TestDb::create(Some(&template)).await
    }

    /// A database with nothing applied.
    pub async fn empty() -> TestDb {
        TestDb::create(None).await
    }

    /// A database with only the first `n` migrations applied: an older schema.
    pub async fn migrated_to(n: usize) -> TestDb {
        let db = TestDb::empty().await;
        let older = Migrator {
            migrations: MIGRATOR.migrations[..n].to_vec().into(),
            ..Migrator::DEFAULT
        };
        let pool = db.owner_pool().await;
        cpq_db::migrations::run(&older, &pool).await.unwrap();
        pool.close().await;
        db
    }

    /// A handle on a database another `TestDb` owns: it is not dropped with this handle.
    pub fn existing(name: &str) -> TestDb {
        let mut config = config();
        config.database.name = name.to_owned();
        TestDb {
            name: name.to_owned(),
            config,
            owned: false,
        }
    }

    /// The configuration pointing at this database.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// As the schema owner (row-level security does not apply to the owner).
    pub async fn owner_pool(&self) -> PgPool {
        owner_pool_for(&self.config, &self.name).await
    }

    /// As the application role (row-level security applies).
    pub async fn app_pool(&self) -> PgPool {
        cpq_db::pool::app_pool(&self.config.database, "cpq-test")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let config = self.config.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime we may block on: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = maintenance_connection(&config).await;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                    eprintln!("cannot drop test database {name}: {e}");
                }
            });
        })
        .join();
    }
}

/// Writes `events` of one aggregate in tenant `acme` as a command would: one transaction with its
/// audit record and outbox rows.
pub async fn emit(
    pool: &PgPool,
    aggregate_type: &'static str,
    aggregate_id: uuid::Uuid,
    events: &[(&'static str, serde_json::Value)],
) {
    let tenant = TenantId::parse("acme").expect("tenant");
    let mut tx = cpq_db::tenant::begin(pool, &tenant).await.expect("begin");
    let meta = cpq_audit::CommandMeta {
        tenant,
        actor_subject: "rep".into(),
        correlation_id: "c".into(),
        causation_id: None,
        occurred_at: chrono::Utc::now(),
    };
    let audit = cpq_audit::AuditEntry {
        action: "test.emit",
        aggregate_type,
        aggregate_id,
        before: None,
        after: None,
        reason: None,
    };
    let events: Vec<cpq_audit::NewEvent> = events
        .iter()
        .map(|(event_type, payload)| cpq_audit::NewEvent {
            event_type,
            schema_version: 1,
            aggregate_type,
            aggregate_id,
            payload: payload.clone(),
        })
        .collect();
    cpq_audit::record(&mut tx, &meta, &audit, &events)
        .await
        .expect("record");
    tx.commit().await.expect("commit");
}

/// An event deployable (`cpq-relay`, `cpq-consumer`) for a test: local configuration with the
/// test's database, broker and topic namespace, its admin port on 0, its log (info) appended to
/// `log`, which a failing test names.
pub fn event_deployable(
    bin: &str,
    db: &TestDb,
    kafka: &cpq_config::KafkaConfig,
    log: &std::path::Path,
) -> std::process::Command {
    event_deployable_at(bin, db, kafka, log, "127.0.0.1:0")
}

/// [`event_deployable`] with its admin port (liveness, readiness, `/metrics`) on `admin_bind`.
pub fn event_deployable_at(
    bin: &str,
    db: &TestDb,
    kafka: &cpq_config::KafkaConfig,
    log: &std::path::Path,
    admin_bind: &str,
) -> std::process::Command {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut cmd = binary(bin);
    cmd.env("CPQ_ENV", "local")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_KAFKA__NAMESPACE", &kafka.namespace)
        .env("CPQ_KAFKA__BOOTSTRAP_SERVERS", &kafka.bootstrap_servers)
        .env("CPQ_LOG__LEVEL", "info")
        .args(["--admin-bind", admin_bind])
        .stdout(std::process::Stdio::null())
        .stderr(file);
    if bin.ends_with("cpq-consumer") {
        // Restarted under the same id, as a StatefulSet pod would be: a static group member takes
        // its predecessor's partitions at once instead of waiting for a rebalance.
        cmd.args(["--instance-id", "cpq-consumer-0"]);
    }
    cmd
}
