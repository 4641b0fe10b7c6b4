#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Consumers against real PostgreSQL and the real broker: events reach the quote search
//! projection and the audit export; redelivered events are absorbed by the inbox; an order event
//! for a quote the projection has not seen is retried, dead-lettered with its metadata, and
//! applied by a replay once the quote's events are in.

use std::sync::Arc;
use std::time::Duration;

use cpq_config::KafkaConfig;
use cpq_events::catalogue::Catalogue;
use cpq_events::consumer::{ConsumerOptions, Consumers};
use cpq_events::dead_letter::{read_dead_letters, replay_dead_letters};
use cpq_events::projections::Projection;
use cpq_events::relay::{Relay, RelayOptions};
use cpq_events::topics::Cluster;
use cpq_testkit::TestDb;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

async fn emit(
    pool: &PgPool,
    aggregate_type: &'static str,
    aggregate: Uuid,
    event_type: &'static str,
    payload: Value,
) {
    cpq_testkit::emit(pool, aggregate_type, aggregate, &[(event_type, payload)]).await;
}

async fn relay_all(relay: &Relay) {
    relay.publish_pending().await.unwrap();
}

async fn owner_count(db: &TestDb, sql: &str) -> i64 {
    let pool = db.owner_pool().await;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// Polls `sql` (as the owner) until it returns `want` or 30 s pass; returns the last value.
async fn eventually(db: &TestDb, sql: &str, want: i64) -> i64 {
    let mut last = -1;
    for _ in 0..300 {
        last = owner_count(db, sql).await;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The dead letters, once there are `want` of them (or after 30 s).
async fn letters_eventually(
    kafka: &KafkaConfig,
    want: usize,
) -> Vec<cpq_events::dead_letter::ReadLetter> {
    let mut letters = Vec::new();
    for _ in 0..60 {
        letters = read_dead_letters(kafka, Duration::from_secs(30))
            .await
            .unwrap();
        if letters.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    letters
}

#[tokio::test]
async fn events_reach_the_projections_once_and_a_poison_event_is_dead_lettered_then_replayed_after_the_fix(
) {
    let db = TestDb::fresh().await;
    // Kafka's group protocol, as on a cluster (the other tests run as configured locally: every
    // partition assigned by the consumer itself, see config/local.toml).
    let mut kafka = cpq_testkit::kafka();
    kafka.consumer_assignment = cpq_config::ConsumerAssignment::Group;
    let catalogue = Arc::new(Catalogue::shipped().unwrap());
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    let pool = db.app_pool().await;
    let relay = Relay::new(
        pool.clone(),
        kafka.clone(),
        catalogue.clone(),
        RelayOptions::new("relay-test"),
    )
    .unwrap();

    let (quote, customer, orphan, order) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    emit(&pool, "quote", quote, "quote.created", json!({ "quote_id": quote, "customer_account_id": customer, "catalog_version_id": Uuid::now_v7() })).await;
    emit(
        &pool,
        "quote",
        quote,
        "quote.priced",
        json!({ "quote_id": quote, "snapshot_hash": "ab", "totals": {} }),
    )
    .await;
    // The poison: an order for a quote whose events the projection has not seen.
    emit(
        &pool,
        "order",
        order,
        "order.created",
        json!({ "order_id": order, "quote_id": orphan }),
    )
    .await;
    relay_all(&relay).await;

    let opts = ConsumerOptions {
        max_retries: 2,
        first_backoff: Duration::from_millis(20),
        lag_every: Duration::from_millis(200),
        ..ConsumerOptions::default()
    };
    let consumers = Consumers::start(&pool, &kafka, &catalogue, &Projection::ALL, &opts).unwrap();

    assert_eq!(
        eventually(&db, "SELECT count(*) FROM audit_export", 3).await,
        3
    );
    assert_eq!(eventually(&db, &format!("SELECT count(*) FROM quote_search WHERE quote_id = '{quote}' AND status = 'priced' AND customer_account_id = '{customer}'"), 1).await, 1);
    let letters = letters_eventually(&kafka, 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let h = &letters[0].headers;
    assert_eq!(h["dlq.consumer"], "cpq.quote-search-projection");
    assert_eq!(h["dlq.original-topic"], "cpq.order.events.v1");
    assert_eq!(h["dlq.error-code"], "quote-not-projected");
    assert_eq!(h["dlq.error-category"], "transient");
    assert_eq!(h["dlq.retry-count"], "2");
    assert!(
        h["dlq.event-id"].parse::<Uuid>().is_ok()
            && h["dlq.original-offset"].parse::<i64>().is_ok()
            && h.contains_key("dlq.original-partition")
    );
    assert!(
        h["dlq.replay"].starts_with(
            "cpq-admin dead-letters replay --consumer cpq.quote-search-projection --event-id "
        ),
        "{h:?}"
    );
    assert!(h.contains_key("dlq.timestamp"));
    assert_eq!(letters[0].payload["payload"]["quote_id"], json!(orphan));

    // Redelivery: the relay publishes everything again; the inboxes absorb it.
    let owner = db.owner_pool().await;
    sqlx::query("UPDATE outbox_event SET published_at = NULL")
        .execute(&owner)
        .await
        .unwrap();
    relay_all(&relay).await;
    let events_applied_before: i64 = owner_count(
        &db,
        &format!("SELECT events_applied::bigint FROM quote_search WHERE quote_id = '{quote}'"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        owner_count(&db, "SELECT count(*) FROM audit_export").await,
        3,
        "nothing exported twice"
    );
    assert_eq!(
        owner_count(
            &db,
            &format!("SELECT events_applied::bigint FROM quote_search WHERE quote_id = '{quote}'")
        )
        .await,
        events_applied_before
    );
    assert_eq!(
        letters_eventually(&kafka, 2).await.len(),
        2,
        "the poison, delivered again, is dead-lettered again"
    );

    // The fix: the orphan's quote arrives; replaying its dead letter now applies the order (once,
    // though it was dead-lettered twice).
    emit(&pool, "quote", orphan, "quote.created", json!({ "quote_id": orphan, "customer_account_id": customer, "catalog_version_id": Uuid::now_v7() })).await;
    relay_all(&relay).await;
    assert_eq!(
        eventually(
            &db,
            &format!("SELECT count(*) FROM quote_search WHERE quote_id = '{orphan}'"),
            1
        )
        .await,
        1
    );
    let report = replay_dead_letters(&pool, &kafka, Projection::QuoteSearch, None)
        .await
        .unwrap();
    assert_eq!(
        (
            report.applied,
            report.already_applied,
            report.still_failing.len()
        ),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(owner_count(&db, &format!("SELECT count(*) FROM quote_search WHERE quote_id = '{orphan}' AND order_id = '{order}'")).await, 1);

    consumers.stop().await;
    owner.close().await;
    pool.close().await;
}
