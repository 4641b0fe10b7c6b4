//! An operation is one command or query of the platform, written once and run by every entry
//! point. The API runs commands behind its idempotency record (`cpq_api::command`); the runners
//! here serve callers that have none (`cpq-admin`, the worker).

use std::future::Future;

use cpq_core::{Error, Role};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed, Tx};

use crate::call::Call;
use crate::services::Services;

/// One command or query. `run` gets the caller and a transaction in the caller's tenant that the
/// runner opened and will commit (a command) or roll back (a query): an operation never commits,
/// and nothing external happens inside it.
pub trait Operation: Send + Sized {
    type Output: Send;
    /// The roles that may run it; `run` may refuse more (for example a tenant not granted).
    const ROLES: &'static [Role];

    fn run(
        self,
        services: &Services,
        tx: &mut Tx,
        call: &Call,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send;
}

/// Runs a command in its own transaction and commits it.
pub async fn execute<O: Operation>(
    services: &Services,
    call: &Call,
    operation: O,
) -> Result<O::Output, Error> {
    call.principal.require_any(O::ROLES)?;
    let mut tx = tenant::begin(&services.db, &call.principal.tenant)
        .await
        .map_err(db_error)?;
    let output = operation.run(services, &mut tx, call).await?;
    timed("transaction_commit", tx.commit())
        .await
        .map_err(db_error)?;
    Ok(output)
}

/// Runs a query in a transaction that is rolled back.
pub async fn query<O: Operation>(
    services: &Services,
    call: &Call,
    operation: O,
) -> Result<O::Output, Error> {
    call.principal.require_any(O::ROLES)?;
    let mut tx = tenant::begin(&services.db, &call.principal.tenant)
        .await
        .map_err(db_error)?;
    operation.run(services, &mut tx, call).await
}
