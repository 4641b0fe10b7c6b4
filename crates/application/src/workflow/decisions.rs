//! Decision definitions (DMN): deploy a `.dmn` file, list and read the deployed versions, and
//! evaluate a decision with the decisions it requires.
//!
//! Like process definitions they carry no tenant: operators deploy them with a release; any
//! signed-in role may evaluate one (a decision answers a question, it changes nothing).

use cpq_audit::{record, AuditEntry};
use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::decisions::{
    self, DecisionDefinition, DecisionDeployRequest, DeployedDecision, Evaluation,
};
use uuid::Uuid;

use super::OPERATORS;
use crate::{Call, Operation, Services};

const READERS: &[Role] = &[Role::Operator, Role::OrderOperations];

/// Deploys every decision of a DMN file: a new version of each when the file changed, each
/// audited (`decision-definition.deploy`); none for a file deployed before.
pub struct DeployDecisions {
    /// File name recorded with the deployment (default `decisions.dmn`).
    pub resource_name: Option<String>,
    pub xml: String,
}

impl Operation for DeployDecisions {
    type Output = Vec<DeployedDecision>;
    const ROLES: &'static [Role] = OPERATORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        let meta = &call.meta;
        let deployed = decisions::deploy(
            tx,
            &DecisionDeployRequest {
                resource_name: self.resource_name.as_deref().unwrap_or("decisions.dmn"),
                xml: &self.xml,
                deployed_by: &meta.actor_subject,
                at: meta.occurred_at,
            },
        )
        .await?;
        for d in deployed.iter().filter(|d| d.created) {
            let after = serde_json::to_value(&d.definition).map_err(Error::internal)?;
            record(
                tx,
                meta,
                &AuditEntry {
                    action: "decision-definition.deploy",
                    aggregate_type: "decision-definition",
                    aggregate_id: d.definition.decision_definition_id,
                    before: None,
                    after: Some(after),
                    reason: None,
                },
                &[],
            )
            .await?;
        }
        Ok(deployed)
    }
}

/// One page of deployed versions in key (deployment) order: at most `limit` after `after`.
pub struct ListDecisionDefinitions {
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListDecisionDefinitions {
    type Output = Vec<DecisionDefinition>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, _: &Call) -> Result<Self::Output, Error> {
        decisions::list(tx, self.after, self.limit).await
    }
}

/// One deployed version by its key.
pub struct GetDecisionDefinition {
    pub key: Uuid,
}

impl Operation for GetDecisionDefinition {
    type Output = DecisionDefinition;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, _: &Call) -> Result<Self::Output, Error> {
        decisions::fetch(tx, self.key).await
    }
}

/// Evaluates decision `decision_id` (its latest version, or `version`) against `variables`.
pub struct EvaluateDecision {
    pub decision_id: String,
    pub version: Option<i32>,
    pub variables: serde_json::Map<String, serde_json::Value>,
}

impl Operation for EvaluateDecision {
    type Output = Evaluation;
    const ROLES: &'static [Role] = &Role::ALL;

    async fn run(self, _: &Services, tx: &mut Tx, _: &Call) -> Result<Self::Output, Error> {
        if self.version.is_some_and(|v| v < 1) {
            return Err(Error::validation(vec![FieldError::new(
                "version",
                "out-of-range",
                "version is at least 1",
            )]));
        }
        let variables = serde_json::Value::Object(self.variables);
        decisions::evaluate(tx, &self.decision_id, self.version, &variables).await
    }
}
