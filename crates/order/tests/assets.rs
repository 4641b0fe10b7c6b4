#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The installed base against a freshly migrated database, as the application role (row-level
//! security applies): completing an order makes one asset per item that is not cancelled, and a
//! redelivered completion (again, or concurrently) returns the same ids and creates nothing
//! twice; another tenant's order makes nothing; the customer's list pages newest first.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_order::assets::{
    asset_insert_for_order, asset_list_for_customer, AssetFilter, AssetPage, AssetStatus,
};
use cpq_testkit::TestDb;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 10, minute, 0).unwrap()
}

/// Seeds, as the schema owner, a customer of `tenant` with a converted order of `lines`
/// (offering code, item status): (customer, order).
async fn seed_order(owner: &PgPool, tenant: &str, lines: &[(&str, &str)]) -> (Uuid, Uuid) {
    let (customer, catalog, quote, order) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let statements = [
        "INSERT INTO customer_account (customer_account_id, tenant_id, name, segment, market, currency, status, version, \
         created_at, created_by, updated_at, updated_by) \
         VALUES ($1, $5, 'Initech', 'enterprise', 'DE', 'EUR', 'active', 1, now(), 'seed', now(), 'seed')",
        "INSERT INTO catalog_version (catalog_version_id, tenant_id, label, status, document, version, created_at, created_by, \
         updated_at, updated_by) VALUES ($2, $5, 'v-' || $2::text, 'draft', '{}', 1, now(), 'seed', now(), 'seed')",
        "INSERT INTO quote (quote_id, tenant_id, customer_account_id, catalog_version_id, market, channel, segment, currency, \
         valid_until, owner, status, revision_no, price_stale, version, created_at, updated_at, updated_by, order_id) \
         VALUES ($3, $5, $1, $2, 'DE', 'direct', 'enterprise', 'EUR', '2027-01-31', 'rep', 'converted', 1, false, 1, now(), now(), 'seed', $4)",
        "INSERT INTO sales_order (order_id, tenant_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, \
         totals, status, version, created_at, created_by, updated_at) \
         VALUES ($4, $5, $3, 1, $1, 'EUR', repeat('ab', 32), '{}', 'in-fulfillment', 1, now(), 'rep', now())",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(customer)
            .bind(catalog)
            .bind(quote)
            .bind(order)
            .bind(tenant)
            .execute(owner)
            .await
            .unwrap();
    }
    for (i, (offering, status)) in lines.iter().enumerate() {
        let configuration = json!({ "offering": offering, "characteristics": { "line": i + 1 } });
        sqlx::query(
            "INSERT INTO order_item (order_id, line_no, tenant_id, offering_code, configuration, price, status) \
             VALUES ($1, $2, $3, $4, $5, '{}', $6)",
        )
        .bind(order)
        .bind(i as i32 + 1)
        .bind(tenant)
        .bind(*offering)
        .bind(configuration)
        .bind(*status)
        .execute(owner)
        .await
        .unwrap();
    }
    (customer, order)
}

/// Runs `asset_insert_for_order` in its own transaction of `tenant` and commits it.
async fn complete(app: &PgPool, tenant: &TenantId, order: Uuid, when: DateTime<Utc>) -> Vec<Uuid> {
    let mut tx = tenant::begin(app, tenant).await.unwrap();
    let ids = asset_insert_for_order(&mut tx, tenant, order, when)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    ids
}

async fn count(owner: &PgPool, sql: &str, order: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(order)
        .fetch_one(owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_completed_order_makes_one_asset_per_item_once() {
    let db = TestDb::fresh().await;
    let (owner, app) = (db.owner_pool().await, db.app_pool().await);
    let acme = TenantId::parse("acme").unwrap();
    let lines = [
        ("BUSINESS-INTERNET", "completed"),
        ("SDWAN-BUNDLE", "completed"),
        ("MOBILE-FLEET", "cancelled"),
        ("CLOUD-BACKUP", "in-fulfillment"),
    ];
    let (customer, order) = seed_order(&owner, "acme", &lines).await;

    let first = complete(&app, &acme, order, at(0)).await;
    assert_eq!(first.len(), 3, "every item but the cancelled one");
    assert_eq!(first.iter().collect::<BTreeSet<_>>().len(), 3);
    assert!(
        first.iter().all(|id| id.get_version_num() == 7),
        "{first:?}"
    );

    // Redelivered: the same ids in the same (line) order, nothing new, created_at kept.
    let again = complete(&app, &acme, order, at(5)).await;
    assert_eq!(again, first);
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM asset WHERE order_id = $1",
            order
        )
        .await,
        3
    );

    let mut tx = tenant::begin(&app, &acme).await.unwrap();
    let page = AssetPage {
        after: None,
        limit: 10,
    };
    let assets = asset_list_for_customer(&mut tx, &acme, customer, &AssetFilter::default(), page)
        .await
        .unwrap();
    drop(tx);
    let mut by_line = assets.clone();
    by_line.sort_by_key(|a| a.line_no);
    assert_eq!(
        by_line.iter().map(|a| a.asset_id).collect::<Vec<_>>(),
        first
    );
    for (asset, line) in by_line.iter().zip([1, 2, 4]) {
        let (offering, _) = lines[line as usize - 1];
        assert_eq!(
            (asset.line_no, asset.offering_code.as_str(), asset.order_id),
            (line, offering, order)
        );
        assert_eq!(asset.customer_account_id, customer);
        assert_eq!(asset.status, AssetStatus::Active);
        assert_eq!(
            asset.configuration,
            json!({ "offering": offering, "characteristics": { "line": line } })
        );
        assert_eq!((asset.created_at, asset.updated_at), (at(0), at(5)));
    }
    // Newest first: equal created_at, so by id, descending.
    let ids: Vec<Uuid> = assets.iter().map(|a| a.asset_id).collect();
    let mut descending = ids.clone();
    descending.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, descending);

    // An older redelivery does not move updated_at back.
    assert_eq!(complete(&app, &acme, order, at(1)).await, first);
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM asset WHERE order_id = $1 AND updated_at = '2026-12-05T10:05:00Z'",
            order
        )
        .await,
        3
    );
}

#[tokio::test]
async fn concurrent_completions_of_one_order_make_its_assets_once() {
    let db = TestDb::fresh().await;
    let (owner, app) = (db.owner_pool().await, db.app_pool().await);
    let acme = TenantId::parse("acme").unwrap();
    let (_, order) = seed_order(
        &owner,
        "acme",
        &[
            ("BUSINESS-INTERNET", "completed"),
            ("CLOUD-BACKUP", "completed"),
        ],
    )
    .await;

    // The first completion holds its new rows uncommitted; the second waits on them and then
    // answers with the first one's ids.
    let mut first = tenant::begin(&app, &acme).await.unwrap();
    let first_ids = asset_insert_for_order(&mut first, &acme, order, at(0))
        .await
        .unwrap();
    let second = {
        let (app, acme) = (app.clone(), acme.clone());
        tokio::spawn(async move { complete(&app, &acme, order, at(1)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second completion waits");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), first_ids);
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM asset WHERE order_id = $1",
            order
        )
        .await,
        2
    );
}

#[tokio::test]
async fn another_tenants_order_or_an_unknown_one_makes_no_assets() {
    let db = TestDb::fresh().await;
    let (owner, app) = (db.owner_pool().await, db.app_pool().await);
    let (customer, order) = seed_order(&owner, "acme", &[("CLOUD-BACKUP", "completed")]).await;
    let globex = TenantId::parse("globex").unwrap();
    assert!(complete(&app, &globex, order, at(0)).await.is_empty());
    assert!(complete(&app, &globex, Uuid::now_v7(), at(0))
        .await
        .is_empty());
    assert_eq!(
        count(
            &owner,
            "SELECT count(*) FROM asset WHERE order_id = $1",
            order
        )
        .await,
        0
    );

    // Made in its own tenant, the asset is invisible to the other one.
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(complete(&app, &acme, order, at(0)).await.len(), 1);
    let page = AssetPage {
        after: None,
        limit: 10,
    };
    let mut tx = tenant::begin(&app, &globex).await.unwrap();
    let seen = asset_list_for_customer(&mut tx, &globex, customer, &AssetFilter::default(), page)
        .await
        .unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}

#[tokio::test]
async fn the_customer_list_pages_newest_first_with_filters() {
    let db = TestDb::fresh().await;
    let (owner, app) = (db.owner_pool().await, db.app_pool().await);
    let acme = TenantId::parse("acme").unwrap();
    let (customer, older) = seed_order(
        &owner,
        "acme",
        &[
            ("BUSINESS-INTERNET", "completed"),
            ("CLOUD-BACKUP", "completed"),
        ],
    )
    .await;
    // A second order of the same customer, completed later.
    let newer = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO quote (quote_id, tenant_id, customer_account_id, catalog_version_id, market, channel, segment, currency, \
         valid_until, owner, status, revision_no, price_stale, version, created_at, updated_at, updated_by, order_id) \
         SELECT $2, tenant_id, customer_account_id, catalog_version_id, market, channel, segment, currency, valid_until, owner, \
                status, revision_no, price_stale, version, created_at, updated_at, updated_by, $3 FROM quote WHERE order_id = $1",
    )
    .bind(older)
    .bind(Uuid::now_v7())
    .bind(newer)
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sales_order (order_id, tenant_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, \
         totals, status, version, created_at, created_by, updated_at) \
         SELECT $2, o.tenant_id, q.quote_id, 1, o.customer_account_id, o.currency, o.snapshot_hash, o.totals, o.status, 1, \
                o.created_at, o.created_by, o.updated_at FROM sales_order o JOIN quote q ON q.order_id = $2 WHERE o.order_id = $1; ",
    )
    .bind(older)
    .bind(newer)
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO order_item (order_id, line_no, tenant_id, offering_code, configuration, price, status) \
         SELECT $2, line_no, tenant_id, offering_code, configuration, price, status FROM order_item WHERE order_id = $1",
    )
    .bind(older)
    .bind(newer)
    .execute(&owner)
    .await
    .unwrap();
    let old_ids = complete(&app, &acme, older, at(0)).await;
    let new_ids = complete(&app, &acme, newer, at(0) + Duration::minutes(30)).await;
    sqlx::query("UPDATE asset SET status = 'terminated' WHERE asset_id = $1")
        .bind(old_ids[0])
        .execute(&owner)
        .await
        .unwrap();

    let list = |filter: AssetFilter, limit: i64| {
        let (app, acme) = (app.clone(), acme.clone());
        async move {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let mut tx = tenant::begin(&app, &acme).await.unwrap();
                let page = AssetPage {
                    after,
                    limit: limit + 1,
                };
                let mut rows = asset_list_for_customer(&mut tx, &acme, customer, &filter, page)
                    .await
                    .unwrap();
                let more = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                after = rows.last().map(|a| (a.created_at, a.asset_id));
                all.extend(rows.into_iter().map(|a| a.asset_id));
                if !more {
                    return all;
                }
            }
        }
    };
    let newest_first = |ids: &[Uuid]| {
        let mut v = ids.to_vec();
        v.sort_by(|a, b| b.cmp(a));
        v
    };
    let mut expected = newest_first(&new_ids);
    expected.extend(newest_first(&old_ids));
    assert_eq!(list(AssetFilter::default(), 1).await, expected);
    assert_eq!(list(AssetFilter::default(), 3).await, expected);
    let backup = AssetFilter {
        offering_code: Some("CLOUD-BACKUP".into()),
        ..Default::default()
    };
    assert_eq!(list(backup, 1).await, vec![new_ids[1], old_ids[1]]);
    let terminated = AssetFilter {
        status: Some(AssetStatus::Terminated),
        ..Default::default()
    };
    assert_eq!(list(terminated, 2).await, vec![old_ids[0]]);
}
