#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `cpq-relay` and `cpq-consumer` binaries, killed with SIGKILL at random moments while
//! 10,000 events are written and carried: afterwards every event is published and applied, none
//! twice (the inboxes absorb redeliveries), and no aggregate's events were applied out of order
//! (the projection refuses an older event after a newer one, which would show as a dead letter).

use std::process::Child;
use std::time::{Duration, Instant};

use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::TenantId;
use cpq_events::catalogue::Catalogue;
use cpq_events::dead_letter::read_dead_letters;
use cpq_events::topics::Cluster;
use cpq_testkit::{KillOnDrop, TestDb};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const AGGREGATES: usize = 200;
const PER_AGGREGATE: usize = 50;

/// A small deterministic generator: the moments of the kills differ per run (seeded by the
/// clock) but need no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Writes one batch of events for every aggregate (as a command would, one transaction each).
async fn write_round(pool: &PgPool, aggregates: &[Uuid], round: usize, per_round: usize) {
    let tenant = TenantId::parse("acme").unwrap();
    for a in aggregates {
        let mut tx = cpq_db::tenant::begin(pool, &tenant).await.unwrap();
        let meta = CommandMeta {
            tenant: tenant.clone(),
            actor_subject: "rep".into(),
            correlation_id: format!("r{round}"),
            causation_id: None,
            occurred_at: chrono::Utc::now(),
        };
        let audit = AuditEntry {
            action: "quote.edit",
            aggregate_type: "quote",
            aggregate_id: *a,
            before: None,
            after: None,
            reason: None,
        };
        let events: Vec<NewEvent> = (0..per_round)
            .map(|i| NewEvent { event_type: "quote.item-added", schema_version: 1, aggregate_type: "quote", aggregate_id: *a, payload: json!({ "quote_id": a, "line_no": round * per_round + i + 1, "offering": "X" }) })
            .collect();
        record(&mut tx, &meta, &audit, &events).await.unwrap();
        tx.commit().await.unwrap();
    }
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_survive_kill_9_of_the_relay_and_the_consumer_once_each_and_in_order() {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&Catalogue::shipped().unwrap())
        .await
        .unwrap();
    let app = db.app_pool().await;
    let owner = db.owner_pool().await;
    let aggregates: Vec<Uuid> = (0..AGGREGATES).map(|_| Uuid::now_v7()).collect();
    let total = (AGGREGATES * PER_AGGREGATE) as i64;
    let rounds = 5;
    let per_round = PER_AGGREGATE / rounds;
    write_round(&app, &aggregates, 0, per_round).await;

    let relay_bin = env!("CARGO_BIN_EXE_cpq-relay");
    let consumer_bin = env!("CARGO_BIN_EXE_cpq-consumer");
    let logs = std::env::temp_dir().join(format!("cpq-crash-{}", db.name));
    std::fs::create_dir_all(&logs).unwrap();
    let spawn = |bin: &str| -> Child {
        let name = std::path::Path::new(bin)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        cpq_testkit::event_deployable(bin, &db, &kafka, &logs.join(format!("{name}.log")))
            .spawn()
            .unwrap()
    };
    let mut relay = KillOnDrop(spawn(relay_bin));
    let mut consumer = KillOnDrop(spawn(consumer_bin));
    let mut rng = Lcg(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64);
    let mut kills = (0, 0);

    // Write the other rounds while killing one of the two every 0.3 to 1.5 s.
    for round in 1..rounds {
        write_round(&app, &aggregates, round, per_round).await;
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(300 + rng.next(1200))).await;
            if rng.next(2) == 0 {
                relay.0.kill().unwrap();
                relay.0.wait().unwrap();
                relay = KillOnDrop(spawn(relay_bin));
                kills.0 += 1;
            } else {
                consumer.0.kill().unwrap();
                consumer.0.wait().unwrap();
                consumer = KillOnDrop(spawn(consumer_bin));
                kills.1 += 1;
            }
        }
    }

    // Then let them finish.
    let started = Instant::now();
    loop {
        let pending = scalar(
            &owner,
            "SELECT count(*) FROM outbox_event WHERE published_at IS NULL",
        )
        .await;
        let exported = scalar(&owner, "SELECT count(*) FROM audit_export").await;
        let applied = scalar(
            &owner,
            "SELECT coalesce(sum(events_applied), 0)::bigint FROM quote_search",
        )
        .await;
        if pending == 0 && exported == total && applied == total {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "after {kills:?} kills (relay, consumer): {pending} pending, {exported} exported, {applied} applied; logs in {}", logs.display());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(relay);
    drop(consumer);

    assert_eq!(
        scalar(&owner, "SELECT count(DISTINCT event_id) FROM audit_export").await,
        total
    );
    assert_eq!(
        scalar(
            &owner,
            &format!("SELECT count(*) FROM quote_search WHERE events_applied = {PER_AGGREGATE}")
        )
        .await,
        AGGREGATES as i64,
        "each aggregate's events applied once each"
    );
    assert_eq!(
        scalar(&owner, "SELECT count(*) FROM consumer_inbox").await,
        2 * total
    );
    let letters = read_dead_letters(&kafka, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        letters.is_empty(),
        "no event out of order or failed: {:?}",
        letters.iter().map(|l| &l.headers).collect::<Vec<_>>()
    );
    eprintln!("kills (relay, consumer): {kills:?}");
    app.close().await;
    owner.close().await;
}
