//! Worker groups: which job types the platform's workers execute, kept fresh by a heartbeat.
//! Worker groups serve every tenant, so only a platform credential registers one through this
//! operation.

use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::deployment;

use super::OPERATORS;
use crate::{Call, Operation, Services};

/// Registers a worker group's job types, or refreshes its heartbeat.
pub struct HeartbeatWorkerGroup {
    pub name: String,
    pub job_types: Vec<String>,
    pub worker_version: String,
}

impl Operation for HeartbeatWorkerGroup {
    type Output = HeartbeatWorkerGroup;
    const ROLES: &'static [Role] = OPERATORS;

    /// Answers with what was registered.
    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self, Error> {
        call.principal.require_platform_operator()?;
        if self.job_types.iter().any(|t| t.trim().is_empty())
            || self.worker_version.trim().is_empty()
        {
            return Err(Error::validation(vec![FieldError::new(
                "job_types",
                "invalid",
                "job types and the worker version must not be blank",
            )]));
        }
        deployment::worker_group_heartbeat(
            tx,
            &self.name,
            &self.job_types,
            &self.worker_version,
            call.meta.occurred_at,
        )
        .await?;
        Ok(self)
    }
}
