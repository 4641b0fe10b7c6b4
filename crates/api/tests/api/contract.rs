//! The OpenAPI document describes what a client meets, deep in the flows a fuzzer seldom reaches:
//! the whole sales flow (catalog, validate, price, account, quote, approval, acceptance,
//! conversion, order, revision), the workflow operations and the job API, each answer checked
//! against the served document: its status is documented, its content type is the documented
//! one, its body validates against the documented schema, and the documented `ETag`, `Location`
//! and `x-request-id` headers are sent and match their schemas.

use crate::support::TestApp;
use cpq_core::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::approvals::{approver, deploy_platform_processes};
use crate::catalog::{demo, publish};
use crate::helpers::*;

const JOB_PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="contract" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="work"><bpmn:extensionElements><zeebe:taskDefinition type="contract-job" retries="1" /><zeebe:taskHeaders><zeebe:header key="system" value="crm" /></zeebe:taskHeaders></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

struct Contract {
    doc: Value,
    checked: Vec<String>,
}

impl Contract {
    async fn load(app: &TestApp) -> Contract {
        let doc: Value = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Contract {
            doc,
            checked: Vec::new(),
        }
    }

    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let mut root = schema.clone();
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{what}: the documented schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match the document:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }

    /// Checks `a`, the answer to `method template`, against the document.
    fn check(&mut self, method: &Method, template: &str, a: &Answer) {
        let what = format!("{method} {template} -> {}", a.status.as_u16());
        let op = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let response = &op["responses"][a.status.as_str()];
        assert!(
            response.is_object(),
            "{what} is not a documented status: {}",
            a.body
        );
        let content_type = a.header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let content = &response["content"];
        let schema = &content[media]["schema"];
        assert!(
            schema.is_object(),
            "{what}: content type {media} is not documented (documented: {content})"
        );
        self.validate(schema, &a.body, &what);
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let sent = a.header(name);
            if ["ETag", "Location", "x-request-id"].contains(&name.as_str()) {
                assert!(
                    sent.is_some(),
                    "{what}: the documented {name} header is missing"
                );
            }
            if let Some(v) = sent {
                self.validate(
                    &header["schema"],
                    &json!(v),
                    &format!("{what}, header {name}"),
                );
            }
        }
        // Versioned resources always say their ETag.
        if a.status.is_success() && a.header("etag").is_some() {
            assert!(
                response["headers"].get("ETag").is_some(),
                "{what}: ETag sent but not documented"
            );
        }
        self.checked.push(what);
    }
}

#[allow(clippy::too_many_arguments)]
async fn call(
    app: &TestApp,
    contract: &mut Contract,
    token: &str,
    method: Method,
    template: &str,
    path: &str,
    if_match: Option<i64>,
    body: Option<Value>,
) -> Answer {
    let mut req = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_for(token);
    if let Some(v) = if_match {
        req = req.header("If-Match", format!("\"{v}\""));
    }
    if let Some(b) = &body {
        req = req.json(b);
    }
    let a = Answer::from(req.send().await.unwrap()).await;
    contract.check(&method, template, &a);
    a
}

fn id(a: &Answer) -> String {
    a.body["id"].as_str().unwrap().to_owned()
}

fn version(a: &Answer) -> i64 {
    a.body["version"].as_i64().unwrap()
}

#[tokio::test]
async fn every_answer_of_the_sales_flow_and_the_workflow_api_is_the_documented_one() {
    let app = TestApp::spawn().await;
    deploy_platform_processes(&app).await;
    let catalog_version = publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let mut c = Contract::load(&app).await;
    let sales = app.token("acme", SALES);
    let manager = app.token("acme", &[Role::CatalogManager]);
    let ops = app.token("acme", &[Role::Operator, Role::OrderOperations]);
    let mgr = approver(&app, "mgr", &["manager"]);
    let worker = app.token("acme", &[Role::Worker]);
    use Method as M;

    // Catalog.
    let versions = call(
        &app,
        &mut c,
        &manager,
        M::GET,
        "/v1/catalog/versions",
        "/v1/catalog/versions?limit=1",
        None,
        None,
    )
    .await;
    assert_eq!(versions.status, 200);
    let v = format!("/v1/catalog/versions/{catalog_version}");
    call(
        &app,
        &mut c,
        &manager,
        M::GET,
        "/v1/catalog/versions/{id}",
        &v,
        None,
        None,
    )
    .await;
    let doc = call(
        &app,
        &mut c,
        &manager,
        M::GET,
        "/v1/catalog/versions/{id}/document",
        &format!("{v}/document"),
        None,
        None,
    )
    .await;
    assert_eq!(doc.status, 200);
    let search = call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/catalog/offerings",
        "/v1/catalog/offerings?q=backup&limit=2",
        None,
        None,
    )
    .await;
    assert_eq!(search.status, 200, "{}", search.body);
    let draft = call(
        &app,
        &mut c,
        &manager,
        M::POST,
        "/v1/catalog/versions",
        "/v1/catalog/versions",
        None,
        Some(json!({ "label": "next", "document": demo() })),
    )
    .await;
    assert_eq!(draft.status, 201, "{}", draft.body);
    let d = format!("/v1/catalog/versions/{}", id(&draft));
    let offering = demo()["offerings"][0].clone();
    let code = offering["code"].as_str().unwrap().to_owned();
    let put = call(
        &app,
        &mut c,
        &manager,
        M::PUT,
        "/v1/catalog/versions/{id}/offerings/{key}",
        &format!("{d}/offerings/{code}"),
        Some(1),
        Some(offering),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    call(
        &app,
        &mut c,
        &manager,
        M::PUT,
        "/v1/catalog/versions/{id}/offerings/{key}",
        &format!("{d}/offerings/{code}"),
        Some(1),
        Some(json!({ "code": code })),
    )
    .await;
    let removed = call(
        &app,
        &mut c,
        &manager,
        M::DELETE,
        "/v1/catalog/versions/{id}/offerings/{key}",
        &format!("{d}/offerings/{code}"),
        Some(2),
        None,
    )
    .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    call(
        &app,
        &mut c,
        &manager,
        M::POST,
        "/v1/catalog/versions/{id}/publish",
        &format!("{d}/publish"),
        Some(3),
        Some(json!({})),
    )
    .await;

    // Configuration and pricing.
    let ctx = json!({ "market": "DE", "channel": "direct", "segment": "enterprise" });
    let valid = call(&app, &mut c, &sales, M::POST, "/v1/configurations/validate", "/v1/configurations/validate", None,
        Some(json!({ "context": ctx, "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } } }))).await;
    assert_eq!(valid.status, 200, "{}", valid.body);
    let priced = call(&app, &mut c, &sales, M::POST, "/v1/price", "/v1/price", None,
        Some(json!({ "context": { "market": "DE", "channel": "direct", "segment": "enterprise", "currency": "EUR" },
                     "items": [{ "line_id": "1", "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }, "manual_discount_percent": "10" }] }))).await;
    assert_eq!(priced.status, 200, "{}", priced.body);
    call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/price",
        "/v1/price",
        None,
        Some(json!({ "context": {}, "items": [] })),
    )
    .await;

    // Customer account.
    let account = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/customer-accounts",
        "/v1/customer-accounts",
        None,
        Some(account("Initech", "CRM-9")),
    )
    .await;
    assert_eq!(account.status, 201, "{}", account.body);
    let a = format!("/v1/customer-accounts/{}", id(&account));
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/customer-accounts/{id}",
        &a,
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/customer-accounts",
        "/v1/customer-accounts?status=active",
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &sales,
        M::PATCH,
        "/v1/customer-accounts/{id}",
        &a,
        Some(7),
        Some(json!({ "name": "x" })),
    )
    .await;

    // A quote that needs a manager, through approval, acceptance and conversion.
    let quote = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes",
        "/v1/quotes",
        None,
        Some(json!({ "customer_account_id": id(&account) })),
    )
    .await;
    assert_eq!(quote.status, 201, "{}", quote.body);
    let q = format!("/v1/quotes/{}", id(&quote));
    let line = json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }, "manual_discount_percent": "20" });
    let added = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/items",
        &format!("{q}/items"),
        Some(1),
        Some(line.clone()),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let changed = call(
        &app,
        &mut c,
        &sales,
        M::PUT,
        "/v1/quotes/{id}/items/{line_no}",
        &format!("{q}/items/1"),
        Some(2),
        Some(line),
    )
    .await;
    let terms = call(
        &app,
        &mut c,
        &sales,
        M::PUT,
        "/v1/quotes/{id}/terms",
        &format!("{q}/terms"),
        Some(version(&changed)),
        Some(json!({ "special_terms": null })),
    )
    .await;
    let priced = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/price",
        &format!("{q}/price"),
        Some(version(&terms)),
        Some(json!({})),
    )
    .await;
    assert_eq!(priced.status, 200, "{}", priced.body);
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quotes/{id}",
        &q,
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quotes",
        "/v1/quotes?status=priced",
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quote-search",
        "/v1/quote-search",
        None,
        None,
    )
    .await;
    let pending = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/submit",
        &format!("{q}/submit"),
        Some(version(&priced)),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        pending.body["status"], "approval-pending",
        "{}",
        pending.body
    );
    let tasks = call(
        &app,
        &mut c,
        &mgr,
        M::GET,
        "/v1/approval-tasks",
        "/v1/approval-tasks",
        None,
        None,
    )
    .await;
    let task = tasks.body["items"][0]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &mut c,
        &mgr,
        M::POST,
        "/v1/approval-tasks/{id}/reject",
        &format!("/v1/approval-tasks/{task}/reject"),
        None,
        Some(json!({})),
    )
    .await;
    let approved = call(
        &app,
        &mut c,
        &mgr,
        M::POST,
        "/v1/approval-tasks/{id}/approve",
        &format!("/v1/approval-tasks/{task}/approve"),
        None,
        Some(json!({ "comment": "fine" })),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let fetched = call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quotes/{id}",
        &q,
        None,
        None,
    )
    .await;
    let accepted = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/accept",
        &format!("{q}/accept"),
        Some(version(&fetched)),
        Some(json!({})),
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let order = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/convert",
        &format!("{q}/convert"),
        Some(version(&accepted)),
        Some(json!({})),
    )
    .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let o = order.body["order_id"].as_str().unwrap().to_owned();
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/orders/{id}",
        &format!("/v1/orders/{o}"),
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/orders/{id}/fulfillment-plan",
        &format!("/v1/orders/{o}/fulfillment-plan"),
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/convert",
        &format!("{q}/convert"),
        Some(version(&accepted)),
        Some(json!({})),
    )
    .await;

    // A second quote: rejected with a comment, revised, its revisions read, cancelled.
    let second = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes",
        "/v1/quotes",
        None,
        Some(json!({ "customer_account_id": id(&account), "special_terms": "net 90" })),
    )
    .await;
    let s = format!("/v1/quotes/{}", id(&second));
    let added = call(&app, &mut c, &sales, M::POST, "/v1/quotes/{id}/items", &format!("{s}/items"), Some(1), Some(json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } } }))).await;
    call(
        &app,
        &mut c,
        &sales,
        M::DELETE,
        "/v1/quotes/{id}/items/{line_no}",
        &format!("{s}/items/9"),
        Some(version(&added)),
        None,
    )
    .await;
    let priced = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/price",
        &format!("{s}/price"),
        Some(version(&added)),
        Some(json!({})),
    )
    .await;
    let pending = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/submit",
        &format!("{s}/submit"),
        Some(version(&priced)),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        pending.body["status"], "approval-pending",
        "{}",
        pending.body
    );
    let revised = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/revise",
        &format!("{s}/revise"),
        Some(version(&pending)),
        Some(json!({ "reason": "customer asked" })),
    )
    .await;
    assert_eq!(revised.status, 200, "{}", revised.body);
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quotes/{id}/revisions",
        &format!("{s}/revisions"),
        None,
        None,
    )
    .await;
    let rev = call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quotes/{id}/revisions/{revision_no}",
        &format!("{s}/revisions/1"),
        None,
        None,
    )
    .await;
    assert_eq!(rev.status, 200, "{}", rev.body);
    let cancelled = call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/quotes/{id}/cancel",
        &format!("{s}/cancel"),
        Some(version(&revised)),
        Some(json!({ "reason": "lost" })),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    call(
        &app,
        &mut c,
        &sales,
        M::POST,
        "/v1/customer-accounts/{id}/close",
        &format!("{a}/close"),
        Some(1),
        Some(json!({ "reason": "churned" })),
    )
    .await;

    // Approval policy.
    let policy = call(
        &app,
        &mut c,
        &manager,
        M::GET,
        "/v1/approval-policy",
        "/v1/approval-policy",
        None,
        None,
    )
    .await;
    let mut put = policy.body.clone();
    put.as_object_mut().unwrap().remove("version");
    call(
        &app,
        &mut c,
        &manager,
        M::PUT,
        "/v1/approval-policy",
        "/v1/approval-policy",
        None,
        Some(put),
    )
    .await;

    // Workflow operations: the order's fulfillment instance, its jobs, incidents, messages.
    call(
        &app,
        &mut c,
        &ops,
        M::GET,
        "/v1/process-definitions",
        "/v1/process-definitions",
        None,
        None,
    )
    .await;
    let instances = call(
        &app,
        &mut c,
        &ops,
        M::GET,
        "/v1/process-instances",
        "/v1/process-instances?status=active",
        None,
        None,
    )
    .await;
    let instance = instances.body["items"][0]["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &mut c,
        &ops,
        M::GET,
        "/v1/process-instances/{id}",
        &format!("/v1/process-instances/{instance}"),
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &ops,
        M::GET,
        "/v1/incidents",
        "/v1/incidents?status=all",
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &ops,
        M::GET,
        "/v1/user-tasks",
        "/v1/user-tasks",
        None,
        None,
    )
    .await;
    call(&app, &mut c, &ops, M::POST, "/v1/messages", "/v1/messages", None, Some(json!({ "name": "nobody-waits", "correlation_key": "k", "time_to_live_ms": 1000, "variables": { "a": 1 } }))).await;
    call(
        &app,
        &mut c,
        &ops,
        M::POST,
        "/v1/signals",
        "/v1/signals",
        None,
        Some(json!({ "signal_name": "nobody-listens", "variables": { "a": 1 } })),
    )
    .await;
    let platform = app.token("platform", &[Role::Operator]);
    let group = call(
        &app,
        &mut c,
        &platform,
        M::PUT,
        "/v1/worker-groups/{name}",
        "/v1/worker-groups/contract",
        None,
        Some(json!({ "job_types": ["contract-check"], "worker_version": "1" })),
    )
    .await;
    assert!(group.status.is_success() || group.status.is_client_error());
    let jobs = call(&app, &mut c, &worker, M::POST, "/v1/jobs/activation", "/v1/jobs/activation", None,
        Some(json!({ "job_type": "reserve-inventory", "worker": "contract", "timeout_ms": 60000, "max_jobs": 5 }))).await;
    assert_eq!(jobs.status, 200, "{}", jobs.body);
    if let Some(job) = jobs.body["jobs"][0]["job_id"].as_str() {
        let done = call(
            &app,
            &mut c,
            &worker,
            M::POST,
            "/v1/jobs/{job_id}/completion",
            &format!("/v1/jobs/{job}/completion"),
            None,
            Some(json!({ "variables": { "reserved": true } })),
        )
        .await;
        assert_eq!(done.status, 200, "{}", done.body);
    }
    let cancelled = call(
        &app,
        &mut c,
        &ops,
        M::POST,
        "/v1/process-instances/{id}/cancellation",
        &format!("/v1/process-instances/{instance}/cancellation"),
        None,
        Some(json!({ "reason": "contract test" })),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);

    // The job API over a process with a service task: activate, fail into an incident, resolve,
    // activate again, complete; and a BPMN error.
    let deployed = deploy_bpmn(
        &app,
        &ops,
        "?allow_unsupported_job_types=true&resource_name=contract.bpmn",
        JOB_PROCESS,
    )
    .await;
    c.check(&M::POST, "/v1/process-definitions", &deployed);
    assert_eq!(deployed.status, 201, "{}", deployed.body);
    for _ in 0..2 {
        let started = call(
            &app,
            &mut c,
            &ops,
            M::POST,
            "/v1/process-instances",
            "/v1/process-instances",
            None,
            Some(json!({ "bpmn_process_id": "contract", "variables": { "n": 1 } })),
        )
        .await;
        assert_eq!(started.status, 201, "{}", started.body);
    }
    let activate = json!({ "job_type": "contract-job", "worker": "contract", "timeout_ms": 60000, "max_jobs": 1 });
    let jobs = call(
        &app,
        &mut c,
        &worker,
        M::POST,
        "/v1/jobs/activation",
        "/v1/jobs/activation",
        None,
        Some(activate.clone()),
    )
    .await;
    let job = jobs.body["jobs"][0]["job_id"].as_str().unwrap().to_owned();
    let failed = call(
        &app,
        &mut c,
        &worker,
        M::POST,
        "/v1/jobs/{job_id}/failure",
        &format!("/v1/jobs/{job}/failure"),
        None,
        Some(json!({ "retries": 0, "error_message": "down" })),
    )
    .await;
    assert_eq!(failed.status, 200, "{}", failed.body);
    let incidents = call(
        &app,
        &mut c,
        &ops,
        M::GET,
        "/v1/incidents",
        "/v1/incidents",
        None,
        None,
    )
    .await;
    let incident = incidents.body["items"][0]["incident_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resolved = call(
        &app,
        &mut c,
        &ops,
        M::POST,
        "/v1/incidents/{id}/resolution",
        &format!("/v1/incidents/{incident}/resolution"),
        None,
        Some(json!({ "reason": "back up", "retries": 2 })),
    )
    .await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    let jobs = call(&app, &mut c, &worker, M::POST, "/v1/jobs/activation", "/v1/jobs/activation", None, Some(json!({ "job_type": "contract-job", "worker": "contract", "timeout_ms": 60000, "max_jobs": 5 }))).await;
    let listed: Vec<String> = jobs.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 2, "{}", jobs.body);
    let done = call(
        &app,
        &mut c,
        &worker,
        M::POST,
        "/v1/jobs/{job_id}/completion",
        &format!("/v1/jobs/{}/completion", listed[0]),
        None,
        Some(json!({ "variables": { "ok": true } })),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let thrown = call(
        &app,
        &mut c,
        &worker,
        M::POST,
        "/v1/jobs/{job_id}/error",
        &format!("/v1/jobs/{}/error", listed[1]),
        None,
        Some(json!({ "error_code": "nope" })),
    )
    .await;
    assert_eq!(thrown.status, 200, "{}", thrown.body);

    // Problems and refusals are documented too.
    call(
        &app,
        &mut c,
        &sales,
        M::GET,
        "/v1/quotes/{id}",
        "/v1/quotes/not-a-uuid",
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        "nope",
        M::GET,
        "/v1/quotes",
        "/v1/quotes",
        None,
        None,
    )
    .await;
    call(
        &app,
        &mut c,
        &manager,
        M::POST,
        "/v1/quotes",
        "/v1/quotes",
        None,
        Some(json!({})),
    )
    .await;
    assert!(c.checked.len() > 65, "{:?}", c.checked);
}
