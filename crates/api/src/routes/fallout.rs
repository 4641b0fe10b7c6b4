//! `/v1/fallout-cases`: the order operations worklist of plan tasks that failed permanently or
//! ran out of retries, and their repairs (`retry`, optionally with corrected input; `skip`;
//! `cancel-order`), each with a reason, audited, in one transaction.
//!
//! Repairs take no `If-Match`: like an incident's resolution, a repair is a decision on the case
//! as it stands, and only an `open` case is repaired (a second repair, concurrent or not, is
//! refused with 409). They take an `Idempotency-Key` like every POST command.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cpq_application::fallout::{
    CancelOrderFromFallout, FetchFalloutCase, ListFalloutCases, RetryFalloutCase, SkipFalloutCase,
};
use cpq_application::Operation;
use cpq_core::{Error, FieldError};
use cpq_order::fallout::{self as model, CaseFilter, Repaired};
use cpq_workflow::feel::{self, Value as FeelValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

/// A fallout case (also the `ETag`: `version`). A repair's answer adds `publication`.
#[derive(ToSchema)]
pub struct FalloutCase {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `in-fallout` while a case of the order is open; `in-fulfillment`, `completed`, `cancelled`.
    pub order_status: String,
    pub task_key: String,
    /// The plan task's status now (`failed` while the case is open, `ready` after a retry).
    pub task_status: String,
    pub job_type: String,
    pub system: Option<String>,
    /// `business-failure`, `technical-failure`, `callback-failed` or `callback-timeout`.
    pub category: String,
    /// `open`, `retried`, `skipped` or `cancelled`.
    pub status: String,
    pub error_code: Option<String>,
    #[schema(value_type = Object)]
    pub last_error: Value,
    /// The request the worker sent (body and idempotency key), when one was sent.
    #[schema(value_type = Option<Object>)]
    pub request: Option<Value>,
    pub attempts: i32,
    pub process_instance_id: Uuid,
    /// `{action, reason, actor, input?}` once repaired (`by_fallout_case` on the other cases an
    /// order's cancellation closed).
    #[schema(value_type = Option<Object>)]
    pub resolution: Option<Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Only in the answer of a retry or skip: what became of the `fallout-resolved` message
    /// (`correlated` to the task's waiting subprocess, `buffered` for it, ...).
    #[schema(value_type = Option<Object>)]
    pub publication: Option<Value>,
}

/// A page of fallout cases, newest first.
#[derive(ToSchema)]
pub struct FalloutCasePage {
    pub items: Vec<FalloutCase>,
    /// Pass as `cursor` (with the same filters) for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// `open`, `retried`, `skipped` or `cancelled`.
    pub status: Option<String>,
    /// `inventory`, `provisioning`, `billing`, `crm` or `notification`.
    pub system: Option<String>,
    /// `business-failure`, `technical-failure`, `callback-failed` or `callback-timeout`.
    pub category: Option<String>,
    pub order_id: Option<Uuid>,
    /// Age: only cases opened longer ago than this ISO 8601 duration of days and time
    /// (`PT30M`, `PT4H`, `P2D`, `P1DT12H`), counted from the request.
    pub older_than: Option<String>,
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

fn unknown_value(field: &str, value: &str, allowed: &[&str]) -> Error {
    let allowed = allowed.join(", ");
    Error::Malformed {
        detail: format!("{field} \"{value}\" is not one of {allowed}"),
        errors: vec![FieldError::new(field, "unknown-value", allowed)],
    }
}

/// `value` when it is one of `allowed`.
fn one_of(field: &str, value: &Option<String>, allowed: &[&str]) -> Result<Option<String>, Error> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(unknown_value(field, v, allowed)),
        v => Ok(v.clone()),
    }
}

/// `older_than` as the instant cases must be opened before.
fn opened_before(older_than: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let refused = |why: &str| Error::Malformed {
        detail: format!("older_than \"{older_than}\" {why}"),
        errors: vec![FieldError::new(
            "older_than",
            "invalid-format",
            "an ISO 8601 duration of days and time, such as PT4H or P2D",
        )],
    };
    match feel::parse_duration(older_than) {
        Ok(FeelValue::Duration(d)) if d > chrono::TimeDelta::zero() => now
            .checked_sub_signed(d)
            .ok_or_else(|| refused("is too long a duration")),
        Ok(FeelValue::Duration(_)) => Err(refused("is not a positive duration")),
        Ok(_) => Err(refused("counts years or months; give days and time (P30D)")),
        Err(_) => Err(refused("is not an ISO 8601 duration")),
    }
}

/// The worklist of fallout cases, newest first; every filter is optional.
#[utoipa::path(get, path = "/v1/fallout-cases", tag = "orders", security(("bearer" = [])),
    params(CaseQuery), responses((status = 200, description = "A page of fallout cases", body = FalloutCasePage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CaseQuery>,
) -> Result<Response, ApiError> {
    // A caller who may not read cases is refused before the query is checked, as always.
    caller.0.require_any(ListFalloutCases::ROLES)?;
    let filter = CaseFilter {
        status: one_of("status", &q.status, &model::STATUSES)?,
        system: one_of("system", &q.system, &model::SYSTEMS)?,
        category: one_of("category", &q.category, &model::CATEGORIES)?,
        order_id: q.order_id,
        opened_before: q
            .older_than
            .as_deref()
            .map(|o| opened_before(o, Utc::now()))
            .transpose()?,
    };
    let paging = PageRequest::<(DateTime<Utc>, Uuid)>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &q,
    )?;
    let list = ListFalloutCases {
        filter,
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<model::FalloutCase> = paging.page(rows, |c| (c.created_at, c.id), |c| c);
    Ok(axum::Json(p).into_response())
}

/// The case with its `ETag`.
fn case_answer(
    case: model::FalloutCase,
    publication: Option<Value>,
) -> Result<CommandResponse, Error> {
    let version = case.version;
    let mut body = serde_json::to_value(case).map_err(Error::internal)?;
    if let Some(p) = publication {
        body["publication"] = p;
    }
    Ok(CommandResponse::ok(body).with_etag(version))
}

fn repaired(r: Repaired) -> Result<CommandResponse, Error> {
    let publication = r
        .publication
        .map(|p| serde_json::to_value(p).map_err(Error::internal))
        .transpose()?;
    case_answer(r.case, publication)
}

#[utoipa::path(get, path = "/v1/fallout-cases/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The case: order, task, system, category, attempts, last error, the request sent, status, resolution", body = FalloutCase), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let case = query(&state, &caller, FetchFalloutCase(id)).await?;
    Ok(case_answer(case, None)?.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryCase {
    /// Why (1-500 characters, trimmed; kept in the case's resolution and the audit trail).
    /// Required: a missing or blank reason is refused with 422.
    #[serde(default)]
    pub reason: String,
    /// Corrected input for the task's job (an object): the retried job gets it as `task.input`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairReason {
    /// Why (1-500 characters, trimmed; kept in the case's resolution and the audit trail).
    /// Required: a missing or blank reason is refused with 422.
    #[serde(default)]
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/fallout-cases/{id}/retry", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = RetryCase,
    responses((status = 200, description = "Retried: the task is ready and its job runs again", body = FalloutCase),
        (status = 409, description = "the case is not open, or its order is no longer being fulfilled", body = Problem),
        (status = 422, description = "no reason, or input that is not an object", body = Problem)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<RetryCase>,
) -> Result<Response, ApiError> {
    let input = |b: RetryCase| RetryFalloutCase {
        id,
        reason: b.reason,
        input: b.input,
    };
    command(&state, &caller, &ctx, body, input, repaired).await
}

#[utoipa::path(post, path = "/v1/fallout-cases/{id}/skip", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = RepairReason,
    responses((status = 200, description = "Skipped: the task counts as done and its dependants proceed", body = FalloutCase),
        (status = 409, description = "the case is not open, or its order is no longer being fulfilled", body = Problem),
        (status = 422, description = "no reason", body = Problem)))]
pub async fn skip(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<RepairReason>,
) -> Result<Response, ApiError> {
    let input = |b: RepairReason| SkipFalloutCase {
        id,
        reason: b.reason,
    };
    command(&state, &caller, &ctx, body, input, repaired).await
}

#[utoipa::path(post, path = "/v1/fallout-cases/{id}/cancel-order", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = RepairReason,
    responses((status = 200, description = "The order is cancelled with its fulfillment process, items, unfinished tasks and every open case", body = FalloutCase),
        (status = 409, description = "the case is not open, or its order is no longer being fulfilled", body = Problem),
        (status = 422, description = "no reason", body = Problem)))]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<RepairReason>,
) -> Result<Response, ApiError> {
    let input = |b: RepairReason| CancelOrderFromFallout {
        id,
        reason: b.reason,
    };
    command(&state, &caller, &ctx, body, input, repaired).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_than_is_a_positive_duration_of_days_and_time() {
        let now = Utc::now();
        assert_eq!(
            opened_before("PT4H", now).unwrap(),
            now - chrono::TimeDelta::hours(4)
        );
        assert_eq!(
            opened_before("P2D", now).unwrap(),
            now - chrono::TimeDelta::days(2)
        );
        for bad in ["", "4h", "P1M", "PT0S", "-PT1H", "2026-01-01T00:00:00Z"] {
            assert!(opened_before(bad, now).is_err(), "{bad}");
        }
    }
}
