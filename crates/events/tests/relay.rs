#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The relay against real PostgreSQL and the real broker (Apache Kafka on loopback, started by
//! `scripts/test.sh`): topics applied from the catalogue, two relays sharing the outbox, every
//! event on its topic once per delivery, in outbox order per aggregate, all marked published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_config::KafkaConfig;
use cpq_core::TenantId;
use cpq_events::catalogue::Catalogue;
use cpq_events::envelope::Envelope;
use cpq_events::kafka::read_to_end;
use cpq_events::relay::{claim_slots, Membership, Relay, RelayOptions, SLOT_COUNT};
use cpq_events::topics::Cluster;
use cpq_testkit::TestDb;
use rdkafka::Message;
use serde_json::json;
use uuid::Uuid;

/// Writes `per_aggregate` events for each of `aggregates` quotes, interleaved, as commands do.
async fn write_events(db: &TestDb, aggregates: &[Uuid], per_aggregate: usize) {
    let pool = db.app_pool().await;
    let tenant = TenantId::parse("acme").unwrap();
    for i in 0..per_aggregate {
        for a in aggregates {
            let mut tx = cpq_db::tenant::begin(&pool, &tenant).await.unwrap();
            let meta = CommandMeta {
                tenant: tenant.clone(),
                actor_subject: "rep".into(),
                correlation_id: format!("c-{i}"),
                causation_id: None,
                occurred_at: chrono::Utc::now(),
            };
            let audit = AuditEntry {
                action: "quote.price",
                aggregate_type: "quote",
                aggregate_id: *a,
                before: None,
                after: None,
                reason: None,
            };
            record(
                &mut tx,
                &meta,
                &audit,
                &[NewEvent {
                    event_type: "quote.priced",
                    schema_version: 1,
                    aggregate_type: "quote",
                    aggregate_id: *a,
                    payload: json!({ "seq": i }),
                }],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    }
    pool.close().await;
}

/// Every record on `topic`, as envelopes.
pub async fn read_topic(kafka: &KafkaConfig, topic: &str) -> Vec<Envelope> {
    read_to_end(kafka, topic, Duration::from_secs(60))
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(m.payload().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn two_relays_publish_every_event_in_order_per_aggregate_and_mark_them_published() {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    let catalogue = Arc::new(Catalogue::shipped().unwrap());
    let applied = Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    assert!(
        applied
            .iter()
            .any(|a| a.contains("created") && a.contains("cpq.quote.events.v1")),
        "{applied:?}"
    );
    let drift = Cluster::connect(&kafka)
        .unwrap()
        .drift(&catalogue)
        .await
        .unwrap();
    assert!(
        drift
            .iter()
            .all(|d| !matches!(d, cpq_events::topics::Drift::Missing { .. })),
        "{drift:?}"
    );

    let aggregates: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    write_events(&db, &aggregates, 25).await;
    let total = aggregates.len() * 25;

    let pool = db.app_pool().await;
    let (a, b) = (
        Relay::new(
            pool.clone(),
            kafka.clone(),
            catalogue.clone(),
            RelayOptions::new("relay-a"),
        )
        .unwrap(),
        Relay::new(
            pool.clone(),
            kafka.clone(),
            catalogue.clone(),
            RelayOptions::new("relay-b"),
        )
        .unwrap(),
    );
    // Both take a share of the slots, disjoint and together all of them.
    let first = claim_slots(&pool, "relay-a", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(
        first.len(),
        SLOT_COUNT as usize,
        "alone, a relay takes every slot"
    );
    let slots_b = claim_slots(&pool, "relay-b", Duration::from_secs(15))
        .await
        .unwrap();
    assert!(slots_b.is_empty(), "every slot is leased to a");
    let slots_a = claim_slots(&pool, "relay-a", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(
        slots_a.len(),
        SLOT_COUNT as usize / 2,
        "a gives back its surplus once b is alive"
    );
    let slots_b = claim_slots(&pool, "relay-b", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(slots_b.len(), SLOT_COUNT as usize / 2);
    assert!(slots_a.iter().all(|s| !slots_b.contains(s)));

    let (na, nb) = tokio::join!(a.publish_once(&slots_a), b.publish_once(&slots_b));
    assert_eq!(na.unwrap() + nb.unwrap(), total);
    assert_eq!(
        a.publish_once(&slots_a).await.unwrap() + b.publish_once(&slots_b).await.unwrap(),
        0,
        "nothing left"
    );
    let pending: i64 = sqlx::query_scalar("SELECT pending FROM outbox_backlog()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    pool.close().await;

    let received = read_topic(&kafka, "cpq.quote.events.v1").await;
    assert_eq!(received.len(), total);
    let ids: BTreeSet<Uuid> = received.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), total, "each event once");
    let mut by_aggregate: BTreeMap<Uuid, Vec<i64>> = BTreeMap::new();
    for e in &received {
        by_aggregate
            .entry(e.aggregate_id)
            .or_default()
            .push(e.outbox_position);
        assert_eq!(
            (
                e.tenant_id.as_str(),
                e.event_type.as_str(),
                e.schema_version
            ),
            ("acme", "quote.priced", 1)
        );
    }
    for (aggregate, positions) in by_aggregate {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{aggregate}: {positions:?}"
        );
    }
}

/// `(owner, lease_until)` of every slot, as the slot table has them.
async fn slot_table(pool: &sqlx::PgPool) -> Vec<(Option<String>, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as("SELECT owner, lease_until FROM relay_slot ORDER BY slot")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_relay_restarted_under_its_identity_takes_its_slots_back_at_once_and_a_twin_gets_a_name_of_its_own(
) {
    let db = TestDb::fresh().await;
    let pool = db.app_pool().await;
    let lease = Duration::from_secs(60);
    let wait = Duration::from_secs(5);

    // A relay holds every slot under its identity, for a minute.
    let mut first = Membership::join(&pool, "relay-x", wait).await.unwrap();
    assert_eq!(first.owner(), "relay-x");
    assert_eq!(first.claim(lease).await.unwrap().len(), SLOT_COUNT as usize);
    let before = slot_table(&pool).await;

    // It dies (its database session ends). Another name would find every slot leased, for
    // up to a minute: that is what a restart under a new name (the process id) used to wait.
    drop(first);
    assert!(claim_slots(&pool, "relay-y", lease)
        .await
        .unwrap()
        .is_empty());
    sqlx::query("DELETE FROM relay_member WHERE owner = 'relay-y'")
        .execute(&pool)
        .await
        .unwrap();

    // Restarted under its identity, it takes the name as soon as the old session is gone (well
    // within `wait`) and its first claim renews every slot, long before the old leases end.
    let started = std::time::Instant::now();
    let mut again = Membership::join(&pool, "relay-x", wait).await.unwrap();
    assert_eq!(again.owner(), "relay-x");
    assert!(started.elapsed() < wait, "{:?}", started.elapsed());
    assert_eq!(again.claim(lease).await.unwrap().len(), SLOT_COUNT as usize);
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let after = slot_table(&pool).await;
    for ((owner_before, until_before), (owner_after, until_after)) in before.iter().zip(&after) {
        assert_eq!(owner_before.as_deref(), Some("relay-x"));
        assert_eq!(owner_after.as_deref(), Some("relay-x"));
        assert!(
            until_after > until_before && now < *until_before,
            "renewed while the old lease ({until_before}) still ran, at {now}"
        );
    }

    // A second live process under the same identity cannot hold it: after `wait` it runs under a
    // unique name and takes no slot that the first one holds.
    let mut twin = Membership::join(&pool, "relay-x", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        twin.owner().starts_with("relay-x-") && twin.owner().len() > "relay-x-".len(),
        "{}",
        twin.owner()
    );
    assert!(twin.claim(lease).await.unwrap().is_empty());
    assert_eq!(
        again.claim(lease).await.unwrap().len(),
        SLOT_COUNT as usize / 2,
        "the first gives half back, now that the twin is alive"
    );
    drop(twin);
    drop(again);
    pool.close().await;
}
