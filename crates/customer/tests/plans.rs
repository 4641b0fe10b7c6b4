#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Plan baselines: the account list stays on its indexes at volume, for every filter.

use cpq_core::TenantId;
use cpq_customer::store::{customer_account_list_plan, AccountFilter};
use cpq_customer::AccountStatus;
use cpq_db::tenant;
use cpq_testkit::TestDb;

#[tokio::test]
async fn the_account_list_uses_an_index_for_every_filter_at_volume() {
    let db = TestDb::fresh().await;
    let owner = db.owner_pool().await;
    // 60,000 accounts over 30 tenants, a tenth of them closed.
    sqlx::query(
        "INSERT INTO customer_account (customer_account_id, tenant_id, name, external_ref, segment, market, \
         currency, status, version, created_at, created_by, updated_at, updated_by, closed_at) \
         SELECT gen_random_uuid(), 'tenant-' || (i % 30), 'Account ' || i, 'CRM-' || i, 'enterprise', 'DE', 'EUR', \
                CASE WHEN i % 10 = 0 THEN 'closed' ELSE 'active' END, 1, now(), 'seed', now(), 'seed', \
                CASE WHEN i % 10 = 0 THEN now() END \
           FROM generate_series(1, 60000) AS i",
    )
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query("ANALYZE customer_account")
        .execute(&owner)
        .await
        .unwrap();

    let app = db.app_pool().await;
    let t = TenantId::parse("tenant-7").unwrap();
    let filters = [
        AccountFilter::default(),
        AccountFilter {
            status: Some(AccountStatus::Active),
            ..Default::default()
        },
        AccountFilter {
            status: Some(AccountStatus::Closed),
            ..Default::default()
        },
        AccountFilter {
            name_prefix: Some("account 12".into()),
            ..Default::default()
        },
        AccountFilter {
            external_ref: Some("CRM-12345".into()),
            ..Default::default()
        },
    ];
    for filter in &filters {
        let mut tx = tenant::begin(&app, &t).await.unwrap();
        let plan = customer_account_list_plan(&mut tx, &t, filter, None, 51)
            .await
            .unwrap();
        assert!(
            !plan.contains("Seq Scan"),
            "sequential scan for {filter:?}:\n{plan}"
        );
        assert!(plan.contains("Index"), "no index for {filter:?}:\n{plan}");
    }
    app.close().await;
    owner.close().await;
}
