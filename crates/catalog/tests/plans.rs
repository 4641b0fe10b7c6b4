#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Plan baseline: offering search stays on its indexes with 10,000 offerings in the version in
//! force while older versions (four more of 10,000 each) accumulate beside it: its cost must not
//! grow with history.

use cpq_catalog::store::{catalog_offering_search, catalog_offering_search_plan, OfferingSearch};
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_testkit::TestDb;
use uuid::Uuid;

#[tokio::test]
async fn offering_search_uses_indexes_at_ten_thousand_offerings() {
    let db = TestDb::fresh().await;
    let owner = db.owner_pool().await;
    let current = Uuid::now_v7();
    let mut versions: Vec<(Uuid, String)> = (0..4)
        .map(|i| (Uuid::now_v7(), format!("old-{i}")))
        .collect();
    versions.push((current, "current".into()));
    for (id, label) in &versions {
        sqlx::query(
            "INSERT INTO catalog_version (catalog_version_id, tenant_id, label, status, document, content_hash, compiled, \
             version, created_at, created_by, updated_at, updated_by) \
             VALUES ($1, 'acme', $2, 'published', '{}', 'x', '{}', 1, now(), 's', now(), 's')",
        )
        .bind(id)
        .bind(label)
        .execute(&owner)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO catalog_offering (tenant_id, catalog_version_id, code, name, description, kind, markets, channels, segments, sellable) \
             SELECT 'acme', $1, 'OFF-' || lpad(i::text, 5, '0'), \
                    (ARRAY['fiber','mobile','cloud','backup','router','voice'])[1 + i % 6] || ' plan ' || i, 'synthetic offering', \
                    'configurable', CASE WHEN i % 3 = 0 THEN '{}'::text[] ELSE ARRAY['DE','FR'] END, '{}', ARRAY['enterprise'], i % 10 <> 0 \
               FROM generate_series(1, 10000) AS i",
        )
        .bind(id)
        .execute(&owner)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE catalog_offering")
        .execute(&owner)
        .await
        .unwrap();

    let app = db.app_pool().await;
    let t = TenantId::parse("acme").unwrap();
    let searches = [
        OfferingSearch {
            text: Some("fiber plan 12".into()),
            ..Default::default()
        },
        OfferingSearch {
            market: Some("DE".into()),
            sellable_only: true,
            ..Default::default()
        },
        OfferingSearch {
            text: Some("cloud".into()),
            market: Some("FR".into()),
            segment: Some("enterprise".into()),
            ..Default::default()
        },
        OfferingSearch::default(),
    ];
    for s in &searches {
        let mut tx = tenant::begin(&app, &t).await.unwrap();
        let plan = catalog_offering_search_plan(&mut tx, &t, current, s, None, 51)
            .await
            .unwrap();
        assert!(
            !plan.contains("Seq Scan"),
            "sequential scan for {s:?}:\n{plan}"
        );
        let hits = catalog_offering_search(&mut tx, &t, current, s, None, 51)
            .await
            .unwrap();
        assert!(!hits.is_empty(), "{s:?}");
    }
    app.close().await;
    owner.close().await;
}
