//! `/v1/decision-definitions`: the deployed DMN decisions (deployed through
//! `POST /v1/process-definitions`, which tells a `.dmn` file by its root element's namespace),
//! one version by its key, and evaluating a decision as Camunda's REST API does
//! (`POST /v1/decision-definitions/{id}/evaluation`).
//!
//! Decision definitions carry no tenant, like process definitions: operators deploy them with a
//! release and list them; any signed-in role may evaluate one.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_application::workflow::decisions::{
    EvaluateDecision, GetDecisionDefinition, ListDecisionDefinitions,
};
use cpq_application::Operation;
use cpq_workflow::decisions::DecisionDefinition;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::query;
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

/// Every deployed decision version, in deployment order.
#[utoipa::path(get, path = "/v1/decision-definitions", tag = "workflow", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, description = "Deployed decision versions, in deployment order")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(ListDecisionDefinitions::ROLES)?;
    let paging = PageRequest::<Uuid>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListDecisionDefinitions {
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<DecisionDefinition> = paging.page(rows, |d| d.decision_definition_id, |d| d);
    Ok(axum::Json(p).into_response())
}

/// One deployed decision version by its key (`decision_definition_id`).
#[utoipa::path(get, path = "/v1/decision-definitions/{id}", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The version's key (`decision_definition_id`)")),
    responses((status = 200, description = "The decision version"), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let definition = query(&state, &caller, GetDecisionDefinition { key }).await?;
    Ok(axum::Json(definition).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationRequest {
    /// The input data by name (a FEEL context), e.g. `{"Segment": "enterprise"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Evaluate this version instead of the latest (at least 1).
    #[schema(minimum = 1)]
    pub version: Option<i32>,
}

/// Evaluates the latest version (or `version`) of decision `id` with the decisions it requires.
/// The answer gives the decision's output and, per evaluated decision (required ones first), its
/// output. A table no rule matches gives `null`; a violated hit policy (several rules of a
/// UNIQUE table match) or an input the engine cannot read is 422 naming the decision.
#[utoipa::path(post, path = "/v1/decision-definitions/{id}/evaluation", tag = "workflow", security(("bearer" = [])),
    params(("id" = String, Path, description = "The decision's id in the DMN file")),
    request_body = EvaluationRequest,
    responses((status = 200, description = "The decision's output and every evaluated decision's"),
              (status = 404, description = "no decision (or version) with that id is deployed", body = Problem),
              (status = 422, description = "the evaluation failed (`errors` names the decision and why)", body = Problem)))]
pub async fn evaluate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(decision_id): ApiPath<String>,
    body: JsonBody<EvaluationRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let evaluation = EvaluateDecision {
        decision_id,
        version: b.version,
        variables: b.variables,
    };
    let answer = query(&state, &caller, evaluation).await?;
    Ok(axum::Json(answer).into_response())
}
