#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cpq-admin topics drift` against Kafka's own view of our topics: what it reports (and what it
//! does not) agrees with `TopicCommand --describe` (partition count, replication factor and the
//! configs the catalogue sets), with the topics as `cpq-admin topics apply` made them and after
//! Kafka's own tools changed them. Runs against the local broker in a namespace of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use cpq_config::KafkaConfig;
use cpq_events::catalogue::Catalogue;
use cpq_events::topics::Cluster;
use cpq_testkit::{kafka_tool, run_tool};

/// A topic as `TopicCommand --describe` prints it.
#[derive(Debug)]
struct Described {
    partitions: i32,
    replication_factor: i32,
    configs: BTreeMap<String, String>,
}

fn cpq_admin(kafka: &KafkaConfig, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-admin"))
        .env("CPQ_ENV", "local")
        .env("CPQ_KAFKA__BOOTSTRAP_SERVERS", &kafka.bootstrap_servers)
        .env("CPQ_KAFKA__NAMESPACE", &kafka.namespace)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tool(kafka: &KafkaConfig, class: &str) -> Command {
    let mut cmd = kafka_tool(class);
    cmd.args(["--bootstrap-server", &kafka.bootstrap_servers]);
    cmd
}

fn topic_command(kafka: &KafkaConfig) -> Command {
    tool(kafka, "org.apache.kafka.tools.TopicCommand")
}

/// `--topic` takes a Java regular expression: every topic in the namespace.
fn namespace_pattern(kafka: &KafkaConfig) -> String {
    format!("{}.*", kafka.namespace.replace('.', "\\."))
}

fn listed(kafka: &KafkaConfig) -> BTreeSet<String> {
    run_tool(topic_command(kafka).arg("--list"))
        .lines()
        .filter(|l| l.starts_with(&kafka.namespace))
        .map(str::to_owned)
        .collect()
}

/// Every topic of the namespace as `TopicCommand --describe` prints it: one header line per topic,
/// `Topic: <name>\tTopicId: ..\tPartitionCount: n\tReplicationFactor: n\tConfigs: k=v,k=v`, then
/// one indented line per partition.
fn describe(kafka: &KafkaConfig) -> BTreeMap<String, Described> {
    let out =
        run_tool(topic_command(kafka).args(["--describe", "--topic", &namespace_pattern(kafka)]));
    let mut topics = BTreeMap::new();
    for line in out.lines().filter(|l| l.starts_with("Topic:")) {
        let fields: BTreeMap<&str, &str> = line
            .split('\t')
            .filter_map(|f| f.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        // Values may hold commas themselves (cleanup.policy=compact,delete): a piece without
        // `=` continues the previous value.
        let mut configs: BTreeMap<String, String> = BTreeMap::new();
        let mut last: Option<String> = None;
        for piece in fields["Configs"].split(',').filter(|p| !p.is_empty()) {
            match piece.split_once('=') {
                Some((k, v)) => {
                    configs.insert(k.to_owned(), v.to_owned());
                    last = Some(k.to_owned());
                }
                None => {
                    let k = last.as_ref().expect("a config before a continuation");
                    let v = configs.get_mut(k).unwrap();
                    v.push(',');
                    v.push_str(piece);
                }
            }
        }
        topics.insert(
            fields["Topic"].to_owned(),
            Described {
                partitions: fields["PartitionCount"].parse().unwrap(),
                replication_factor: fields["ReplicationFactor"].parse().unwrap(),
                configs,
            },
        );
    }
    topics
}

/// What `drift` must print, one line per difference, given what Kafka describes.
fn expected_drift(
    catalogue: &Catalogue,
    kafka: &KafkaConfig,
    described: &BTreeMap<String, Described>,
    brokers: i32,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut managed = BTreeSet::new();
    for t in &catalogue.topics {
        let name = format!("{}{}", kafka.namespace, t.name);
        managed.insert(name.clone());
        let Some(d) = described.get(&name) else {
            out.insert(format!("{name}: missing"));
            continue;
        };
        if d.partitions != t.partitions {
            out.insert(format!(
                "{name}: partitions {}, catalogue says {}",
                d.partitions, t.partitions
            ));
        }
        let rf = t.replication_factor.min(brokers);
        if d.replication_factor != rf {
            out.insert(format!(
                "{name}: replication factor {}, catalogue says {rf}",
                d.replication_factor
            ));
        }
        for (k, want) in t.configs() {
            let have = d.configs.get(k).unwrap_or_else(|| {
                panic!("TopicCommand --describe does not show {k} for {name}: {d:?}")
            });
            if *have != want {
                out.insert(format!("{name}: {k} = {have}, catalogue says {want}"));
            }
        }
    }
    for name in described.keys().filter(|n| !managed.contains(*n)) {
        out.insert(format!("{name}: on the cluster, not in the catalogue"));
    }
    out
}

fn drift_lines(kafka: &KafkaConfig) -> (Option<i32>, BTreeSet<String>, String) {
    let (code, stdout, stderr) = cpq_admin(kafka, &["topics", "drift"]);
    let lines = stdout
        .lines()
        .filter(|l| *l != "no drift")
        .map(str::to_owned)
        .collect();
    (code, lines, format!("{stdout}{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_agrees_with_kafkas_own_topic_command() {
    let kafka = cpq_testkit::kafka();
    let catalogue = Catalogue::shipped().unwrap();
    let brokers = Cluster::connect(&kafka).unwrap().broker_count().unwrap();
    let name = |topic: &str| format!("{}{topic}", kafka.namespace);

    // Nothing yet: every catalogue topic is missing, as Kafka (nothing listed) agrees.
    let (code, lines, output) = drift_lines(&kafka);
    assert_eq!(code, Some(1), "{output}");
    assert!(listed(&kafka).is_empty());
    assert_eq!(
        lines,
        expected_drift(&catalogue, &kafka, &BTreeMap::new(), brokers)
    );
    assert_eq!(lines.len(), catalogue.topics.len(), "{output}");

    // As apply makes them: no drift, and Kafka describes exactly the catalogue.
    let (code, _, output) = cpq_admin(&kafka, &["topics", "apply"]);
    assert_eq!(code, Some(0), "{output}");
    let (code, lines, output) = drift_lines(&kafka);
    assert_eq!((code, output.trim()), (Some(0), "no drift"));
    let described = describe(&kafka);
    assert_eq!(described.len(), catalogue.topics.len(), "{described:?}");
    for t in &catalogue.topics {
        let d = &described[&name(&t.name)];
        assert_eq!(d.partitions, t.partitions, "{}", t.name);
        assert_eq!(d.replication_factor, t.replication_factor.min(brokers));
        for (k, v) in t.configs() {
            assert_eq!(d.configs.get(k), Some(&v), "{} {k}", t.name);
        }
    }
    assert_eq!(
        lines,
        expected_drift(&catalogue, &kafka, &described, brokers)
    );

    // Changed behind the catalogue's back with Kafka's own tools: one more partition, two
    // configs, a deleted topic and one the catalogue does not know.
    let customer = name("cpq.customer.events.v1");
    run_tool(topic_command(&kafka).args(["--alter", "--topic", &customer, "--partitions", "4"]));
    for (topic, config) in [
        (name("cpq.catalog.events.v1"), "retention.ms=86400000"),
        (name("cpq.order.events.v1"), "cleanup.policy=compact"),
    ] {
        run_tool(tool(&kafka, "org.apache.kafka.tools.ConfigCommand").args([
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            &topic,
            "--add-config",
            config,
        ]));
    }
    let dead_letters = name("cpq.dead-letter.v1");
    run_tool(topic_command(&kafka).args(["--delete", "--topic", &dead_letters]));
    let unmanaged = name("cpq.scratch.v1");
    run_tool(topic_command(&kafka).args([
        "--create",
        "--topic",
        &unmanaged,
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    ]));
    let deleted = Instant::now();
    while listed(&kafka).contains(&dead_letters) {
        assert!(
            deleted.elapsed() < Duration::from_secs(30),
            "{dead_letters} is still listed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let described = describe(&kafka);
    let expected = expected_drift(&catalogue, &kafka, &described, brokers);
    // Kafka itself shows each change, so the comparison below is not vacuous.
    assert_eq!(
        expected,
        BTreeSet::from([
            format!("{customer}: partitions 4, catalogue says 3"),
            format!(
                "{}: retention.ms = 86400000, catalogue says 2592000000",
                name("cpq.catalog.events.v1")
            ),
            format!(
                "{}: cleanup.policy = compact, catalogue says delete",
                name("cpq.order.events.v1")
            ),
            format!("{dead_letters}: missing"),
            format!("{unmanaged}: on the cluster, not in the catalogue"),
        ]),
        "{described:?}"
    );
    let (code, lines, output) = drift_lines(&kafka);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("5 difference(s)"), "{output}");
    assert_eq!(lines, expected, "{output}");

    // Leave the shared broker as it was.
    run_tool(topic_command(&kafka).args(["--delete", "--topic", &namespace_pattern(&kafka)]));
}
