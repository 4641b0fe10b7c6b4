//! Decomposition over HTTP: a converted order's fulfillment plan (`GET
//! /v1/orders/{id}/fulfillment-plan`) has the demo catalog's tasks with their dependencies
//! within items, across items and at order level; two identical orders get the same plan; another
//! tenant's or an unknown order is 404. Catalog publish refuses technical catalogs with a cycle,
//! an unknown dependency, an unknown system or a job type no process handles, naming each, and
//! accepts a job type the deployed fulfillment process declares.

use std::collections::BTreeSet;

use cpq_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::approvals::{command, sales_platform};
use crate::catalog::{demo, MANAGER};
use crate::helpers::*;
use crate::support::TestApp;

/// Business internet twice, the SD-WAN bundle (two licences configured, the router included by
/// default) and a mobile fleet.
pub(crate) fn lines() -> Vec<Value> {
    vec![
        json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500" } }),
        json!({ "offering": "SDWAN-BUNDLE", "characteristics": { "sites": "2" }, "components": [{ "offering": "SDWAN-LICENSE", "quantity": 2 }] }),
        json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "250" } }),
        json!({ "offering": "MOBILE-FLEET", "quantity": 5 }),
    ]
}

/// The demo platform ([`sales_platform`]) with an approval policy that asks for no approval of
/// these quotes (the demo's promotions discount mobile lines past the default policy's 15 %).
pub(crate) async fn platform() -> (TestApp, String) {
    let (app, sales) = sales_platform().await;
    let policy = json!({ "levels": ["manager"], "rules": [{ "code": "HUGE", "level": "manager", "condition": { "when": "deal_size_above", "value": "1000000000" } }] });
    let put = Answer::from(
        app.client
            .put(app.url("/v1/approval-policy"))
            .bearer_for(&app.token("acme", MANAGER))
            .json(&policy)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    (app, sales)
}

/// A converted order of [`lines`] for a new account: its id.
async fn converted_order(app: &TestApp, sales: &str) -> String {
    converted_order_of(app, sales, lines()).await.0
}

/// A converted order of `lines` (configurations) for a new account: (order id, account id).
pub(crate) async fn converted_order_of(
    app: &TestApp,
    sales: &str,
    lines: Vec<Value>,
) -> (String, String) {
    let account = create_account(
        app,
        sales,
        "Initech",
        &format!("CRM-{}", uuid::Uuid::new_v4()),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let quote = post(
        app,
        sales,
        "/v1/quotes",
        &json!({ "customer_account_id": account }),
        None,
    )
    .await;
    assert_eq!(quote.status, StatusCode::CREATED, "{}", quote.body);
    let q = format!("/v1/quotes/{}", quote.body["id"].as_str().unwrap());
    let mut version = 1;
    for configuration in lines {
        let added = command(
            app,
            sales,
            &format!("{q}/items"),
            version,
            json!({ "configuration": configuration }),
        )
        .await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        version += 1;
    }
    for step in ["price", "submit", "accept"] {
        let done = command(app, sales, &format!("{q}/{step}"), version, json!({})).await;
        assert_eq!(done.status, StatusCode::OK, "{step}: {}", done.body);
        version += 1;
    }
    let order = command(app, sales, &format!("{q}/convert"), version, json!({})).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    (order.body["order_id"].as_str().unwrap().to_owned(), account)
}

fn task<'a>(plan: &'a Value, key: &str) -> &'a Value {
    plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key} in {plan}"))
}

fn waits(plan: &Value, key: &str) -> BTreeSet<String> {
    task(plan, key)["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

#[tokio::test]
async fn a_converted_order_has_its_plan_with_dependencies_across_items_and_order_tasks_last() {
    let (app, sales) = platform().await;
    let order = converted_order(&app, &sales).await;
    let path = format!("/v1/orders/{order}/fulfillment-plan");
    let plan = get(&app, &sales, &path).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let plan = plan.body;
    assert_eq!(plan["order_id"], order.as_str());
    let keys: BTreeSet<String> = plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        set(&[
            "L1/access-line/reserve-port",
            "L1/access-line/provision-access",
            "L1/access-line/start-billing",
            "L2/SDWAN-LICENSE/licence/provision-licence",
            "L2/SDWAN-LICENSE/licence/start-billing",
            "L2/SDWAN-ROUTER/router/reserve-router",
            "L2/SDWAN-ROUTER/router/ship-router",
            "L3/access-line/reserve-port",
            "L3/access-line/provision-access",
            "L3/access-line/start-billing",
            "L4/sim/reserve-sim",
            "L4/sim/activate-line",
            "L4/sim/start-billing",
            "order/record-order",
            "order/notify-customer",
        ])
    );
    // Within an item; billing after every access line of the order is provisioned.
    assert_eq!(
        waits(&plan, "L1/access-line/provision-access"),
        set(&["L1/access-line/reserve-port"])
    );
    let access = [
        "L1/access-line/provision-access",
        "L3/access-line/provision-access",
    ];
    assert_eq!(
        waits(&plan, "L2/SDWAN-LICENSE/licence/start-billing"),
        set(&[
            access[0],
            access[1],
            "L2/SDWAN-LICENSE/licence/provision-licence"
        ])
    );
    assert_eq!(
        waits(&plan, "L4/sim/start-billing"),
        set(&[access[0], access[1], "L4/sim/activate-line"])
    );
    assert_eq!(waits(&plan, "L1/access-line/start-billing"), set(&access));
    // The customer is notified last, once every other task is done.
    let notify = task(&plan, "order/notify-customer");
    assert_eq!(notify["line_no"], Value::Null);
    assert_eq!(notify["item_code"], Value::Null);
    assert_eq!(
        (notify["system"].as_str(), notify["job_type"].as_str()),
        (Some("notification"), Some("send-notification"))
    );
    let others: BTreeSet<String> = keys
        .iter()
        .filter(|k| *k != "order/notify-customer")
        .cloned()
        .collect();
    assert_eq!(waits(&plan, "order/notify-customer"), others);
    assert_eq!(
        plan["tasks"].as_array().unwrap().last().unwrap()["key"],
        "order/notify-customer"
    );

    // Plan order: each task after what it waits for; the first tasks are ready, the rest pending.
    let tasks = plan["tasks"].as_array().unwrap();
    for (p, t) in tasks.iter().enumerate() {
        assert_eq!(t["position"], p);
        for d in t["depends_on"].as_array().unwrap() {
            assert!(
                task(&plan, d.as_str().unwrap())["position"].as_u64() < t["position"].as_u64(),
                "{t}"
            );
        }
        let waiting = !t["depends_on"].as_array().unwrap().is_empty();
        assert_eq!(
            t["status"],
            if waiting { "pending" } else { "ready" },
            "{t}"
        );
        assert_eq!(
            (
                t["attempts"].as_i64(),
                &t["started_at"],
                &t["completed_at"],
                &t["last_error"]
            ),
            (Some(0), &Value::Null, &Value::Null, &Value::Null)
        );
    }
    let ready: Vec<&str> = tasks
        .iter()
        .filter(|t| t["status"] == "ready")
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(ready.len(), 6, "{ready:?}");
    let router = task(&plan, "L2/SDWAN-ROUTER/router/ship-router");
    assert_eq!(
        (
            router["line_no"].as_i64(),
            router["item_code"].as_str(),
            router["spec"].as_str(),
            router["system"].as_str()
        ),
        (
            Some(2),
            Some("router"),
            Some("resource:cpe-router"),
            Some("inventory")
        )
    );

    // order.decomposed is written with order.created, in the conversion's audit record.
    let events = count(&app, &format!(
        "SELECT count(*) FROM outbox_event WHERE aggregate_id = '{order}' AND event_type = 'order.decomposed' \
         AND (payload->>'tasks')::int = 15 AND (payload->>'ready')::int = 6 \
         AND payload->'systems' = '[\"billing\", \"crm\", \"inventory\", \"notification\", \"provisioning\"]'::jsonb"
    )).await;
    assert_eq!(events, 1);

    // Order operations read it as well; a catalog manager does not read orders.
    let ops = app.token("acme", &[Role::OrderOperations]);
    assert_eq!(get(&app, &ops, &path).await.body, plan);
    get(&app, &app.token("acme", MANAGER), &path)
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn two_identical_orders_get_the_same_plan_and_other_tenants_and_unknown_orders_get_404() {
    let (app, sales) = platform().await;
    let first = converted_order(&app, &sales).await;
    let second = converted_order(&app, &sales).await;
    let plan_of = |order: String| {
        let (app, sales) = (&app, sales.clone());
        async move {
            let mut plan = get(app, &sales, &format!("/v1/orders/{order}/fulfillment-plan"))
                .await
                .body;
            for t in plan["tasks"].as_array_mut().unwrap() {
                t.as_object_mut().unwrap().remove("created_at");
            }
            plan["tasks"].clone()
        }
    };
    assert_eq!(plan_of(first.clone()).await, plan_of(second.clone()).await);
    let hashes = count(&app, &format!(
        "SELECT count(DISTINCT payload->>'plan_hash') FROM outbox_event WHERE event_type = 'order.decomposed' AND aggregate_id IN ('{first}', '{second}')"
    )).await;
    assert_eq!(hashes, 1, "the same plan hash");

    let other = app.token("globex", &[Role::Sales]);
    get(
        &app,
        &other,
        &format!("/v1/orders/{first}/fulfillment-plan"),
    )
    .await
    .assert_problem(404, "not-found");
    let unknown = uuid::Uuid::now_v7();
    get(
        &app,
        &sales,
        &format!("/v1/orders/{unknown}/fulfillment-plan"),
    )
    .await
    .assert_problem(404, "not-found");
}

/// Creates a draft of `document` (labelled `label`) and publishes it: the publish answer.
async fn publish_draft(app: &TestApp, label: &str, document: &Value) -> Answer {
    let token = app.token("acme", MANAGER);
    let created = post(
        app,
        &token,
        "/v1/catalog/versions",
        &json!({ "label": label, "document": document }),
        None,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    Answer::from(
        app.client
            .request(
                Method::POST,
                app.url(&format!("/v1/catalog/versions/{id}/publish")),
            )
            .bearer_for(&token)
            .header("If-Match", "\"1\"")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn publish_refuses_cycles_unknown_dependencies_and_systems_and_unhandled_job_types_naming_each(
) {
    let app = TestApp::spawn().await;
    let mut doc = demo();
    let technical = doc["technical"].as_array_mut().unwrap();
    // BIZ-INTERNET's port waits for every licence's billing, which waits for every access line.
    technical[0]["items"][0]["tasks"][0]["after_all"] = json!(["licence/start-billing"]);
    technical[1]["items"][0]["tasks"][0]["system"] = json!("warehouse");
    technical[3]["items"][0]["tasks"][2]["after_all"] = json!(["access-line/activate"]);
    technical[4]["items"][0]["tasks"][0]["job_type"] = json!("provision-backup-vault");
    let refused = publish_draft(&app, "broken", &doc).await;
    refused.assert_problem(422, "validation-failed");
    let errors: BTreeSet<(String, String)> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_owned(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (code, field) in [
        (
            "task-cycle",
            "technical[BIZ-INTERNET].items[access-line].tasks[provision-access]",
        ),
        (
            "invalid-value",
            "technical[SDWAN-ROUTER].items[router].tasks[reserve-router].system",
        ),
        (
            "dangling-reference",
            "technical[MOBILE-FLEET].items[sim].tasks[start-billing].after_all",
        ),
        (
            "unhandled-job-type",
            "technical[CLOUD-BACKUP].items[backup-space].tasks[provision-backup].job_type",
        ),
    ] {
        assert!(
            errors.contains(&(code.to_owned(), field.to_owned())),
            "{code} {field} not in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM catalog_version WHERE status = 'published'"
        )
        .await,
        0
    );
}

/// An `order-fulfillment` version whose service task runs `install-on-site`.
const FULFILLMENT_WITH_INSTALL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="order-fulfillment" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="install"><bpmn:extensionElements><zeebe:taskDefinition type="install-on-site" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="install" />
    <bpmn:sequenceFlow id="f2" sourceRef="install" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn a_job_type_the_deployed_fulfillment_process_declares_may_be_published() {
    let app = TestApp::spawn().await;
    let mut doc = demo();
    doc["technical"][0]["items"][0]["tasks"][0]["job_type"] = json!("install-on-site");
    let refused = publish_draft(&app, "before", &doc).await;
    refused.assert_problem(422, "validation-failed");
    assert_eq!(
        refused.body["errors"][0]["code"], "unhandled-job-type",
        "{}",
        refused.body
    );

    let operator = app.token("acme", &[Role::Operator]);
    let deployed = deploy_bpmn(
        &app,
        &operator,
        "?allow_unsupported_job_types=true",
        FULFILLMENT_WITH_INSTALL,
    )
    .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    let published = publish_draft(&app, "after", &doc).await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    assert_eq!(published.body["status"], "published");
}
