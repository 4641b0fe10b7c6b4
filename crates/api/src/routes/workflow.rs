//! `/v1/process-definitions` (deploy a BPMN or DMN file, list versions, version routing),
//! `/v1/deployments` (deploy several files together) and `/v1/worker-groups`
//! (what job types workers execute, with a heartbeat).
//!
//! Process definitions carry no tenant: they are deployed with a release and run for every
//! tenant. So the routing rules that pick the version of every tenant's new instances, and the
//! worker groups that serve every tenant's jobs, belong to the platform: only a platform
//! credential (the operator role with the all-tenants grant) changes them; a tenant's operator
//! gets 403 and changes nothing.

use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cpq_application::workflow::definitions::{
    DeployResource, DeployResources, ListProcessDefinitions, ReplaceRouting,
};
use cpq_application::workflow::worker_groups::HeartbeatWorkerGroup;
use cpq_application::Operation;
use cpq_core::Error;
use cpq_workflow::deployment::{Deployment, ProcessDefinition};
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

/// Deploy a BPMN or a DMN file (the XML as the body): a deployment of that one file (see
/// `POST /v1/deployments` for several). A file whose root is a DMN `<definitions>` (or whose
/// `resource_name` ends in `.dmn`) deploys decisions: one entry in `decisions` per decision of the
/// file; otherwise one entry in `deployments` per executable process. `created` is false when this
/// exact file was deployed before (no new version). `release_id`, `source_commit`,
/// `variable_schema_version` and `allow_unsupported_job_types` concern BPMN.
#[utoipa::path(post, path = "/v1/process-definitions", tag = "workflow", security(("bearer" = [])),
    params(DeployQuery, ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = String, content_type = "application/xml", description = "BPMN 2.0 or DMN 1.1-1.5 XML"),
    responses((status = 201, description = "At least one new version"), (status = 200, description = "Already deployed"),
              (status = 422, description = "unsupported elements (each by id), invalid process, job types no worker executes, a `deployment` binding to an id the file does not hold (`binding-not-in-deployment`), variable_schema_version below 1, or a DMN file the reader refuses (`invalid-dmn` naming the element and what is wrong) or without a decision", body = Problem)))]
pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiQuery(q): ApiQuery<DeployQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Only a deployer's body is read at all (and a refusal is 403 whatever the body).
    caller.0.require_any(DeployResources::ROLES)?;
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
    let xml = utf8(body.to_vec(), "the body")?;
    let name = q.resource_name.clone().unwrap_or_else(|| {
        if cpq_workflow::decisions::is_dmn(None, &xml) {
            "decisions.dmn".to_owned()
        } else {
            "process.bpmn".to_owned()
        }
    });
    let options = DeploymentQuery {
        release_id: q.release_id,
        source_commit: q.source_commit,
        variable_schema_version: q.variable_schema_version,
        allow_unsupported_job_types: q.allow_unsupported_job_types,
    };
    let resources = vec![DeployResource { name, xml }];
    run_deployment(
        state,
        caller,
        ctx,
        options,
        resources,
        &headers,
        "/v1/process-definitions",
        |d| {
            json!({
                "deployment_id": d.deployment_id,
                "deployments": d.processes,
                "decisions": d.decisions,
            })
        },
    )
    .await
}

/// Where a deployment's options are given: the query of both deployment endpoints.
#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeploymentQuery {
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    /// 1 to 2,147,483,647 (default 1).
    #[param(minimum = 1)]
    pub variable_schema_version: Option<i32>,
    /// Deploy although a job type has no worker group: local and integration only.
    #[serde(default)]
    pub allow_unsupported_job_types: bool,
}

/// Deploy several BPMN and DMN files together, as Camunda's `POST /v2/deployments` does: a
/// `multipart/form-data` body with one `resources` part per file, each with its file name. The
/// files are checked together and deployed as one deployment, all or nothing: when anything
/// changed, every process and decision gets a new version under one `deployment_id`, so that a
/// `bindingType="deployment"` call runs exactly what was deployed with its caller; when nothing
/// changed since the same files were deployed together, that deployment is answered with 200.
#[utoipa::path(post, path = "/v1/deployments", tag = "workflow", security(("bearer" = [])),
    params(DeploymentQuery, ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = DeploymentForm, content_type = "multipart/form-data", description = "one `resources` part per BPMN or DMN file, its filename the resource name"),
    responses((status = 201, description = "A new deployment: every process and decision in it has a new version"),
              (status = 200, description = "These files were deployed together before: that deployment"),
              (status = 400, description = "not multipart, or a part other than `resources`", body = Problem),
              (status = 422, description = "what `POST /v1/process-definitions` refuses, each problem naming its file; a part that is not UTF-8 text (`not-xml`); the same process or decision id in two files (`duplicate-id`); a `deployment` binding to an id no file holds (`binding-not-in-deployment`); no file", body = Problem)))]
pub async fn deploy_many(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiQuery(q): ApiQuery<DeploymentQuery>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    caller.0.require_any(DeployResources::ROLES)?;
    let malformed = |detail: String| Error::Malformed {
        detail,
        errors: vec![],
    };
    let mut form = <Multipart as axum::extract::FromRequest<()>>::from_request(request, &())
        .await
        .map_err(|e| {
            malformed(format!(
                "the body must be multipart/form-data: {}",
                e.body_text()
            ))
        })?;
    let mut resources = Vec::new();
    while let Some(part) = form.next_field().await.map_err(|e| {
        malformed(format!(
            "the multipart body could not be read: {}",
            e.body_text()
        ))
    })? {
        let field = part.name().unwrap_or_default().to_owned();
        if field != "resources" {
            return Err(malformed(format!(
                "unexpected part \"{field}\": each file goes in a part named \"resources\""
            ))
            .into());
        }
        let given = part
            .file_name()
            .map(str::to_owned)
            .filter(|n| !n.is_empty());
        let n = resources.len() + 1;
        let bytes = part
            .bytes()
            .await
            .map_err(|e| malformed(format!("the part {n} could not be read: {}", e.body_text())))?;
        let xml = String::from_utf8(bytes.to_vec()).map_err(|_| {
            Error::validation(vec![cpq_core::FieldError::new(
                "resources",
                "not-xml",
                format!(
                    "the part {n} ({}) is not UTF-8 text: a BPMN or DMN file is XML",
                    given.as_deref().unwrap_or("no filename")
                ),
            )])
        })?;
        // A part without a filename is named by its place and kind.
        let name = given.unwrap_or_else(|| {
            let kind = if cpq_workflow::decisions::is_dmn(None, &xml) {
                "dmn"
            } else {
                "bpmn"
            };
            format!("resource-{n}.{kind}")
        });
        resources.push(DeployResource { name, xml });
    }
    run_deployment(
        state,
        caller,
        ctx,
        q,
        resources,
        &headers,
        "/v1/deployments",
        |d| json!(d),
    )
    .await
}

/// The body of `POST /v1/deployments`, for the OpenAPI document.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct DeploymentForm {
    /// The files, one part each: BPMN or DMN XML, the part's filename the resource name (a
    /// part without one is `resource-N.bpmn` or `.dmn`).
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    resources: Vec<Vec<u8>>,
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| Error::Malformed {
        detail: format!("{what} is not UTF-8"),
        errors: vec![],
    })
}

/// Runs [`DeployResources`] for either endpoint (idempotent by its key, fingerprinted by the
/// options and every file), answering 201 for a new deployment and 200 for one made before.
#[allow(clippy::too_many_arguments)]
async fn run_deployment(
    state: AppState,
    caller: Caller,
    ctx: RequestContext,
    options: DeploymentQuery,
    resources: Vec<DeployResource>,
    headers: &HeaderMap,
    path: &str,
    answer: fn(&Deployment) -> serde_json::Value,
) -> Result<Response, ApiError> {
    // Deploying with job types no worker executes is for local and integration environments:
    // this server's environment decides (cpq-admin applies the same rule to its flag).
    if options.allow_unsupported_job_types && !state.config.environment.allows_dev_tokens() {
        return Err(Error::Forbidden {
            detail: format!(
                "allow_unsupported_job_types is refused in {}",
                state.config.environment.as_str()
            ),
        }
        .into());
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| IdempotencyKey(k.trim().to_owned()));
    let mut hasher = Sha256::new();
    hasher.update(format!("POST {path}\n"));
    hasher.update(serde_json::to_vec(&options).unwrap_or_default());
    for r in &resources {
        hasher.update((r.name.len() as u64).to_be_bytes());
        hasher.update(r.name.as_bytes());
        hasher.update((r.xml.len() as u64).to_be_bytes());
        hasher.update(r.xml.as_bytes());
    }
    let body = JsonBody {
        value: (options, resources),
        idempotency_key: key,
        fingerprint: hasher.finalize().into(),
        method: Method::POST.to_string(),
        path: path.into(),
    };
    let deploy = |(o, resources): (DeploymentQuery, Vec<DeployResource>)| DeployResources {
        resources,
        release_id: o.release_id,
        source_commit: o.source_commit,
        variable_schema_version: o.variable_schema_version,
        allow_unsupported_job_types: o.allow_unsupported_job_types,
    };
    command(&state, &caller, &ctx, body, deploy, |deployment| {
        Ok(CommandResponse {
            status: if deployment.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            ..CommandResponse::ok(answer(&deployment))
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
