//! Operations over process instances in the caller's tenant: start, list, inspect, cancel;
//! incidents (list, resolve by giving retries); publish a message. Repairs are audited.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_audit::{record, AuditEntry, CommandMeta};
use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::instances::{self, InstanceSummary, Message, StartRequest};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{execute, read};
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody, RequestContext};
use crate::pagination::{decode_cursor, page, page_size, query_fingerprint, Page};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

const OPERATIONS: &[Role] = &[Role::Operator, Role::OrderOperations];

async fn audit(
    tx: &mut Tx,
    meta: &CommandMeta,
    action: &'static str,
    id: Uuid,
    reason: Option<String>,
    after: Value,
) -> Result<(), Error> {
    record(
        tx,
        meta,
        &AuditEntry {
            action,
            aggregate_type: "process-instance",
            aggregate_id: id,
            before: None,
            after: Some(after),
            reason,
        },
        &[],
    )
    .await
    .map(|_| ())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInstance {
    pub bpmn_process_id: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    pub product_line: Option<String>,
    #[serde(default)]
    pub release_flags: Vec<String>,
}

#[utoipa::path(post, path = "/v1/process-instances", tag = "workflow", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header)), request_body = StartInstance,
    responses((status = 201, description = "Started (version chosen by the routing rules)"), (status = 404, body = Problem)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<StartInstance>,
) -> Result<Response, ApiError> {
    caller.0.require_any(OPERATIONS)?;
    let r = execute(&state, &caller, &ctx, body, |tx, meta, b: StartInstance| {
        Box::pin(async move {
            let started = instances::start_instance(
                tx,
                &StartRequest {
                    tenant: &meta.tenant,
                    bpmn_process_id: &b.bpmn_process_id,
                    product_line: b.product_line,
                    release_flags: b.release_flags,
                    variables: b.variables,
                    at: meta.occurred_at,
                },
            )
            .await?;
            let body = serde_json::to_value(&started).map_err(Error::internal)?;
            audit(
                tx,
                &meta,
                "process-instance.start",
                started.process_instance_id,
                None,
                body.clone(),
            )
            .await?;
            Ok(CommandResponse::created(
                format!("/v1/process-instances/{}", started.process_instance_id),
                body,
            ))
        })
    })
    .await?;
    Ok(r.into_response())
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// `active`, `completed` or `terminated`.
    pub status: Option<String>,
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/process-instances", tag = "workflow", security(("bearer" = [])),
    params(InstanceQuery), responses((status = 200, description = "A page of instances")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InstanceQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(OPERATIONS)?;
    if let Some(s) = &q.status {
        if !["active", "completed", "terminated"].contains(&s.as_str()) {
            return Err(Error::Malformed {
                detail: format!("status \"{s}\" is not active, completed or terminated"),
                errors: vec![FieldError::new(
                    "status",
                    "unknown-value",
                    "active, completed or terminated",
                )],
            }
            .into());
        }
    }
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    let fingerprint = query_fingerprint(&q);
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<Uuid>(c, &fingerprint))
        .transpose()?;
    let mut tx = read(&state, &caller).await?;
    let rows = instances::instance_list(
        &mut tx,
        &caller.0.tenant,
        q.status.as_deref(),
        after,
        i64::from(limit) + 1,
    )
    .await?;
    let p: Page<InstanceSummary> =
        page(rows, limit, &fingerprint, |i| i.process_instance_id, |i| i);
    Ok(axum::Json(p).into_response())
}

#[utoipa::path(get, path = "/v1/process-instances/{id}", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "State, variables, jobs, incidents"), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    caller.0.require_any(OPERATIONS)?;
    let mut tx = read(&state, &caller).await?;
    Ok(
        axum::Json(instances::instance_detail(&mut tx, &caller.0.tenant, id).await?)
            .into_response(),
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Repair {
    /// Why (kept in the audit trail).
    pub reason: String,
    /// For incident resolution: the retries the job gets again.
    #[serde(default)]
    pub retries: Option<i32>,
}

fn reason(r: &Repair) -> Result<(), Error> {
    if r.reason.trim().is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "reason",
            "required",
            "a repair needs a reason",
        )]));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/process-instances/{id}/cancellation", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Repair,
    responses((status = 200, description = "Cancelled"), (status = 409, description = "not active", body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Repair>,
) -> Result<Response, ApiError> {
    caller.0.require_any(OPERATIONS)?;
    reason(&body.value)?;
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: Repair| {
        Box::pin(async move {
            read_one(tx, &meta, id).await?;
            let status = instances::cancel_instance(tx, id, meta.occurred_at).await?;
            audit(
                tx,
                &meta,
                "process-instance.cancel",
                id,
                Some(b.reason),
                json!({ "status": status }),
            )
            .await?;
            Ok(CommandResponse::ok(
                json!({ "process_instance_id": id, "status": status }),
            ))
        })
    })
    .await?;
    Ok(r.into_response())
}

/// Confirms the instance is the caller's tenant's (404 otherwise) before a repair touches it.
async fn read_one(tx: &mut Tx, meta: &CommandMeta, id: Uuid) -> Result<Map<String, Value>, Error> {
    let detail = instances::instance_detail(tx, &meta.tenant, id).await?;
    Ok(detail.as_object().cloned().unwrap_or_default())
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// `open` (default) or `all`.
    pub status: Option<String>,
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/incidents", tag = "workflow", security(("bearer" = [])),
    params(IncidentQuery), responses((status = 200, description = "A page of incidents")))]
pub async fn incidents(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(OPERATIONS)?;
    let open_only = match q.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(Error::Malformed {
                detail: format!("status \"{other}\" is not open or all"),
                errors: vec![FieldError::new("status", "unknown-value", "open or all")],
            }
            .into())
        }
    };
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    let fingerprint = query_fingerprint(&q);
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<Uuid>(c, &fingerprint))
        .transpose()?;
    let mut tx = read(&state, &caller).await?;
    let rows = instances::incident_list(
        &mut tx,
        &caller.0.tenant,
        open_only,
        after,
        i64::from(limit) + 1,
    )
    .await?;
    let key = |v: &Value| {
        v["incident_id"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok())
            .unwrap_or_default()
    };
    let p: Page<Value> = page(rows, limit, &fingerprint, key, |v| v);
    Ok(axum::Json(p).into_response())
}

#[utoipa::path(post, path = "/v1/incidents/{id}/resolution", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Repair,
    responses((status = 200, description = "Resolved; the job is retried"), (status = 409, body = Problem)))]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Repair>,
) -> Result<Response, ApiError> {
    caller.0.require_any(OPERATIONS)?;
    reason(&body.value)?;
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: Repair| {
        Box::pin(async move {
            let retries = b.retries.unwrap_or(1);
            instances::resolve_incident(tx, id, retries, meta.occurred_at).await?;
            record(
                tx,
                &meta,
                &AuditEntry {
                    action: "incident.resolve",
                    aggregate_type: "incident",
                    aggregate_id: id,
                    before: None,
                    after: Some(json!({ "retries": retries })),
                    reason: Some(b.reason),
                },
                &[],
            )
            .await?;
            Ok(CommandResponse::ok(
                json!({ "incident_id": id, "status": "resolved", "retries": retries }),
            ))
        })
    })
    .await?;
    Ok(r.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    pub name: String,
    pub correlation_key: String,
    /// How long the message waits for a subscription, 0 to 315,360,000,000 ms (ten years); 0:
    /// correlated at once or dropped.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 315_360_000_000_u64)]
    pub time_to_live_ms: u64,
    /// Deduplicates: while a message with this name and id lives (its time to live, whether it
    /// was buffered, correlated at once or started an instance), another is refused with 409.
    pub message_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

#[utoipa::path(post, path = "/v1/messages", tag = "workflow", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header)), request_body = PublishMessage,
    responses((status = 200, description = "correlated, started_instance, buffered or dropped"),
              (status = 409, description = "a message with this name and message_id was published within its time to live", body = Problem),
              (status = 422, description = "blank name or correlation key, time_to_live_ms out of range", body = Problem)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<PublishMessage>,
) -> Result<Response, ApiError> {
    caller
        .0
        .require_any(&[Role::Operator, Role::OrderOperations, Role::Worker])?;
    let mut errors = Vec::new();
    if body.value.name.trim().is_empty() {
        errors.push(FieldError::new(
            "name",
            "required",
            "name must not be blank",
        ));
    }
    if body.value.correlation_key.is_empty() {
        errors.push(FieldError::new(
            "correlation_key",
            "required",
            "correlation_key must not be empty",
        ));
    }
    if u128::from(body.value.time_to_live_ms) > instances::MAX_MESSAGE_TTL.as_millis() {
        errors.push(FieldError::new(
            "time_to_live_ms",
            "out-of-range",
            format!(
                "time_to_live_ms is 0 to {} (ten years)",
                instances::MAX_MESSAGE_TTL.as_millis()
            ),
        ));
    }
    if body
        .value
        .message_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        errors.push(FieldError::new(
            "message_id",
            "required",
            "message_id must not be blank (leave it out for no deduplication)",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        |tx, meta, b: PublishMessage| {
            Box::pin(async move {
                let outcome = instances::publish_message(
                    tx,
                    &Message {
                        tenant: &meta.tenant,
                        name: &b.name,
                        correlation_key: &b.correlation_key,
                        time_to_live: Duration::from_millis(b.time_to_live_ms),
                        message_id: b.message_id.as_deref(),
                        variables: b.variables,
                        at: meta.occurred_at,
                    },
                )
                .await?;
                Ok(CommandResponse::ok(
                    serde_json::to_value(&outcome).map_err(Error::internal)?,
                ))
            })
        },
    )
    .await?;
    Ok(r.into_response())
}
