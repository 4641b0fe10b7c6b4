//! The outbox relay. Each cycle it (1) renews and claims hash slots of the aggregate id in
//! `relay_slot`, a fair share given how many relays are alive, in a short transaction; (2) reads
//! the pending events of its slots in outbox order; (3) hands them to an idempotent producer in
//! that order, key = aggregate id, and waits for the acknowledgements, outside any transaction;
//! (4) marks published the events before the first failure. A failure backs off and retries;
//! events after it are sent again later (consumers' inboxes absorb the duplicates), so every
//! aggregate's events are first delivered in order, and none is lost while the broker is down.
//!
//! A relay that stalls past its lease may find its slots taken: the worst case is an event
//! published twice, which the inbox absorbs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cpq_config::KafkaConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::envelope::Envelope;
use crate::kafka::{producer_config, topic_name};

/// How the outbox is divided: `relay_slot` holds this many rows (migration 0015).
pub const SLOT_COUNT: i32 = 16;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// This relay's name in `relay_slot.owner` (unique per process).
    pub owner: String,
    pub lease: Duration,
    /// Events read and published per cycle.
    pub batch: i64,
    /// Wait between cycles when nothing was pending.
    pub idle: Duration,
    /// How long the producer tries to deliver one event before it counts as failed.
    pub message_timeout: Duration,
    /// Back-off after a failed cycle: doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl RelayOptions {
    pub fn new(owner: impl Into<String>) -> RelayOptions {
        RelayOptions {
            owner: owner.into(),
            lease: Duration::from_secs(15),
            batch: 500,
            idle: Duration::from_millis(20),
            message_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("event {event_id} of type {event_type} has no topic in the catalogue")]
    Unroutable { event_id: Uuid, event_type: String },
    #[error("{published} published, then event {event_id} failed: {error}")]
    Partial {
        published: usize,
        event_id: Uuid,
        error: KafkaError,
    },
}

/// Renews this relay's slots and claims or releases some so that it holds a fair share.
pub async fn claim_slots(
    pool: &PgPool,
    owner: &str,
    lease: Duration,
) -> Result<Vec<i32>, sqlx::Error> {
    let lease_ms = lease.as_millis() as i64;
    let mut tx = pool.begin().await?;
    let mut mine: Vec<i32> = sqlx::query_scalar(
        "UPDATE relay_slot SET lease_until = now() + make_interval(secs => $2::double precision / 1000) \
         WHERE owner = $1 AND lease_until > now() RETURNING slot",
    )
    .bind(owner)
    .bind(lease_ms)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO relay_member (owner, seen_until) VALUES ($1, now() + make_interval(secs => $2::double precision / 1000)) \
         ON CONFLICT (owner) DO UPDATE SET seen_until = EXCLUDED.seen_until",
    )
    .bind(owner)
    .bind(lease_ms)
    .execute(&mut *tx)
    .await?;
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM relay_member WHERE seen_until > now() AND owner <> $1",
    )
    .bind(owner)
    .fetch_one(&mut *tx)
    .await?;
    let share = ((SLOT_COUNT as i64) + others) / (others + 1);
    mine.sort_unstable();
    if mine.len() as i64 > share {
        let extra: Vec<i32> = mine.split_off(share as usize);
        sqlx::query("UPDATE relay_slot SET owner = NULL, lease_until = '-infinity' WHERE slot = ANY($1) AND owner = $2")
            .bind(&extra)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
    } else if (mine.len() as i64) < share {
        let claimed: Vec<i32> = sqlx::query_scalar(
            "UPDATE relay_slot SET owner = $1, lease_until = now() + make_interval(secs => $2::double precision / 1000) \
             WHERE slot IN (SELECT slot FROM relay_slot WHERE lease_until <= now() ORDER BY slot LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING slot",
        )
        .bind(owner)
        .bind(lease_ms)
        .bind(share - mine.len() as i64)
        .fetch_all(&mut *tx)
        .await?;
        mine.extend(claimed);
    }
    tx.commit().await?;
    mine.sort_unstable();
    Ok(mine)
}

/// Gives this relay's slots back (on shutdown), so that others take them at once.
pub async fn release_slots(pool: &PgPool, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE relay_slot SET owner = NULL, lease_until = '-infinity' WHERE owner = $1")
        .bind(owner)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM relay_member WHERE owner = $1")
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(())
}

pub struct Relay {
    pool: PgPool,
    /// Replaced when it reports a fatal error (see [`Relay::producer`]).
    producer: std::sync::Mutex<FutureProducer>,
    kafka: KafkaConfig,
    catalogue: Arc<Catalogue>,
    opts: RelayOptions,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        kafka: KafkaConfig,
        catalogue: Arc<Catalogue>,
        opts: RelayOptions,
    ) -> Result<Relay, RelayError> {
        let producer = std::sync::Mutex::new(Self::new_producer(&kafka, &opts)?);
        Ok(Relay {
            pool,
            producer,
            kafka,
            catalogue,
            opts,
        })
    }

    fn new_producer(
        kafka: &KafkaConfig,
        opts: &RelayOptions,
    ) -> Result<FutureProducer, KafkaError> {
        producer_config(kafka, "relay", opts.message_timeout.as_millis() as u64).create()
    }

    /// The producer for this cycle. An idempotent producer with the gapless guarantee stops for
    /// good after a fatal error (a delivery that timed out while the broker was unreachable, for
    /// one); then a new one takes its place, with a new producer id. Nothing was marked published
    /// after the failed delivery, so the next cycle sends those events again, in outbox order.
    fn producer(&self) -> Result<FutureProducer, RelayError> {
        let mut current = self
            .producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(fatal) = current.client().fatal_error() {
            tracing::warn!(error = ?fatal, "the producer stopped on a fatal error; replacing it");
            metrics::counter!("relay_producer_restarts_total").increment(1);
            *current = Self::new_producer(&self.kafka, &self.opts)?;
        }
        Ok(current.clone())
    }

    /// One cycle over `slots`: returns how many events were published.
    pub async fn publish_once(&self, slots: &[i32]) -> Result<usize, RelayError> {
        if slots.is_empty() {
            return Ok(0);
        }
        let events: Vec<Envelope> = sqlx::query_as("SELECT * FROM outbox_pending($1, $2, $3)")
            .bind(slots)
            .bind(SLOT_COUNT)
            .bind(self.opts.batch as i32)
            .fetch_all(&self.pool)
            .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let producer = self.producer()?;
        // Enqueue in outbox order (librdkafka keeps the order per partition), then await.
        let mut deliveries = Vec::with_capacity(events.len());
        let mut enqueue_failure = None;
        for e in &events {
            let topic =
                self.catalogue
                    .topic_for(&e.event_type)
                    .ok_or_else(|| RelayError::Unroutable {
                        event_id: e.event_id,
                        event_type: e.event_type.clone(),
                    })?;
            let topic = topic_name(&self.kafka, &topic.name);
            let mut headers = OwnedHeaders::new();
            for (k, v) in e.headers() {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let key = e.aggregate_id.to_string();
            let value = serde_json::to_vec(e).unwrap_or_default();
            let mut record = FutureRecord::to(&topic)
                .key(&key)
                .payload(&value)
                .headers(headers);
            // Enqueued synchronously, so the order of the calls is the order on the partition.
            let delivery = loop {
                match producer.send_result(record) {
                    Ok(d) => break Ok(d),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((error, _)) => break Err(error),
                }
            };
            match delivery {
                Ok(d) => deliveries.push(d),
                Err(error) => {
                    enqueue_failure = Some((e.event_id, error));
                    break;
                }
            }
        }
        let results = futures::future::join_all(deliveries).await;
        let mut published = Vec::new();
        let mut failure = None;
        for (e, r) in events.iter().zip(results) {
            match r {
                Ok(Ok(_)) => published.push(e.event_id),
                Ok(Err((error, _))) => {
                    failure = Some((e.event_id, error));
                    break;
                }
                Err(_) => {
                    failure = Some((e.event_id, KafkaError::Canceled));
                    break;
                }
            }
        }
        let failure = failure.or(enqueue_failure);
        let elapsed = started.elapsed().as_secs_f64();
        if !published.is_empty() {
            sqlx::query_scalar::<_, i32>("SELECT outbox_mark_published($1, $2)")
                .bind(&published)
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await?;
            metrics::counter!("relay_published_total").increment(published.len() as u64);
            metrics::histogram!("relay_publish_batch_duration_seconds").record(elapsed);
        }
        match failure {
            None => Ok(published.len()),
            Some((event_id, error)) => Err(RelayError::Partial {
                published: published.len(),
                event_id,
                error,
            }),
        }
    }

    /// Claims this relay's share of the slots and publishes until nothing is pending in them:
    /// one drain, for tools and tests (the deployable runs [`Relay::run`]). Returns how many.
    pub async fn publish_pending(&self) -> Result<usize, RelayError> {
        let slots = claim_slots(&self.pool, &self.opts.owner, self.opts.lease).await?;
        let mut published = 0;
        loop {
            let n = self.publish_once(&slots).await?;
            if n == 0 {
                return Ok(published);
            }
            published += n;
        }
    }

    /// Records the backlog gauges: pending events and the age of the oldest.
    pub async fn observe_backlog(&self) -> Result<(i64, f64), sqlx::Error> {
        let (pending, oldest): (i64, Option<chrono::DateTime<Utc>>) =
            sqlx::query_as("SELECT pending, oldest FROM outbox_backlog()")
                .fetch_one(&self.pool)
                .await?;
        let age = oldest
            .map(|o| (Utc::now() - o).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("outbox_pending_events").set(pending as f64);
        metrics::gauge!("outbox_oldest_pending_age_seconds").set(age);
        Ok((pending, age))
    }

    /// Runs until `stop` turns true; then gives its slots back.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.opts.min_backoff;
        let mut last_backlog = Instant::now() - Duration::from_secs(10);
        loop {
            if *stop.borrow() {
                break;
            }
            if last_backlog.elapsed() >= Duration::from_secs(1) {
                last_backlog = Instant::now();
                if let Err(e) = self.observe_backlog().await {
                    tracing::warn!(error = %e, "reading the outbox backlog failed");
                }
            }
            let cycle = async {
                let slots = claim_slots(&self.pool, &self.opts.owner, self.opts.lease).await?;
                metrics::gauge!("relay_slots_held").set(slots.len() as f64);
                self.publish_once(&slots).await
            }
            .await;
            let wait = match cycle {
                Ok(n) => {
                    backoff = self.opts.min_backoff;
                    // Straight on while there is work; poll every `idle` when there was none.
                    if n > 0 {
                        Duration::ZERO
                    } else {
                        self.opts.idle
                    }
                }
                Err(e) => {
                    metrics::counter!("relay_failures_total").increment(1);
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "relay cycle failed; retrying after back-off");
                    let w = backoff;
                    backoff = (backoff * 2).min(self.opts.max_backoff);
                    w
                }
            };
            if !wait.is_zero() {
                tokio::select! { _ = tokio::time::sleep(wait) => {}, _ = stop.changed() => {} }
            }
        }
        if let Ok(producer) = self.producer() {
            let _ = producer.flush(Duration::from_secs(5));
        }
        if let Err(e) = release_slots(&self.pool, &self.opts.owner).await {
            tracing::warn!(error = %e, "releasing relay slots failed; they expire with their lease");
        }
    }
}
