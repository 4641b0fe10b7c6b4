#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Consumers against real PostgreSQL and the real broker: events reach the quote search
//! projection and the audit export; redelivered events are absorbed by the inbox; an event the
//! database refuses is retried, dead-lettered with its metadata, and applied by a replay after
//! the fix. The projection does not depend on the order in which its topics arrive (an order
//! event before its quote's events completes without a dead letter), and a record in retries holds
//! back only the records after it in its own partition.

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
    let kafka = cpq_testkit::kafka();
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
    // The poison: an order for a quote whose row the database refuses (a check constraint
    // standing for any statement that keeps failing).
    let owner = db.owner_pool().await;
    sqlx::query(&format!(
        "ALTER TABLE quote_search ADD CONSTRAINT refused_for_the_test CHECK (quote_id <> '{orphan}')"
    ))
    .execute(&owner)
    .await
    .unwrap();
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
    assert_eq!(h["dlq.error-code"], "database");
    assert!(
        h["dlq.error-message"].contains("refused_for_the_test"),
        "{h:?}"
    );
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

    // The fix: the constraint goes; replaying the dead letter now applies the order (once, though
    // it was dead-lettered twice).
    sqlx::query("ALTER TABLE quote_search DROP CONSTRAINT refused_for_the_test")
        .execute(&owner)
        .await
        .unwrap();
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

/// The outbox slot of an aggregate (as the relay computes it).
async fn slot_of(pool: &PgPool, aggregate: Uuid) -> i32 {
    sqlx::query_scalar("SELECT outbox_slot($1, $2)")
        .bind(aggregate)
        .bind(cpq_events::relay::SLOT_COUNT)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn inbox_has(db: &TestDb, consumer: &str, event_type: &str, aggregate: Uuid) -> i64 {
    owner_count(
        db,
        &format!(
            "SELECT count(*) FROM consumer_inbox i JOIN outbox_event e USING (event_id) \
             WHERE i.consumer = '{consumer}' AND e.event_type = '{event_type}' AND e.aggregate_id = '{aggregate}'"
        ),
    )
    .await
}

#[tokio::test]
async fn an_order_event_before_its_quotes_events_is_applied_and_completed_by_them_without_a_dead_letter(
) {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    let catalogue = Arc::new(Catalogue::shipped().unwrap());
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    let pool = db.app_pool().await;
    let owner = db.owner_pool().await;
    let relay = Relay::new(
        pool.clone(),
        kafka.clone(),
        catalogue.clone(),
        RelayOptions::new("relay-test"),
    )
    .unwrap();

    // A quote converted into an order, written as the conversion writes it (the order event
    // last); the order is in another outbox slot than the quote, so that the relay can hold the
    // quote's events back.
    let (quote, customer) = (Uuid::now_v7(), Uuid::now_v7());
    let mut order = Uuid::now_v7();
    while slot_of(&pool, order).await == slot_of(&pool, quote).await {
        order = Uuid::now_v7();
    }
    emit(&pool, "quote", quote, "quote.created", json!({ "quote_id": quote, "customer_account_id": customer, "catalog_version_id": Uuid::now_v7() })).await;
    emit(
        &pool,
        "quote",
        quote,
        "quote.priced",
        json!({ "quote_id": quote, "snapshot_hash": "h1", "totals": {} }),
    )
    .await;
    emit(
        &pool,
        "quote",
        quote,
        "quote.converted",
        json!({ "quote_id": quote, "revision_no": 1, "order_id": order, "snapshot_hash": "h1" }),
    )
    .await;
    emit(&pool, "order", order, "order.created", json!({ "order_id": order, "quote_id": quote, "customer_account_id": customer, "snapshot_hash": "h1" })).await;

    // Only the order topic at first.
    assert_eq!(
        relay
            .publish_once(&[slot_of(&pool, order).await])
            .await
            .unwrap(),
        1
    );
    let consumers = Consumers::start(
        &pool,
        &kafka,
        &catalogue,
        &Projection::ALL,
        &ConsumerOptions {
            lag_every: Duration::from_millis(200),
            ..ConsumerOptions::default()
        },
    )
    .unwrap();
    // Applied at once as a partial row (it used to be retried, then dead-lettered: the quote
    // was "not in the projection yet").
    let mut applied = 0;
    for _ in 0..300 {
        applied = inbox_has(&db, "cpq.quote-search-projection", "order.created", order).await;
        if applied == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(applied, 1, "the order event is applied before its quote's");
    let (status, found_order, found_customer, revision, events): (
        String,
        Option<Uuid>,
        Option<Uuid>,
        Option<i32>,
        i32,
    ) = sqlx::query_as(
        "SELECT status, order_id, customer_account_id, revision_no, events_applied FROM quote_search WHERE quote_id = $1",
    )
    .bind(quote)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(
        (
            status.as_str(),
            found_order,
            found_customer,
            revision,
            events
        ),
        ("converted", Some(order), Some(customer), None, 1)
    );

    // The quote's events come later and complete the row; the older ones do not overwrite what
    // the newer order event wrote.
    assert_eq!(
        relay
            .publish_once(&[slot_of(&pool, quote).await])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        eventually(&db, &format!("SELECT count(*) FROM quote_search WHERE quote_id = '{quote}' AND events_applied = 4"), 1).await,
        1
    );
    let row: (String, Option<Uuid>, Option<Uuid>, Option<i32>, Option<String>, String) = sqlx::query_as(
        "SELECT status, order_id, customer_account_id, revision_no, snapshot_hash, last_event_type FROM quote_search WHERE quote_id = $1",
    )
    .bind(quote)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            "converted".to_owned(),
            Some(order),
            Some(customer),
            Some(1),
            Some("h1".to_owned()),
            "order.created".to_owned()
        )
    );
    let (updated_at, order_occurred_at): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT q.updated_at, e.occurred_at FROM quote_search q, outbox_event e WHERE q.quote_id = $1 AND e.aggregate_id = $2",
    )
    .bind(quote)
    .bind(order)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(updated_at, order_occurred_at, "the latest event's time");
    assert_eq!(
        eventually(&db, "SELECT count(*) FROM audit_export", 4).await,
        4
    );
    consumers.stop().await;

    // Nothing was dead-lettered, and a rebuild that reads the quote topic first (the order the
    // events were written in) ends with the same row.
    let letters = read_dead_letters(&kafka, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(letters.is_empty(), "{letters:?}");
    let report = cpq_events::replay::replay(
        &owner,
        &kafka,
        &catalogue,
        Projection::QuoteSearch,
        &cpq_events::replay::ReplayOptions {
            rate_per_second: 1000,
            dry_run: true,
            merge: false,
            deadline: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    assert!(report.matches(), "{report:?}");
    owner.close().await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_in_retries_holds_back_only_the_records_after_it_in_its_partition() {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    let catalogue = Arc::new(Catalogue::shipped().unwrap());
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    let pool = db.app_pool().await;
    let owner = db.owner_pool().await;
    let relay = Relay::new(
        pool.clone(),
        kafka.clone(),
        catalogue.clone(),
        RelayOptions::new("relay-test"),
    )
    .unwrap();

    // The database refuses the poison quote's row for now, and counts the attempts.
    let poison = Uuid::now_v7();
    for sql in [
        "CREATE SEQUENCE poison_attempts".to_owned(),
        format!(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$ \
             BEGIN IF NEW.quote_id = '{poison}' THEN PERFORM nextval('poison_attempts'); RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$"
        ),
        "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON quote_search FOR EACH ROW EXECUTE FUNCTION refuse_poison()".to_owned(),
    ] {
        sqlx::query(&sql).execute(&owner).await.unwrap();
    }
    let attempts = || async {
        owner_count(
            &db,
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM poison_attempts",
        )
        .await
    };
    emit(
        &pool,
        "quote",
        poison,
        "quote.created",
        json!({ "quote_id": poison, "customer_account_id": Uuid::now_v7() }),
    )
    .await;
    relay_all(&relay).await;
    let consumers = Consumers::start(
        &pool,
        &kafka,
        &catalogue,
        &[Projection::QuoteSearch],
        &ConsumerOptions {
            max_retries: 1000,
            first_backoff: Duration::from_millis(50),
            lag_every: Duration::from_millis(200),
            ..ConsumerOptions::default()
        },
    )
    .unwrap();
    let mut n = 0;
    for _ in 0..300 {
        n = attempts().await;
        if n >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(n >= 2, "the poison is in retries: {n} attempts");

    // While it is: quotes on every partition of the quote topic and orders on the order topic.
    let quotes: Vec<Uuid> = (0..24).map(|_| Uuid::now_v7()).collect();
    for q in &quotes {
        emit(
            &pool,
            "quote",
            *q,
            "quote.created",
            json!({ "quote_id": q, "customer_account_id": Uuid::now_v7() }),
        )
        .await;
    }
    let orders: Vec<(Uuid, Uuid)> = (0..6).map(|_| (Uuid::now_v7(), Uuid::now_v7())).collect();
    for (order, quote) in &orders {
        emit(
            &pool,
            "order",
            *order,
            "order.created",
            json!({ "order_id": order, "quote_id": quote }),
        )
        .await;
    }
    relay_all(&relay).await;
    let partition_of: std::collections::BTreeMap<Uuid, i32> =
        cpq_events::kafka::read_to_end(&kafka, "cpq.quote.events.v1", Duration::from_secs(30))
            .await
            .unwrap()
            .iter()
            .map(|m| {
                use rdkafka::Message;
                let e: cpq_events::envelope::Envelope =
                    serde_json::from_slice(m.payload().unwrap()).unwrap();
                (e.aggregate_id, m.partition())
            })
            .collect();
    let held = partition_of[&poison];
    let (behind, free): (Vec<Uuid>, Vec<Uuid>) =
        quotes.iter().partition(|q| partition_of[*q] == held);
    assert!(!free.is_empty());

    // Everything not behind the poison in its partition is applied, promptly, while the poison
    // is still failing.
    let unrelated = free.len() + orders.len();
    let started = std::time::Instant::now();
    let mut applied = 0;
    while started.elapsed() < Duration::from_secs(20) {
        applied = owner_count(&db, "SELECT count(*) FROM consumer_inbox").await;
        if applied == unrelated as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{applied} unrelated records applied {:?} after publishing, the poison in retries",
        started.elapsed()
    );
    assert_eq!(
        applied, unrelated as i64,
        "records of other partitions and topics keep flowing"
    );
    for q in &behind {
        assert_eq!(
            inbox_has(&db, "cpq.quote-search-projection", "quote.created", *q).await,
            0,
            "a record behind the poison in its partition waits for it"
        );
    }
    assert_eq!(
        inbox_has(&db, "cpq.quote-search-projection", "quote.created", poison).await,
        0
    );

    // The fix: the poison goes through on its next retry, and those behind it follow, in order.
    sqlx::query("DROP TRIGGER refuse_poison ON quote_search")
        .execute(&owner)
        .await
        .unwrap();
    let total = (1 + quotes.len() + orders.len()) as i64;
    assert_eq!(
        eventually(&db, "SELECT count(*) FROM consumer_inbox", total).await,
        total
    );
    let out_of_order = owner_count(
        &db,
        &format!(
            "SELECT count(*) FROM consumer_inbox i, consumer_inbox p \
             WHERE p.event_id = (SELECT event_id FROM outbox_event WHERE aggregate_id = '{poison}') \
               AND i.topic = p.topic AND i.partition = p.partition AND i.\"offset\" > p.\"offset\" AND i.applied_at < p.applied_at"
        ),
    )
    .await;
    assert_eq!(out_of_order, 0, "per-partition order kept");
    consumers.stop().await;
    let letters = read_dead_letters(&kafka, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(letters.is_empty(), "{letters:?}");
    owner.close().await;
    pool.close().await;
}
