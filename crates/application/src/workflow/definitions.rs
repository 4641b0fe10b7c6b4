//! Process definitions: deploy BPMN, list the deployed versions, replace a process's version
//! routing.
//!
//! Definitions carry no tenant: they are deployed with a release and run for every tenant, so the
//! routing that picks the version of every tenant's new instances belongs to the platform and
//! only a platform credential (operator role and the all-tenants grant) replaces it.

use cpq_audit::events::ProcessDefinitionDeployed;
use cpq_audit::{record, AuditEntry, NewEvent};
use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::deployment::{self, DeployRequest, Deployed, ProcessDefinition};
use cpq_workflow::routing::VersionRule;
use uuid::Uuid;

use super::OPERATORS;
use crate::{Call, Operation, Services};

const READERS: &[Role] = &[Role::Operator, Role::OrderOperations];

/// Deploys every executable process of a BPMN file: a new version of each process whose file
/// changed, each audited with a `process-definition.deployed` event; none for a file deployed
/// before. Whether `allow_unsupported_job_types` may be asked for at all is the entry point's
/// environment's policy, checked by the entry point.
pub struct DeployProcesses {
    /// File name recorded with the deployment (default `process.bpmn`).
    pub resource_name: Option<String>,
    pub xml: String,
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    /// At least 1 (default 1).
    pub variable_schema_version: Option<i32>,
    pub allow_unsupported_job_types: bool,
}

impl Operation for DeployProcesses {
    type Output = Vec<Deployed>;
    const ROLES: &'static [Role] = OPERATORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Vec<Deployed>, Error> {
        if self.variable_schema_version.is_some_and(|v| v < 1) {
            return Err(Error::validation(vec![FieldError::new(
                "variable_schema_version",
                "out-of-range",
                "variable_schema_version is at least 1",
            )]));
        }
        let meta = &call.meta;
        let deployed = deployment::deploy(
            tx,
            &DeployRequest {
                resource_name: self.resource_name.as_deref().unwrap_or("process.bpmn"),
                xml: &self.xml,
                release_id: self.release_id,
                source_commit: self.source_commit,
                variable_schema_version: self.variable_schema_version.unwrap_or(1),
                allow_unsupported_job_types: self.allow_unsupported_job_types,
                deployed_by: &meta.actor_subject,
                at: meta.occurred_at,
            },
        )
        .await?;
        for d in deployed.iter().filter(|d| d.created) {
            let id = d.definition.process_definition_id;
            let event = NewEvent::of(&ProcessDefinitionDeployed {
                process_definition_id: id,
                bpmn_process_id: d.definition.bpmn_process_id.clone(),
                version: d.definition.version,
                checksum: d.definition.checksum.clone(),
            })?;
            record(
                tx,
                meta,
                &AuditEntry {
                    action: "process-definition.deploy",
                    aggregate_type: "process-definition",
                    aggregate_id: id,
                    before: None,
                    after: Some(event.payload.clone()),
                    reason: None,
                },
                &[event],
            )
            .await?;
        }
        Ok(deployed)
    }
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
