#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box tests of the API over HTTP, each against its own freshly migrated database and the
//! real Redis.

mod approvals;
mod assets;
mod binary;
mod bpmn_elements;
mod budgets;
mod callbacks;
mod catalog;
mod compensation;
mod contract;
mod conversion;
mod customer_accounts;
mod decisions;
mod deployments;
mod event_subprocesses;
mod events;
mod fallout;
mod fulfillment;
mod health;
mod helpers;
mod idempotency;
mod input;
mod jobs;
mod modeler_fixtures;
mod openapi;
mod order_fulfillment;
mod order_search;
mod process_run;
mod quote_search;
mod quotes;
mod signals;
// The API's harness, shared with this crate's other test targets.
#[path = "../support/mod.rs"]
mod support;
mod tenancy;
mod user_tasks;
mod workflow;
