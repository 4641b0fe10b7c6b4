#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The broker stopped for 60 seconds under the real `cpq-relay` and `cpq-consumer`: commands keep
//! committing (their events wait in the outbox), the relay and the consumer retry with back-off,
//! and when the broker comes back the backlog drains: every event published and applied once.
//!
//! The test runs an Apache Kafka broker of its own ([`PrivateKafka`]: the shared one serves the
//! other tests) and stops its JVM with SIGSTOP: connections stay open and unanswered, nothing on
//! the broker is lost, as in a long GC pause or a network partition. The consumer joins its groups
//! (Kafka's group protocol) as a static member; when the JVM resumes, 60 s have passed on
//! the coordinator's clock, more than the 45 s session timeout, so the coordinator may expire the
//! member before its next heartbeat arrives: the group must recover either way.

use std::time::{Duration, Instant};

use cpq_events::catalogue::Catalogue;
use cpq_events::topics::Cluster;
use cpq_testkit::{KillOnDrop, PrivateKafka, TestDb};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

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
async fn drained(owner: &PgPool, events: i64, limit: Duration, logs: &std::path::Path) -> Duration {
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
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{pending} pending, {exported} of {events} exported, {applied} applied; logs in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixty_second_broker_outage_loses_and_duplicates_nothing_and_the_backlog_drains() {
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
    let logs = std::env::temp_dir().join(format!("cpq-outage-{}", db.name));
    std::fs::create_dir_all(&logs).unwrap();
    let deployable = |bin: &str, name: &str| {
        KillOnDrop(
            cpq_testkit::event_deployable(bin, &db, &kafka, &logs.join(format!("{name}.log")))
                .spawn()
                .unwrap(),
        )
    };
    let relay = deployable(env!("CARGO_BIN_EXE_cpq-relay"), "cpq-relay");
    let consumer = deployable(env!("CARGO_BIN_EXE_cpq-consumer"), "cpq-consumer");

    emit_quotes(&app, 50).await;
    drained(&owner, 100, Duration::from_secs(120), &logs).await;

    // The outage: 60 s during which commands go on committing.
    broker.pause();
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(60) {
        emit_quotes(&app, 25).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let backlog = scalar(
        &owner,
        "SELECT count(*) FROM outbox_event WHERE published_at IS NULL",
    )
    .await;
    assert!(
        backlog > 0,
        "the outbox holds the events written during the outage"
    );
    broker.resume();

    let total = scalar(&owner, "SELECT count(*) FROM outbox_event").await;
    let took = drained(&owner, total, Duration::from_secs(180), &logs).await;
    eprintln!("backlog of {backlog} drained {took:?} after the broker came back");
    assert_eq!(
        scalar(&owner, "SELECT count(DISTINCT event_id) FROM audit_export").await,
        total
    );
    assert_eq!(
        scalar(&owner, "SELECT count(*) FROM consumer_inbox").await,
        2 * total
    );
    assert_eq!(
        scalar(
            &owner,
            "SELECT count(*) FROM quote_search WHERE status = 'priced' AND events_applied = 2"
        )
        .await,
        total / 2
    );
    drop(relay);
    drop(consumer);
    drop(broker);
    app.close().await;
    owner.close().await;
}
