//! A consumer group for one [`Projection`]. Each record is applied in one database transaction in
//! its tenant, together with its inbox row (unique on consumer and event id); a record whose row
//! is already there was applied before and is skipped. Only after that transaction commits is the
//! record's offset stored for the background commit, one record at a time, in order. A transient
//! failure is retried with back-off up to `max_retries` times; then, and at once for a permanent
//! failure, the record goes to the dead-letter topic with where it came from and why, and the
//! consumer moves on. The group's lag per partition (high watermark minus committed offset, as
//! `kafka-consumer-groups` reports it) is exported as `consumer_lag`.

use std::sync::Arc;
use std::time::Duration;

use cpq_config::{ConsumerAssignment, KafkaConfig};
use cpq_core::TenantId;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::catalogue::Catalogue;
use crate::dead_letter::{dead_letter, DeadLetter};
use crate::envelope::Envelope;
use crate::kafka::{consumer_config, every_partition, producer_config, topic_name};
use crate::projections::{HandlerError, Projection};

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub max_retries: u32,
    pub first_backoff: Duration,
    pub lag_every: Duration,
    /// Static group membership under this id (see [`consumer_config`]).
    pub instance_id: Option<String>,
    /// How often the consumer queue is polled even without a wake-up (see [`EventConsumer::run`]).
    pub repoll_every: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            max_retries: 5,
            first_backoff: Duration::from_millis(100),
            lag_every: Duration::from_secs(5),
            instance_id: None,
            repoll_every: Duration::from_secs(1),
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Its inbox row was there: a redelivery.
    Duplicate,
    DeadLettered,
}

/// Applies `e` for `projection` with its inbox row, in one transaction in the event's tenant.
pub async fn apply_once(
    pool: &PgPool,
    projection: Projection,
    topic: &str,
    partition: i32,
    offset: i64,
    e: &Envelope,
) -> Result<Outcome, HandlerError> {
    let tenant = TenantId::parse(&e.tenant_id)
        .map_err(|f| HandlerError::permanent("bad-tenant", f.detail))?;
    let mut tx = cpq_db::tenant::begin(pool, &tenant).await?;
    let inserted = sqlx::query(
        "INSERT INTO consumer_inbox (consumer, event_id, topic, partition, \"offset\", applied_at) VALUES ($1, $2, $3, $4, $5, now()) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(projection.name())
    .bind(e.event_id)
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Outcome::Duplicate);
    }
    projection.apply(&mut tx, topic, e).await?;
    tx.commit().await?;
    Ok(Outcome::Applied)
}

/// Applies with retries; on giving up, returns the last error and how many attempts were made.
pub async fn apply_with_retries(
    pool: &PgPool,
    projection: Projection,
    topic: &str,
    partition: i32,
    offset: i64,
    e: &Envelope,
    opts: &ConsumerOptions,
) -> Result<Outcome, (HandlerError, u32)> {
    let mut backoff = opts.first_backoff;
    let mut attempt = 0;
    loop {
        match apply_once(pool, projection, topic, partition, offset, e).await {
            Ok(o) => return Ok(o),
            Err(err)
                if err.category == crate::projections::Category::Transient
                    && attempt < opts.max_retries =>
            {
                attempt += 1;
                metrics::counter!("consumer_retries_total", "consumer" => projection.name())
                    .increment(1);
                tracing::warn!(consumer = projection.name(), event_id = %e.event_id, attempt, error = %err.message, "applying an event failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(err) => return Err((err, attempt)),
        }
    }
}

pub struct EventConsumer {
    pool: PgPool,
    kafka: KafkaConfig,
    projection: Projection,
    /// The projection's topics, with the namespace.
    topics: Vec<String>,
    consumer: Arc<StreamConsumer>,
    dead_letters: FutureProducer,
    opts: ConsumerOptions,
}

impl EventConsumer {
    pub fn new(
        pool: PgPool,
        kafka: KafkaConfig,
        catalogue: &Catalogue,
        projection: Projection,
        opts: ConsumerOptions,
    ) -> Result<EventConsumer, KafkaError> {
        let topics: Vec<String> = projection
            .topics(catalogue)
            .iter()
            .map(|t| topic_name(&kafka, t))
            .collect();
        let consumer: StreamConsumer =
            consumer_config(&kafka, projection.name(), opts.instance_id.as_deref()).create()?;
        match kafka.consumer_assignment {
            ConsumerAssignment::Group => {
                let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                consumer.subscribe(&refs)?;
            }
            ConsumerAssignment::AllPartitions => {
                // From the group's committed offsets (else auto.offset.reset).
                let mut partitions = every_partition(&consumer, &topics)?;
                partitions.set_all_offsets(Offset::Stored)?;
                consumer.assign(&partitions)?;
            }
        }
        let dead_letters: FutureProducer =
            producer_config(&kafka, &format!("dlq-{}", projection.name()), 30_000).create()?;
        Ok(EventConsumer {
            pool,
            kafka,
            projection,
            topics,
            consumer: Arc::new(consumer),
            dead_letters,
            opts,
        })
    }

    /// Handles one record: apply (with retries) or dead-letter, then store its offset.
    async fn handle(&self, m: &BorrowedMessage<'_>) -> Result<Outcome, KafkaError> {
        let topic = m.topic().to_owned();
        let logical = topic
            .strip_prefix(&self.kafka.namespace)
            .unwrap_or(&topic)
            .to_owned();
        let parsed: Result<Envelope, HandlerError> =
            serde_json::from_slice(m.payload().unwrap_or_default())
                .map_err(|e| HandlerError::permanent("malformed-envelope", e.to_string()));
        let result = match &parsed {
            Ok(e) => {
                apply_with_retries(
                    &self.pool,
                    self.projection,
                    &logical,
                    m.partition(),
                    m.offset(),
                    e,
                    &self.opts,
                )
                .await
            }
            Err(err) => Err((err.clone(), 0)),
        };
        let outcome = match result {
            Ok(o) => o,
            Err((error, retries)) => {
                let event_id = parsed
                    .as_ref()
                    .map(|e| e.event_id.to_string())
                    .ok()
                    .or_else(|| header(m, "event-id"));
                let letter = DeadLetter {
                    consumer: self.projection.name().to_owned(),
                    original_topic: logical.clone(),
                    partition: m.partition(),
                    offset: m.offset(),
                    event_id,
                    error,
                    retries,
                    payload: m.payload().unwrap_or_default().to_vec(),
                };
                // Until the dead letter is safely on its topic, the offset is not stored.
                dead_letter(&self.dead_letters, &self.kafka, &letter).await?;
                metrics::counter!("consumer_dead_letters_total", "consumer" => self.projection.name()).increment(1);
                Outcome::DeadLettered
            }
        };
        self.consumer.store_offset_from_message(m)?;
        metrics::counter!("consumer_events_total", "consumer" => self.projection.name(), "outcome" => match outcome {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::DeadLettered => "dead-lettered",
        })
        .increment(1);
        Ok(outcome)
    }

    /// Exports the group's lag every `lag_every` until `stop` turns true, from a task of its own
    /// (a record stuck in retries must not stop the lag from showing) on the blocking pool (the
    /// queries block); see [`group_lag`].
    fn observe_lag(&self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let (consumer, name, topics, every) = (
            self.consumer.clone(),
            self.projection.name(),
            self.topics.clone(),
            self.opts.lag_every,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let (consumer, topics) = (consumer.clone(), topics.clone());
                let _ =
                    tokio::task::spawn_blocking(move || group_lag(&consumer, name, &topics)).await;
            }
        })
    }

    /// Consumes until `stop` turns true; commits the stored offsets before returning.
    ///
    /// librdkafka signals the consumer queue only when it turns non-empty, and a poll that serves
    /// an internal event (a rebalance, a log line) instead of a message can swallow that signal
    /// (rust-rdkafka issue 665): the stream then sleeps with records waiting until rdkafka's own
    /// fallback wake-up at half of `max.poll.interval.ms`, 150 s. Polling again every
    /// `repoll_every` bounds such a sleep to that interval.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut repoll = tokio::time::interval(self.opts.repoll_every);
        repoll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lag = self.observe_lag(stop.clone());
        loop {
            if *stop.borrow() {
                break;
            }
            let next = tokio::select! {
                m = self.consumer.recv() => Some(m),
                _ = repoll.tick() => None,
                _ = stop.changed() => break,
            };
            match next {
                Some(Ok(m)) => {
                    if let Err(e) = self.handle(&m).await {
                        // The offset stays unstored: after a restart or rebalance the record comes
                        // again. Seek back so that this process retries it too.
                        tracing::warn!(consumer = self.projection.name(), error = %e, "handling a record failed; it will be redelivered");
                        let mut tpl = TopicPartitionList::new();
                        let _ = tpl.add_partition_offset(
                            m.topic(),
                            m.partition(),
                            Offset::Offset(m.offset()),
                        );
                        let _ = self.consumer.seek_partitions(tpl, Duration::from_secs(5));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(consumer = self.projection.name(), error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => {}
            }
        }
        lag.abort();
        let consumer = self.consumer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        })
        .await;
    }
}

/// Exports `consumer_lag{consumer,topic,partition}` (high watermark minus the group's committed
/// offset; a partition without a commit counts from its low watermark), for every partition of
/// the group's topics, assigned to this member or not. Skipped when the cluster cannot be asked.
fn group_lag(consumer: &StreamConsumer, name: &'static str, topics: &[String]) {
    let timeout = Duration::from_secs(5);
    let committed = every_partition(consumer, topics)
        .and_then(|partitions| consumer.committed_offsets(partitions, timeout));
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(consumer = name, error = %e, "cannot read the group's committed offsets");
            return;
        }
    };
    for el in committed.elements() {
        let (low, high) = match consumer.fetch_watermarks(el.topic(), el.partition(), timeout) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(consumer = name, topic = el.topic(), partition = el.partition(), error = %e, "cannot read a partition's watermarks");
                continue;
            }
        };
        let at = el.offset().to_raw().filter(|o| *o >= 0).unwrap_or(low);
        let lag = (high - at).max(0);
        metrics::gauge!("consumer_lag", "consumer" => name, "topic" => el.topic().to_owned(), "partition" => el.partition().to_string()).set(lag as f64);
    }
}

fn header(m: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    m.headers().and_then(|h| {
        h.iter()
            .find(|x| x.key == name)
            .and_then(|x| x.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// Consumer groups running as tasks until [`Consumers::stop`].
pub struct Consumers {
    stop: watch::Sender<bool>,
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl Consumers {
    /// Starts one [`EventConsumer`] per projection.
    pub fn start(
        pool: &PgPool,
        kafka: &KafkaConfig,
        catalogue: &Catalogue,
        projections: &[Projection],
        opts: &ConsumerOptions,
    ) -> Result<Consumers, KafkaError> {
        let (stop, stopped) = watch::channel(false);
        let mut running = Vec::new();
        for p in projections {
            let c = EventConsumer::new(pool.clone(), kafka.clone(), catalogue, *p, opts.clone())?;
            tracing::info!(consumer = p.name(), "consumer started");
            running.push(tokio::spawn(c.run(stopped.clone())));
        }
        Ok(Consumers { stop, running })
    }

    /// Stops every consumer and waits until each has committed its stored offsets.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for r in self.running {
            let _ = r.await;
        }
    }
}
