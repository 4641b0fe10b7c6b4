//! A consumer group for one [`Projection`]. Each record is applied in one database transaction in
//! its tenant, together with its inbox row (unique on consumer and event id); a record whose row
//! is already there was applied before and is skipped. Only after that transaction commits is the
//! record's offset stored for the background commit. A transient failure is retried with back-off
//! up to `max_retries` times; then, and at once for a permanent failure, the record goes to the
//! dead-letter topic with where it came from and why, and the consumer moves on.
//!
//! Records are handled one at a time per partition, in offset order, and partitions are handled
//! side by side: each partition has a worker of its own fed by the one reader, so a record in
//! retries holds back only the records after it in its partition, never those of other partitions
//! or topics. A worker that falls `buffer_per_partition` records behind has its partition paused
//! until it has worked off half of them (librdkafka fetches a resumed partition again from the
//! last record handed to this process, so nothing is skipped). The group's lag per partition (high
//! watermark minus committed offset, as `kafka-consumer-groups` reports it) is exported as
//! `consumer_lag`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpq_config::KafkaConfig;
use cpq_core::TenantId;
use cpq_db::timed;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::TopicPartitionList;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

use crate::catalogue::Catalogue;
use crate::dead_letter::{dead_letter, DeadLetter};
use crate::envelope::Envelope;
use crate::health::{is_connection, KafkaContext, KafkaHealth};
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
    /// Records read ahead for one partition while its worker is busy (with a record in retries,
    /// say): at this many the partition is paused, and resumed at half.
    pub buffer_per_partition: usize,
    /// Once stopped, how long committing the stored offsets and then closing the client (leaving
    /// the group) may take together. Past it (Kafka unreachable, say) the consumer gives up on
    /// both: what it applied and could not commit is read again after a restart, and the inbox
    /// absorbs it.
    pub close_timeout: Duration,
    /// A client that holds no partition this long is replaced. After a broker outage longer
    /// than the session timeout, librdkafka's group coordinator handle was seen to keep its
    /// requests queued and never rejoin the group (3 minutes and more, with the broker
    /// answering); a new client finds the coordinator again and reads on from the committed
    /// offsets. Longer than a rebalance, so a member only waiting for one is left alone.
    pub unassigned_limit: Duration,
    /// Shared by the consumer's Kafka clients: librdkafka's errors go through it (see
    /// [`crate::health`]), and the lag is not asked for while it finds Kafka unreachable.
    pub health: KafkaHealth,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            max_retries: 5,
            first_backoff: Duration::from_millis(100),
            lag_every: Duration::from_secs(5),
            instance_id: None,
            repoll_every: Duration::from_secs(1),
            buffer_per_partition: 500,
            close_timeout: Duration::from_secs(5),
            unassigned_limit: Duration::from_secs(90),
            health: KafkaHealth::default(),
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
    let inserted = timed("consumer_inbox_insert", sqlx::query(
        "INSERT INTO consumer_inbox (consumer, event_id, topic, partition, \"offset\", applied_at) VALUES ($1, $2, $3, $4, $5, now()) \
         ON CONFLICT (consumer, event_id) DO NOTHING",
    )
    .bind(projection.name())
    .bind(e.event_id)
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .execute(&mut *tx))
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
    match retrying(pool, projection, topic, partition, offset, e, opts, None).await {
        Ok(o) => Ok(o),
        Err(Retried::GaveUp(err, attempts)) => Err((err, attempts)),
        // Without a stop signal there is nothing to stop it.
        Err(Retried::Stopped) => Err((
            HandlerError::transient("stopped", "stopped during retries"),
            0,
        )),
    }
}

enum Retried {
    GaveUp(HandlerError, u32),
    /// `stop` turned true during a back-off: nothing applied, nothing stored.
    Stopped,
}

#[allow(clippy::too_many_arguments)]
async fn retrying(
    pool: &PgPool,
    projection: Projection,
    topic: &str,
    partition: i32,
    offset: i64,
    e: &Envelope,
    opts: &ConsumerOptions,
    mut stop: Option<&mut watch::Receiver<bool>>,
) -> Result<Outcome, Retried> {
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
                tracing::warn!(consumer = projection.name(), event_id = %e.event_id, topic, partition, offset, attempt, error = %err.message, "applying an event failed; retrying");
                if !pause(backoff, stop.as_deref_mut()).await {
                    return Err(Retried::Stopped);
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(err) => return Err(Retried::GaveUp(err, attempt)),
        }
    }
}

/// Sleeps `d`; false when `stop` turned (or was) true first.
async fn pause(d: Duration, stop: Option<&mut watch::Receiver<bool>>) -> bool {
    match stop {
        None => {
            tokio::time::sleep(d).await;
            true
        }
        Some(stop) => {
            if *stop.borrow() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(d) => true,
                _ = stop.wait_for(|s| *s) => false,
            }
        }
    }
}

pub struct EventConsumer {
    pool: PgPool,
    kafka: KafkaConfig,
    projection: Projection,
    /// The projection's topics, with the namespace.
    topics: Vec<String>,
    consumer: Arc<StreamConsumer<KafkaContext>>,
    dead_letters: FutureProducer<KafkaContext>,
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
        let context = KafkaContext::new(opts.health.clone());
        let consumer: StreamConsumer<KafkaContext> =
            consumer_config(&kafka, projection.name(), opts.instance_id.as_deref())
                .create_with_context(context.clone())?;
        // Kafka's group protocol: the coordinator spreads the partitions over the group's
        // members. Subscribing needs no broker: a consumer started while Kafka is unreachable
        // joins its group once it answers.
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let dead_letters: FutureProducer<KafkaContext> =
            producer_config(&kafka, &format!("dlq-{}", projection.name()), 30_000)
                .create_with_context(context)?;
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

    /// Applies one record (with retries) or dead-letters it; `None` when `stop` came first. Until
    /// the dead letter is safely on its topic the record is not done: a failure to publish it is
    /// an error, and the record is handled again.
    async fn handle(
        &self,
        m: &OwnedMessage,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<Outcome>, KafkaError> {
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
                retrying(
                    &self.pool,
                    self.projection,
                    &logical,
                    m.partition(),
                    m.offset(),
                    e,
                    &self.opts,
                    Some(stop),
                )
                .await
            }
            Err(err) => Err(Retried::GaveUp(err.clone(), 0)),
        };
        let outcome = match result {
            Ok(o) => o,
            Err(Retried::Stopped) => return Ok(None),
            Err(Retried::GaveUp(error, retries)) => {
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
                // Not past `stop`: a dead letter not acknowledged by then is published again
                // after a restart (the record was not applied, its offset not stored).
                tokio::select! {
                    published = dead_letter(&self.dead_letters, &self.kafka, &letter) => published?,
                    _ = stop.wait_for(|s| *s) => return Ok(None),
                }
                metrics::counter!("consumer_dead_letters_total", "consumer" => self.projection.name()).increment(1);
                Outcome::DeadLettered
            }
        };
        metrics::counter!("consumer_events_total", "consumer" => self.projection.name(), "outcome" => match outcome {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::DeadLettered => "dead-lettered",
        })
        .increment(1);
        Ok(Some(outcome))
    }

    /// One partition's worker: handles its records in offset order, storing each one's offset
    /// once it is done, until its channel closes or `stop` turns true.
    async fn work(
        self: Arc<Self>,
        mut records: mpsc::UnboundedReceiver<OwnedMessage>,
        backlog: Arc<Mutex<Backlog>>,
        mut stop: watch::Receiver<bool>,
    ) {
        while let Some(m) = records.recv().await {
            if *stop.borrow() {
                return;
            }
            loop {
                match self.handle(&m, &mut stop).await {
                    Ok(Some(_)) => break,
                    Ok(None) => return,
                    Err(e) => {
                        // The dead letter could not be published (the broker is down, say): the
                        // record stays where it is, and is handled again after a pause.
                        tracing::warn!(consumer = self.projection.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "handling a record failed; handling it again");
                        if !pause(Duration::from_secs(1), Some(&mut stop)).await {
                            return;
                        }
                    }
                }
            }
            // Only now, with the record applied or dead-lettered, is its offset stored. This fails
            // only when the partition is no longer assigned here (a rebalance): its new owner
            // reads it again from the committed offset, and the inbox absorbs the double.
            if let Err(e) = self
                .consumer
                .store_offset(m.topic(), m.partition(), m.offset())
            {
                tracing::warn!(consumer = self.projection.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), error = %e, "storing an offset failed; the record will be delivered again");
            }
            let mut b = backlog
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            b.queued = b.queued.saturating_sub(1);
            if b.paused && b.queued <= self.opts.buffer_per_partition / 2 {
                b.paused = false;
                if let Err(e) = self
                    .consumer
                    .resume(&one_partition(m.topic(), m.partition()))
                {
                    tracing::warn!(consumer = self.projection.name(), topic = m.topic(), partition = m.partition(), error = %e, "resuming a partition failed");
                }
            }
        }
    }

    /// Hands `m` to its partition's worker (started on the partition's first record, or again
    /// if it ended), and pauses the partition when the worker is `buffer_per_partition` behind.
    fn dispatch(
        self: &Arc<Self>,
        workers: &mut HashMap<(String, i32), Worker>,
        running: &mut tokio::task::JoinSet<()>,
        stop: &watch::Receiver<bool>,
        m: OwnedMessage,
    ) {
        let key = (m.topic().to_owned(), m.partition());
        if workers.get(&key).is_none_or(|w| w.records.is_closed()) {
            let (records, rx) = mpsc::unbounded_channel();
            let backlog = Arc::new(Mutex::new(Backlog::default()));
            running.spawn(self.clone().work(rx, backlog.clone(), stop.clone()));
            workers.insert(key.clone(), Worker { records, backlog });
        }
        let Some(worker) = workers.get(&key) else {
            return;
        };
        {
            let mut b = worker
                .backlog
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            b.queued += 1;
            if !b.paused && b.queued >= self.opts.buffer_per_partition.max(1) {
                b.paused = true;
                if let Err(e) = self.consumer.pause(&one_partition(&key.0, key.1)) {
                    tracing::warn!(consumer = self.projection.name(), topic = key.0, partition = key.1, error = %e, "pausing a partition failed");
                }
            }
        }
        // The worker ends only when stopping: then the record is simply not handled.
        let _ = worker.records.send(m);
    }

    /// Exports the group's lag every `lag_every` until `stop` turns true, from a task of its own
    /// (a record stuck in retries must not stop the lag from showing) on the blocking pool (the
    /// queries block); see [`group_lag`].
    fn observe_lag(&self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let (consumer, name, topics, every, health) = (
            self.consumer.clone(),
            self.projection.name(),
            self.topics.clone(),
            self.opts.lag_every,
            self.opts.health.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                // Kafka unreachable: nothing to ask (each question would wait for its timeout).
                if health.is_down() {
                    continue;
                }
                let (consumer, topics) = (consumer.clone(), topics.clone());
                let _ =
                    tokio::task::spawn_blocking(move || group_lag(&consumer, name, &topics)).await;
            }
        })
    }

    /// Consumes until `stop` turns true, or until the client stops on a fatal error (a static
    /// member fenced after its session timed out while the broker was unreachable, say: a
    /// librdkafka consumer is of no use afterwards); commits the stored offsets before returning.
    ///
    /// librdkafka signals the consumer queue only when it turns non-empty, and a poll that serves
    /// an internal event (a rebalance, a log line) instead of a message can swallow that signal
    /// (rust-rdkafka issue 665): the stream then sleeps with records waiting until rdkafka's own
    /// fallback wake-up at half of `max.poll.interval.ms`, 150 s. Polling again every
    /// `repoll_every` bounds such a sleep to that interval.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Ended {
        let this = Arc::new(self);
        let mut repoll = tokio::time::interval(this.opts.repoll_every);
        repoll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lag = this.observe_lag(stop.clone());
        // Tells the workers to finish: on `stop`, or when this client is done for.
        let (halt, halted) = watch::channel(false);
        let mut workers: HashMap<(String, i32), Worker> = HashMap::new();
        let mut running = tokio::task::JoinSet::new();
        let mut unassigned_since: Option<tokio::time::Instant> = None;
        let ended = loop {
            if *stop.borrow() {
                break Ended::Stopped;
            }
            let next = tokio::select! {
                m = this.consumer.recv() => Some(m.map(|m| m.detach())),
                _ = repoll.tick() => None,
                _ = stop.changed() => break Ended::Stopped,
            };
            match next {
                Some(Ok(m)) => this.dispatch(&mut workers, &mut running, &halted, m),
                Some(Err(e)) => {
                    if let Some((code, reason)) = this.consumer.client().fatal_error() {
                        break Ended::Fatal(format!("{code}: {reason}"));
                    }
                    // A broker that cannot be reached is reported by the client's context too
                    // (once, see crate::health); anything else is the consumer's to say.
                    if is_connection(&e) {
                        tracing::debug!(consumer = this.projection.name(), error = %e, "consumer error");
                    } else {
                        tracing::warn!(consumer = this.projection.name(), error = %e, "consumer error");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => {
                    // The assignment is the client's own state (no broker round trip).
                    let assigned = this
                        .consumer
                        .assignment()
                        .map(|a| a.count() > 0)
                        .unwrap_or(true);
                    if assigned {
                        unassigned_since = None;
                    } else {
                        let since = *unassigned_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= this.opts.unassigned_limit {
                            break Ended::Fatal(format!(
                                "no partition assigned for {} s (the group coordinator does not answer)",
                                this.opts.unassigned_limit.as_secs()
                            ));
                        }
                    }
                }
            }
        };
        // Each worker finishes the record at hand (a back-off ends at once) and stores nothing
        // after it; what was read ahead comes again after a restart.
        let _ = halt.send(true);
        drop(workers);
        while running.join_next().await.is_some() {}
        lag.abort();
        this.close(ended).await
    }

    /// Commits the stored offsets, then closes the client (a static member stays in its group
    /// until its session times out, a dynamic one leaves it), both off the runtime and together
    /// within `close_timeout`: with Kafka unreachable either could wait for good. What was
    /// applied and not committed is read again by whoever takes the partitions, and the inbox
    /// absorbs it.
    async fn close(self: Arc<Self>, ended: Ended) -> Ended {
        let name = self.projection.name();
        let deadline = tokio::time::Instant::now() + self.opts.close_timeout;
        let consumer = self.consumer.clone();
        let commit = tokio::task::spawn_blocking(move || {
            consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        });
        match tokio::time::timeout_at(deadline, commit).await {
            Ok(Ok(Ok(())))
            | Ok(Ok(Err(KafkaError::ConsumerCommit(rdkafka::error::RDKafkaErrorCode::NoOffset)))) =>
                {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(consumer = name, error = %e, "committing the applied records' offsets failed; they are read again after a restart and the inbox absorbs them")
            }
            Ok(Err(_)) => {}
            Err(_) => {
                tracing::warn!(consumer = name, timeout_ms = self.opts.close_timeout.as_millis() as u64, "committing the applied records' offsets did not finish in time (Kafka unreachable?); they are read again after a restart and the inbox absorbs them")
            }
        }
        // The last reference to the client, unless the lag's question (aborted, on the blocking
        // pool) still holds one: then the client closes when that returns.
        let closing = tokio::task::spawn_blocking(move || drop(self));
        if tokio::time::timeout_at(deadline, closing).await.is_err() {
            tracing::warn!(consumer = name, "closing the Kafka consumer did not finish in time (Kafka unreachable?); left to the process's exit");
        }
        ended
    }
}

/// Why [`EventConsumer::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Stopped,
    /// The client reported this fatal error, or held no partition for
    /// [`ConsumerOptions::unassigned_limit`]: a new one must take its place.
    Fatal(String),
}

/// A partition's worker as the reader sees it.
struct Worker {
    records: mpsc::UnboundedSender<OwnedMessage>,
    backlog: Arc<Mutex<Backlog>>,
}

/// Records handed to a worker and not yet done, and whether its partition is paused for it.
#[derive(Debug, Default)]
struct Backlog {
    queued: usize,
    paused: bool,
}

fn one_partition(topic: &str, partition: i32) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    tpl
}

/// Exports `consumer_lag{consumer,topic,partition}` (high watermark minus the group's committed
/// offset; a partition without a commit counts from its low watermark), for every partition of
/// the group's topics, assigned to this member or not. Skipped when the cluster cannot be asked;
/// a question that timed out or found no broker is not logged: the deployable's [`KafkaHealth`]
/// probe says when Kafka is unreachable, once.
fn group_lag(consumer: &StreamConsumer<KafkaContext>, name: &'static str, topics: &[String]) {
    let quiet = |e: &KafkaError| is_connection(e);
    let timeout = Duration::from_secs(5);
    let committed = every_partition(consumer, topics)
        .and_then(|partitions| consumer.committed_offsets(partitions, timeout));
    let committed = match committed {
        Ok(c) => c,
        Err(e) if quiet(&e) => return,
        Err(e) => {
            tracing::warn!(consumer = name, error = %e, "cannot read the group's committed offsets");
            return;
        }
    };
    for el in committed.elements() {
        let (low, high) = match consumer.fetch_watermarks(el.topic(), el.partition(), timeout) {
            Ok(w) => w,
            Err(e) if quiet(&e) => return,
            Err(e) => {
                // The rest would most likely wait as long: asked again at the next tick.
                tracing::warn!(consumer = name, topic = el.topic(), partition = el.partition(), error = %e, "cannot read a partition's watermarks; the lag is read again later");
                return;
            }
        };
        let at = el.offset().to_raw().filter(|o| *o >= 0).unwrap_or(low);
        let lag = (high - at).max(0);
        metrics::gauge!("consumer_lag", "consumer" => name, "topic" => el.topic().to_owned(), "partition" => el.partition().to_string()).set(lag as f64);
    }
}

fn header(m: &OwnedMessage, name: &str) -> Option<String> {
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
    /// Starts one [`EventConsumer`] per projection. One whose client stops on a fatal error is
    /// replaced by a new one, which reads on from the group's committed offsets (the inbox
    /// absorbs what comes twice).
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
            let mut c =
                EventConsumer::new(pool.clone(), kafka.clone(), catalogue, *p, opts.clone())?;
            tracing::info!(consumer = p.name(), "consumer started");
            let (pool, kafka, catalogue, p, opts, mut stopped) = (
                pool.clone(),
                kafka.clone(),
                catalogue.clone(),
                *p,
                opts.clone(),
                stopped.clone(),
            );
            running.push(tokio::spawn(async move {
                loop {
                    let Ended::Fatal(error) = c.run(stopped.clone()).await else {
                        return;
                    };
                    metrics::counter!("consumer_restarts_total", "consumer" => p.name()).increment(1);
                    tracing::warn!(consumer = p.name(), %error, "the consumer stopped on a fatal error; replacing it");
                    c = loop {
                        if !pause(Duration::from_secs(1), Some(&mut stopped)).await {
                            return;
                        }
                        match EventConsumer::new(pool.clone(), kafka.clone(), &catalogue, p, opts.clone()) {
                            Ok(c) => break c,
                            Err(e) => tracing::warn!(consumer = p.name(), error = %e, "creating a consumer failed; retrying"),
                        }
                    };
                }
            }));
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
