//! Who runs an operation and under which correlation.

use chrono::{SubsecRound, Utc};
use cpq_audit::CommandMeta;
use cpq_core::Principal;

/// The caller's proven identity and the metadata that its audit records and events carry.
#[derive(Debug, Clone)]
pub struct Call {
    pub principal: Principal,
    pub meta: CommandMeta,
}

impl Call {
    /// A call stamped now. `correlation_id` ties together everything one business flow causes;
    /// `causation_id` is what directly caused it (the request id for API calls).
    pub fn new(principal: Principal, correlation_id: String, causation_id: Option<String>) -> Call {
        let meta = CommandMeta {
            tenant: principal.tenant.clone(),
            actor_subject: principal.subject.clone(),
            correlation_id,
            causation_id,
            // PostgreSQL keeps microseconds: stamp at that precision so that what a command
            // returns equals what a later read returns (and what the audit digests cover).
            occurred_at: Utc::now().trunc_subsecs(6),
        };
        Call { principal, meta }
    }
}
