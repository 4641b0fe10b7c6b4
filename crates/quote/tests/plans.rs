#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Plan baseline: the quote worklist reads its composite index at 100,000 quotes, with every
//! combination of filters and a cursor; any sequential scan fails the test.

use chrono::Utc;
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_quote::model::lifecycle::Status;
use cpq_quote::store::{quote_worklist, quote_worklist_plan, Worklist};
use cpq_testkit::TestDb;
use uuid::Uuid;

#[tokio::test]
async fn the_worklist_uses_its_index_at_one_hundred_thousand_quotes() {
    let db = TestDb::fresh().await;
    let owner = db.owner_pool().await;
    let (account, version) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query(
        "INSERT INTO customer_account (customer_account_id, tenant_id, name, segment, market, currency, status, version, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, 'acme', 'A', 'enterprise', 'DE', 'EUR', 'active', 1, now(), 's', now(), 's')",
    )
    .bind(account)
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO catalog_version (catalog_version_id, tenant_id, label, status, document, content_hash, compiled, version, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, 'acme', 'v', 'published', '{}', 'x', '{}', 1, now(), 's', now(), 's')",
    )
    .bind(version)
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO quote (quote_id, tenant_id, customer_account_id, catalog_version_id, market, channel, segment, currency, valid_until, owner, \
         status, revision_no, price_stale, version, created_at, updated_at, updated_by) \
         SELECT gen_random_uuid(), CASE WHEN i % 4 = 0 THEN 'globex' ELSE 'acme' END, $1, $2, 'DE', 'direct', 'enterprise', 'EUR', current_date + 30, \
                'rep-' || (i % 50), (ARRAY['draft','priced','approval-pending','approved','accepted','converted'])[1 + i % 6], 1, false, 1, \
                now() - (i || ' minutes')::interval, now() - (i || ' minutes')::interval, 's' \
           FROM generate_series(1, 100000) AS i",
    )
    .bind(account)
    .bind(version)
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query("ANALYZE quote").execute(&owner).await.unwrap();

    let app = db.app_pool().await;
    let t = TenantId::parse("acme").unwrap();
    let lists = [
        Worklist {
            status: Some(Status::ApprovalPending),
            ..Default::default()
        },
        Worklist {
            status: Some(Status::Draft),
            owner: Some("rep-7".into()),
            ..Default::default()
        },
        Worklist {
            status: Some(Status::Accepted),
            updated_before: Some(Utc::now() - chrono::Duration::days(10)),
            ..Default::default()
        },
        Worklist {
            status: Some(Status::Priced),
            customer_account_id: Some(account),
            ..Default::default()
        },
        Worklist {
            owner: Some("rep-3".into()),
            ..Default::default()
        },
        Worklist {
            customer_account_id: Some(account),
            ..Default::default()
        },
        Worklist::default(),
    ];
    for w in &lists {
        let mut tx = tenant::begin(&app, &t).await.unwrap();
        let first = quote_worklist(&mut tx, &t, w, None, 51).await.unwrap();
        let after = first.last().map(|q| (q.updated_at, q.quote_id));
        for cursor in [None, after] {
            let plan = quote_worklist_plan(&mut tx, &t, w, cursor, 51)
                .await
                .unwrap();
            assert!(
                !plan.contains("Seq Scan"),
                "sequential scan for {w:?} (cursor {cursor:?}):\n{plan}"
            );
        }
    }
    app.close().await;
    owner.close().await;
}
