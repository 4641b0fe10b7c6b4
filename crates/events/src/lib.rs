//! The event backbone. Commands write their events to the outbox in their own transaction (see
//! `cpq-audit`); from there:
//!
//! - [`catalogue`]: the topics as code (`topics/catalogue.toml`): which topic each event type goes
//!   to, and what every topic must look like on a cluster; [`topics`] compares and applies it
//!   (`cpq-admin topics apply|verify|drift`).
//! - [`relay`]: `cpq-relay` publishes pending outbox rows with an idempotent producer, keyed by
//!   aggregate id, in outbox order per aggregate, and marks them published as their
//!   acknowledgements arrive, with a bounded number in flight. Several relays share the outbox by
//!   leasing hash slots of the aggregate id; a relay restarted under its identity takes its slots
//!   back at once. Nothing waits on Kafka inside a database transaction.
//! - [`consumer`]: `cpq-consumer` runs one consumer group per [`projections::Projection`], each
//!   event applied with its inbox row in one transaction, offsets stored only after it, one
//!   worker per partition so that a record in retries holds back only its own partition;
//!   [`dead_letter`]s carry what could not be applied, and are replayed after a fix.
//! - [`kafka`]: the librdkafka client settings every Kafka client here is built from;
//!   [`health`]: what a deployable knows of Kafka (its readiness), and librdkafka's own errors
//!   held back while the cluster is unreachable instead of repeated several times a second.

pub mod catalogue;
pub mod consumer;
pub mod dead_letter;
pub mod envelope;
pub mod health;
pub mod kafka;
pub mod projections;
pub mod relay;
pub mod replay;
pub mod service;
pub mod topics;
