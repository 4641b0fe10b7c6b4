//! Process definitions: deploy BPMN (and DMN) files, list the deployed versions, replace a process's version
//! routing.
//!
//! Definitions carry no tenant: they are deployed with a release and run for every tenant, so the
//! routing that picks the version of every tenant's new instances belongs to the platform and
//! only a platform credential (operator role and the all-tenants grant) replaces it.

use cpq_audit::events::{DecisionDefinitionDeployed, ProcessDefinitionDeployed};
use cpq_audit::{record, AuditEntry, NewEvent};
use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::deployment::{self, Deployment, DeploymentRequest, ProcessDefinition, Resource};
use cpq_workflow::routing::VersionRule;
use uuid::Uuid;

use super::OPERATORS;
use crate::{Call, Operation, Services};

const READERS: &[Role] = &[Role::Operator, Role::OrderOperations];

/// One file of a deployment.
pub struct DeployResource {
    /// File name recorded with each version (`.dmn` marks a DMN file; see
    /// [`cpq_workflow::decisions::is_dmn`]).
    pub name: String,
    pub xml: String,
}

/// Deploys BPMN and DMN files together ([`deployment::deploy_resources`]): a new version of
/// every process and decision when anything changed, each audited with its
/// `process-definition.deployed` or `decision-definition.deployed` event; nothing new for a
/// deployment made before. Whether `allow_unsupported_job_types` may be asked for at all is the
/// entry point's environment's policy, checked by the entry point.
pub struct DeployResources {
    pub resources: Vec<DeployResource>,
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    /// At least 1 (default 1).
    pub variable_schema_version: Option<i32>,
    pub allow_unsupported_job_types: bool,
}

impl Operation for DeployResources {
    type Output = Deployment;
    const ROLES: &'static [Role] = OPERATORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Deployment, Error> {
        if self.variable_schema_version.is_some_and(|v| v < 1) {
            return Err(Error::validation(vec![FieldError::new(
                "variable_schema_version",
                "out-of-range",
                "variable_schema_version is at least 1",
            )]));
        }
        let meta = &call.meta;
        let resources: Vec<Resource<'_>> = self
            .resources
            .iter()
            .map(|r| Resource {
                name: &r.name,
                xml: &r.xml,
            })
            .collect();
        let deployment = deployment::deploy_resources(
            tx,
            &DeploymentRequest {
                resources: &resources,
                release_id: self.release_id,
                source_commit: self.source_commit,
                variable_schema_version: self.variable_schema_version.unwrap_or(1),
                allow_unsupported_job_types: self.allow_unsupported_job_types,
                deployed_by: &meta.actor_subject,
                at: meta.occurred_at,
            },
        )
        .await?;
        let deployment_id = Some(deployment.deployment_id);
        for d in deployment.processes.iter().filter(|d| d.created) {
            let id = d.definition.process_definition_id;
            let event = NewEvent::of(&ProcessDefinitionDeployed {
                process_definition_id: id,
                bpmn_process_id: d.definition.bpmn_process_id.clone(),
                version: d.definition.version,
                checksum: d.definition.checksum.clone(),
                deployment_id,
            })?;
            audit(tx, meta, "process-definition", id, event).await?;
        }
        for d in deployment.decisions.iter().filter(|d| d.created) {
            let def = &d.definition;
            let id = def.decision_definition_id;
            let event = NewEvent::of(&DecisionDefinitionDeployed {
                decision_definition_id: id,
                decision_id: def.decision_id.clone(),
                version: def.version,
                decision_requirements_id: def.decision_requirements_id.clone(),
                checksum: def.checksum.clone(),
                version_tag: def.version_tag.clone(),
                deployment_id: def.deployment_id,
            })?;
            audit(tx, meta, "decision-definition", id, event).await?;
        }
        Ok(deployment)
    }
}

/// Audits one new version (`{kind}.deploy`) with its deployed event.
async fn audit(
    tx: &mut Tx,
    meta: &cpq_audit::CommandMeta,
    kind: &'static str,
    id: Uuid,
    event: NewEvent,
) -> Result<(), Error> {
    let action = match kind {
        "process-definition" => "process-definition.deploy",
        _ => "decision-definition.deploy",
    };
    record(
        tx,
        meta,
        &AuditEntry {
            action,
            aggregate_type: kind,
            aggregate_id: id,
            before: None,
            after: Some(event.payload.clone()),
            reason: None,
        },
        &[event],
    )
    .await?;
    Ok(())
}

/// One page of deployed versions in id (deployment) order: at most `limit` after `after`.
pub struct ListProcessDefinitions {
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListProcessDefinitions {
    type Output = Vec<ProcessDefinition>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, _: &Call) -> Result<Self::Output, Error> {
        deployment::process_definition_list(tx, self.after, self.limit).await
    }
}

/// Replaces which version new instances of a process use, in every tenant (rules may name a
/// tenant): a platform credential only. Each rule must name a deployed version.
pub struct ReplaceRouting {
    pub bpmn_process_id: String,
    pub rules: Vec<VersionRule>,
}

impl Operation for ReplaceRouting {
    /// The number of rules now in force.
    type Output = usize;
    const ROLES: &'static [Role] = OPERATORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<usize, Error> {
        call.principal.require_platform_operator()?;
        deployment::process_routing_replace(tx, &self.bpmn_process_id, &self.rules).await?;
        Ok(self.rules.len())
    }
}
