//! Dead letters: a record a consumer could not apply goes to `cpq.dead-letter.v1`, keyed by the
//! consumer's name, its value the original record's value (the event envelope), its headers saying
//! where it came from and why:
//!
//! | header | value |
//! | --- | --- |
//! | `dlq.original-topic`, `dlq.original-partition`, `dlq.original-offset` | where it was read |
//! | `dlq.event-id` | the event id, when the record could be read |
//! | `dlq.error-code`, `dlq.error-category`, `dlq.error-message` | why (`transient` after retries, or `permanent`) |
//! | `dlq.consumer`, `dlq.retry-count`, `dlq.timestamp` | who gave up, after how many retries, when |
//! | `dlq.replay` | the command that replays it to its consumer after a fix |
//!
//! [`replay_dead_letters`] reads the topic with an isolated consumer group and applies each letter
//! of a consumer again through the same inbox, so a letter applied already is not applied twice.

use std::time::Duration;

use chrono::Utc;
use cpq_config::KafkaConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use sqlx::PgPool;

use crate::consumer::{apply_with_retries, ConsumerOptions, Outcome};
use crate::envelope::Envelope;
use crate::kafka::{read_to_end, topic_name};
use crate::projections::{HandlerError, Projection};

pub const DEAD_LETTER_TOPIC: &str = "cpq.dead-letter.v1";

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub consumer: String,
    pub original_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event_id: Option<String>,
    pub error: HandlerError,
    pub retries: u32,
    pub payload: Vec<u8>,
}

impl DeadLetter {
    pub fn replay_instruction(&self) -> String {
        format!(
            "cpq-admin dead-letters replay --consumer {}{}",
            self.consumer,
            self.event_id
                .as_deref()
                .map(|e| format!(" --event-id {e}"))
                .unwrap_or_default()
        )
    }
}

/// Publishes `letter` and waits for the acknowledgement.
pub async fn dead_letter<C: rdkafka::ClientContext + 'static>(
    producer: &FutureProducer<C>,
    kafka: &KafkaConfig,
    letter: &DeadLetter,
) -> Result<(), KafkaError> {
    let pairs = [
        ("dlq.original-topic", letter.original_topic.clone()),
        ("dlq.original-partition", letter.partition.to_string()),
        ("dlq.original-offset", letter.offset.to_string()),
        ("dlq.event-id", letter.event_id.clone().unwrap_or_default()),
        ("dlq.error-code", letter.error.code.clone()),
        (
            "dlq.error-category",
            letter.error.category.as_str().to_owned(),
        ),
        ("dlq.error-message", letter.error.message.clone()),
        ("dlq.consumer", letter.consumer.clone()),
        ("dlq.retry-count", letter.retries.to_string()),
        ("dlq.timestamp", Utc::now().to_rfc3339()),
        ("dlq.replay", letter.replay_instruction()),
    ];
    let mut headers = OwnedHeaders::new();
    for (k, v) in &pairs {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let topic = topic_name(kafka, DEAD_LETTER_TOPIC);
    let record = FutureRecord::to(&topic)
        .key(&letter.consumer)
        .payload(&letter.payload)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(5))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

/// A dead letter as read back: its headers by name and the original payload.
#[derive(Debug, Clone, Serialize)]
pub struct ReadLetter {
    pub offset: i64,
    pub headers: std::collections::BTreeMap<String, String>,
    pub payload: serde_json::Value,
}

/// Every dead letter on the topic now (no consumer group is joined).
pub async fn read_dead_letters(
    kafka: &KafkaConfig,
    deadline: Duration,
) -> Result<Vec<ReadLetter>, KafkaError> {
    Ok(read_to_end(kafka, DEAD_LETTER_TOPIC, deadline)
        .await?
        .into_iter()
        .map(|m| {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                x.value
                                    .map(|v| String::from_utf8_lossy(v).into_owned())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let payload = serde_json::from_slice(m.payload().unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
            ReadLetter {
                offset: m.offset(),
                headers,
                payload,
            }
        })
        .collect())
}

/// What a replay did, per letter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    pub applied: usize,
    pub already_applied: usize,
    pub still_failing: Vec<String>,
}

/// Applies the dead letters of `projection` (optionally one event) again through its inbox.
pub async fn replay_dead_letters(
    pool: &PgPool,
    kafka: &KafkaConfig,
    projection: Projection,
    event_id: Option<&str>,
) -> Result<ReplayReport, KafkaError> {
    let letters = read_dead_letters(kafka, Duration::from_secs(30)).await?;
    let mut report = ReplayReport::default();
    let opts = ConsumerOptions {
        max_retries: 0,
        ..ConsumerOptions::default()
    };
    for l in letters
        .iter()
        .filter(|l| l.headers.get("dlq.consumer").map(String::as_str) == Some(projection.name()))
    {
        if event_id.is_some_and(|id| l.headers.get("dlq.event-id").map(String::as_str) != Some(id))
        {
            continue;
        }
        let Ok(e) = serde_json::from_value::<Envelope>(l.payload.clone()) else {
            report
                .still_failing
                .push(format!("offset {}: not an event envelope", l.offset));
            continue;
        };
        let topic = l
            .headers
            .get("dlq.original-topic")
            .cloned()
            .unwrap_or_default();
        let partition = l
            .headers
            .get("dlq.original-partition")
            .and_then(|p| p.parse().ok())
            .unwrap_or(-1);
        let offset = l
            .headers
            .get("dlq.original-offset")
            .and_then(|p| p.parse().ok())
            .unwrap_or(-1);
        match apply_with_retries(pool, projection, &topic, partition, offset, &e, &opts).await {
            Ok(Outcome::Applied) => report.applied += 1,
            Ok(_) => report.already_applied += 1,
            Err((err, _)) => report
                .still_failing
                .push(format!("{}: {} ({})", e.event_id, err.code, err.message)),
        }
    }
    Ok(report)
}
