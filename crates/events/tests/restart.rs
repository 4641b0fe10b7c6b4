#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `cpq-relay` killed with SIGKILL and started again under its identity
//! (`--instance-id`):
//!
//! 1. it takes its slots back in its first cycle, while the leases its predecessor left still run
//!    (observable in `relay_slot`), and publishes at once instead of after the lease;
//! 2. killed at random moments while it drains a backlog, it publishes again at most what it may
//!    have in flight (`--in-flight`) per kill, and every aggregate's events are first delivered in
//!    outbox order.
//!
//! Both print their figures: `cargo test -p cpq-events --test restart -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cpq_events::catalogue::Catalogue;
use cpq_events::envelope::Envelope;
use cpq_events::kafka::read_to_end;
use cpq_events::topics::Cluster;
use cpq_testkit::{KillOnDrop, TestDb};
use rdkafka::Message;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const LEASE_SECS: u64 = 60;
/// Smaller than the default (100), so that what the previous relay published again after a kill
/// (a whole batch of up to 500 acknowledged but not marked: 83 to 164 per kill in this test)
/// exceeds the bound.
const IN_FLIGHT: usize = 20;

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

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn pending(pool: &PgPool) -> i64 {
    scalar(
        pool,
        "SELECT count(*) FROM outbox_event WHERE published_at IS NULL",
    )
    .await
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_and_restarted_resumes_at_once_and_publishes_again_at_most_what_was_in_flight(
) {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&Catalogue::shipped().unwrap())
        .await
        .unwrap();
    let app = db.app_pool().await;
    let owner = db.owner_pool().await;
    let logs = std::env::temp_dir().join(format!("cpq-restart-{}", db.name));
    std::fs::create_dir_all(&logs).unwrap();
    let spawn = || -> Child {
        cpq_testkit::event_deployable(
            env!("CARGO_BIN_EXE_cpq-relay"),
            &db,
            &kafka,
            &logs.join("cpq-relay.log"),
        )
        .args(["--instance-id", "relay-under-test"])
        .args(["--lease-secs", &LEASE_SECS.to_string()])
        .args(["--in-flight", &IN_FLIGHT.to_string(), "--mark-every", "5"])
        .spawn()
        .unwrap()
    };

    // 1. Resume. The relay holds every slot; it is killed with one event pending.
    let mut relay = KillOnDrop(spawn());
    let warm = Uuid::now_v7();
    cpq_testkit::emit(
        &app,
        "quote",
        warm,
        &[("quote.created", json!({ "quote_id": warm }))],
    )
    .await;
    wait_until("first publish", Duration::from_secs(60), async || {
        pending(&owner).await == 0
    })
    .await;
    relay.0.kill().unwrap();
    relay.0.wait().unwrap();
    let left: DateTime<Utc> = sqlx::query_scalar(
        "SELECT min(lease_until) FROM relay_slot WHERE owner = 'relay-under-test'",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    let held = scalar(
        &owner,
        "SELECT count(*) FROM relay_slot WHERE owner = 'relay-under-test'",
    )
    .await;
    assert_eq!(held, i64::from(cpq_events::relay::SLOT_COUNT));
    let after_kill = Uuid::now_v7();
    cpq_testkit::emit(
        &app,
        "quote",
        after_kill,
        &[("quote.created", json!({ "quote_id": after_kill }))],
    )
    .await;

    let restarted = Instant::now();
    relay = KillOnDrop(spawn());
    let mut reclaimed = None;
    wait_until("the slots taken back", Duration::from_secs(60), async || {
        let (renewed, old_lease_running): (bool, bool) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE owner = 'relay-under-test' AND lease_until > $1) = $2, now() < $1 FROM relay_slot",
        )
        .bind(left)
        .bind(i64::from(cpq_events::relay::SLOT_COUNT))
        .fetch_one(&owner)
        .await
        .unwrap();
        if renewed {
            reclaimed = Some((restarted.elapsed(), old_lease_running));
        }
        renewed
    })
    .await;
    let (reclaimed, old_lease_running) = reclaimed.unwrap();
    assert!(
        old_lease_running,
        "every slot renewed by the restarted relay while its predecessor's leases (to {left}) still ran"
    );
    wait_until(
        "the event written while it was down published",
        Duration::from_secs(LEASE_SECS),
        async || pending(&owner).await == 0,
    )
    .await;
    let first_publish = restarted.elapsed();
    eprintln!(
        "restart: slots taken back {:.0} ms and the pending event published {:.0} ms after the \
         restarted process was spawned (lease {LEASE_SECS} s)",
        reclaimed.as_secs_f64() * 1000.0,
        first_publish.as_secs_f64() * 1000.0
    );

    // 2. Duplicates. A backlog written while the relay is down, drained while it is killed at
    // random moments.
    relay.0.kill().unwrap();
    relay.0.wait().unwrap();
    let aggregates: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    for round in 0..5 {
        for a in &aggregates {
            let events: Vec<_> = (0..20)
                .map(|i| {
                    (
                        "quote.item-added",
                        json!({ "quote_id": a, "line_no": round * 20 + i }),
                    )
                })
                .collect();
            cpq_testkit::emit(&app, "quote", *a, &events).await;
        }
    }
    let total = scalar(&owner, "SELECT count(*) FROM outbox_event").await;
    let mut rng = Lcg(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64);
    let mut kills = 0;
    let mut resumes = Vec::new();
    let drain = Instant::now();
    relay = KillOnDrop(spawn());
    while kills < 6 {
        tokio::time::sleep(Duration::from_millis(50 + rng.next(300))).await;
        let before = pending(&owner).await;
        if before == 0 {
            break;
        }
        relay.0.kill().unwrap();
        relay.0.wait().unwrap();
        kills += 1;
        let at_kill = pending(&owner).await;
        let spawned = Instant::now();
        relay = KillOnDrop(spawn());
        wait_until("publishing again", Duration::from_secs(60), async || {
            pending(&owner).await < at_kill || at_kill == 0
        })
        .await;
        resumes.push(spawned.elapsed());
    }
    wait_until(
        "the backlog drained",
        Duration::from_secs(300),
        async || pending(&owner).await == 0,
    )
    .await;
    let drain = drain.elapsed();
    drop(relay);
    assert!(kills > 0, "the backlog drained before the first kill");

    let received: Vec<Envelope> =
        read_to_end(&kafka, "cpq.quote.events.v1", Duration::from_secs(120))
            .await
            .unwrap()
            .iter()
            .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
            .collect();
    let distinct: BTreeSet<Uuid> = received.iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len() as i64, total, "every event published");
    let duplicates = received.len() - distinct.len();
    let mut first_seen = BTreeSet::new();
    let mut by_aggregate: BTreeMap<Uuid, Vec<i64>> = BTreeMap::new();
    for e in &received {
        if first_seen.insert(e.event_id) {
            by_aggregate
                .entry(e.aggregate_id)
                .or_default()
                .push(e.outbox_position);
        }
    }
    for (aggregate, positions) in &by_aggregate {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{aggregate}: first deliveries out of outbox order"
        );
    }
    eprintln!(
        "kill -9: {kills} kills while draining {total} events ({:.1} s): {duplicates} published \
         twice ({:.1} per kill, bound {IN_FLIGHT} per kill); publishing again {:?} after each restart",
        drain.as_secs_f64(),
        duplicates as f64 / f64::from(kills),
        resumes
            .iter()
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
    );
    assert!(
        duplicates <= kills as usize * IN_FLIGHT,
        "{duplicates} duplicates after {kills} kills, more than {IN_FLIGHT} in flight each"
    );
    app.close().await;
    owner.close().await;
}
