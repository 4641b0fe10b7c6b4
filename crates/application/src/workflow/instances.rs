//! Process instances in the caller's tenant: start, list, inspect, cancel. Starting and
//! cancelling are audited.

use cpq_audit::{record, AuditEntry};
use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::instances::{self, InstanceSummary, StartRequest, Started};
use cpq_workflow::runtime::InstanceStatus;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::OPERATIONS;
use crate::{Call, Operation, Services};

/// Records a change to a process instance in the audit trail (no event).
async fn audit(
    tx: &mut Tx,
    call: &Call,
    action: &'static str,
    id: Uuid,
    reason: Option<String>,
    after: Value,
) -> Result<(), Error> {
    let entry = AuditEntry {
        action,
        aggregate_type: "process-instance",
        aggregate_id: id,
        before: None,
        after: Some(after),
        reason,
    };
    record(tx, &call.meta, &entry, &[]).await.map(|_| ())
}

/// A repair (cancelling an instance, resolving an incident) says why.
pub(super) fn require_reason(reason: &str) -> Result<(), Error> {
    if reason.trim().is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "reason",
            "required",
            "a repair needs a reason",
        )]));
    }
    Ok(())
}

/// Starts an instance of the version the routing rules pick for the caller's tenant.
pub struct StartInstance {
    pub bpmn_process_id: String,
    pub variables: Map<String, Value>,
    pub product_line: Option<String>,
    pub release_flags: Vec<String>,
}

impl Operation for StartInstance {
    type Output = Started;
    const ROLES: &'static [Role] = OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Started, Error> {
        let started = instances::start_instance(
            tx,
            &StartRequest {
                tenant: &call.meta.tenant,
                bpmn_process_id: &self.bpmn_process_id,
                product_line: self.product_line,
                release_flags: self.release_flags,
                variables: self.variables,
                at: call.meta.occurred_at,
            },
        )
        .await?;
        let after = serde_json::to_value(&started).map_err(Error::internal)?;
        let id = started.process_instance_id;
        audit(tx, call, "process-instance.start", id, None, after).await?;
        Ok(started)
    }
}

/// One page of the tenant's instances in id order, optionally of one status (`active`,
/// `completed` or `terminated`).
pub struct ListInstances {
    pub status: Option<String>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListInstances {
    type Output = Vec<InstanceSummary>;
    const ROLES: &'static [Role] = OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        let tenant = &call.principal.tenant;
        instances::instance_list(tx, tenant, self.status.as_deref(), self.after, self.limit).await
    }
}

/// An instance with its execution state, variables, jobs and incidents.
pub struct FetchInstance(pub Uuid);

impl Operation for FetchInstance {
    type Output = Value;
    const ROLES: &'static [Role] = OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Value, Error> {
        instances::instance_detail(tx, &call.principal.tenant, self.0).await
    }
}

/// Cancels an active instance of the caller's tenant, for a reason kept in the audit trail.
pub struct CancelInstance {
    pub id: Uuid,
    pub reason: String,
}

impl Operation for CancelInstance {
    type Output = InstanceStatus;
    const ROLES: &'static [Role] = OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<InstanceStatus, Error> {
        require_reason(&self.reason)?;
        // Another tenant's instance is not found (404): the locked read answers it.
        let (tenant, at) = (&call.meta.tenant, call.meta.occurred_at);
        let status = instances::cancel_instance(tx, tenant, self.id, at).await?;
        let after = json!({ "status": status });
        let (id, reason) = (self.id, Some(self.reason));
        audit(tx, call, "process-instance.cancel", id, reason, after).await?;
        Ok(status)
    }
}
