//! Decision definitions (DMN; deployed by [`super::definitions::DeployResources`]): list and read the deployed versions, and
//! evaluate a decision with the decisions it requires.
//!
//! Like process definitions they carry no tenant: operators deploy them with a release; any
//! signed-in role may evaluate one (a decision answers a question, it changes nothing).

use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::decisions::{self, DecisionDefinition, Evaluation};
use uuid::Uuid;

use crate::{Call, Operation, Services};

const READERS: &[Role] = &[Role::Operator, Role::OrderOperations];

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
