//! Profile `create-accounts`: the physical-limit workload (issue 14, seed part 055 section 3):
//! every iteration is one `POST /v1/customer-accounts` with its own `Idempotency-Key`, the
//! command whose writes (idempotency record, account, audit record, outbox event, in one
//! transaction) `deploy/bench/create-account.sql` makes `pgbench` run directly against
//! PostgreSQL. `scripts/physical-limit.sh` runs both and prints the ratio.

use std::sync::atomic::{AtomicU64, Ordering};

use goose::prelude::*;
use serde_json::json;

use crate::sales::{call_with, install, run_id, Setup};

pub const SCENARIO: &str = "create-accounts";
const CREATE: &str = "create account";

/// The step's method and route, as the API labels it.
pub const ROUTES: &[(&str, &str, &str)] = &[(CREATE, "POST", "/v1/customer-accounts")];

static NEXT: AtomicU64 = AtomicU64::new(1);

pub fn scenario(setup: Setup) -> Result<Scenario, GooseError> {
    install(setup, SCENARIO)?;
    Ok(scenario!(SCENARIO).register_transaction(transaction!(create_account).set_name(CREATE)))
}

async fn create_account(user: &mut GooseUser) -> TransactionResult {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let key = format!("limit-{}-{n}", run_id());
    let body = json!({
        "name": format!("Limit Co {n}"),
        "segment": "enterprise",
        "market": "DE",
        "currency": "EUR",
    });
    call_with(
        user,
        CREATE,
        GooseMethod::Post,
        "/v1/customer-accounts",
        &[("Idempotency-Key", key)],
        Some(&body),
    )
    .await?;
    Ok(())
}
