//! The topic catalogue against a live cluster: what differs ([`drift`]), and making the cluster
//! match ([`apply`]: create missing topics, add partitions, set configs; never delete or shrink).
//! Replication is capped at the number of brokers (a one-broker local cluster holds one replica).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use cpq_config::KafkaConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;

use crate::catalogue::{Catalogue, Topic};
use crate::kafka::{client_config, topic_name};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A topic as the cluster has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTopic {
    pub partitions: i32,
    pub replication_factor: i32,
    /// The configs the catalogue manages, when the cluster reports them.
    pub configs: BTreeMap<String, String>,
}

/// One difference between the catalogue and the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    Missing {
        topic: String,
    },
    Partitions {
        topic: String,
        want: i32,
        have: i32,
    },
    Replication {
        topic: String,
        want: i32,
        have: i32,
    },
    Config {
        topic: String,
        key: String,
        want: String,
        have: Option<String>,
    },
    /// In the namespace on the cluster, not in the catalogue.
    Unmanaged {
        topic: String,
    },
}

impl Drift {
    /// Whether `verify` fails on it (an unmanaged topic is reported by `drift` only).
    pub fn breaks_contract(&self) -> bool {
        !matches!(self, Drift::Unmanaged { .. })
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing { topic } => write!(f, "{topic}: missing"),
            Drift::Partitions { topic, want, have } => {
                write!(f, "{topic}: partitions {have}, catalogue says {want}")
            }
            Drift::Replication { topic, want, have } => write!(
                f,
                "{topic}: replication factor {have}, catalogue says {want}"
            ),
            Drift::Config {
                topic,
                key,
                want,
                have,
            } => {
                write!(
                    f,
                    "{topic}: {key} = {}, catalogue says {want}",
                    have.as_deref().unwrap_or("(not reported)")
                )
            }
            Drift::Unmanaged { topic } => {
                write!(f, "{topic}: on the cluster, not in the catalogue")
            }
        }
    }
}

pub struct Cluster {
    admin: AdminClient<DefaultClientContext>,
    kafka: KafkaConfig,
}

impl Cluster {
    pub fn connect(kafka: &KafkaConfig) -> Result<Cluster, KafkaError> {
        Ok(Cluster {
            admin: client_config(kafka, "admin").create()?,
            kafka: kafka.clone(),
        })
    }

    pub fn broker_count(&self) -> Result<i32, KafkaError> {
        Ok(self
            .admin
            .inner()
            .fetch_metadata(None, TIMEOUT)?
            .brokers()
            .len() as i32)
    }

    /// Every topic on the cluster in this configuration's namespace (internal topics aside).
    pub async fn describe(
        &self,
        catalogue: &Catalogue,
    ) -> Result<BTreeMap<String, LiveTopic>, KafkaError> {
        let metadata = self.admin.inner().fetch_metadata(None, TIMEOUT)?;
        let mut live = BTreeMap::new();
        for t in metadata.topics() {
            if t.name().starts_with("__")
                || !t.name().starts_with(&self.kafka.namespace)
                || t.partitions().is_empty()
            {
                continue;
            }
            let replication_factor = t
                .partitions()
                .iter()
                .map(|p| p.replicas().len() as i32)
                .min()
                .unwrap_or(0);
            live.insert(
                t.name().to_owned(),
                LiveTopic {
                    partitions: t.partitions().len() as i32,
                    replication_factor,
                    configs: BTreeMap::new(),
                },
            );
        }
        let managed: Vec<String> = catalogue
            .topics
            .iter()
            .map(|t| topic_name(&self.kafka, &t.name))
            .filter(|n| live.contains_key(n))
            .collect();
        if !managed.is_empty() {
            let specs: Vec<ResourceSpecifier> = managed
                .iter()
                .map(|n| ResourceSpecifier::Topic(n))
                .collect();
            let described = self
                .admin
                .describe_configs(&specs, &AdminOptions::new().request_timeout(Some(TIMEOUT)))
                .await?;
            for (name, result) in managed.iter().zip(described) {
                if let (Ok(resource), Some(t)) = (result, live.get_mut(name)) {
                    for e in resource.entries {
                        if matches!(e.name.as_str(), "retention.ms" | "cleanup.policy") {
                            if let Some(v) = e.value {
                                t.configs.insert(e.name, v);
                            }
                        }
                    }
                }
            }
        }
        Ok(live)
    }

    /// Creates missing topics, adds partitions, sets configs; returns what it did.
    pub async fn apply(&self, catalogue: &Catalogue) -> Result<Vec<String>, KafkaError> {
        let brokers = self.broker_count()?.max(1);
        let live = self.describe(catalogue).await?;
        let opts = AdminOptions::new()
            .request_timeout(Some(TIMEOUT))
            .operation_timeout(Some(TIMEOUT));
        let mut done = Vec::new();
        let names: Vec<String> = catalogue
            .topics
            .iter()
            .map(|t| topic_name(&self.kafka, &t.name))
            .collect();
        let configs: Vec<Vec<(&'static str, String)>> = catalogue
            .topics
            .iter()
            .map(|t| t.configs().into_iter().collect())
            .collect();
        let mut new_topics = Vec::new();
        for ((t, name), cfg) in catalogue.topics.iter().zip(&names).zip(&configs) {
            if live.contains_key(name) {
                continue;
            }
            let mut nt = NewTopic::new(
                name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor.min(brokers)),
            );
            for (k, v) in cfg {
                nt = nt.set(k, v);
            }
            new_topics.push(nt);
        }
        if !new_topics.is_empty() {
            for r in self.admin.create_topics(&new_topics, &opts).await? {
                match r {
                    Ok(name) => done.push(format!("created {name}")),
                    Err((name, code)) => {
                        return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                            tracing::error!(topic = name, "creating a topic failed")
                        })
                    }
                }
            }
        }
        for (t, name) in catalogue.topics.iter().zip(&names) {
            let Some(l) = live.get(name) else { continue };
            if l.partitions < t.partitions {
                for r in self
                    .admin
                    .create_partitions(&[NewPartitions::new(name, t.partitions as usize)], &opts)
                    .await?
                {
                    r.map_err(|(_, code)| KafkaError::AdminOp(code))?;
                }
                done.push(format!(
                    "{name}: partitions {} -> {}",
                    l.partitions, t.partitions
                ));
            }
            let wanted = t.configs();
            if wanted.iter().any(|(k, v)| l.configs.get(*k) != Some(v)) {
                let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
                for (k, v) in &wanted {
                    alter = alter.set(k, v);
                }
                for r in self.admin.alter_configs(&[alter], &opts).await? {
                    r.map_err(|(_, code)| KafkaError::AdminOp(code))?;
                }
                done.push(format!("{name}: configs set"));
            }
        }
        Ok(done)
    }

    /// Every difference between the catalogue and the cluster.
    pub async fn drift(&self, catalogue: &Catalogue) -> Result<Vec<Drift>, KafkaError> {
        let brokers = self.broker_count()?.max(1);
        let live = self.describe(catalogue).await?;
        Ok(compare(catalogue, &live, &self.kafka.namespace, brokers))
    }
}

/// The differences between the catalogue and `live` (pure, so that it is tested without a cluster).
pub fn compare(
    catalogue: &Catalogue,
    live: &BTreeMap<String, LiveTopic>,
    namespace: &str,
    brokers: i32,
) -> Vec<Drift> {
    let mut out = Vec::new();
    let wanted: BTreeMap<String, &Topic> = catalogue
        .topics
        .iter()
        .map(|t| (format!("{namespace}{}", t.name), t))
        .collect();
    for (name, t) in &wanted {
        let Some(l) = live.get(name) else {
            out.push(Drift::Missing {
                topic: name.clone(),
            });
            continue;
        };
        if l.partitions != t.partitions {
            out.push(Drift::Partitions {
                topic: name.clone(),
                want: t.partitions,
                have: l.partitions,
            });
        }
        let rf = t.replication_factor.min(brokers);
        if l.replication_factor != rf {
            out.push(Drift::Replication {
                topic: name.clone(),
                want: rf,
                have: l.replication_factor,
            });
        }
        for (k, v) in t.configs() {
            if l.configs.get(k) != Some(&v) {
                out.push(Drift::Config {
                    topic: name.clone(),
                    key: k.to_owned(),
                    want: v,
                    have: l.configs.get(k).cloned(),
                });
            }
        }
    }
    for name in live.keys().filter(|n| !wanted.contains_key(*n)) {
        out.push(Drift::Unmanaged {
            topic: name.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_names_every_kind_of_difference_and_caps_replication_at_the_brokers() {
        let c = Catalogue::shipped().unwrap();
        let mut live: BTreeMap<String, LiveTopic> = c
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    LiveTopic {
                        partitions: t.partitions,
                        replication_factor: 1,
                        configs: t
                            .configs()
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    },
                )
            })
            .collect();
        assert_eq!(
            compare(&c, &live, "", 1),
            [],
            "a one-broker cluster matching the catalogue"
        );
        live.remove("cpq.order.events.v1");
        live.get_mut("cpq.quote.events.v1").unwrap().partitions = 2;
        live.get_mut("cpq.customer.events.v1")
            .unwrap()
            .configs
            .insert("retention.ms".into(), "1".into());
        live.insert(
            "cpq.scratch".into(),
            LiveTopic {
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
            },
        );
        let d: Vec<String> = compare(&c, &live, "", 3)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            d.contains(&"cpq.order.events.v1: missing".to_owned()),
            "{d:?}"
        );
        assert!(
            d.contains(&"cpq.quote.events.v1: partitions 2, catalogue says 6".to_owned()),
            "{d:?}"
        );
        assert!(
            d.contains(&"cpq.quote.events.v1: replication factor 1, catalogue says 3".to_owned()),
            "{d:?}"
        );
        assert!(
            d.contains(
                &"cpq.customer.events.v1: retention.ms = 1, catalogue says 604800000".to_owned()
            ),
            "{d:?}"
        );
        assert!(
            d.contains(&"cpq.scratch: on the cluster, not in the catalogue".to_owned()),
            "{d:?}"
        );
    }
}
