#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cpq-admin replay` against real PostgreSQL and the real broker: a projection rebuilt from its
//! topics matches the live one; a damaged live projection is reported, left alone without
//! `--swap`, and repaired with it; a dry run changes nothing.

use std::sync::Arc;
use std::time::Duration;

use cpq_events::catalogue::Catalogue;
use cpq_events::consumer::{ConsumerOptions, Consumers};
use cpq_events::projections::Projection;
use cpq_events::relay::{Relay, RelayOptions};
use cpq_events::topics::Cluster;
use cpq_testkit::TestDb;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

fn replay(db: &TestDb, kafka: &cpq_config::KafkaConfig, args: &[&str]) -> (bool, Value, String) {
    let config = db.config();
    let out = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-admin"))
        .env("CPQ_ENV", "local")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_DATABASE__HOST", &config.database.host)
        .env("CPQ_KAFKA__NAMESPACE", &kafka.namespace)
        .arg("replay")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), report, stderr)
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn status_of(pool: &PgPool, quote: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM quote_search WHERE quote_id = $1")
        .bind(quote)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_compares_and_repairs_the_quote_search_projection_only_on_swap() {
    let db = TestDb::fresh().await;
    let kafka = cpq_testkit::kafka();
    let catalogue = Arc::new(Catalogue::shipped().unwrap());
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    let app = db.app_pool().await;
    let owner = db.owner_pool().await;

    // Three quotes; the third converted to an order (a second topic).
    let quotes: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for q in &quotes {
        cpq_testkit::emit(
            &app,
            "quote",
            *q,
            &[
                (
                    "quote.created",
                    json!({ "quote_id": q, "customer_account_id": Uuid::now_v7() }),
                ),
                (
                    "quote.priced",
                    json!({ "quote_id": q, "snapshot_hash": format!("h-{q}") }),
                ),
            ],
        )
        .await;
    }
    let order = Uuid::now_v7();
    cpq_testkit::emit(
        &app,
        "quote",
        quotes[2],
        &[(
            "quote.converted",
            json!({ "quote_id": quotes[2], "order_id": order }),
        )],
    )
    .await;
    cpq_testkit::emit(
        &app,
        "order",
        order,
        &[(
            "order.created",
            json!({ "order_id": order, "quote_id": quotes[2] }),
        )],
    )
    .await;

    let relay = Relay::new(
        app.clone(),
        kafka.clone(),
        catalogue.clone(),
        RelayOptions::new("relay-test"),
    )
    .unwrap();
    relay.publish_pending().await.unwrap();

    // The live projection, by the real consumers.
    let consumers = Consumers::start(
        &app,
        &kafka,
        &catalogue,
        &Projection::ALL,
        &ConsumerOptions::default(),
    )
    .unwrap();
    for _ in 0..300 {
        if scalar(&owner, "SELECT count(*) FROM consumer_inbox").await == 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumers.stop().await;
    assert_eq!(
        status_of(&owner, quotes[2]).await.as_deref(),
        Some("converted")
    );

    // A rebuild of an intact projection matches it.
    let (ok, report, stderr) = replay(
        &db,
        &kafka,
        &["--consumer", "quote-search-projection", "--dry-run"],
    );
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["read"]["cpq.quote.events.v1"], 7);
    assert_eq!(report["read"]["cpq.order.events.v1"], 1);
    assert_eq!(report["applied"], 8);
    assert_eq!(report["live"], report["rebuild"]);
    assert_eq!(report["live"]["rows"], 3);
    assert_eq!(
        scalar(&owner, "SELECT count(*) FROM quote_search_rebuild").await,
        0,
        "a dry run writes nothing"
    );

    // Damage the live projection: one row wrong, one missing.
    sqlx::query("UPDATE quote_search SET status = 'bogus' WHERE quote_id = $1")
        .bind(quotes[0])
        .execute(&owner)
        .await
        .unwrap();
    sqlx::query("DELETE FROM quote_search WHERE quote_id = $1")
        .bind(quotes[1])
        .execute(&owner)
        .await
        .unwrap();

    // Without --swap: reported, rebuilt, the live table left alone, a non-zero exit.
    let (ok, report, stderr) = replay(
        &db,
        &kafka,
        &["--consumer", "quote-search-projection", "--rate", "100"],
    );
    assert!(!ok);
    assert!(stderr.contains("--swap"), "{stderr}");
    assert_eq!(report["differing_count"], 1);
    assert_eq!(report["differing"], json!([quotes[0].to_string()]));
    assert_eq!(report["only_rebuild"], 1);
    assert_eq!(report["only_live"], 0);
    assert_ne!(report["live"]["hash"], report["rebuild"]["hash"]);
    assert!(report["merged"].is_null());
    assert!(
        report["seconds"].as_f64().unwrap() >= 7.0 / 100.0,
        "bounded rate: {report}"
    );
    assert_eq!(status_of(&owner, quotes[0]).await.as_deref(), Some("bogus"));
    assert_eq!(
        scalar(&owner, "SELECT count(*) FROM quote_search_rebuild").await,
        3
    );

    // A dry run with --swap still changes nothing: not the live table, not the last rebuild.
    sqlx::query("UPDATE quote_search_rebuild SET events_applied = 99 WHERE quote_id = $1")
        .bind(quotes[2])
        .execute(&owner)
        .await
        .unwrap();
    let (ok, report, _) = replay(
        &db,
        &kafka,
        &[
            "--consumer",
            "quote-search-projection",
            "--dry-run",
            "--swap",
        ],
    );
    assert!(!ok);
    assert!(report["merged"].is_null());
    assert_eq!(status_of(&owner, quotes[0]).await.as_deref(), Some("bogus"));
    assert_eq!(
        scalar(
            &owner,
            &format!(
                "SELECT events_applied::bigint FROM quote_search_rebuild WHERE quote_id = '{}'",
                quotes[2]
            )
        )
        .await,
        99
    );

    // --swap repairs it; a rebuild afterwards matches.
    let (ok, report, stderr) = replay(
        &db,
        &kafka,
        &["--consumer", "quote-search-projection", "--swap"],
    );
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["merged"], 2);
    assert_eq!(
        status_of(&owner, quotes[0]).await.as_deref(),
        Some("priced")
    );
    assert_eq!(
        status_of(&owner, quotes[1]).await.as_deref(),
        Some("priced")
    );
    let (ok, report, stderr) = replay(
        &db,
        &kafka,
        &["--consumer", "quote-search-projection", "--dry-run"],
    );
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["live"], report["rebuild"]);

    // The audit export replays too (every event of both topics).
    let (ok, report, stderr) = replay(&db, &kafka, &["--consumer", "audit-export", "--dry-run"]);
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["live"]["rows"], 8);

    // An unknown consumer is refused before anything is read.
    let out = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-admin"))
        .env("CPQ_ENV", "local")
        .args(["replay", "--consumer", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown consumer \"nope\""));
    app.close().await;
    owner.close().await;
}
