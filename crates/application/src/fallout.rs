//! Fallout cases: the worklist and its repairs (retry, skip, cancel-order).
//!
//! Order operations work the cases of their tenant; the platform's operators, who already repair
//! process instances and incidents, may too (the same roles as the workflow's repairs). Every
//! repair is one command: [`cpq_order::fallout::repair`] locks, checks, writes, audits and tells
//! the fulfillment process in the caller's transaction.

use chrono::{DateTime, Utc};
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_order::fallout::{self, CaseFilter, FalloutCase, Repair, RepairAction, Repaired};
use serde_json::Value;
use uuid::Uuid;

use crate::{Call, Operation, Services};

/// Who reads and repairs fallout cases: order operations, and operators (who repair instances).
pub const FALLOUT_OPERATIONS: &[Role] = &[Role::OrderOperations, Role::Operator];

/// One page of the tenant's fallout cases, newest first, after the `(created_at, id)` key.
pub struct ListFalloutCases {
    pub filter: CaseFilter,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl Operation for ListFalloutCases {
    type Output = Vec<FalloutCase>;
    const ROLES: &'static [Role] = FALLOUT_OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        let tenant = &call.principal.tenant;
        fallout::list(tx, tenant, &self.filter, self.after, self.limit).await
    }
}

/// One fallout case (another tenant's is not found).
pub struct FetchFalloutCase(pub Uuid);

impl Operation for FetchFalloutCase {
    type Output = FalloutCase;
    const ROLES: &'static [Role] = FALLOUT_OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<FalloutCase, Error> {
        fallout::fetch(tx, &call.principal.tenant, self.0).await
    }
}

/// Retries the failed task of an open case, optionally with corrected input (an object the
/// task's job gets as `task.input`).
pub struct RetryFalloutCase {
    pub id: Uuid,
    pub reason: String,
    pub input: Option<Value>,
}

impl Operation for RetryFalloutCase {
    type Output = Repaired;
    const ROLES: &'static [Role] = FALLOUT_OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Repaired, Error> {
        let repair = Repair {
            action: RepairAction::Retry,
            reason: self.reason,
            input: self.input,
        };
        fallout::repair(tx, &call.meta, self.id, &repair).await
    }
}

/// Skips the failed task of an open case: it counts as done and its dependants proceed.
pub struct SkipFalloutCase {
    pub id: Uuid,
    pub reason: String,
}

impl Operation for SkipFalloutCase {
    type Output = Repaired;
    const ROLES: &'static [Role] = FALLOUT_OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Repaired, Error> {
        let repair = Repair {
            action: RepairAction::Skip,
            reason: self.reason,
            input: None,
        };
        fallout::repair(tx, &call.meta, self.id, &repair).await
    }
}

/// Cancels the order of an open case: its fulfillment instance, items, unfinished tasks and
/// every open case of it.
pub struct CancelOrderFromFallout {
    pub id: Uuid,
    pub reason: String,
}

impl Operation for CancelOrderFromFallout {
    type Output = Repaired;
    const ROLES: &'static [Role] = FALLOUT_OPERATIONS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Repaired, Error> {
        let repair = Repair {
            action: RepairAction::CancelOrder,
            reason: self.reason,
            input: None,
        };
        fallout::repair(tx, &call.meta, self.id, &repair).await
    }
}
