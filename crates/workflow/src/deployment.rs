//! Deploying BPMN: read and validate, refuse job types no worker group executes, version by
//! process id, and make no new version for a file already deployed (same checksum).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cpq_core::{Error, FieldError};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use uuid::Uuid;

use crate::bpmn::{self, DeployError, USER_TASK_JOB_TYPE};
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
    release_id, source_commit, variable_schema_version, deployed_at, deployed_by";

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

pub async fn deploy(tx: &mut Tx, req: &DeployRequest<'_>) -> Result<Vec<Deployed>, Error> {
    let defs = bpmn::read(req.xml).map_err(deploy_error)?;
    let supported = worker_job_types(tx).await?;
    let mut missing: Vec<FieldError> = Vec::new();
    for p in defs.processes.iter().filter(|p| p.executable) {
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
    if !missing.is_empty() && !req.allow_unsupported_job_types {
        return Err(Error::validation(missing));
    }
    let mut out = Vec::new();
    for p in defs.processes.iter().filter(|p| p.executable) {
        // One deployer at a time per process id: versions are gap-free and unique.
        timed(
            "process_definition_lock",
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('bpmn:' || $1))")
                .bind(&p.id)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        let existing: Option<ProcessDefinition> = timed(
            "process_definition_fetch_by_checksum",
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM process_definition WHERE bpmn_process_id = $1 AND checksum = $2"))
                .bind(&p.id)
                .bind(&defs.checksum)
                .fetch_optional(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        if let Some(definition) = existing {
            out.push(Deployed {
                definition,
                created: false,
            });
            continue;
        }
        let model = serde_json::to_value(p).map_err(Error::internal)?;
        // Under the lock, the insert takes the next version itself.
        let definition: ProcessDefinition = timed(
            "process_definition_insert",
            sqlx::query_as(&format!(
                "INSERT INTO process_definition (process_definition_id, bpmn_process_id, version, name, checksum, resource_name, \
                 bpmn_xml, model, job_types, release_id, source_commit, variable_schema_version, deployed_at, deployed_by) \
                 VALUES ($1, $2, (SELECT coalesce(max(version), 0) + 1 FROM process_definition WHERE bpmn_process_id = $2), \
                 $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
            ))
            .bind(Uuid::now_v7())
            .bind(&p.id)
            .bind(&p.name)
            .bind(&defs.checksum)
            .bind(req.resource_name)
            .bind(req.xml)
            .bind(model)
            .bind(p.job_types())
            .bind(&req.release_id)
            .bind(&req.source_commit)
            .bind(req.variable_schema_version)
            .bind(req.at)
            .bind(req.deployed_by)
            .fetch_one(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        schedule_start_timers(tx, p, &definition, req.at).await?;
        out.push(Deployed {
            definition,
            created: true,
        });
    }
    Ok(out)
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
