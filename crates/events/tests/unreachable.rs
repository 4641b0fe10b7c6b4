#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `cpq-relay` and `cpq-consumer` binaries with a broker that does not answer:
//!
//! - no broker at all (a closed port): both start, stay live, answer `/health/ready` with 503
//!   naming Kafka, log that it is unreachable once (librdkafka's repeated connection errors held
//!   back), and stop within their shutdown grace on SIGTERM;
//! - an Apache Kafka node of the test's own ([`PrivateKafka`]) whose JVM is paused (SIGSTOP:
//!   connections open, nothing answered) when they start: not ready, naming Kafka, until it
//!   resumes, then ready, and the events written meanwhile are carried; paused again while
//!   records are in flight, SIGTERM stops each within its grace (exit status 0); after the node
//!   resumes, a fresh relay and consumer carry the rest: every event published and applied, none
//!   twice; and with the broker answering, SIGTERM leaves the groups' offsets committed up to the
//!   end of every partition.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cpq_config::KafkaConfig;
use cpq_events::catalogue::Catalogue;
use cpq_events::projections::Projection;
use cpq_events::topics::Cluster;
use cpq_testkit::{KillOnDrop, PrivateKafka, TestDb};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// The deployables' `--shutdown-grace-secs` here.
const GRACE_SECS: u64 = 8;
/// How long a SIGTERMed deployable may take to exit: its grace, the runtime's last second
/// (`service::block_on`) and room for a loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(GRACE_SECS + 7);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Deployable {
    name: &'static str,
    process: KillOnDrop,
    admin: String,
    log: PathBuf,
}

impl Deployable {
    fn start(name: &'static str, db: &TestDb, kafka: &KafkaConfig, logs: &Path) -> Deployable {
        let bin = match name {
            "cpq-relay" => env!("CARGO_BIN_EXE_cpq-relay"),
            _ => env!("CARGO_BIN_EXE_cpq-consumer"),
        };
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let admin = format!("127.0.0.1:{}", free_port());
        // Each run's lines in a file of their own, counted apart.
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let log = logs.join(format!("{name}-{run}.log"));
        let process = KillOnDrop(
            cpq_testkit::event_deployable_at(bin, db, kafka, &log, &admin)
                .args(["--shutdown-grace-secs", &GRACE_SECS.to_string()])
                .spawn()
                .unwrap(),
        );
        Deployable {
            name,
            process,
            admin,
            log,
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{path}", self.admin))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.unwrap_or_default()))
    }

    /// Waits until `/health/ready` answers `status` (and, for 503, says that Kafka is
    /// unreachable), at most `limit`; returns the body.
    async fn await_ready(&mut self, status: u16, limit: Duration) -> String {
        let started = Instant::now();
        let mut last = None;
        loop {
            assert!(
                self.process.0.try_wait().unwrap().is_none(),
                "{} exited; log: {}",
                self.name,
                self.log.display()
            );
            if let Some((s, body)) = self.get("/health/ready").await {
                if s == status && (s == 200 || body.contains("kafka is unreachable")) {
                    return body;
                }
                last = Some((s, body));
            }
            assert!(
                started.elapsed() < limit,
                "{}: /health/ready was {last:?}, not {status}, after {limit:?}; log: {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.process.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit after [`Deployable::sigterm`]: status 0 within [`EXIT_WITHIN`].
    async fn exited(&mut self, since: Instant) -> Duration {
        loop {
            if let Some(status) = self.process.0.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status}; log: {}",
                    self.name,
                    self.log.display()
                );
                return since.elapsed();
            }
            assert!(
                since.elapsed() < EXIT_WITHIN,
                "{} still running {EXIT_WITHIN:?} after SIGTERM (grace {GRACE_SECS} s); log: {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The lines at WARN or ERROR.
fn warnings(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .collect()
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn emit_quotes(app: &PgPool, n: usize) {
    for _ in 0..n {
        let q = Uuid::now_v7();
        cpq_testkit::emit(
            app,
            "quote",
            q,
            &[
                (
                    "quote.created",
                    json!({ "quote_id": q, "customer_account_id": Uuid::now_v7() }),
                ),
                (
                    "quote.priced",
                    json!({ "quote_id": q, "snapshot_hash": "h" }),
                ),
            ],
        )
        .await;
    }
}

/// Waits until nothing is pending and both consumers applied `events` each, or panics after
/// `limit` with what it saw.
async fn drained(owner: &PgPool, events: i64, limit: Duration, logs: &Path) {
    let started = Instant::now();
    loop {
        let pending = scalar(
            owner,
            "SELECT count(*) FROM outbox_event WHERE published_at IS NULL",
        )
        .await;
        let exported = scalar(owner, "SELECT count(*) FROM audit_export").await;
        let applied = scalar(
            owner,
            "SELECT coalesce(sum(events_applied), 0)::bigint FROM quote_search",
        )
        .await;
        if pending == 0 && exported == events && applied == events {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{pending} pending, {exported} of {events} exported, {applied} applied; logs in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every event applied exactly once by each consumer.
async fn once_each(owner: &PgPool, total: i64) {
    assert_eq!(
        scalar(owner, "SELECT count(*) FROM outbox_event").await,
        total
    );
    assert_eq!(
        scalar(owner, "SELECT count(DISTINCT event_id) FROM audit_export").await,
        total
    );
    assert_eq!(
        scalar(owner, "SELECT count(*) FROM audit_export").await,
        total
    );
    assert_eq!(
        scalar(owner, "SELECT count(*) FROM consumer_inbox").await,
        2 * total
    );
    assert_eq!(
        scalar(
            owner,
            "SELECT count(*) FROM quote_search WHERE status = 'priced' AND events_applied = 2"
        )
        .await,
        total / 2,
        "each quote's two events applied once each"
    );
}

fn logs_dir(db: &TestDb, what: &str) -> PathBuf {
    let logs = std::env::temp_dir().join(format!("cpq-{what}-{}", db.name));
    std::fs::create_dir_all(&logs).unwrap();
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_the_deployables_stay_live_are_not_ready_log_it_once_and_stop_within_their_grace(
) {
    let db = TestDb::fresh().await;
    let mut kafka = cpq_testkit::kafka();
    // Nothing listens there: every connection is refused at once.
    kafka.bootstrap_servers = format!("127.0.0.1:{}", free_port());
    let logs = logs_dir(&db, "no-broker");
    let app = db.app_pool().await;
    emit_quotes(&app, 5).await;

    let mut deployables = [
        Deployable::start("cpq-relay", &db, &kafka, &logs),
        Deployable::start("cpq-consumer", &db, &kafka, &logs),
    ];
    for d in &mut deployables {
        let body = d.await_ready(503, Duration::from_secs(30)).await;
        assert!(body.contains("kafka is unreachable"), "{}: {body}", d.name);
        assert!(
            body.contains(&kafka.bootstrap_servers),
            "{}: {body}",
            d.name
        );
    }
    // Some 15 s of librdkafka reconnecting (several attempts a second from each client).
    tokio::time::sleep(Duration::from_secs(15)).await;
    for d in &mut deployables {
        assert_eq!(
            d.get("/health/live").await.map(|(s, _)| s),
            Some(200),
            "{}",
            d.name
        );
        d.await_ready(503, Duration::from_secs(1)).await;
        let lines = d.log_lines();
        let said = lines
            .iter()
            .filter(|l| l.contains("Kafka is unreachable"))
            .count();
        assert_eq!(said, 1, "{}: {lines:#?}", d.name);
        let warnings = warnings(&lines);
        assert!(
            warnings.len() <= 4,
            "{}: {} lines at WARN or ERROR in some 20 s: {warnings:#?}",
            d.name,
            warnings.len()
        );
    }
    let owner = db.owner_pool().await;
    assert_eq!(
        scalar(
            &owner,
            "SELECT count(*) FROM outbox_event WHERE published_at IS NULL"
        )
        .await,
        10,
        "the events wait in the outbox"
    );

    let since = Instant::now();
    for d in &deployables {
        d.sigterm();
    }
    for d in &mut deployables {
        let took = d.exited(since).await;
        eprintln!("{} exited {took:?} after SIGTERM without a broker", d.name);
    }
    app.close().await;
    owner.close().await;
}

/// The group's committed offset on every partition of its topics, beside the partition's end.
fn committed_and_ends(kafka: &KafkaConfig, projection: Projection) -> Vec<(String, i64, i64)> {
    let mut c = cpq_events::kafka::client_config(kafka, "test-offsets");
    c.set(
        "group.id",
        format!("{}{}", kafka.namespace, projection.name()),
    );
    let consumer: BaseConsumer = c.create().unwrap();
    let catalogue = Catalogue::shipped().unwrap();
    let topics: Vec<String> = projection
        .topics(&catalogue)
        .iter()
        .map(|t| cpq_events::kafka::topic_name(kafka, t))
        .collect();
    let partitions = cpq_events::kafka::every_partition(&consumer, &topics).unwrap();
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| {
            let (_, high) = consumer
                .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
                .unwrap();
            let at = e.offset().to_raw().filter(|o| *o >= 0).unwrap_or(0);
            (format!("{}/{}", e.topic(), e.partition()), at, high)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_paused_the_deployables_are_not_ready_stop_within_their_grace_and_lose_or_double_nothing(
) {
    let broker = PrivateKafka::start().await;
    let mut kafka = cpq_testkit::kafka();
    kafka.bootstrap_servers = broker.bootstrap_servers.clone();
    let catalogue = Catalogue::shipped().unwrap();
    let mut applied = Err(String::new());
    for _ in 0..50 {
        applied = match Cluster::connect(&kafka) {
            Ok(c) => c.apply(&catalogue).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if applied.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    applied.unwrap();
    let db = TestDb::fresh().await;
    let app = db.app_pool().await;
    let owner = db.owner_pool().await;
    let logs = logs_dir(&db, "paused-broker");

    // Started with the broker paused: live, not ready, naming Kafka; commands go on committing.
    broker.pause();
    emit_quotes(&app, 10).await;
    let mut relay = Deployable::start("cpq-relay", &db, &kafka, &logs);
    let mut consumer = Deployable::start("cpq-consumer", &db, &kafka, &logs);
    for d in [&mut relay, &mut consumer] {
        let body = d.await_ready(503, Duration::from_secs(30)).await;
        eprintln!("{} while the broker is paused: {body}", d.name);
        assert_eq!(
            d.get("/health/live").await.map(|(s, _)| s),
            Some(200),
            "{}",
            d.name
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    for d in [&mut relay, &mut consumer] {
        d.await_ready(503, Duration::from_secs(1)).await;
        let lines = d.log_lines();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains("Kafka is unreachable"))
                .count(),
            1,
            "{}: {lines:#?}",
            d.name
        );
        let warnings = warnings(&lines);
        assert!(
            warnings.len() <= 4,
            "{}: {} lines at WARN or ERROR: {warnings:#?}",
            d.name,
            warnings.len()
        );
    }

    // Resumed: ready again, and what was written meanwhile is carried.
    broker.resume();
    for d in [&mut relay, &mut consumer] {
        d.await_ready(200, Duration::from_secs(60)).await;
        assert!(
            d.log_lines()
                .iter()
                .any(|l| l.contains("Kafka answers again")),
            "{}",
            d.name
        );
    }
    drained(&owner, 20, Duration::from_secs(120), &logs).await;

    // Paused again while records are on their way (some applied, maybe not yet committed), then
    // SIGTERM: each exits within its grace, status 0.
    emit_quotes(&app, 50).await;
    let started = Instant::now();
    while scalar(&owner, "SELECT count(*) FROM audit_export").await <= 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing new applied; logs in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.pause();
    emit_quotes(&app, 10).await;
    for d in [&mut relay, &mut consumer] {
        d.await_ready(503, Duration::from_secs(30)).await;
    }
    let since = Instant::now();
    relay.sigterm();
    consumer.sigterm();
    for d in [&mut relay, &mut consumer] {
        let took = d.exited(since).await;
        eprintln!(
            "{} exited {took:?} after SIGTERM with the broker paused",
            d.name
        );
    }

    // Resumed: a fresh relay and consumer carry the rest; nothing lost, nothing applied twice.
    broker.resume();
    let total = scalar(&owner, "SELECT count(*) FROM outbox_event").await;
    assert_eq!(total, 140);
    let mut relay = Deployable::start("cpq-relay", &db, &kafka, &logs);
    let mut consumer = Deployable::start("cpq-consumer", &db, &kafka, &logs);
    drained(&owner, total, Duration::from_secs(180), &logs).await;
    once_each(&owner, total).await;

    // With the broker answering, SIGTERM commits what was applied: every partition's committed
    // offset is its end.
    for d in [&mut relay, &mut consumer] {
        d.await_ready(200, Duration::from_secs(30)).await;
    }
    let since = Instant::now();
    relay.sigterm();
    consumer.sigterm();
    for d in [&mut relay, &mut consumer] {
        let took = d.exited(since).await;
        eprintln!("{} exited {took:?} after SIGTERM", d.name);
    }
    for projection in Projection::ALL {
        let offsets = tokio::task::spawn_blocking({
            let kafka = kafka.clone();
            move || committed_and_ends(&kafka, projection)
        })
        .await
        .unwrap();
        assert!(!offsets.is_empty());
        for (partition, committed, end) in &offsets {
            assert_eq!(
                committed,
                end,
                "{}: {partition} committed {committed} of {end}: {offsets:?}",
                projection.name()
            );
        }
    }
    once_each(&owner, total).await;
    drop(broker);
    app.close().await;
    owner.close().await;
}
