//! The one way a command runs: in a tenant-scoped transaction, behind its idempotency key, with
//! the audit/event metadata built from the caller and the request, committed once.

use axum::response::{IntoResponse, Response};
use cpq_application::{Call, Operation};
use cpq_core::Error;
use cpq_db::error::db_error;
use cpq_db::{tenant, timed};

use crate::extract::{Caller, JsonBody, RequestContext};
use crate::idempotency::{self, Begun};
use crate::problem::ApiError;
use crate::response::CommandResponse;
use crate::state::AppState;

fn call(caller: &Caller, ctx: &RequestContext) -> Call {
    Call::new(
        caller.0.clone(),
        ctx.correlation_id.clone(),
        Some(ctx.request_id.clone()),
    )
}

/// Runs the application operation that `operation` makes of the body's value, in the caller's
/// tenant, behind the request's idempotency key, and answers with what `respond` makes of its
/// output. A replayed key returns the stored response without running anything; an error rolls
/// back everything, the idempotency record included.
pub async fn command<B, O>(
    state: &AppState,
    caller: &Caller,
    ctx: &RequestContext,
    body: JsonBody<B>,
    operation: impl FnOnce(B) -> O,
    respond: impl FnOnce(O::Output) -> Result<CommandResponse, Error>,
) -> Result<Response, ApiError>
where
    O: Operation,
{
    caller.0.require_any(O::ROLES)?;
    let call = call(caller, ctx);
    let retention =
        chrono::Duration::hours(i64::from(state.config.http.idempotency_retention_hours));
    let key_request = body
        .idempotency_key
        .as_ref()
        .map(|key| idempotency::Request {
            tenant: &call.principal.tenant,
            key,
            method: &body.method,
            path: &body.path,
            fingerprint: &body.fingerprint,
            retention,
        });
    let mut tx = tenant::begin(&state.db, &call.principal.tenant)
        .await
        .map_err(db_error)?;
    if let Some(r) = &key_request {
        if let Begun::Replay(response) = idempotency::begin(&mut tx, r).await? {
            metrics::counter!("idempotent_replays_total").increment(1);
            return Ok(response.into_response());
        }
    }
    let output = operation(body.value)
        .run(&state.services, &mut tx, &call)
        .await?;
    let response = respond(output)?;
    if let Some(r) = &key_request {
        idempotency::complete(&mut tx, r, &response).await?;
    }
    timed("transaction_commit", tx.commit())
        .await
        .map_err(db_error)?;
    Ok(response.into_response())
}

/// Runs a query operation for the caller (its transaction is rolled back).
pub async fn query<O: Operation>(
    state: &AppState,
    caller: &Caller,
    operation: O,
) -> Result<O::Output, ApiError> {
    let call = Call::new(caller.0.clone(), String::new(), None);
    Ok(cpq_application::query(&state.services, &call, operation).await?)
}
