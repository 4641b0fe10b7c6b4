//! The outbox relay. Each cycle it (1) renews and claims hash slots of the aggregate id in
//! `relay_slot`, a fair share given how many relays are alive, in a short transaction; (2) reads
//! the pending events of its slots in outbox order; (3) hands them to an idempotent producer in
//! that order, key = aggregate id, outside any transaction, at most `in_flight` of them not yet
//! marked published at any time; (4) marks published, in outbox order, the events acknowledged
//! so far, every `mark_every` acknowledgements, and stops at the first failure. A failure backs
//! off and retries; events after it are sent again later (consumers' inboxes absorb the
//! duplicates), so every aggregate's events are first delivered in order, and none is lost while
//! the broker is down. A relay killed at any moment has at most `in_flight` events acknowledged
//! or on their way that it had not marked: those are published again by whoever takes its slots.
//!
//! A relay has an identity (`--instance-id`, by default the host's name: a pod name in
//! Kubernetes), held while it runs as a session-level PostgreSQL advisory lock on a connection of
//! its own, which the database releases the moment the process dies. Holding that lock proves
//! that no other process runs under the name, so a restarted relay renews the slots its
//! predecessor held at once instead of waiting for their leases to run out. If the name stays
//! locked for `identity_wait` (another live process uses it), the relay runs under a unique name
//! derived from it and takes slots as they fall free.
//!
//! A relay that stalls past its lease may find its slots taken: the worst case is an event
//! published twice, which the inbox absorbs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cpq_config::KafkaConfig;
use cpq_db::timed;
use futures::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::envelope::Envelope;
use crate::health::{is_connection, KafkaContext, KafkaHealth};
use crate::kafka::{producer_config, topic_name};

/// How the outbox is divided: `relay_slot` holds this many rows (migration 0015).
pub const SLOT_COUNT: i32 = 16;

/// Default of [`RelayOptions::in_flight`] (and of `cpq-relay --in-flight`).
pub const DEFAULT_IN_FLIGHT: usize = 100;

/// Default of [`RelayOptions::mark_every`] (and of `cpq-relay --mark-every`).
pub const DEFAULT_MARK_EVERY: usize = 25;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// This relay's name in `relay_slot.owner`: its identity, the same across restarts (see
    /// [`Relay::run`]).
    pub owner: String,
    pub lease: Duration,
    /// Events read per cycle.
    pub batch: i64,
    /// At most this many events handed to the producer and not yet marked published: what a
    /// relay killed at any moment can leave to be published again.
    pub in_flight: usize,
    /// Acknowledged events are marked published this many at a time (and at the end of a cycle).
    pub mark_every: usize,
    /// How long a starting relay waits for its identity to be free (a predecessor's database
    /// session to end) before it runs under a unique name instead.
    pub identity_wait: Duration,
    /// Wait between cycles when nothing was pending.
    pub idle: Duration,
    /// How long the producer tries to deliver one event before it counts as failed.
    pub message_timeout: Duration,
    /// Back-off after a failed cycle: doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Shared by the relay's producers: librdkafka's errors go through it (see
    /// [`crate::health`]), and a cycle that fails while it finds Kafka unreachable is not logged
    /// again each time.
    pub health: KafkaHealth,
}

impl RelayOptions {
    pub fn new(owner: impl Into<String>) -> RelayOptions {
        RelayOptions {
            owner: owner.into(),
            lease: Duration::from_secs(15),
            batch: 500,
            in_flight: DEFAULT_IN_FLIGHT,
            mark_every: DEFAULT_MARK_EVERY,
            identity_wait: Duration::from_secs(5),
            idle: Duration::from_millis(20),
            message_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            health: KafkaHealth::default(),
        }
    }
}

impl RelayError {
    /// Whether it says that Kafka could not be reached (see [`crate::health::is_connection`]).
    pub fn is_connection(&self) -> bool {
        match self {
            RelayError::Kafka(e) | RelayError::Partial { error: e, .. } => is_connection(e),
            _ => false,
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
///
/// Every slot still in `owner`'s name is renewed, its lease run out or not: nobody else took it,
/// and `owner` names one process at a time (see [`Relay::run`]), so a restarted relay takes back
/// its predecessor's slots here at once.
pub async fn claim_slots<'c, A>(
    db: A,
    owner: &str,
    lease: Duration,
) -> Result<Vec<i32>, sqlx::Error>
where
    A: sqlx::Acquire<'c, Database = sqlx::Postgres>,
{
    let lease_ms = lease.as_millis() as i64;
    let mut tx = db.begin().await?;
    let mut mine: Vec<i32> = timed("relay_slot_renew", sqlx::query_scalar(
        "UPDATE relay_slot SET lease_until = now() + make_interval(secs => $2::double precision / 1000) \
         WHERE owner = $1 RETURNING slot",
    )
    .bind(owner)
    .bind(lease_ms)
    .fetch_all(&mut *tx))
    .await?;
    timed("relay_member_upsert", sqlx::query(
        "INSERT INTO relay_member (owner, seen_until) VALUES ($1, now() + make_interval(secs => $2::double precision / 1000)) \
         ON CONFLICT (owner) DO UPDATE SET seen_until = EXCLUDED.seen_until",
    )
    .bind(owner)
    .bind(lease_ms)
    .execute(&mut *tx))
    .await?;
    let others: i64 = timed(
        "relay_member_count_others",
        sqlx::query_scalar(
            "SELECT count(*) FROM relay_member WHERE seen_until > now() AND owner <> $1",
        )
        .bind(owner)
        .fetch_one(&mut *tx),
    )
    .await?;
    let share = ((SLOT_COUNT as i64) + others) / (others + 1);
    mine.sort_unstable();
    if mine.len() as i64 > share {
        let extra: Vec<i32> = mine.split_off(share as usize);
        timed("relay_slot_release_surplus", sqlx::query("UPDATE relay_slot SET owner = NULL, lease_until = '-infinity' WHERE slot = ANY($1) AND owner = $2")
            .bind(&extra)
            .bind(owner)
            .execute(&mut *tx))
            .await?;
    } else if (mine.len() as i64) < share {
        let claimed: Vec<i32> = timed("relay_slot_claim", sqlx::query_scalar(
            "UPDATE relay_slot SET owner = $1, lease_until = now() + make_interval(secs => $2::double precision / 1000) \
             WHERE slot IN (SELECT slot FROM relay_slot WHERE lease_until <= now() ORDER BY slot LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING slot",
        )
        .bind(owner)
        .bind(lease_ms)
        .bind(share - mine.len() as i64)
        .fetch_all(&mut *tx))
        .await?;
        mine.extend(claimed);
    }
    tx.commit().await?;
    mine.sort_unstable();
    Ok(mine)
}

/// Gives this relay's slots back (on shutdown), so that others take them at once.
pub async fn release_slots(pool: &PgPool, owner: &str) -> Result<(), sqlx::Error> {
    timed(
        "relay_slot_release_all",
        sqlx::query(
            "UPDATE relay_slot SET owner = NULL, lease_until = '-infinity' WHERE owner = $1",
        )
        .bind(owner)
        .execute(pool),
    )
    .await?;
    timed(
        "relay_member_delete",
        sqlx::query("DELETE FROM relay_member WHERE owner = $1")
            .bind(owner)
            .execute(pool),
    )
    .await?;
    Ok(())
}

/// The lock that holds a relay's identity: one key per name, in this database.
const IDENTITY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('cpq-relay/' || $1, 0))";

/// A relay's identity, held as a session-level advisory lock on a connection of its own for as
/// long as the relay runs; its slot claims go through that connection, so a relay renews leases
/// only while it holds its name. The database ends the session, and with it the lock, when the
/// process dies.
pub struct Membership {
    owner: String,
    conn: PgConnection,
}

impl Membership {
    /// Takes `preferred` as this relay's identity, waiting up to `wait` for a predecessor's
    /// session to end; if it is still held then (another live process runs under it), a unique
    /// name derived from it.
    pub async fn join(
        pool: &PgPool,
        preferred: &str,
        wait: Duration,
    ) -> Result<Membership, sqlx::Error> {
        let mut conn = pool.acquire().await?.detach();
        let deadline = Instant::now() + wait;
        loop {
            let locked: bool = timed(
                "relay_identity_lock",
                sqlx::query_scalar(IDENTITY_LOCK)
                    .bind(preferred)
                    .fetch_one(&mut conn),
            )
            .await?;
            if locked {
                return Ok(Membership {
                    owner: preferred.to_owned(),
                    conn,
                });
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let owner = format!("{preferred}-{}", Uuid::now_v7().simple());
        tracing::warn!(preferred, %owner, "another live relay runs under this instance id; running under a unique one (give each relay its own --instance-id)");
        let _: bool = timed(
            "relay_identity_lock",
            sqlx::query_scalar(IDENTITY_LOCK)
                .bind(&owner)
                .fetch_one(&mut conn),
        )
        .await?;
        Ok(Membership { owner, conn })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// [`claim_slots`] through the identity's connection.
    pub async fn claim(&mut self, lease: Duration) -> Result<Vec<i32>, sqlx::Error> {
        claim_slots(&mut self.conn, &self.owner, lease).await
    }
}

pub struct Relay {
    pool: PgPool,
    /// Replaced when it reports a fatal error (see [`Relay::producer`]).
    producer: std::sync::Mutex<FutureProducer<KafkaContext>>,
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
    ) -> Result<FutureProducer<KafkaContext>, KafkaError> {
        producer_config(kafka, "relay", opts.message_timeout.as_millis() as u64)
            .create_with_context(KafkaContext::new(opts.health.clone()))
    }

    /// The producer for this cycle. An idempotent producer with the gapless guarantee stops for
    /// good after a fatal error (a delivery that timed out while the broker was unreachable, for
    /// one); then a new one takes its place, with a new producer id. Nothing was marked published
    /// after the failed delivery, so the next cycle sends those events again, in outbox order.
    fn producer(&self) -> Result<FutureProducer<KafkaContext>, RelayError> {
        let mut current = self
            .producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(fatal) = current.client().fatal_error() {
            // While Kafka is unreachable this happens every cycle: the outage is logged once.
            if self.opts.health.is_down() {
                tracing::debug!(error = ?fatal, "the producer stopped on a fatal error; replacing it");
            } else {
                tracing::warn!(error = ?fatal, "the producer stopped on a fatal error; replacing it");
            }
            metrics::counter!("relay_producer_restarts_total").increment(1);
            *current = Self::new_producer(&self.kafka, &self.opts)?;
        }
        Ok(current.clone())
    }

    /// Hands one event to the producer: key = aggregate id, the routing headers, the envelope.
    /// Enqueued synchronously, so the order of the calls is the order on the partition.
    async fn enqueue(
        &self,
        producer: &FutureProducer<KafkaContext>,
        e: &Envelope,
    ) -> Result<DeliveryFuture, RelayError> {
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
        loop {
            match producer.send_result(record) {
                Ok(d) => return Ok(d),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, _)) => return Err(RelayError::Kafka(error)),
            }
        }
    }

    /// Marks `ids` published (acknowledged, in outbox order) and empties it.
    async fn mark(&self, ids: &mut Vec<Uuid>) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        timed(
            "outbox_mark_published",
            sqlx::query_scalar::<_, i32>("SELECT outbox_mark_published($1, $2)")
                .bind(&*ids)
                .bind(Utc::now())
                .fetch_one(&self.pool),
        )
        .await?;
        metrics::counter!("relay_published_total").increment(ids.len() as u64);
        ids.clear();
        Ok(())
    }

    /// One cycle over `slots`: returns how many events were published.
    ///
    /// Events go to the producer in outbox order while fewer than `in_flight` are unmarked; their
    /// acknowledgements are taken in the same order, and every `mark_every` of them (and what is
    /// left at the end) are marked published. The first failure ends the cycle: what was
    /// acknowledged before it is marked, the rest is sent again by a later cycle.
    pub async fn publish_once(&self, slots: &[i32]) -> Result<usize, RelayError> {
        if slots.is_empty() {
            return Ok(0);
        }
        let events: Vec<Envelope> = timed(
            "outbox_pending_fetch",
            sqlx::query_as("SELECT * FROM outbox_pending($1, $2, $3)")
                .bind(slots)
                .bind(SLOT_COUNT)
                .bind(self.opts.batch as i32)
                .fetch_all(&self.pool),
        )
        .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let producer = self.producer()?;
        let in_flight = self.opts.in_flight.max(1);
        let mark_every = self.opts.mark_every.clamp(1, in_flight);
        let mut next = 0;
        let mut sent: VecDeque<(Uuid, DeliveryFuture)> = VecDeque::new();
        let mut acked: Vec<Uuid> = Vec::new();
        let mut published = 0;
        // The first event that could not be enqueued, and the first whose delivery failed.
        let mut refused: Option<(Uuid, RelayError)> = None;
        let mut failed: Option<(Uuid, KafkaError)> = None;
        loop {
            while refused.is_none() && next < events.len() && sent.len() + acked.len() < in_flight {
                match self.enqueue(&producer, &events[next]).await {
                    Ok(d) => sent.push_back((events[next].event_id, d)),
                    Err(error) => refused = Some((events[next].event_id, error)),
                }
                next += 1;
            }
            let Some((id, delivery)) = sent.pop_front() else {
                break;
            };
            let mut current = (id, delivery.await);
            loop {
                let (id, result) = current;
                match result {
                    Ok(Ok(_)) => acked.push(id),
                    Ok(Err((error, _))) => {
                        failed = Some((id, error));
                        break;
                    }
                    Err(_) => {
                        failed = Some((id, KafkaError::Canceled));
                        break;
                    }
                }
                // Those acknowledged meanwhile, without waiting.
                let ready = match sent.front_mut() {
                    Some((_, d)) => d.now_or_never(),
                    None => None,
                };
                let Some(result) = ready else {
                    break;
                };
                let Some((id, _)) = sent.pop_front() else {
                    break;
                };
                current = (id, result);
            }
            if failed.is_some() {
                break;
            }
            if acked.len() >= mark_every {
                published += acked.len();
                self.mark(&mut acked).await?;
            }
        }
        published += acked.len();
        self.mark(&mut acked).await?;
        if published > 0 {
            metrics::histogram!("relay_publish_batch_duration_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        match (failed, refused) {
            (Some((event_id, error)), _) | (None, Some((event_id, RelayError::Kafka(error)))) => {
                Err(RelayError::Partial {
                    published,
                    event_id,
                    error,
                })
            }
            (None, Some((_, other))) => Err(other),
            (None, None) => Ok(published),
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
        let (pending, oldest): (i64, Option<chrono::DateTime<Utc>>) = timed(
            "outbox_backlog_fetch",
            sqlx::query_as("SELECT pending, oldest FROM outbox_backlog()").fetch_one(&self.pool),
        )
        .await?;
        let age = oldest
            .map(|o| (Utc::now() - o).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        metrics::gauge!("outbox_pending_events").set(pending as f64);
        metrics::gauge!("outbox_oldest_pending_age_seconds").set(age);
        Ok((pending, age))
    }

    /// Runs until `stop` turns true; then gives its slots back.
    ///
    /// First it takes its identity (`opts.owner`, see [`Membership::join`]): a relay restarted
    /// under the name its predecessor had renews that one's slots in its first cycle, without
    /// waiting for their leases to run out. A cycle that fails to claim gives the identity up and
    /// takes it again in the next one (the connection holding it may be gone).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.opts.min_backoff;
        let mut last_backlog = Instant::now() - Duration::from_secs(10);
        let mut member: Option<Membership> = None;
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
                let m = match &mut member {
                    Some(m) => m,
                    None => {
                        let m =
                            Membership::join(&self.pool, &self.opts.owner, self.opts.identity_wait)
                                .await?;
                        tracing::info!(owner = m.owner(), "relay identity held");
                        member.insert(m)
                    }
                };
                let slots = match m.claim(self.opts.lease).await {
                    Ok(s) => s,
                    Err(e) => {
                        member = None;
                        return Err(e.into());
                    }
                };
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
                    if self.opts.health.is_down() && e.is_connection() {
                        tracing::debug!(error = %e, backoff_ms = backoff.as_millis() as u64, "relay cycle failed; retrying after back-off");
                    } else {
                        tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "relay cycle failed; retrying after back-off");
                    }
                    let w = backoff;
                    backoff = (backoff * 2).min(self.opts.max_backoff);
                    w
                }
            };
            if !wait.is_zero() {
                tokio::select! { _ = tokio::time::sleep(wait) => {}, _ = stop.changed() => {} }
            }
        }
        // No flush: what is still on its way was not marked published, and is published again
        // by whoever takes the slots (the inboxes absorb a second copy).
        if let Some(m) = member {
            if let Err(e) = release_slots(&self.pool, m.owner()).await {
                tracing::warn!(error = %e, "releasing relay slots failed; they expire with their lease");
            }
            let _ = sqlx::Connection::close(m.conn).await;
        }
        // Dropping the producer purges what is queued and waits for its threads: off the runtime,
        // and not for long with Kafka unreachable.
        let closing = tokio::task::spawn_blocking(move || drop(self));
        if tokio::time::timeout(Duration::from_secs(2), closing)
            .await
            .is_err()
        {
            tracing::warn!(
                "closing the Kafka producer did not finish in time; left to the process's exit"
            );
        }
    }
}
