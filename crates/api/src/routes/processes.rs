//! Operations over process instances in the caller's tenant: start, list, inspect, cancel;
//! incidents (list, resolve by giving retries); publish a message. Repairs are audited.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_application::workflow::incidents::{ListIncidents, ResolveIncident};
use cpq_application::workflow::instances::{
    CancelInstance, FetchInstance, ListInstances, StartInstance as Start,
};
use cpq_application::workflow::messages::PublishMessage as Publish;
use cpq_application::workflow::signals::BroadcastSignal as Broadcast;
use cpq_application::Operation;
use cpq_core::{Error, FieldError};
use cpq_workflow::instances::InstanceSummary;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

fn ok(body: &impl Serialize) -> Result<CommandResponse, Error> {
    Ok(CommandResponse::ok(
        serde_json::to_value(body).map_err(Error::internal)?,
    ))
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
    let start = |b: StartInstance| Start {
        bpmn_process_id: b.bpmn_process_id,
        variables: b.variables,
        product_line: b.product_line,
        release_flags: b.release_flags,
    };
    command(&state, &caller, &ctx, body, start, |started| {
        let id = started.process_instance_id;
        let body = serde_json::to_value(&started).map_err(Error::internal)?;
        Ok(CommandResponse::created(
            format!("/v1/process-instances/{id}"),
            body,
        ))
    })
    .await
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
    caller.0.require_any(ListInstances::ROLES)?;
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
    let paging = PageRequest::<Uuid>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListInstances {
        status: q.status.clone(),
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<InstanceSummary> = paging.page(rows, |i| i.process_instance_id, |i| i);
    Ok(axum::Json(p).into_response())
}

#[utoipa::path(get, path = "/v1/process-instances/{id}", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "State, variables, jobs, incidents"), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let detail = query(&state, &caller, FetchInstance(id)).await?;
    Ok(axum::Json(detail).into_response())
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
    let cancel = |b: Repair| CancelInstance {
        id,
        reason: b.reason,
    };
    command(&state, &caller, &ctx, body, cancel, |status| {
        ok(&json!({ "process_instance_id": id, "status": status }))
    })
    .await
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
    caller.0.require_any(ListIncidents::ROLES)?;
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
    let paging = PageRequest::<Uuid>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListIncidents {
        open_only,
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let key = |v: &Value| {
        v["incident_id"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok())
            .unwrap_or_default()
    };
    let p: Page<Value> = paging.page(rows, key, |v| v);
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
    let resolve = |b: Repair| ResolveIncident {
        id,
        reason: b.reason,
        retries: b.retries,
    };
    command(&state, &caller, &ctx, body, resolve, |retries| {
        ok(&json!({ "incident_id": id, "status": "resolved", "retries": retries }))
    })
    .await
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
    let publish = |b: PublishMessage| Publish {
        name: b.name,
        correlation_key: b.correlation_key,
        time_to_live_ms: b.time_to_live_ms,
        message_id: b.message_id,
        variables: b.variables,
    };
    command(&state, &caller, &ctx, body, publish, |outcome| ok(&outcome)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastSignal {
    /// The signal's name (a `bpmn:signal`'s `name`).
    pub signal_name: String,
    /// Set where the signal is caught, and the variables of the instances it starts.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

#[utoipa::path(post, path = "/v1/signals", tag = "workflow", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header)), request_body = BroadcastSignal,
    responses((status = 200, description = "Broadcast: the subscriptions it triggered and the instances it started, the signals it led to included", body = crate::openapi::schemas::SignalBroadcast),
              (status = 409, description = "the signals it led to went past 100 (processes signalling each other in a loop); nothing was done", body = Problem),
              (status = 422, description = "blank signal_name", body = Problem)))]
pub async fn broadcast_signal(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<BroadcastSignal>,
) -> Result<Response, ApiError> {
    let broadcast = |b: BroadcastSignal| Broadcast {
        signal_name: b.signal_name,
        variables: b.variables,
    };
    command(&state, &caller, &ctx, body, broadcast, |outcome| {
        ok(&outcome)
    })
    .await
}
