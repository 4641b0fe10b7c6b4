//! `GET /v1/quote-search` pages like every other list: `limit` 1..=200 (else 400), an opaque
//! cursor bound to its filters, newest event first with a stable tie breaker, on indexes.

use crate::support::TestApp;
use cpq_api::routes::search::{quote_search_plan, SearchFilter};
use cpq_core::{Role, TenantId};
use cpq_db::tenant;
use cpq_testkit::TestDb;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

/// `n` projection rows for `tenant`, written as the consumer would; some share an `updated_at`
/// so that only the tie breaker orders them. Returns the quote ids.
async fn seed(app: &TestApp, tenant: &str, n: usize, customer: Uuid) -> Vec<Uuid> {
    let pool = app.db.owner_pool().await;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = Uuid::now_v7();
        let status = if i % 3 == 0 { "priced" } else { "draft" };
        sqlx::query(
            "INSERT INTO quote_search (quote_id, tenant_id, customer_account_id, status, revision_no, \
             last_event_id, last_event_type, events_applied, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, 'quote.created', 1, \
                     timestamptz '2026-12-01 10:00:00+00' + make_interval(secs => $6))",
        )
        .bind(id)
        .bind(tenant)
        .bind(customer)
        .bind(status)
        .bind(Uuid::now_v7())
        .bind((i / 2) as f64)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    pool.close().await;
    ids
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["quote_id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Walks every page of `query` with `limit`, returning the ids in the order served.
async fn walk(app: &TestApp, token: &str, query: &str, limit: u32) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/quote-search?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let a = get(app, token, &path).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let page = ids(&a.body);
        assert!(page.len() <= limit as usize);
        seen.extend(page);
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn quote_search_pages_with_a_cursor_bound_to_its_filters() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", &[Role::OrderOperations]);
    let customer = Uuid::now_v7();
    let mut all = seed(&app, "acme", 23, customer).await;
    seed(&app, "globex", 5, customer).await;
    // Newest event first; equal timestamps by quote id, descending.
    all.reverse();

    let served = walk(&app, &token, "", 4).await;
    assert_eq!(served, all, "every row exactly once, in a stable order");

    let priced: Vec<Uuid> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| (22 - i) % 3 == 0)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(walk(&app, &token, "&status=priced", 3).await, priced);
    assert_eq!(
        walk(&app, &token, &format!("&customer={customer}"), 10).await,
        all
    );

    // A cursor is bound to the filters it was issued for.
    let first = get(&app, &token, "/v1/quote-search?limit=2&status=draft").await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    get(
        &app,
        &token,
        &format!("/v1/quote-search?limit=2&status=priced&cursor={cursor}"),
    )
    .await
    .assert_problem(400, "malformed-request");
    // ... but not to the page size.
    let next = get(
        &app,
        &token,
        &format!("/v1/quote-search?limit=5&status=draft&cursor={cursor}"),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.body);
    get(&app, &token, "/v1/quote-search?cursor=not-a-cursor")
        .await
        .assert_problem(400, "malformed-request");

    // The default page is 50, like every list.
    let default = get(&app, &token, "/v1/quote-search").await;
    assert_eq!(ids(&default.body).len(), 23);
    assert!(default.body.get("next_cursor").is_none_or(Value::is_null));
}

#[tokio::test]
async fn quote_search_refuses_a_limit_or_status_out_of_range_like_the_other_lists() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", &[Role::Sales]);
    for bad in [
        "limit=0",
        "limit=201",
        "limit=2147483648",
        "limit=-1",
        "limit=99999999999",
        "status=nonsense",
        "customer=not-a-uuid",
        "colour=red",
    ] {
        let a = get(&app, &token, &format!("/v1/quote-search?{bad}")).await;
        a.assert_problem(400, "malformed-request");
        // The other lists answer the same.
        if bad.starts_with("limit") {
            get(&app, &token, &format!("/v1/quotes?{bad}"))
                .await
                .assert_problem(400, "malformed-request");
        }
    }
    let a = get(&app, &token, "/v1/quote-search?limit=200").await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn quote_search_uses_an_index_for_every_filter_at_volume() {
    let db = TestDb::fresh().await;
    let owner = db.owner_pool().await;
    // 40,000 rows over 20 tenants, 400 customers, four statuses.
    sqlx::query(
        "INSERT INTO quote_search (quote_id, tenant_id, customer_account_id, status, revision_no, \
         last_event_id, last_event_type, events_applied, updated_at) \
         SELECT gen_random_uuid(), 'tenant-' || (i % 20), \
                ('00000000-0000-7000-8000-' || lpad((i % 400)::text, 12, '0'))::uuid, \
                (ARRAY['draft','priced','approved','converted'])[1 + i % 4], 1, gen_random_uuid(), \
                'quote.created', 1, now() - make_interval(secs => i) \
           FROM generate_series(1, 40000) AS i",
    )
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query("ANALYZE quote_search")
        .execute(&owner)
        .await
        .unwrap();
    let app = db.app_pool().await;
    let t = TenantId::parse("tenant-7").unwrap();
    let customer: Uuid = "00000000-0000-7000-8000-000000000007".parse().unwrap();
    let filters = [
        SearchFilter::default(),
        SearchFilter {
            status: Some("priced".into()),
            customer: None,
        },
        SearchFilter {
            status: None,
            customer: Some(customer),
        },
        SearchFilter {
            status: Some("approved".into()),
            customer: Some(customer),
        },
    ];
    for filter in &filters {
        for after in [None, Some((chrono::Utc::now(), Uuid::now_v7()))] {
            let mut tx = tenant::begin(&app, &t).await.unwrap();
            let plan = quote_search_plan(&mut tx, &t, filter, after, 51)
                .await
                .unwrap();
            assert!(
                !plan.contains("Seq Scan"),
                "sequential scan for {filter:?}:\n{plan}"
            );
            assert!(plan.contains("Index"), "no index for {filter:?}:\n{plan}");
        }
    }
    app.close().await;
    owner.close().await;
}
