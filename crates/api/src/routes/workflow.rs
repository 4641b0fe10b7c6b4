//! `/v1/process-definitions` (deploy BPMN, list versions, version routing) and `/v1/worker-groups`
//! (what job types workers execute, with a heartbeat).
//!
//! Process definitions carry no tenant: they are deployed with a release and run for every
//! tenant. So the routing rules that pick the version of every tenant's new instances, and the
//! worker groups that serve every tenant's jobs, belong to the platform: only a platform
//! credential (the operator role with the all-tenants grant) changes them; a tenant's operator
//! gets 403 and changes nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cpq_application::workflow::decisions::DeployDecisions;
use cpq_application::workflow::definitions::{
    DeployProcesses, ListProcessDefinitions, ReplaceRouting,
};
use cpq_application::workflow::worker_groups::HeartbeatWorkerGroup;
use cpq_application::Operation;
use cpq_core::Error;
use cpq_workflow::deployment::ProcessDefinition;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, IdempotencyKey, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeployQuery {
    /// File name recorded with the deployment.
    pub resource_name: Option<String>,
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    /// 1 to 2,147,483,647 (default 1).
    #[param(minimum = 1)]
    pub variable_schema_version: Option<i32>,
    /// Deploy although a job type has no worker group: local and integration only.
    #[serde(default)]
    pub allow_unsupported_job_types: bool,
}

/// Deploy a BPMN or a DMN file (the XML as the body). A file whose root is a DMN `<definitions>`
/// (or whose `resource_name` ends in `.dmn`) deploys decisions: one entry in `decisions` per
/// decision of the file; otherwise one entry in `deployments` per executable process.
/// `created` is false when this exact file was deployed before (no new version). `release_id`,
/// `source_commit`, `variable_schema_version` and `allow_unsupported_job_types` concern BPMN.
#[utoipa::path(post, path = "/v1/process-definitions", tag = "workflow", security(("bearer" = [])),
    params(DeployQuery, ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = String, content_type = "application/xml", description = "BPMN 2.0 or DMN 1.1-1.5 XML"),
    responses((status = 201, description = "At least one new version"), (status = 200, description = "Already deployed"),
              (status = 422, description = "unsupported elements (each by id), invalid process, job types no worker executes, variable_schema_version below 1, or a DMN file the reader refuses (`invalid-dmn` naming the element and what is wrong) or without a decision", body = Problem)))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiQuery(q): ApiQuery<DeployQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Only a deployer's body is read at all (and a refusal is 403 whatever the body).
    caller.0.require_any(DeployProcesses::ROLES)?;
    let xml_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if !matches!(
        xml_type.as_deref(),
        Some("application/xml" | "text/xml" | "application/bpmn+xml")
    ) {
        return Err(Error::Malformed {
            detail: "the body must be BPMN or DMN XML (Content-Type: application/xml)".into(),
            errors: vec![],
        }
        .into());
    }
    // Deploying with job types no worker executes is for local and integration environments:
    // this server's environment decides (cpq-admin applies the same rule to its flag).
    if q.allow_unsupported_job_types && !state.config.environment.allows_dev_tokens() {
        return Err(Error::Forbidden {
            detail: format!(
                "allow_unsupported_job_types is refused in {}",
                state.config.environment.as_str()
            ),
        }
        .into());
    }
    let xml = String::from_utf8(body.to_vec()).map_err(|_| Error::Malformed {
        detail: "the body is not UTF-8".into(),
        errors: vec![],
    })?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| IdempotencyKey(k.trim().to_owned()));
    let mut hasher = Sha256::new();
    hasher.update(b"POST /v1/process-definitions\n");
    hasher.update(serde_json::to_vec(&q).unwrap_or_default());
    hasher.update(xml.as_bytes());
    let body = JsonBody {
        value: (q, xml),
        idempotency_key: key,
        fingerprint: hasher.finalize().into(),
        method: Method::POST.to_string(),
        path: "/v1/process-definitions".into(),
    };
    if cpq_workflow::decisions::is_dmn(body.value.0.resource_name.as_deref(), &body.value.1) {
        let deploy = |(q, xml): (DeployQuery, String)| DeployDecisions {
            resource_name: q.resource_name,
            xml,
        };
        return command(&state, &caller, &ctx, body, deploy, |deployed| {
            let created = deployed.iter().any(|d| d.created);
            let body = serde_json::to_value(&deployed).map_err(Error::internal)?;
            Ok(CommandResponse {
                status: if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                ..CommandResponse::ok(json!({ "deployments": [], "decisions": body }))
            })
        })
        .await;
    }
    let deploy = |(q, xml): (DeployQuery, String)| DeployProcesses {
        resource_name: q.resource_name,
        xml,
        release_id: q.release_id,
        source_commit: q.source_commit,
        variable_schema_version: q.variable_schema_version,
        allow_unsupported_job_types: q.allow_unsupported_job_types,
    };
    command(&state, &caller, &ctx, body, deploy, |deployed| {
        let created = deployed.iter().any(|d| d.created);
        let body = serde_json::to_value(&deployed).map_err(Error::internal)?;
        Ok(CommandResponse {
            status: if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            ..CommandResponse::ok(json!({ "deployments": body, "decisions": [] }))
        })
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/process-definitions", tag = "workflow", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, description = "Deployed versions, in deployment order")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(ListProcessDefinitions::ROLES)?;
    let paging = PageRequest::<Uuid>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListProcessDefinitions {
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<ProcessDefinition> = paging.page(rows, |d| d.process_definition_id, |d| d);
    Ok(axum::Json(p).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerGroupHeartbeat {
    pub job_types: Vec<String>,
    pub worker_version: String,
}

/// Registers a worker group's job types, or refreshes its heartbeat. Worker groups serve every
/// tenant: a platform credential only (operator role and the all-tenants grant).
#[utoipa::path(put, path = "/v1/worker-groups/{name}", tag = "workflow", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = WorkerGroupHeartbeat,
    responses((status = 200, description = "Registered"), (status = 403, description = "not a platform credential", body = Problem), (status = 422, body = Problem)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(name): ApiPath<String>,
    body: JsonBody<WorkerGroupHeartbeat>,
) -> Result<Response, ApiError> {
    let heartbeat = |b: WorkerGroupHeartbeat| HeartbeatWorkerGroup {
        name,
        job_types: b.job_types,
        worker_version: b.worker_version,
    };
    command(&state, &caller, &ctx, body, heartbeat, |g| {
        Ok(CommandResponse::ok(
            json!({ "group": g.name, "job_types": g.job_types, "worker_version": g.worker_version }),
        ))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The most specific matching rule wins (tenant, product line, release flag), then priority;
    /// no match → the latest version.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<cpq_workflow::routing::VersionRule>,
}

/// Replaces which version new instances of a process use, in every tenant (rules may name a
/// tenant): a platform credential only (operator role and the all-tenants grant).
#[utoipa::path(put, path = "/v1/process-definitions/{bpmn_process_id}/routing", tag = "workflow", security(("bearer" = [])),
    params(("bpmn_process_id" = String, Path)), request_body = Routing,
    responses((status = 200, description = "Replaced"), (status = 403, description = "not a platform credential", body = Problem), (status = 404, body = Problem), (status = 422, description = "a rule names an undeployed version", body = Problem)))]
pub async fn routing(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(process): ApiPath<String>,
    body: JsonBody<Routing>,
) -> Result<Response, ApiError> {
    let replace = |b: Routing| ReplaceRouting {
        bpmn_process_id: process.clone(),
        rules: b.rules,
    };
    command(&state, &caller, &ctx, body, replace, |rules| {
        Ok(CommandResponse::ok(
            json!({ "bpmn_process_id": process, "rules": rules }),
        ))
    })
    .await
}
