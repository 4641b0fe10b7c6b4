//! The operational order search (`GET /v1/orders`) and stuck tasks
//! (`GET /v1/stuck-fulfillment-tasks`) over HTTP, on orders converted through the API. No worker
//! runs here, so what the worker and fallout would do to an order is set through the schema
//! owner's connection: one order completed (its tasks completed), one in fallout, one task
//! running for an hour (stuck at the default 15 minutes), one waiting for its callback for five
//! minutes (stuck only with a shorter `older_than`). Covered: each filter, paging through every
//! page without duplicates or gaps, bad filters named in problems, readers only, tenant isolation.

use std::collections::BTreeSet;

use cpq_core::Role;
use cpq_testkit::processes::{sibling_binary, worker_process};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fulfillment::{converted_order_of, platform};
use crate::helpers::*;
use crate::support::TestApp;

const OPERATIONS: &[Role] = &[Role::OrderOperations];

/// Five converted one-line orders, oldest first: (order id, account id).
async fn five_orders(app: &TestApp, sales: &str) -> Vec<(String, String)> {
    let mut orders = Vec::new();
    for _ in 0..5 {
        let line = json!({ "offering": "MOBILE-FLEET", "quantity": 5 });
        orders.push(converted_order_of(app, sales, vec![line]).await);
    }
    orders
}

async fn admin(app: &TestApp, sql: &str) {
    let pool = app.db.owner_pool().await;
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

fn ids(page: &Answer) -> Vec<String> {
    page.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", page.body))
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every order the search finds, page by page (`limit` per page): the ids in page order.
async fn all_pages(app: &TestApp, token: &str, query: &str, limit: u32) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/v1/orders?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(app, token, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(ids(&page).len() <= limit as usize);
        found.extend(ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return found,
        }
    }
    panic!("more than 100 pages");
}

fn newest_first(orders: &[(String, String)], pick: &[usize]) -> Vec<String> {
    pick.iter().rev().map(|i| orders[*i].0.clone()).collect()
}

#[tokio::test]
async fn each_filter_finds_its_orders_and_pages_cover_them_once() {
    let (app, sales) = platform().await;
    let orders = five_orders(&app, &sales).await;
    let ops = app.token("acme", OPERATIONS);
    let (a, b, c, d) = (&orders[0].0, &orders[1].0, &orders[2].0, &orders[3].0);
    // Order 0 completed, order 1 in fallout; a task of order 2 running for an hour, one of
    // order 3 waiting for its callback for five minutes.
    admin(&app, &format!("UPDATE fulfillment_task SET status = 'completed', attempts = 1, started_at = now() - interval '2 minutes', completed_at = now() WHERE order_id = '{a}'")).await;
    admin(&app, &format!("UPDATE sales_order SET status = 'completed', completed_at = now() WHERE order_id = '{a}'")).await;
    admin(
        &app,
        &format!("UPDATE sales_order SET status = 'in-fallout' WHERE order_id = '{b}'"),
    )
    .await;
    admin(&app, &format!("UPDATE fulfillment_task SET status = 'running', attempts = 2, started_at = now() - interval '1 hour' WHERE order_id = '{c}' AND position = 0")).await;
    admin(&app, &format!("UPDATE fulfillment_task SET status = 'waiting-callback', attempts = 1, started_at = now() - interval '5 minutes' WHERE order_id = '{d}' AND position = 0")).await;

    // Everything, newest first, through pages of 2, 1 and 50: no duplicates, no gaps.
    let all = newest_first(&orders, &[0, 1, 2, 3, 4]);
    for limit in [1, 2, 50] {
        assert_eq!(all_pages(&app, &ops, "", limit).await, all, "limit {limit}");
    }
    let first = get(&app, &ops, "/v1/orders").await;
    assert_eq!(first.body["items"][0]["order_id"], orders[4].0.as_str());
    assert_eq!(first.body["items"][0]["status"], "in-fulfillment");
    assert_eq!(
        first.body["items"][0]["customer_account_id"],
        orders[4].1.as_str()
    );
    assert!(first.body["next_cursor"].is_null());

    // Status: one, or a comma list; in_fallout narrows the statuses.
    let q = |s: &str| s.to_owned();
    for (query, expected) in [
        (q("status=completed"), newest_first(&orders, &[0])),
        (q("status=in-fallout"), newest_first(&orders, &[1])),
        (
            q("status=in-fulfillment"),
            newest_first(&orders, &[2, 3, 4]),
        ),
        (
            q("status=completed,in-fallout"),
            newest_first(&orders, &[0, 1]),
        ),
        (q("status=cancelled"), vec![]),
        (q("in_fallout=true"), newest_first(&orders, &[1])),
        (q("in_fallout=false"), newest_first(&orders, &[0, 2, 3, 4])),
        (q("in_fallout=true&status=completed"), vec![]),
        (
            format!("customer_account_id={}", orders[3].1),
            newest_first(&orders, &[3]),
        ),
        (
            format!("customer_account_id={}&status=completed", orders[3].1),
            vec![],
        ),
        // Stuck: in flight since before 15 minutes ago by default, or older_than.
        (q("stuck=true"), newest_first(&orders, &[2])),
        (
            q("stuck=true&older_than=PT2M"),
            newest_first(&orders, &[2, 3]),
        ),
        (q("stuck=true&older_than=PT2H"), vec![]),
        (q("stuck=false"), all.clone()),
        (
            q("stuck=true&status=in-fulfillment,completed"),
            newest_first(&orders, &[2]),
        ),
    ] {
        for limit in [1, 50] {
            assert_eq!(
                all_pages(&app, &ops, &query, limit).await,
                expected,
                "{query} (limit {limit})"
            );
        }
    }

    // System: orders with a task on it that is not finished (order 0's are all completed).
    let plan = get(&app, &ops, &format!("/v1/orders/{a}/fulfillment-plan")).await;
    let systems: BTreeSet<String> = plan.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["system"].as_str().map(str::to_owned))
        .collect();
    assert!(!systems.is_empty(), "{}", plan.body);
    for system in &systems {
        let query = format!("system={system}");
        assert_eq!(
            all_pages(&app, &ops, &query, 2).await,
            newest_first(&orders, &[1, 2, 3, 4]),
            "{query}"
        );
    }
    for system in [
        "inventory",
        "provisioning",
        "billing",
        "crm",
        "notification",
    ] {
        if !systems.contains(system) {
            assert_eq!(
                all_pages(&app, &ops, &format!("system={system}"), 50).await,
                Vec::<String>::new()
            );
        }
    }

    // Created range: from order 1's instant (included) to order 3's (excluded).
    let created = |i: usize| {
        first.body["items"][4 - i]["created_at"]
            .as_str()
            .unwrap()
            .replace('+', "%2B")
    };
    let query = format!("created_from={}&created_to={}", created(1), created(3));
    assert_eq!(
        all_pages(&app, &ops, &query, 1).await,
        newest_first(&orders, &[1, 2]),
        "{query}"
    );
    let query = format!("created_from={}", created(3));
    assert_eq!(
        all_pages(&app, &ops, &query, 1).await,
        newest_first(&orders, &[3, 4])
    );
    let query = format!("created_to={}", created(1));
    assert_eq!(
        all_pages(&app, &ops, &query, 1).await,
        newest_first(&orders, &[0])
    );

    // Every reader may search; other tenants see nothing of acme's.
    for roles in [&[Role::Sales][..], &[Role::Approver], &[Role::Operator]] {
        let token = app.token("acme", roles);
        assert_eq!(all_pages(&app, &token, "", 50).await, all);
    }
    let globex = app.token("globex", OPERATIONS);
    assert_eq!(all_pages(&app, &globex, "", 50).await, Vec::<String>::new());
    assert_eq!(
        all_pages(&app, &globex, "stuck=true&older_than=PT1M", 50).await,
        Vec::<String>::new()
    );
    let none = get(&app, &globex, "/v1/stuck-fulfillment-tasks?older_than=PT1M").await;
    assert_eq!(none.body["items"], json!([]), "{}", none.body);
}

#[tokio::test]
async fn stuck_tasks_are_listed_longest_stuck_first_and_paged() {
    let (app, sales) = platform().await;
    let orders = five_orders(&app, &sales).await;
    let ops = app.token("acme", OPERATIONS);
    // Order 0: its first task running for 3 hours, its second waiting 20 minutes; order 1: its
    // first task running 1 hour; order 2: its first running 5 minutes.
    for (i, position, status, ago, attempts) in [
        (0, 0, "running", "3 hours", 3),
        (0, 1, "waiting-callback", "20 minutes", 1),
        (1, 0, "running", "1 hour", 2),
        (2, 0, "running", "5 minutes", 1),
    ] {
        admin(&app, &format!("UPDATE fulfillment_task SET status = '{status}', attempts = {attempts}, started_at = now() - interval '{ago}' WHERE order_id = '{}' AND position = {position}", orders[i].0)).await;
    }
    let tasks = |body: &Value| -> Vec<(String, String)> {
        body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|t| {
                (
                    t["order_id"].as_str().unwrap().to_owned(),
                    t["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let default = get(&app, &ops, "/v1/stuck-fulfillment-tasks").await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.body);
    let (o0, o1) = (orders[0].0.clone(), orders[1].0.clone());
    assert_eq!(
        tasks(&default.body),
        [
            (o0.clone(), "running".to_owned()),
            (o1.clone(), "running".to_owned()),
            (o0.clone(), "waiting-callback".to_owned())
        ]
    );
    let oldest = &default.body["items"][0];
    assert_eq!(oldest["attempts"], 3);
    assert!(
        oldest["task_key"].is_string()
            && oldest["job_type"].is_string()
            && oldest["started_at"].is_string(),
        "{oldest}"
    );
    let system = oldest["system"].as_str().map(str::to_owned);

    // Paged one at a time: the same three, once each.
    let mut paged = Vec::new();
    let mut path = "/v1/stuck-fulfillment-tasks?limit=1".to_owned();
    loop {
        let page = get(&app, &ops, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        paged.extend(tasks(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/stuck-fulfillment-tasks?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, tasks(&default.body));

    let shorter = get(&app, &ops, "/v1/stuck-fulfillment-tasks?older_than=PT2M").await;
    assert_eq!(tasks(&shorter.body).len(), 4, "{}", shorter.body);
    let longer = get(&app, &ops, "/v1/stuck-fulfillment-tasks?older_than=PT2H").await;
    assert_eq!(tasks(&longer.body), [(o0.clone(), "running".to_owned())]);
    if let Some(system) = &system {
        let on = get(
            &app,
            &ops,
            &format!("/v1/stuck-fulfillment-tasks?system={system}"),
        )
        .await;
        let n = default.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["system"] == system.as_str())
            .count();
        assert_eq!(tasks(&on.body).len(), n, "{}", on.body);
    }
    // The worker's gauge counts across tenants through the SECURITY DEFINER function, from the
    // application's role, which sees no tenant's rows by itself.
    let pool = app.db.app_pool().await;
    let counts = cpq_order::search::stuck_task_counts(&pool, chrono::Duration::minutes(15))
        .await
        .unwrap();
    pool.close().await;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 3, "{counts:?}");
    let label = system.unwrap_or_else(|| "none".to_owned());
    assert!(
        counts.iter().any(|(s, n)| *s == label && *n >= 2),
        "{counts:?}"
    );
    // The order search agrees.
    let stuck_orders = get(&app, &ops, "/v1/orders?stuck=true").await;
    assert_eq!(ids(&stuck_orders), [o1, o0]);

    // And a real cpq-worker publishes the counts as `fulfillment_tasks_stuck{system}` on its
    // admin port's /metrics (its timer scan counts at start, then every 30 s). Its one job type
    // has no job ready here, so it changes nothing.
    let dir = crate::order_fulfillment::temp_dir();
    let (_worker, addr) = worker_process(
        &sibling_binary(&std::env::current_exe().unwrap(), "cpq-worker"),
        &app.db,
        &dir,
        "stuck-gauge-workers",
        "[[worker.job_types]]\njob_type = \"fulfillment-order-complete\"\nhandler = \"fulfillment\"\n",
    );
    let expected: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("fulfillment_tasks_stuck{{system=\"{s}\"}} {n}"))
        .collect();
    let mut exposition = String::new();
    for _ in 0..100 {
        exposition = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if expected
            .iter()
            .all(|line| exposition.lines().any(|l| l == line))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for line in &expected {
        assert!(
            exposition.lines().any(|l| l == line),
            "{line} missing from cpq-worker's /metrics:\n{exposition}"
        );
    }
}

#[tokio::test]
async fn bad_filters_are_problems_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let ops = app.token("acme", OPERATIONS);
    for (query, status, slug, field) in [
        ("status=shipped", 400, "malformed-request", "status"),
        ("status=completed,", 400, "malformed-request", "status"),
        (
            "customer_account_id=42",
            400,
            "malformed-request",
            "customer_account_id",
        ),
        (
            "created_from=yesterday",
            400,
            "malformed-request",
            "created_from",
        ),
        (
            "created_to=2026-12-01",
            400,
            "malformed-request",
            "created_to",
        ),
        ("in_fallout=yes", 400, "malformed-request", "in_fallout"),
        ("stuck=1", 400, "malformed-request", "stuck"),
        (
            "stuck=true&older_than=15",
            400,
            "malformed-request",
            "older_than",
        ),
        ("system=erp", 400, "malformed-request", "system"),
        ("limit=0", 400, "malformed-request", "limit"),
        ("limit=201", 400, "malformed-request", "limit"),
        ("cursor=not-a-cursor", 400, "malformed-request", "cursor"),
        ("colour=red", 400, "malformed-request", "query"),
        (
            "created_from=2026-12-02T00:00:00Z&created_to=2026-12-01T00:00:00Z",
            422,
            "validation-failed",
            "created_to",
        ),
        (
            "stuck=true&older_than=PT30S",
            422,
            "validation-failed",
            "older_than",
        ),
        (
            "stuck=true&older_than=P31D",
            422,
            "validation-failed",
            "older_than",
        ),
        ("older_than=PT1H", 422, "validation-failed", "older_than"),
    ] {
        let answer = get(&app, &ops, &format!("/v1/orders?{query}")).await;
        answer.assert_problem(status, slug);
        assert_eq!(answer.error_fields(), [field], "{query}: {}", answer.body);
    }
    // Several bad parameters: each named.
    let answer = get(&app, &ops, "/v1/orders?status=x&system=y&stuck=maybe").await;
    answer.assert_problem(400, "malformed-request");
    assert_eq!(answer.error_fields(), ["status", "stuck", "system"]);
    // A cursor of another query is refused.
    let foreign = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({ "after": ["2026-12-05T00:00:00Z", uuid::Uuid::nil()], "query": "0000000000000000" })
            .to_string(),
    );
    let other = get(
        &app,
        &ops,
        &format!("/v1/orders?status=completed&cursor={foreign}"),
    )
    .await;
    other.assert_problem(400, "malformed-request");
    assert_eq!(other.error_fields(), ["cursor"]);

    for (query, status, field) in [
        ("older_than=soon", 400, "older_than"),
        ("older_than=PT0M", 422, "older_than"),
        ("system=erp", 400, "system"),
        ("stuck=true", 400, "query"),
    ] {
        let answer = get(&app, &ops, &format!("/v1/stuck-fulfillment-tasks?{query}")).await;
        assert_eq!(answer.status.as_u16(), status, "{query}: {}", answer.body);
        assert_eq!(answer.error_fields(), [field], "{query}: {}", answer.body);
    }

    // Only those who may read orders; no token at all is 401.
    let catalog = app.token("acme", &[Role::CatalogManager]);
    get(&app, &catalog, "/v1/orders")
        .await
        .assert_problem(403, "forbidden");
    get(&app, &catalog, "/v1/stuck-fulfillment-tasks")
        .await
        .assert_problem(403, "forbidden");
    let anonymous = Answer::from(app.client.get(app.url("/v1/orders")).send().await.unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
