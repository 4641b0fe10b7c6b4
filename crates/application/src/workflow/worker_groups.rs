//! Worker groups: which job types the platform's workers execute, kept fresh by a heartbeat.
//! Worker groups serve every tenant, so only a platform credential registers one
//! ([`HeartbeatWorkerGroup`], the API's), or the platform's own `cpq-worker` its own group
//! ([`HeartbeatOwnWorkerGroup`]).

use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::deployment;

use super::OPERATORS;
use crate::{Call, Operation, Services};

/// Registers a worker group's job types, or refreshes its heartbeat: a platform credential only
/// (operator role and the all-tenants grant).
pub struct HeartbeatWorkerGroup {
    pub name: String,
    pub job_types: Vec<String>,
    pub worker_version: String,
}

impl HeartbeatWorkerGroup {
    async fn write(self, tx: &mut Tx, call: &Call) -> Result<Self, Error> {
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

impl Operation for HeartbeatWorkerGroup {
    /// What was registered.
    type Output = HeartbeatWorkerGroup;
    const ROLES: &'static [Role] = OPERATORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self, Error> {
        call.principal.require_platform_operator()?;
        self.write(tx, call).await
    }
}

/// `cpq-worker` registering its own group: a worker with the all-tenants grant (the platform's
/// own), which the job API's workers are not.
pub struct HeartbeatOwnWorkerGroup(pub HeartbeatWorkerGroup);

impl Operation for HeartbeatOwnWorkerGroup {
    type Output = HeartbeatWorkerGroup;
    const ROLES: &'static [Role] = &[Role::Worker];

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        if !call.principal.all_tenants() {
            return Err(Error::Forbidden {
                detail: "only the platform's own workers (the all-tenants grant) register \
                         their group"
                    .into(),
            });
        }
        self.0.write(tx, call).await
    }
}
