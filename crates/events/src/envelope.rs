//! What travels on a topic: the record key is the aggregate id; headers carry the routing facts
//! (tenant, event type, schema version, event id, correlation and causation ids); the value is the
//! event as a JSON envelope, so that a record is self-describing without its headers too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Envelope {
    pub event_id: Uuid,
    pub outbox_position: i64,
    pub tenant_id: String,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub payload: Value,
}

impl Envelope {
    /// `(name, value)` of the headers every record carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("event-id", self.event_id.to_string()),
            ("tenant", self.tenant_id.clone()),
            ("event-type", self.event_type.clone()),
            ("schema-version", self.schema_version.to_string()),
            ("aggregate-type", self.aggregate_type.clone()),
            ("correlation-id", self.correlation_id.clone()),
            ("occurred-at", self.occurred_at.to_rfc3339()),
        ];
        if let Some(c) = &self.causation_id {
            h.push(("causation-id", c.clone()));
        }
        h
    }
}
