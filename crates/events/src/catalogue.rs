//! The topic catalogue (`topics/catalogue.toml`), checked in: every topic with its partitions,
//! replication, retention, cleanup policy, owner, purpose, schema, partition key, consumer groups
//! and alert thresholds, and the event types routed to it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The catalogue shipped with this build.
pub const SHIPPED: &str = include_str!("../../../topics/catalogue.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub consumer_lag_max: u64,
    pub dead_letters_max: u64,
    pub oldest_pending_seconds_max: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub retention_ms: i64,
    pub cleanup_policy: String,
    pub owner: String,
    pub purpose: String,
    /// Event type prefixes routed here, e.g. `quote.`.
    pub event_types: Vec<String>,
    pub schema: String,
    pub partition_key: String,
    pub consumer_groups: Vec<String>,
    pub alert: Alert,
}

impl Topic {
    /// The topic-level configs the catalogue fixes, as Kafka names them.
    pub fn configs(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("retention.ms", self.retention_ms.to_string()),
            ("cleanup.policy", self.cleanup_policy.clone()),
        ])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    #[serde(rename = "topic")]
    pub topics: Vec<Topic>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the topic catalogue is invalid: {0}")]
    Invalid(String),
}

impl Catalogue {
    pub fn parse(text: &str) -> Result<Catalogue, CatalogueError> {
        let c: Catalogue =
            toml::from_str(text).map_err(|e| CatalogueError::Invalid(e.to_string()))?;
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for t in &c.topics {
            if !names.insert(&t.name) {
                problems.push(format!("{} is listed twice", t.name));
            }
            if t.partitions < 1 || t.replication_factor < 1 {
                problems.push(format!(
                    "{}: partitions and replication_factor are at least 1",
                    t.name
                ));
            }
            if !matches!(
                t.cleanup_policy.as_str(),
                "delete" | "compact" | "compact,delete"
            ) {
                problems.push(format!(
                    "{}: cleanup_policy \"{}\" is not delete, compact or compact,delete",
                    t.name, t.cleanup_policy
                ));
            }
        }
        for (i, a) in c.topics.iter().enumerate() {
            for b in &c.topics[i + 1..] {
                for p in &a.event_types {
                    if b.event_types
                        .iter()
                        .any(|q| p.starts_with(q.as_str()) || q.starts_with(p.as_str()))
                    {
                        problems.push(format!(
                            "event types \"{p}\" are routed to both {} and {}",
                            a.name, b.name
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(CatalogueError::Invalid(problems.join("; ")))
        }
    }

    pub fn shipped() -> Result<Catalogue, CatalogueError> {
        Catalogue::parse(SHIPPED)
    }

    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CatalogueError::Read(path.display().to_string(), e))?;
        Catalogue::parse(&text)
    }

    /// The topic an event type is published to.
    pub fn topic_for(&self, event_type: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| {
            t.event_types
                .iter()
                .any(|p| event_type.starts_with(p.as_str()))
        })
    }

    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_routes_every_event_type_with_a_schema() {
        let c = Catalogue::shipped().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some((event_type, _)) =
                name.strip_suffix(".json").and_then(|s| s.rsplit_once(".v"))
            else {
                continue;
            };
            assert!(
                c.topic_for(event_type).is_some(),
                "{event_type} has a schema and no topic"
            );
            seen += 1;
        }
        assert!(seen > 20);
        assert_eq!(
            c.topic_for("quote.created").map(|t| t.name.as_str()),
            Some("cpq.quote.events.v1")
        );
        assert_eq!(
            c.topic_for("order.created").map(|t| t.name.as_str()),
            Some("cpq.order.events.v1")
        );
        assert!(c.topic_for("unknown.thing").is_none());
    }

    #[test]
    fn a_catalogue_with_overlapping_routes_or_bad_values_is_refused_naming_each_problem() {
        let bad = r#"
            [[topic]]
            name = "a"
            partitions = 0
            replication_factor = 1
            retention_ms = 1
            cleanup_policy = "forever"
            owner = "x"
            purpose = "x"
            event_types = ["quote."]
            schema = "x"
            partition_key = "x"
            consumer_groups = []
            alert = { consumer_lag_max = 1, dead_letters_max = 0, oldest_pending_seconds_max = 1 }
            [[topic]]
            name = "b"
            partitions = 1
            replication_factor = 1
            retention_ms = 1
            cleanup_policy = "delete"
            owner = "x"
            purpose = "x"
            event_types = ["quote.approval"]
            schema = "x"
            partition_key = "x"
            consumer_groups = []
            alert = { consumer_lag_max = 1, dead_letters_max = 0, oldest_pending_seconds_max = 1 }
        "#;
        let e = Catalogue::parse(bad).unwrap_err().to_string();
        assert!(e.contains("a: partitions"), "{e}");
        assert!(e.contains("\"forever\""), "{e}");
        assert!(e.contains("routed to both a and b"), "{e}");
    }
}
