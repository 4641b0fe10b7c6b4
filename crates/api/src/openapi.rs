//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at `/openapi.json`
//! and checked in at `openapi/openapi.json` (a test keeps the two equal).
//!
//! The handlers' annotations say what is particular to each operation. What every operation of a
//! kind shares is added once, here, by [`conventions`] over the whole document:
//! - the problem responses each kind can answer (400 for anything with input, 401 and 403 with a
//!   token, 404 with a path id, 412 and 428 with `If-Match`, 409 and 422 for an idempotency key
//!   in use or reused, 413 and 422 with a body, 500 and 503 everywhere), all as
//!   `application/problem+json`, with `WWW-Authenticate` and `Retry-After` where sent;
//! - response headers: `x-request-id` on every response, `idempotent-replayed` on the answers of
//!   commands that take an `Idempotency-Key`, `ETag` on every answer carrying a versioned
//!   resource, `Location` on every 201 that names one;
//! - request headers: `If-Match` as an entity-tag list, `Idempotency-Key` as 1-255 printable
//!   ASCII characters, the optional `x-request-id` and `x-correlation-id` on every operation;
//! - `limit` and `cursor` on every paged list;
//! - success schemas of operations whose types live in crates without `utoipa`
//!   ([`schemas`]), and request constraints the server enforces beyond the Rust types
//!   (lengths, non-blank text, enums, formats), each named by schema and property.

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::openapi::schemas as s;

pub mod request;
pub mod schemas;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CPQ and order management platform API",
        description = "Configure, price, quote and order. Errors are RFC 9457 problem documents \
            (application/problem+json) with a stable `type` per kind. Every POST command accepts \
            `Idempotency-Key`; changes to versioned resources need `If-Match`. Lists page with \
            `limit` (1-200, default 50) and an opaque `cursor` bound to the filters.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    components(schemas(
        s::QuoteStatus, s::CatalogVersionPage, s::QuoteSummaryPage, s::ApprovalTaskPage,
        s::UserTaskPage, s::ProcessInstancePage, s::IncidentPage, s::ProcessDefinitionPage,
        s::OfferingPage, s::ValidationResult, s::PriceResult, s::Quote, s::RevisionList,
        s::Revision, s::Order, s::FulfillmentPlan, s::Decided, s::ApprovalPolicy,
        s::Deployments, s::Deployment, s::WorkerGroup, s::RoutingReplaced, s::ActivatedJobs, s::JobOutcome,
        s::JobFailed, s::StartedInstance, s::InstanceDetail, s::InstanceCancelled,
        s::IncidentResolved, s::Publication, s::UserTask, s::UserTaskCompleted, s::ConfiguredValue,
        s::Configured, s::Choice, s::Violation, s::Explanation, s::DecisionDefinitionPage,
        s::DecisionDefinition, s::DecisionEvaluation, s::SignalBroadcast,
    )),
    tags(
        (name = "customer-accounts", description = "Who quotes and orders are for"),
        (name = "catalog", description = "Catalog versions: author, publish, activate, search"),
        (name = "configuration", description = "Validate configurations and price carts"),
        (name = "workflow", description = "BPMN and DMN deployments, decision evaluation and worker groups"),
        (name = "quotes", description = "Quotes: create, lines, price, submit, accept, revise, cancel, convert"),
        (name = "approvals", description = "Approval tasks and the approval policy"),
        (name = "orders", description = "Orders converted from quotes"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `If-Match`: a comma-separated list of entity tags (RFC 9110), each `"..."` or `W/"..."`.
pub const IF_MATCH_PATTERN: &str =
    r#"^[ \t]*(W/)?"[!#-~\x80-\xff]*"([ \t]*,[ \t]*(W/)?"[!#-~\x80-\xff]*")*[ \t]*$"#;
/// `Idempotency-Key`: 1 to 255 printable ASCII characters, no spaces.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]{1,255}$";

/// The order search's `status`: a comma-separated list of order statuses.
const ORDER_STATUS_LIST: &str = "^(in-fulfillment|in-fallout|completed|cancelled)(,(in-fulfillment|in-fallout|completed|cancelled))*$";
/// An ISO 8601 duration of days and time (`PT15M`, `P1DT12H`).
const DAY_TIME_DURATION: &str = r"^P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$";

/// Schemas whose instances are versioned resources: answers carrying one carry its `ETag`.
const VERSIONED: [&str; 5] = [
    "CustomerAccountView",
    "CatalogVersionView",
    "Quote",
    "Order",
    "FalloutCase",
];

/// The success answers of operations whose annotations name no schema: (method, path, status,
/// schema).
const SUCCESS: &[(&str, &str, &str, &str)] = &[
    ("get", "/v1/catalog/versions", "200", "CatalogVersionPage"),
    (
        "get",
        "/v1/catalog/versions/{id}/document",
        "200",
        "CatalogDocument",
    ),
    ("get", "/v1/catalog/offerings", "200", "OfferingPage"),
    (
        "post",
        "/v1/configurations/validate",
        "200",
        "ValidationResult",
    ),
    ("post", "/v1/price", "200", "PriceResult"),
    ("post", "/v1/process-definitions", "200", "Deployments"),
    ("post", "/v1/process-definitions", "201", "Deployments"),
    ("post", "/v1/deployments", "200", "Deployment"),
    ("post", "/v1/deployments", "201", "Deployment"),
    (
        "get",
        "/v1/process-definitions",
        "200",
        "ProcessDefinitionPage",
    ),
    (
        "get",
        "/v1/decision-definitions",
        "200",
        "DecisionDefinitionPage",
    ),
    (
        "get",
        "/v1/decision-definitions/{id}",
        "200",
        "DecisionDefinition",
    ),
    (
        "post",
        "/v1/decision-definitions/{id}/evaluation",
        "200",
        "DecisionEvaluation",
    ),
    ("put", "/v1/worker-groups/{name}", "200", "WorkerGroup"),
    (
        "put",
        "/v1/process-definitions/{bpmn_process_id}/routing",
        "200",
        "RoutingReplaced",
    ),
    ("post", "/v1/jobs/activation", "200", "ActivatedJobs"),
    ("post", "/v1/jobs/{job_id}/completion", "200", "JobOutcome"),
    ("post", "/v1/jobs/{job_id}/failure", "200", "JobFailed"),
    ("post", "/v1/jobs/{job_id}/error", "200", "JobOutcome"),
    ("post", "/v1/process-instances", "201", "StartedInstance"),
    ("get", "/v1/process-instances", "200", "ProcessInstancePage"),
    ("get", "/v1/process-instances/{id}", "200", "InstanceDetail"),
    (
        "post",
        "/v1/process-instances/{id}/cancellation",
        "200",
        "InstanceCancelled",
    ),
    ("get", "/v1/incidents", "200", "IncidentPage"),
    (
        "post",
        "/v1/incidents/{id}/resolution",
        "200",
        "IncidentResolved",
    ),
    ("post", "/v1/messages", "200", "Publication"),
    ("post", "/v1/signals", "200", "SignalBroadcast"),
    ("get", "/v1/user-tasks", "200", "UserTaskPage"),
    ("post", "/v1/user-tasks/{id}/assignment", "200", "UserTask"),
    (
        "post",
        "/v1/user-tasks/{id}/completion",
        "200",
        "UserTaskCompleted",
    ),
    ("post", "/v1/quotes", "201", "Quote"),
    ("get", "/v1/quotes", "200", "QuoteSummaryPage"),
    ("get", "/v1/quotes/{id}", "200", "Quote"),
    ("post", "/v1/quotes/{id}/items", "200", "Quote"),
    ("put", "/v1/quotes/{id}/items/{line_no}", "200", "Quote"),
    ("delete", "/v1/quotes/{id}/items/{line_no}", "200", "Quote"),
    ("put", "/v1/quotes/{id}/terms", "200", "Quote"),
    ("post", "/v1/quotes/{id}/price", "200", "Quote"),
    ("post", "/v1/quotes/{id}/cancel", "200", "Quote"),
    ("post", "/v1/quotes/{id}/submit", "200", "Quote"),
    ("post", "/v1/quotes/{id}/accept", "200", "Quote"),
    ("post", "/v1/quotes/{id}/revise", "200", "Quote"),
    ("get", "/v1/quotes/{id}/revisions", "200", "RevisionList"),
    (
        "get",
        "/v1/quotes/{id}/revisions/{revision_no}",
        "200",
        "Revision",
    ),
    ("post", "/v1/quotes/{id}/convert", "201", "Order"),
    ("get", "/v1/orders/{id}", "200", "Order"),
    (
        "get",
        "/v1/orders/{id}/fulfillment-plan",
        "200",
        "FulfillmentPlan",
    ),
    ("get", "/v1/approval-tasks", "200", "ApprovalTaskPage"),
    ("post", "/v1/approval-tasks/{id}/approve", "200", "Decided"),
    ("post", "/v1/approval-tasks/{id}/reject", "200", "Decided"),
    ("post", "/v1/approval-tasks/{id}/return", "200", "Decided"),
    ("put", "/v1/approval-policy", "200", "ApprovalPolicy"),
    ("get", "/v1/approval-policy", "200", "ApprovalPolicy"),
];

/// Request bodies replaced by a stricter schema than the Rust type gives: (method, path, schema).
const REQUEST_BODIES: &[(&str, &str, &str)] = &[
    (
        "put",
        "/v1/catalog/versions/{id}/document",
        "CatalogDocument",
    ),
    (
        "post",
        "/v1/approval-tasks/{id}/reject",
        "CommentedDecision",
    ),
    (
        "post",
        "/v1/approval-tasks/{id}/return",
        "CommentedDecision",
    ),
];

/// Statuses an operation answers beyond those of its kind: (method, path, status, when).
const EXTRA: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/v1/price",
        "404",
        "`catalog_version` is not a published version of the caller's tenant",
    ),
    (
        "post",
        "/v1/price",
        "409",
        "No catalog version is in force on the context's date",
    ),
    (
        "post",
        "/v1/configurations/validate",
        "404",
        "`catalog_version` is not a published version of the caller's tenant",
    ),
    (
        "post",
        "/v1/configurations/validate",
        "409",
        "No catalog version is in force on the context's date",
    ),
    (
        "get",
        "/v1/catalog/offerings",
        "404",
        "`version` is not a published version of the caller's tenant",
    ),
    (
        "get",
        "/v1/catalog/offerings",
        "409",
        "No catalog version is in force on the date",
    ),
];

/// Query parameters whose values the server checks beyond their Rust type: (path, name, schema).
fn parameter_schemas() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "/v1/customer-accounts",
            "status",
            json!({ "type": "string", "enum": ["active", "closed"] }),
        ),
        (
            "/v1/customer-accounts/{id}/assets",
            "status",
            json!({ "type": "string", "enum": cpq_order::assets::AssetStatus::ALL.map(|s| s.as_str()) }),
        ),
        (
            "/v1/process-instances",
            "status",
            json!({ "type": "string", "enum": ["active", "completed", "terminated"] }),
        ),
        (
            "/v1/incidents",
            "status",
            json!({ "type": "string", "enum": ["open", "all"] }),
        ),
        ("/v1/quotes", "status", reference("QuoteStatus")),
        (
            "/v1/orders",
            "system",
            json!({ "type": "string", "enum": cpq_order::search::SYSTEMS }),
        ),
        (
            "/v1/orders",
            "status",
            json!({ "type": "string", "pattern": ORDER_STATUS_LIST }),
        ),
        (
            "/v1/orders",
            "older_than",
            json!({ "type": "string", "pattern": DAY_TIME_DURATION }),
        ),
        (
            "/v1/stuck-fulfillment-tasks",
            "older_than",
            json!({ "type": "string", "pattern": DAY_TIME_DURATION }),
        ),
        (
            "/v1/stuck-fulfillment-tasks",
            "system",
            json!({ "type": "string", "enum": cpq_order::search::SYSTEMS }),
        ),
        (
            "/v1/fallout-cases",
            "status",
            json!({ "type": "string", "enum": cpq_order::fallout::STATUSES }),
        ),
        (
            "/v1/fallout-cases",
            "system",
            json!({ "type": "string", "enum": cpq_order::fallout::SYSTEMS }),
        ),
        (
            "/v1/fallout-cases",
            "category",
            json!({ "type": "string", "enum": cpq_order::fallout::CATEGORIES }),
        ),
        (
            "/v1/process-definitions",
            "variable_schema_version",
            json!({ "type": "integer", "minimum": 1, "maximum": i32::MAX }),
        ),
        (
            "/v1/deployments",
            "variable_schema_version",
            json!({ "type": "integer", "minimum": 1, "maximum": i32::MAX }),
        ),
    ]
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

fn header(description: &str, schema: Value) -> Value {
    json!({ "description": description, "schema": schema })
}

/// The problem response for `status`, with the headers it is sent with.
fn problem_response(status: &str, description: &str) -> Value {
    let mut headers = Map::new();
    headers.insert(
        "x-request-id".into(),
        header(
            "This request's id (the client's, or generated): finds its log lines",
            json!({ "type": "string" }),
        ),
    );
    match status {
        "401" => {
            headers.insert(
                "WWW-Authenticate".into(),
                header("`Bearer`", json!({ "type": "string" })),
            );
        }
        "503" => {
            headers.insert(
                "Retry-After".into(),
                header(
                    "Seconds to wait; absent when it does not resolve by itself",
                    json!({ "type": "string" }),
                ),
            );
        }
        _ => {}
    }
    json!({
        "description": description,
        "headers": headers,
        "content": { "application/problem+json": { "schema": reference("Problem") } },
    })
}

fn standard_description(status: &str) -> &'static str {
    match status {
        "400" => "Malformed request: not JSON, wrong types, unknown fields or parameters, a bad cursor or If-Match (each in `errors`)",
        "401" => "Missing, malformed, expired, foreign or misaddressed token",
        "403" => "The token's roles do not allow this",
        "404" => "No such resource in the caller's tenant",
        "409" => "Conflict with the resource's state, or a request with this Idempotency-Key is still in progress",
        "412" => "If-Match names none of the resource's current ETag; `current_etag` says it",
        "413" => "The body is larger than the configured limit",
        "422" => "Values refused (`errors` lists every field), or the Idempotency-Key was used with another request",
        "428" => "If-Match is missing, empty or `*`",
        "500" => "A bug; the x-request-id finds the log",
        "503" => "A dependency is down, a needed process is not deployed, or the request ran over its time limit (rolled back)",
        _ => "Problem",
    }
}

fn param(name: &str, location: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({
        "name": name, "in": location, "required": required,
        "description": description, "schema": schema,
    })
}

fn page_params() -> [Value; 2] {
    [
        param(
            "limit",
            "query",
            false,
            "Page size, 1 to 200 (default 50)",
            json!({ "type": "integer", "format": "int32", "minimum": 1, "maximum": 200 }),
        ),
        param(
            "cursor",
            "query",
            false,
            "`next_cursor` of the previous page, with the same filters",
            json!({ "type": "string" }),
        ),
    ]
}

/// Adds `limit` and `cursor` where a list pages, normalises the header parameters, and adds the
/// optional request id headers.
fn parameters(op: &mut Map<String, Value>, paged: bool) {
    let params = op
        .entry("parameters")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = params.as_array_mut() else {
        return;
    };
    for p in list.iter_mut() {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        match name.as_str() {
            "If-Match" => {
                p["required"] = json!(true);
                p["description"] = json!("The ETag the change is based on (from the resource's ETag header); `*` is refused");
                p["schema"] = json!({ "type": "string", "pattern": IF_MATCH_PATTERN });
            }
            "Idempotency-Key" => {
                p["required"] = json!(false);
                p["description"] = json!("Makes retries safe: a replay of the same request returns the first answer, with `idempotent-replayed: true`");
                p["schema"] = json!({ "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN });
            }
            _ => {}
        }
    }
    let has = |list: &Vec<Value>, name: &str| list.iter().any(|p| p["name"] == name);
    if paged {
        for p in page_params() {
            if !has(list, p["name"].as_str().unwrap_or_default()) {
                list.push(p);
            }
        }
    }
    for (name, description) in [
        ("x-request-id", "Your id for this request, echoed on the response and in the logs, audit records and events (at most 128 characters; else one is generated)"),
        ("x-correlation-id", "The business flow's id, kept in audit records and events (default: the request id)"),
    ] {
        if !has(list, name) {
            list.push(param(name, "header", false, description, json!({ "type": "string" })));
        }
    }
}

fn has_param(op: &Map<String, Value>, location: &str, name: Option<&str>) -> bool {
    op.get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter()
                .any(|p| p["in"] == location && name.is_none_or(|n| p["name"].as_str() == Some(n)))
        })
}

/// The schema a response's JSON content names, if any.
fn json_schema_of(response: &Value) -> Option<&Value> {
    response
        .get("content")?
        .get("application/json")?
        .get("schema")
}

fn operation(path: &str, method: &str, op: &mut Map<String, Value>) {
    let authed = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    // The query and path parameters as annotated, before the header ones are added.
    let has_path = has_param(op, "path", None);
    let has_query = has_param(op, "query", None);
    let if_match = has_param(op, "header", Some("If-Match"));
    let idempotent = has_param(op, "header", Some("Idempotency-Key"));
    let has_body = op.contains_key("requestBody");

    for (m, p, status, schema) in SUCCESS {
        if *m == method && *p == path {
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(responses) = responses {
                let r = responses
                    .entry(status.to_string())
                    .or_insert_with(|| json!({ "description": "OK" }));
                r["content"] = json!({ "application/json": { "schema": reference(schema) } });
            }
        }
    }
    for (m, p, schema) in REQUEST_BODIES {
        if *m == method && *p == path {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": reference(schema) } } }),
            );
        }
    }

    for (p, name, schema) in parameter_schemas() {
        if p != path {
            continue;
        }
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for param in params.iter_mut().filter(|x| x["name"] == name) {
                param["schema"] = schema.clone();
            }
        }
    }
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        for (m, p, status, when) in EXTRA {
            if *m == method && *p == path {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| json!({ "description": when }));
            }
        }
    }

    let paged = op
        .get("responses")
        .and_then(|r| r.get("200"))
        .and_then(json_schema_of)
        .and_then(ref_name)
        .is_some_and(|n| n.ends_with("Page"));
    parameters(op, paged);

    let mut statuses: Vec<&str> = vec!["500", "503"];
    if has_path || has_query || has_body || if_match || idempotent || paged {
        statuses.push("400");
    }
    if authed {
        statuses.extend(["401", "403"]);
    }
    if has_path {
        statuses.push("404");
    }
    if if_match {
        statuses.extend(["412", "428"]);
    }
    if idempotent {
        statuses.extend(["409", "422"]);
    }
    if has_body {
        statuses.extend(["413", "422"]);
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for status in statuses {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| json!({ "description": standard_description(status) }));
    }
    for (status, response) in responses.iter_mut() {
        let success = status.starts_with('2');
        if !success {
            let description = response["description"]
                .as_str()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| standard_description(status))
                .to_owned();
            *response = problem_response(status, &description);
            continue;
        }
        let schema = json_schema_of(response)
            .and_then(ref_name)
            .map(str::to_owned);
        let headers = response
            .as_object_mut()
            .map(|r| r.entry("headers").or_insert_with(|| json!({})));
        let Some(headers) = headers.and_then(Value::as_object_mut) else {
            continue;
        };
        headers.insert(
            "x-request-id".into(),
            header(
                "This request's id (the client's, or generated): finds its log lines",
                json!({ "type": "string" }),
            ),
        );
        let versioned = schema.as_deref().is_some_and(|n| VERSIONED.contains(&n));
        if versioned {
            headers.insert(
                "ETag".into(),
                header(
                    "The resource's version as an entity tag; send it back in If-Match to change it",
                    json!({ "type": "string", "pattern": r#"^"[1-9][0-9]*"$"# }),
                ),
            );
        }
        if status == "201" && (versioned || schema.as_deref() == Some("StartedInstance")) {
            headers.insert(
                "Location".into(),
                header(
                    "The path of what was created",
                    json!({ "type": "string", "pattern": "^/v1/" }),
                ),
            );
        }
        if idempotent {
            headers.insert(
                "idempotent-replayed".into(),
                header(
                    "`true` when this is the stored answer to an earlier request with the same Idempotency-Key",
                    json!({ "type": "string", "enum": ["true"] }),
                ),
            );
        }
    }
}

/// The document as served (pretty JSON): the annotations' document, finished by
/// [`conventions`] (see the module documentation).
pub fn document(api: &utoipa::openapi::OpenApi) -> String {
    // Built from this crate's own annotations, so it serializes; every test of the document
    // would show it at once if it did not.
    let mut doc = serde_json::to_value(api).unwrap_or_default();
    conventions(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// What every operation of a kind shares, on the JSON form of the document.
pub fn conventions(doc: &mut Value) {
    request::add_schemas(doc);
    request::split_catalog_elements(doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                    operation(path, method, op);
                }
            }
        }
        paths.insert(
            "/openapi.json".into(),
            json!({ "get": {
                "tags": ["operations"],
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": { "description": "The OpenAPI 3.1 document",
                             "content": { "application/json": { "schema": { "type": "object" } } } }
                }
            }}),
        );
        if let Some(op) = paths
            .get_mut("/openapi.json")
            .and_then(|i| i.get_mut("get"))
            .and_then(Value::as_object_mut)
        {
            operation("/openapi.json", "get", op);
        }
    }
    request::constrain(doc);
    request::nul_free(doc);
    unique_operation_ids(doc);
}

/// Handlers in different modules share names (`list`, `create`, `activate`): an operation id
/// used more than once becomes `<method>_<path>`, so that links and generated clients can name
/// each operation.
fn unique_operation_ids(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for item in paths.values() {
        for method in METHODS {
            if let Some(id) = item.get(method).and_then(|o| o["operationId"].as_str()) {
                *seen.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                continue;
            };
            let duplicate = op
                .get("operationId")
                .and_then(Value::as_str)
                .is_some_and(|id| seen.get(id).copied().unwrap_or(0) > 1);
            if duplicate {
                let words: Vec<String> = path
                    .trim_start_matches("/v1")
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect();
                op.insert(
                    "operationId".into(),
                    json!(format!("{method}_{}", words.join("_"))),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        serde_json::from_str(&crate::openapi_json()).unwrap()
    }

    #[test]
    fn every_operation_has_a_success_schema_and_problem_content() {
        let doc = document();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                for (status, r) in op["responses"].as_object().unwrap() {
                    if status.starts_with('2') {
                        if r.get("content").is_none() {
                            missing.push(format!("{method} {path} {status}"));
                        }
                    } else {
                        assert!(
                            r["content"].get("application/problem+json").is_some(),
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no success schema: {missing:?}");
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let id = op["operationId"].as_str().unwrap();
                    assert!(ids.insert(id.to_owned()), "{id} twice");
                }
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn every_paged_list_declares_limit_and_cursor() {
        let doc = document();
        let mut lists = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let Some(op) = item.get("get") else { continue };
            let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
            if ref_name(schema).is_some_and(|n| n.ends_with("Page")) {
                lists += 1;
                let names: Vec<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert!(
                    names.contains(&"limit") && names.contains(&"cursor"),
                    "{path}"
                );
            }
        }
        assert_eq!(lists, 15, "the paged lists");
    }
}
