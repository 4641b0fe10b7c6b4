#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `cpq-relay` and `cpq-consumer` binaries report on their admin ports: the relay its
//! pending count, the age of the oldest pending event, publish latency and published count; the
//! consumer the lag of its group per topic and partition, which grows while the consumer cannot
//! apply (its table is locked) and falls to zero once the events are applied and committed.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use cpq_events::catalogue::Catalogue;
use cpq_events::projections::Projection;
use cpq_events::topics::Cluster;
use cpq_testkit::{KillOnDrop, TestDb};
use serde_json::json;
use uuid::Uuid;

const EVENTS: usize = 20;

fn free_admin_bind() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// The samples of one metric family in a Prometheus text page, by their label sets.
fn samples(page: &str, family: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let value: f64 = value.parse().ok()?;
            (name == family).then(|| (labels.to_owned(), value))
        })
        .collect()
}

async fn scrape(client: &reqwest::Client, bind: &str) -> Option<String> {
    let resp = client
        .get(format!("http://{bind}/metrics"))
        .send()
        .await
        .ok()?;
    resp.text().await.ok()
}

/// Scrapes `bind` until `done` holds for a page (or 60 s pass); returns the last page.
async fn scrape_until(client: &reqwest::Client, bind: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(page) = scrape(client, bind).await {
            if done(&page) {
                return page;
            }
            last = page;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

/// `consumer_lag` of the audit export, per `topic/partition`.
fn export_lag(page: &str) -> BTreeMap<String, f64> {
    samples(page, "consumer_lag")
        .into_iter()
        .filter(|(labels, _)| labels.contains("consumer=\"cpq.audit-export\""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_and_the_consumer_report_backlog_latency_and_lag_per_partition_on_their_admin_ports(
) {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    let catalogue = Catalogue::shipped().unwrap();
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    let partitions: i32 = catalogue
        .topics
        .iter()
        .filter(|t| Projection::AuditExport.topics(&catalogue).contains(&t.name))
        .map(|t| t.partitions)
        .sum();
    let app = db.app_pool().await;
    let owner = db.owner_pool().await;
    for _ in 0..EVENTS / 2 {
        let quote = Uuid::now_v7();
        cpq_testkit::emit(
            &app,
            "quote",
            quote,
            &[
                ("quote.created", json!({ "quote_id": quote, "customer_account_id": Uuid::now_v7(), "catalog_version_id": Uuid::now_v7() })),
                ("quote.item-added", json!({ "quote_id": quote, "line_no": 1, "offering": "X" })),
            ],
        )
        .await;
    }

    // The export cannot apply anything while its table is locked.
    let mut lock = owner.begin().await.unwrap();
    sqlx::query("LOCK TABLE audit_export IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();

    let logs = std::env::temp_dir().join(format!("cpq-metrics-{}", db.name));
    std::fs::create_dir_all(&logs).unwrap();
    let (relay_bind, consumer_bind) = (free_admin_bind(), free_admin_bind());
    let deployable = |bin: &str, name: &str, bind: &str| {
        cpq_testkit::event_deployable_at(bin, &db, &kafka, &logs.join(format!("{name}.log")), bind)
    };
    let _relay = KillOnDrop(
        deployable(env!("CARGO_BIN_EXE_cpq-relay"), "cpq-relay", &relay_bind)
            .spawn()
            .unwrap(),
    );
    let _consumer = KillOnDrop(
        deployable(
            env!("CARGO_BIN_EXE_cpq-consumer"),
            "cpq-consumer",
            &consumer_bind,
        )
        .args(["--consumer", "audit-export", "--max-retries", "1000"])
        .spawn()
        .unwrap(),
    );
    let client = reqwest::Client::new();

    // The relay publishes everything and says so.
    let page = scrape_until(&client, &relay_bind, |p| {
        samples(p, "relay_published_total").values().sum::<f64>() >= EVENTS as f64
            && samples(p, "outbox_pending_events")
                .values()
                .all(|v| *v == 0.0)
    })
    .await;
    assert_eq!(
        samples(&page, "relay_published_total")
            .values()
            .sum::<f64>(),
        EVENTS as f64,
        "{page}"
    );
    assert_eq!(
        samples(&page, "outbox_pending_events").get(""),
        Some(&0.0),
        "{page}"
    );
    assert!(
        samples(&page, "outbox_oldest_pending_age_seconds").contains_key(""),
        "{page}"
    );
    assert!(
        samples(&page, "relay_publish_batch_duration_seconds_count")
            .values()
            .sum::<f64>()
            >= 1.0,
        "{page}"
    );

    // Blocked, the export's group has every event to do: lag on every partition of its topics.
    let page = scrape_until(&client, &consumer_bind, |p| {
        let lag = export_lag(p);
        lag.len() == partitions as usize && lag.values().sum::<f64>() == EVENTS as f64
    })
    .await;
    let lag = export_lag(&page);
    assert_eq!(lag.len(), partitions as usize, "{page}");
    assert_eq!(lag.values().sum::<f64>(), EVENTS as f64, "{page}");
    let exported: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_export")
        .fetch_one(&mut *lock)
        .await
        .unwrap();
    assert_eq!(exported, 0);

    // Unblocked, it applies and commits everything and its lag falls to zero everywhere.
    lock.rollback().await.unwrap();
    let page = scrape_until(&client, &consumer_bind, |p| {
        let lag = export_lag(p);
        lag.len() == partitions as usize && lag.values().all(|v| *v == 0.0)
    })
    .await;
    let lag = export_lag(&page);
    assert!(
        lag.len() == partitions as usize && lag.values().all(|v| *v == 0.0),
        "{page}"
    );
    let exported: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_export")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(exported, EVENTS as i64);
    app.close().await;
    owner.close().await;
}
