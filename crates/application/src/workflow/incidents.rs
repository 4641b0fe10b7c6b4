//! Incidents in the caller's tenant: list them, resolve one by giving its job retries again
//! (audited).

use cpq_audit::{record, AuditEntry};
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_workflow::instances;
use serde_json::{json, Value};
use uuid::Uuid;

use super::instances::require_reason;
use super::OPERATIONS;
use crate::{Call, Operation, Services};

/// One page of incidents in id order: the open ones, or all.
pub struct ListIncidents {
    pub open_only: bool,
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListIncidents {
    type Output = Vec<Value>;
    const ROLES: &'static [Role] = OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Vec<Value>, Error> {
        let tenant = &call.principal.tenant;
        instances::incident_list(tx, tenant, self.open_only, self.after, self.limit).await
    }
}

/// Resolves an incident: its job gets `retries` (default 1) and is activatable at once.
pub struct ResolveIncident {
    pub id: Uuid,
    pub reason: String,
    pub retries: Option<i32>,
}

impl Operation for ResolveIncident {
    /// The retries the job got.
    type Output = i32;
    const ROLES: &'static [Role] = OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<i32, Error> {
        require_reason(&self.reason)?;
        let retries = self.retries.unwrap_or(1);
        instances::resolve_incident(tx, self.id, retries, call.meta.occurred_at).await?;
        let entry = AuditEntry {
            action: "incident.resolve",
            aggregate_type: "incident",
            aggregate_id: self.id,
            before: None,
            after: Some(json!({ "retries": retries })),
            reason: Some(self.reason),
        };
        record(tx, &call.meta, &entry, &[]).await?;
        Ok(retries)
    }
}
