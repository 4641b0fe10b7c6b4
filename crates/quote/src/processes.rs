//! The BPMN processes the quote commands start, and whether the platform has them deployed:
//! submission needs the approval process, conversion the fulfillment process. Readiness reports
//! a missing one (it does not resolve by itself: an operator deploys it).

use cpq_core::Error;
use sqlx::PgPool;

use crate::store;

/// The BPMN process id of `processes/quote-approval-v1.bpmn`, which submission starts.
pub const APPROVAL_PROCESS: &str = "quote-approval";

/// The BPMN process id of `processes/order-fulfillment-v2.bpmn`, which `cpq-order` starts on
/// conversion (named here so that readiness lists it without this crate depending on orders).
pub const FULFILLMENT_PROCESS: &str = "order-fulfillment";

/// A process a command needs, what cannot be done without it, and how an operator deploys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredProcess {
    pub bpmn_process_id: &'static str,
    pub needed_for: &'static str,
    /// What an operator does about it.
    pub remedy: &'static str,
}

pub const REQUIRED: [RequiredProcess; 2] = [
    RequiredProcess {
        bpmn_process_id: APPROVAL_PROCESS,
        needed_for: "submit a quote that needs approval",
        remedy: "deploy processes/quote-approval-v1.bpmn (cpq-admin deploy-bpmn processes)",
    },
    RequiredProcess {
        bpmn_process_id: FULFILLMENT_PROCESS,
        needed_for: "convert a quote into an order",
        remedy: "deploy processes/order-fulfillment-v2.bpmn (cpq-admin deploy-bpmn processes)",
    },
];

/// The refusal of a command whose process is not deployed.
pub fn not_deployed(bpmn_process_id: &'static str) -> Error {
    match REQUIRED
        .iter()
        .find(|p| p.bpmn_process_id == bpmn_process_id)
    {
        Some(p) => Error::NotDeployed {
            what: format!("the process {}", p.bpmn_process_id),
            needed_for: p.needed_for,
            remedy: p.remedy,
        },
        None => Error::internal(format!("{bpmn_process_id} is not a required process")),
    }
}

/// The required processes of which no version is deployed (process definitions are platform
/// artifacts, not tenant data).
pub async fn required_processes_missing(pool: &PgPool) -> Result<Vec<RequiredProcess>, Error> {
    let ids: Vec<&str> = REQUIRED.iter().map(|p| p.bpmn_process_id).collect();
    let deployed = store::process_definition_deployed_ids(pool, &ids).await?;
    Ok(REQUIRED
        .into_iter()
        .filter(|p| !deployed.iter().any(|d| d == p.bpmn_process_id))
        .collect())
}
