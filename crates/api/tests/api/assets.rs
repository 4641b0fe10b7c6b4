//! `GET /v1/customer-accounts/{id}/assets`: a new account has none; an unknown account, or one
//! of another tenant, is not found; who may read accounts may read their assets; the installed
//! base of a converted order pages newest first with its filters, under cursors bound to the
//! account and the filters.
//!
//! Orders cannot be completed over HTTP yet, so the assets of a converted order are written as
//! the schema owner, as completion would write them (one per order item).

use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::approvals::{command, priced_quote, sales_platform};
use crate::helpers::*;
use crate::support::TestApp;

fn assets_of(account: &str) -> String {
    format!("/v1/customer-accounts/{account}/assets")
}

/// Converts an accepted one-line quote of a new account: (account id, order id).
async fn converted_order(app: &TestApp, sales: &str) -> (String, String) {
    let (quote, v) = priced_quote(app, sales, "5").await;
    let submitted = command(
        app,
        sales,
        &format!("/v1/quotes/{quote}/submit"),
        v,
        json!({}),
    )
    .await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    let accepted = command(
        app,
        sales,
        &format!("/v1/quotes/{quote}/accept"),
        v + 1,
        json!({}),
    )
    .await;
    assert_eq!(accepted.body["status"], "accepted", "{}", accepted.body);
    let order = command(
        app,
        sales,
        &format!("/v1/quotes/{quote}/convert"),
        v + 2,
        json!({}),
    )
    .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    (
        order.body["customer_account_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        order.body["order_id"].as_str().unwrap().to_owned(),
    )
}

/// Follows `path`'s pages (`limit` each) to the end: the ids in the order served.
async fn all_pages(app: &TestApp, token: &str, path: &str, limit: u32) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{path}{sep}limit={limit}"),
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
        };
        let page = get(app, token, &url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize, "{}", page.body);
        ids.extend(items.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn a_new_account_has_no_assets_and_an_unknown_one_is_not_found() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", SALES);
    let account = create_account(&app, &sales, "Initech", "CRM-1").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty = get(&app, &sales, &assets_of(&account)).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert_eq!(empty.body, json!({ "items": [], "next_cursor": null }));
    // Every role that reads accounts reads their assets.
    for role in [
        Role::Approver,
        Role::OrderOperations,
        Role::Operator,
        Role::CatalogManager,
    ] {
        let token = app.token("acme", &[role]);
        let a = get(&app, &token, &assets_of(&account)).await;
        assert_eq!(a.status, StatusCode::OK, "{role:?}: {}", a.body);
    }
    get(
        &app,
        &app.token("acme", &[Role::Worker]),
        &assets_of(&account),
    )
    .await
    .assert_problem(403, "forbidden");

    get(&app, &sales, &assets_of(&uuid::Uuid::now_v7().to_string()))
        .await
        .assert_problem(404, "not-found");
    get(&app, &sales, &assets_of("not-a-uuid"))
        .await
        .assert_problem(400, "malformed-request");
    for bad in ["status=retired", "limit=0", "limit=201", "colour=red"] {
        get(&app, &sales, &format!("{}?{bad}", assets_of(&account)))
            .await
            .assert_problem(400, "malformed-request");
    }
    let bad_status = get(
        &app,
        &sales,
        &format!("{}?status=gone", assets_of(&account)),
    )
    .await;
    assert_eq!(bad_status.error_fields(), ["status"], "{}", bad_status.body);
}

#[tokio::test]
async fn the_installed_base_of_a_converted_order_pages_newest_first_within_its_tenant() {
    let (app, sales) = sales_platform().await;
    let (account, order) = converted_order(&app, &sales).await;
    let owner = app.db.owner_pool().await;
    let line: Value = sqlx::query_scalar(
        "SELECT jsonb_build_object('offering', offering_code, 'configuration', configuration) \
         FROM order_item WHERE order_id = $1::uuid AND line_no = 1",
    )
    .bind(&order)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(line["offering"], "CLOUD-BACKUP");
    // Four more items on the order, then one asset per item as completion makes them: lines 2
    // and 3 at the same instant (ordered by id), line 4 terminated since, line 5 the newest.
    sqlx::query(
        "INSERT INTO order_item (order_id, line_no, tenant_id, offering_code, configuration, price) \
         SELECT order_id, n, tenant_id, CASE WHEN n % 2 = 0 THEN 'BUSINESS-INTERNET' ELSE offering_code END, \
                configuration, price FROM order_item, generate_series(2, 5) AS n \
          WHERE order_id = $1::uuid AND line_no = 1",
    )
    .bind(&order)
    .execute(&owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO asset (asset_id, tenant_id, customer_account_id, offering_code, configuration, status, order_id, \
                            line_no, created_at, updated_at) \
         SELECT gen_random_uuid(), o.tenant_id, o.customer_account_id, i.offering_code, i.configuration, \
                CASE WHEN i.line_no = 4 THEN 'terminated' ELSE 'active' END, o.order_id, i.line_no, \
                timestamptz '2026-12-05T09:00:00Z' + make_interval(mins => CASE i.line_no WHEN 3 THEN 2 ELSE i.line_no END), \
                timestamptz '2026-12-05T11:00:00Z' \
           FROM sales_order o JOIN order_item i USING (order_id) WHERE o.order_id = $1::uuid",
    )
    .bind(&order)
    .execute(&owner)
    .await
    .unwrap();
    let by_line: Vec<(i32, String)> = sqlx::query_as(
        "SELECT line_no, asset_id::text FROM asset WHERE order_id = $1::uuid ORDER BY line_no",
    )
    .bind(&order)
    .fetch_all(&owner)
    .await
    .unwrap();
    owner.close().await;
    let id = |line: i32| by_line[line as usize - 1].1.clone();
    let (tie_first, tie_second) = if id(2) > id(3) {
        (id(2), id(3))
    } else {
        (id(3), id(2))
    };
    let newest_first = vec![id(5), id(4), tie_first.clone(), tie_second.clone(), id(1)];

    let path = assets_of(&account);
    let first = get(&app, &sales, &path).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let items = first.body["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, newest_first);
    assert!(first.body["next_cursor"].is_null());
    let oldest = &items[4];
    assert_eq!(
        *oldest,
        json!({
            "id": id(1), "customer_account_id": account, "offering_code": "CLOUD-BACKUP",
            "configuration": line["configuration"], "status": "active", "order_id": order,
            "line_no": 1, "created_at": "2026-12-05T09:01:00Z", "updated_at": "2026-12-05T11:00:00Z"
        })
    );
    assert_eq!(items[1]["status"], "terminated");

    // Pages of every size serve every asset once, newest first.
    for limit in [1, 2, 4, 5] {
        assert_eq!(
            all_pages(&app, &sales, &path, limit).await,
            newest_first,
            "limit {limit}"
        );
    }
    // Filters, alone and together.
    assert_eq!(
        all_pages(&app, &sales, &format!("{path}?status=active"), 1).await,
        [id(5), tie_first, tie_second, id(1)]
    );
    assert_eq!(
        all_pages(
            &app,
            &sales,
            &format!("{path}?offering_code=BUSINESS-INTERNET"),
            1
        )
        .await,
        [id(4), id(2)]
    );
    assert_eq!(
        all_pages(
            &app,
            &sales,
            &format!("{path}?status=terminated&offering_code=BUSINESS-INTERNET"),
            1
        )
        .await,
        [id(4)]
    );
    assert!(
        all_pages(&app, &sales, &format!("{path}?status=suspended"), 2)
            .await
            .is_empty()
    );

    // A cursor belongs to its filters and its account.
    let page = get(&app, &sales, &format!("{path}?limit=2")).await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    get(
        &app,
        &sales,
        &format!("{path}?limit=2&status=active&cursor={cursor}"),
    )
    .await
    .assert_problem(400, "malformed-request");
    let (other_account, _) = converted_order(&app, &sales).await;
    get(
        &app,
        &sales,
        &format!("{}?limit=2&cursor={cursor}", assets_of(&other_account)),
    )
    .await
    .assert_problem(400, "malformed-request");
    // The other account of the tenant has no assets of this one.
    let other = get(&app, &sales, &assets_of(&other_account)).await;
    assert_eq!(other.body["items"], json!([]), "{}", other.body);

    // Another tenant does not see the account at all, whatever its roles.
    for roles in [SALES, &[Role::OrderOperations], &[Role::Operator]] {
        get(&app, &app.token("globex", roles), &path)
            .await
            .assert_problem(404, "not-found");
    }
}
