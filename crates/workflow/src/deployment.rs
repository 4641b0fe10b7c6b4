//! Deploying BPMN and DMN files, one or several together: read and validate, refuse job types no
//! worker group executes and deployment bindings the deployment cannot satisfy, version by process
//! and decision id, and make no new version for a deployment already made (same files).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cpq_core::{Error, FieldError};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use uuid::Uuid;

use crate::bpmn::{self, DeployError, ElementKind, USER_TASK_JOB_TYPE};
use crate::decisions::{self, DeployedDecision, ReadDecisions};
use crate::routing::VersionRule;

#[derive(Debug, Clone)]
pub struct DeployRequest<'a> {
    pub resource_name: &'a str,
    pub xml: &'a str,
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    pub variable_schema_version: i32,
    /// Deploy even when a job type has no worker group (local use only; callers check).
    pub allow_unsupported_job_types: bool,
    pub deployed_by: &'a str,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ProcessDefinition {
    pub process_definition_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
    pub name: Option<String>,
    pub checksum: String,
    pub resource_name: String,
    pub job_types: Vec<String>,
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    pub variable_schema_version: i32,
    pub deployed_at: DateTime<Utc>,
    pub deployed_by: String,
    /// The deployment this version was deployed in, with the other files deployed together.
    pub deployment_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    pub definition: ProcessDefinition,
    /// False when this exact file was deployed before: no new version.
    pub created: bool,
}

/// The deploy refusal as field problems: each unsupported element, each structural problem.
pub fn deploy_error(e: DeployError) -> Error {
    match e {
        DeployError::Xml(detail) => {
            Error::validation(vec![FieldError::new("bpmn", "not-bpmn", detail)])
        }
        DeployError::Unsupported(found) => Error::validation(
            found
                .into_iter()
                .map(|(id, kind)| {
                    FieldError::new(
                        id,
                        "unsupported-element",
                        format!("{kind} is not supported by the engine"),
                    )
                })
                .collect(),
        ),
        DeployError::Invalid(problems) => Error::validation(
            problems
                .into_iter()
                .map(|p| FieldError::new("bpmn", "invalid-process", p))
                .collect(),
        ),
    }
}

const COLUMNS: &str =
    "process_definition_id, bpmn_process_id, version, name, checksum, resource_name, job_types, \
    release_id, source_commit, variable_schema_version, deployed_at, deployed_by, deployment_id";

/// The job types some registered worker group executes.
pub async fn worker_job_types(tx: &mut Tx) -> Result<BTreeSet<String>, Error> {
    let rows: Vec<Vec<String>> = timed(
        "worker_group_job_types",
        sqlx::query_scalar("SELECT job_types FROM worker_group").fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().flatten().collect())
}

/// Registers (or refreshes) a worker group and the job types it executes.
pub async fn worker_group_heartbeat(
    tx: &mut Tx,
    group: &str,
    job_types: &[String],
    worker_version: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "worker_group_upsert",
        sqlx::query(
            "INSERT INTO worker_group (group_name, job_types, worker_version, last_heartbeat) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_name) DO UPDATE SET job_types = $2, worker_version = $3, last_heartbeat = $4",
        )
        .bind(group)
        .bind(job_types)
        .bind(worker_version)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Deploys one BPMN file: a deployment of that one resource ([`deploy_resources`]).
pub async fn deploy(tx: &mut Tx, req: &DeployRequest<'_>) -> Result<Vec<Deployed>, Error> {
    let resources = [Resource {
        name: req.resource_name,
        xml: req.xml,
    }];
    let deployment = deploy_resources(
        tx,
        &DeploymentRequest {
            resources: &resources,
            release_id: req.release_id.clone(),
            source_commit: req.source_commit.clone(),
            variable_schema_version: req.variable_schema_version,
            allow_unsupported_job_types: req.allow_unsupported_job_types,
            deployed_by: req.deployed_by,
            at: req.at,
        },
    )
    .await?;
    Ok(deployment.processes)
}

/// One file of a deployment: BPMN, or DMN (by [`crate::decisions::is_dmn`]).
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub name: &'a str,
    pub xml: &'a str,
}

/// A deployment of several resources: BPMN and DMN files deployed together, as one.
#[derive(Debug, Clone)]
pub struct DeploymentRequest<'a> {
    pub resources: &'a [Resource<'a>],
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    pub variable_schema_version: i32,
    /// Deploy even when a job type has no worker group (local use only; callers check).
    pub allow_unsupported_job_types: bool,
    pub deployed_by: &'a str,
    pub at: DateTime<Utc>,
}

/// What a deployment made: every process and decision of its resources, with the deployment
/// they belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    /// The key every version of this deployment shares; for a repeated deployment, the key of
    /// the deployment it repeats.
    pub deployment_id: Uuid,
    /// False when every resource was deployed before, together: no new version of anything.
    pub created: bool,
    pub processes: Vec<Deployed>,
    pub decisions: Vec<DeployedDecision>,
}

/// A resource read: the processes of a BPMN file or the decisions of a DMN file.
enum Read<'a> {
    Bpmn(Resource<'a>, bpmn::Definitions),
    Dmn(Resource<'a>, ReadDecisions),
}

/// Deploys BPMN and DMN files together, as Zeebe deploys a multi-resource deployment: every
/// file is read and checked first, and any refusal (each naming its file when there are several)
/// deploys nothing. When every process and decision was deployed before in one deployment, that
/// deployment is answered again and nothing is written; otherwise every process and decision of
/// every file gets a new version, all under one new deployment id, so that a calledDecision or
/// calledElement with `bindingType="deployment"` runs exactly what was deployed with its caller.
/// Such a binding to a static id is refused unless the deployment holds that id.
pub async fn deploy_resources(
    tx: &mut Tx,
    req: &DeploymentRequest<'_>,
) -> Result<Deployment, Error> {
    if req.resources.is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "resources",
            "required",
            "a deployment holds at least one BPMN or DMN file",
        )]));
    }
    let several = req.resources.len() > 1;
    let mut problems = Vec::new();
    let mut read = Vec::new();
    for &r in req.resources {
        let outcome = if decisions::is_dmn(Some(r.name), r.xml) {
            decisions::read_decisions(r.xml).map(|d| Read::Dmn(r, d))
        } else {
            bpmn::read(r.xml)
                .map(|d| Read::Bpmn(r, d))
                .map_err(deploy_error)
        };
        match outcome {
            Ok(one) => read.push(one),
            Err(e) => problems.extend(in_resource(several.then_some(r.name), e)),
        }
    }
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }
    problems.extend(duplicated_ids(&read));
    problems.extend(unsupported_job_types(tx, &read, req.allow_unsupported_job_types).await?);
    problems.extend(bindings_outside(&read));
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }

    // Each process and decision id locked, and its version from the same file looked up.
    let mut found_processes = Vec::new();
    let mut found_decisions = Vec::new();
    for r in &read {
        match r {
            Read::Bpmn(_, defs) => {
                for p in defs.processes.iter().filter(|p| p.executable) {
                    lock(tx, "bpmn:", &p.id).await?;
                    found_processes.push(process_by_checksum(tx, &p.id, &defs.checksum).await?);
                }
            }
            Read::Dmn(_, dmn) => {
                for d in dmn.decisions() {
                    lock(tx, "dmn:", &d.id).await?;
                    found_decisions.push(decisions::by_checksum(tx, &d.id, &dmn.checksum).await?);
                }
            }
        }
    }
    let earlier: BTreeSet<Option<Uuid>> = found_processes
        .iter()
        .map(|f| f.as_ref().map(|d| d.deployment_id))
        .chain(
            found_decisions
                .iter()
                .map(|f| f.as_ref().map(|d| d.deployment_id)),
        )
        .collect();
    if let [Some(deployment_id)] = earlier.into_iter().collect::<Vec<_>>()[..] {
        return Ok(Deployment {
            deployment_id,
            created: false,
            processes: found_processes
                .into_iter()
                .flatten()
                .map(|definition| Deployed {
                    definition,
                    created: false,
                })
                .collect(),
            decisions: found_decisions
                .into_iter()
                .flatten()
                .map(|definition| DeployedDecision {
                    definition,
                    created: false,
                })
                .collect(),
        });
    }

    let deployment_id = Uuid::now_v7();
    let mut out = Deployment {
        deployment_id,
        created: true,
        processes: Vec::new(),
        decisions: Vec::new(),
    };
    for r in &read {
        match r {
            Read::Bpmn(resource, defs) => {
                for p in defs.processes.iter().filter(|p| p.executable) {
                    let definition =
                        insert_process(tx, req, deployment_id, resource, defs, p).await?;
                    schedule_start_timers(tx, p, &definition, req.at).await?;
                    out.processes.push(Deployed {
                        definition,
                        created: true,
                    });
                }
            }
            Read::Dmn(resource, dmn) => {
                for d in dmn.decisions() {
                    let definition = decisions::insert(
                        tx,
                        dmn,
                        d,
                        (deployment_id, resource.name, resource.xml),
                        req.deployed_by,
                        req.at,
                    )
                    .await?;
                    out.decisions.push(DeployedDecision {
                        definition,
                        created: true,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A resource's refusal, its problems naming the resource when the deployment has several.
fn in_resource(resource: Option<&str>, e: Error) -> Vec<FieldError> {
    let errors = match e {
        Error::Validation { errors } => errors,
        other => return vec![FieldError::new("resources", "invalid", other.to_string())],
    };
    match resource {
        None => errors,
        Some(name) => errors
            .into_iter()
            .map(|f| FieldError::new(f.field, &f.code, format!("'{name}': {}", f.detail)))
            .collect(),
    }
}

/// The same process or decision id in two resources of one deployment (Zeebe refuses it too).
fn duplicated_ids(read: &[Read<'_>]) -> Vec<FieldError> {
    let mut seen: std::collections::BTreeMap<(&str, &str), &str> = Default::default();
    let mut out = Vec::new();
    for r in read {
        let (resource, ids): (&str, Vec<(&str, &str)>) = match r {
            Read::Bpmn(res, defs) => (
                res.name,
                defs.processes
                    .iter()
                    .filter(|p| p.executable)
                    .map(|p| ("process", p.id.as_str()))
                    .collect(),
            ),
            Read::Dmn(res, dmn) => (
                res.name,
                dmn.decisions()
                    .map(|d| ("decision", d.id.as_str()))
                    .collect(),
            ),
        };
        for (kind, id) in ids {
            if let Some(first) = seen.insert((kind, id), resource) {
                out.push(FieldError::new(
                    id,
                    "duplicate-id",
                    format!("the {kind} id '{id}' is in both '{first}' and '{resource}'"),
                ));
            }
        }
    }
    out
}

/// The job types of the deployment's processes that no registered worker group executes.
async fn unsupported_job_types(
    tx: &mut Tx,
    read: &[Read<'_>],
    allowed: bool,
) -> Result<Vec<FieldError>, Error> {
    let processes: Vec<&bpmn::Process> = read
        .iter()
        .filter_map(|r| match r {
            Read::Bpmn(_, defs) => Some(defs.processes.iter().filter(|p| p.executable)),
            Read::Dmn(..) => None,
        })
        .flatten()
        .collect();
    if processes.is_empty() || allowed {
        return Ok(Vec::new());
    }
    let supported = worker_job_types(tx).await?;
    let mut missing = Vec::new();
    for p in processes {
        for t in p.job_types() {
            if t != USER_TASK_JOB_TYPE && !supported.contains(&t) {
                missing.push(FieldError::new(
                    p.id.clone(),
                    "job-type-unsupported",
                    format!("no registered worker group executes job type \"{t}\""),
                ));
            }
        }
    }
    Ok(missing)
}

/// Called decisions and processes bound by `deployment` to a static id the deployment does not
/// hold: refused, as Zeebe refuses them ("expected to find ... in current deployment").
fn bindings_outside(read: &[Read<'_>]) -> Vec<FieldError> {
    let mut process_ids = BTreeSet::new();
    let mut decision_ids = BTreeSet::new();
    for r in read {
        match r {
            Read::Bpmn(_, defs) => process_ids.extend(
                defs.processes
                    .iter()
                    .filter(|p| p.executable)
                    .map(|p| p.id.as_str()),
            ),
            Read::Dmn(_, dmn) => decision_ids.extend(dmn.decisions().map(|d| d.id.as_str())),
        }
    }
    let mut out = Vec::new();
    for r in read {
        let Read::Bpmn(_, defs) = r else { continue };
        for e in defs
            .processes
            .iter()
            .filter(|p| p.executable)
            .flat_map(|p| &p.elements)
        {
            let (kind, id, known) = match &e.kind {
                ElementKind::BusinessRuleTask {
                    decision: Some(c), ..
                } if c.binding == "deployment" => ("decision", &c.decision_id, &decision_ids),
                ElementKind::CallActivity { called } if called.binding == "deployment" => {
                    ("process", &called.process_id, &process_ids)
                }
                _ => continue,
            };
            if !id.starts_with('=') && !known.contains(id.as_str()) {
                out.push(FieldError::new(
                    e.id.clone(),
                    "binding-not-in-deployment",
                    format!(
                        "{} '{}' calls the {kind} '{id}' with bindingType \"deployment\", but \
                         this deployment holds no {kind} with that id: deploy them together",
                        bpmn::element_type(&e.kind),
                        e.id
                    ),
                ));
            }
        }
    }
    out
}

/// One deployer at a time per process or decision id: versions are gap-free and unique.
async fn lock(tx: &mut Tx, namespace: &str, id: &str) -> Result<(), Error> {
    timed(
        "definition_lock",
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1 || $2))")
            .bind(namespace)
            .bind(id)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The newest version of a process deployed from a file with this checksum.
async fn process_by_checksum(
    tx: &mut Tx,
    bpmn_process_id: &str,
    checksum: &str,
) -> Result<Option<ProcessDefinition>, Error> {
    timed(
        "process_definition_fetch_by_checksum",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM process_definition WHERE bpmn_process_id = $1 AND checksum = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(bpmn_process_id)
        .bind(checksum)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// A new version of process `p` (under its lock, the insert takes the next version itself).
async fn insert_process(
    tx: &mut Tx,
    req: &DeploymentRequest<'_>,
    deployment_id: Uuid,
    resource: &Resource<'_>,
    defs: &bpmn::Definitions,
    p: &bpmn::Process,
) -> Result<ProcessDefinition, Error> {
    let model = serde_json::to_value(p).map_err(Error::internal)?;
    timed(
        "process_definition_insert",
        sqlx::query_as(&format!(
            "INSERT INTO process_definition (process_definition_id, bpmn_process_id, version, name, checksum, resource_name, \
             bpmn_xml, model, job_types, release_id, source_commit, variable_schema_version, deployed_at, deployed_by, deployment_id) \
             VALUES ($1, $2, (SELECT coalesce(max(version), 0) + 1 FROM process_definition WHERE bpmn_process_id = $2), \
             $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&p.id)
        .bind(&p.name)
        .bind(&defs.checksum)
        .bind(resource.name)
        .bind(resource.xml)
        .bind(model)
        .bind(p.job_types())
        .bind(&req.release_id)
        .bind(&req.source_commit)
        .bind(req.variable_schema_version)
        .bind(req.at)
        .bind(req.deployed_by)
        .bind(deployment_id)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// Every deployed version, newest deployment last, after `after` (keyset on the id).
pub async fn process_definition_list(
    tx: &mut Tx,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ProcessDefinition>, Error> {
    timed(
        "process_definition_list",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM process_definition WHERE ($1::uuid IS NULL OR process_definition_id > $1) \
             ORDER BY process_definition_id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// The deployed versions of a process.
async fn process_definition_versions(
    tx: &mut Tx,
    bpmn_process_id: &str,
) -> Result<Vec<i32>, Error> {
    timed(
        "process_definition_versions",
        sqlx::query_scalar("SELECT version FROM process_definition WHERE bpmn_process_id = $1")
            .bind(bpmn_process_id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// The versions of a process and its routing rules: what [`crate::routing::resolve`] needs.
pub async fn process_routing(
    tx: &mut Tx,
    bpmn_process_id: &str,
) -> Result<(Vec<i32>, Vec<VersionRule>), Error> {
    let versions = process_definition_versions(tx, bpmn_process_id).await?;
    #[derive(sqlx::FromRow)]
    struct RuleRow {
        target_tenant: Option<String>,
        product_line: Option<String>,
        release_flag: Option<String>,
        version: i32,
        priority: i32,
    }
    let rules: Vec<RuleRow> = timed(
        "process_version_rule_list",
        sqlx::query_as("SELECT target_tenant, product_line, release_flag, version, priority FROM process_version_rule WHERE bpmn_process_id = $1")
            .bind(bpmn_process_id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok((
        versions,
        rules
            .into_iter()
            .map(|r| VersionRule {
                tenant: r.target_tenant,
                product_line: r.product_line,
                release_flag: r.release_flag,
                version: r.version,
                priority: r.priority,
            })
            .collect(),
    ))
}

/// A new version's timer start events replace the previous version's (for the deploying tenant).
async fn schedule_start_timers(
    tx: &mut Tx,
    process: &crate::bpmn::Process,
    definition: &ProcessDefinition,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "start_timer_delete_for_process",
        sqlx::query("DELETE FROM start_timer WHERE bpmn_process_id = $1")
            .bind(&definition.bpmn_process_id)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let no_variables = serde_json::Map::new();
    let env = crate::feel::Env {
        variables: &no_variables,
        outer: &[],
        now: at,
    };
    for e in process.elements.iter().filter(|e| e.parent.is_none()) {
        let crate::bpmn::ElementKind::StartEvent {
            trigger: crate::bpmn::Trigger::Timer(t),
        } = &e.kind
        else {
            continue;
        };
        let (due, repeat) = crate::runtime::timer_due(t, &env).map_err(|problem| {
            Error::validation(vec![FieldError::new(
                e.id.clone(),
                "invalid-timer",
                problem,
            )])
        })?;
        timed(
            "start_timer_insert",
            sqlx::query(
                "INSERT INTO start_timer (start_timer_id, tenant_id, process_definition_id, bpmn_process_id, event_id, due_at, repeat) \
                 VALUES ($1, current_setting('cpq.tenant_id'), $2, $3, $4, $5, $6)",
            )
            .bind(Uuid::now_v7())
            .bind(definition.process_definition_id)
            .bind(&definition.bpmn_process_id)
            .bind(&e.id)
            .bind(due)
            .bind(repeat.map(|r| serde_json::to_value(r).unwrap_or(serde_json::Value::Null)))
            .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Replaces the routing rules of a process. Each rule must name a deployed version.
pub async fn process_routing_replace(
    tx: &mut Tx,
    bpmn_process_id: &str,
    rules: &[VersionRule],
) -> Result<(), Error> {
    let versions = process_definition_versions(tx, bpmn_process_id).await?;
    if versions.is_empty() {
        return Err(Error::not_found("process definition", bpmn_process_id));
    }
    let bad: Vec<FieldError> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !versions.contains(&r.version))
        .map(|(i, r)| {
            FieldError::new(
                format!("rules[{i}].version"),
                "not-deployed",
                format!("version {} of {bpmn_process_id} is not deployed", r.version),
            )
        })
        .collect();
    if !bad.is_empty() {
        return Err(Error::validation(bad));
    }
    timed(
        "process_version_rule_delete",
        sqlx::query("DELETE FROM process_version_rule WHERE bpmn_process_id = $1")
            .bind(bpmn_process_id)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if rules.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&VersionRule) -> Option<String>| rules.iter().map(f).collect::<Vec<_>>();
    timed(
        "process_version_rule_insert",
        sqlx::query(
            "INSERT INTO process_version_rule (process_version_rule_id, bpmn_process_id, target_tenant, product_line, release_flag, version, priority) \
             SELECT id, $2, tenant, product_line, release_flag, version, priority \
             FROM unnest($1::uuid[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[]) \
             AS r(id, tenant, product_line, release_flag, version, priority)",
        )
        .bind(rules.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind(bpmn_process_id)
        .bind(column(|r| r.tenant.clone()))
        .bind(column(|r| r.product_line.clone()))
        .bind(column(|r| r.release_flag.clone()))
        .bind(rules.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(rules.iter().map(|r| r.priority).collect::<Vec<_>>())
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
