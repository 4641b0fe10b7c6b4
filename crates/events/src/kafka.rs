//! librdkafka client settings from the validated `[kafka]` configuration. One place decides
//! bootstrap servers, security (SASL credentials are secrets) and batching, for producers,
//! consumers and admin clients alike.

use cpq_config::KafkaConfig;
use rdkafka::ClientConfig;

/// Settings common to every client; `role` names the client (`relay`, `consumer-<group>`, ...).
pub fn client_config(k: &KafkaConfig, role: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set("client.id", format!("{}-{role}", k.client_id_prefix))
        .set("security.protocol", k.security_protocol.as_librdkafka());
    if let Some(m) = &k.sasl_mechanism {
        c.set("sasl.mechanism", m);
    }
    if let Some(u) = &k.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &k.sasl_password {
        c.set("sasl.password", p.expose());
    }
    // librdkafka's own debug contexts (`cgrp,fetch,...`) when diagnosing a client.
    if let Ok(contexts) = std::env::var("RDKAFKA_DEBUG") {
        c.set("debug", contexts);
    }
    c
}

/// An idempotent producer's settings: acks from all in-sync replicas, no reordering or duplicates
/// on retry, and a gap in a partition's sequence is fatal rather than silent. Records are batched
/// for at most 5 ms and compressed with lz4, in every environment (why: `config/local.toml`).
pub fn producer_config(k: &KafkaConfig, role: &str, message_timeout_ms: u64) -> ClientConfig {
    let mut c = client_config(k, role);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("enable.gapless.guarantee", "true")
        .set("message.timeout.ms", message_timeout_ms.to_string())
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    c
}

/// A consumer in `group`. Offsets are stored by the consumer itself, one message at a time, only
/// after that message's database transaction committed; the background commit then commits only
/// stored offsets, so a committed offset never runs ahead of what the database holds.
///
/// `instance_id` makes the consumer a static member of its group (`group.instance.id`, KIP-345):
/// a process restarted under the same id (a pod name, say) takes its predecessor's place and
/// partitions at once instead of waiting for a rebalance.
pub fn consumer_config(k: &KafkaConfig, group: &str, instance_id: Option<&str>) -> ClientConfig {
    let mut c = client_config(k, &format!("consumer-{group}"));
    if let Some(id) = instance_id {
        c.set("group.instance.id", id);
    }
    c.set("group.id", format!("{}{group}", k.namespace))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        // Kafka's default. A static member restarted under its id takes its partitions back at
        // once whatever this is; it bounds how long a member that died for good holds them.
        .set("session.timeout.ms", "45000")
        .set("heartbeat.interval.ms", "2000")
        .set("auto.offset.reset", "earliest")
        // A topic created after the consumer started is picked up within 30 s, not 5 minutes.
        .set("topic.metadata.refresh.interval.ms", "30000")
        .set("isolation.level", "read_committed");
    c
}

/// A topic's name on the cluster (the configured namespace first).
pub fn topic_name(k: &KafkaConfig, topic: &str) -> String {
    format!("{}{topic}", k.namespace)
}

/// Every partition of `topics` (with the namespace), as the cluster's metadata has them; an
/// error for a topic the cluster does not have.
pub fn every_partition<C: rdkafka::consumer::Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    topics: &[String],
) -> Result<rdkafka::TopicPartitionList, rdkafka::error::KafkaError> {
    let mut partitions = rdkafka::TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), std::time::Duration::from_secs(10))?;
        for t in metadata.topics() {
            if let Some(e) = t.error() {
                return Err(rdkafka::error::KafkaError::MetadataFetch(e.into()));
            }
            for p in t.partitions() {
                partitions.add_partition(t.name(), p.id());
            }
        }
    }
    Ok(partitions)
}

/// Reads a topic from the beginning up to its high watermarks as they were when it opened, without
/// joining a consumer group (partitions are assigned to a fresh, isolated group id and nothing is
/// committed): for dead letters, replays and checks. Each partition comes in offset order.
pub struct ReadToEnd {
    consumer: rdkafka::consumer::StreamConsumer,
    /// Partition -> its high watermark at open.
    remaining: std::collections::BTreeMap<i32, i64>,
}

impl ReadToEnd {
    pub fn open(k: &KafkaConfig, topic: &str) -> Result<ReadToEnd, rdkafka::error::KafkaError> {
        use rdkafka::consumer::Consumer;
        let mut c = client_config(k, "reader");
        c.set(
            "group.id",
            format!("{}reader-{}", k.namespace, uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
        let consumer: rdkafka::consumer::StreamConsumer = c.create()?;
        let name = topic_name(k, topic);
        let partitions = every_partition(&consumer, std::slice::from_ref(&name))?;
        let mut remaining = std::collections::BTreeMap::new();
        let mut assignment = rdkafka::TopicPartitionList::new();
        for p in partitions.elements().iter().map(|e| e.partition()) {
            let (low, high) =
                consumer.fetch_watermarks(&name, p, std::time::Duration::from_secs(10))?;
            if high > low {
                remaining.insert(p, high);
                assignment.add_partition_offset(&name, p, rdkafka::Offset::Beginning)?;
            }
        }
        if !remaining.is_empty() {
            consumer.assign(&assignment)?;
        }
        Ok(ReadToEnd {
            consumer,
            remaining,
        })
    }

    /// The next record, or `None` once every partition is read to its watermark. Waits at most
    /// until `until` for it.
    pub async fn next(
        &mut self,
        until: tokio::time::Instant,
    ) -> Result<Option<rdkafka::message::OwnedMessage>, ReadError> {
        use rdkafka::Message;
        if self.remaining.is_empty() {
            return Ok(None);
        }
        let m = tokio::time::timeout_at(until, self.consumer.recv())
            .await
            .map_err(|_| ReadError::Timeout {
                partitions_unread: self.remaining.len(),
            })??;
        if self
            .remaining
            .get(&m.partition())
            .is_some_and(|high| m.offset() + 1 >= *high)
        {
            self.remaining.remove(&m.partition());
        }
        Ok(Some(m.detach()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{partitions_unread} partition(s) not read to their end before the deadline")]
    Timeout { partitions_unread: usize },
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Reads a whole topic as [`ReadToEnd`] does; returns what was read when `deadline` passes first.
pub async fn read_to_end(
    k: &KafkaConfig,
    topic: &str,
    deadline: std::time::Duration,
) -> Result<Vec<rdkafka::message::OwnedMessage>, rdkafka::error::KafkaError> {
    let mut reader = ReadToEnd::open(k, topic)?;
    let until = tokio::time::Instant::now() + deadline;
    let mut out = Vec::new();
    loop {
        match reader.next(until).await {
            Ok(Some(m)) => out.push(m),
            Ok(None) | Err(ReadError::Timeout { .. }) => return Ok(out),
            Err(ReadError::Kafka(e)) => return Err(e),
        }
    }
}
