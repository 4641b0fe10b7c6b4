//! The HTTP API (`cpq-api`): authentication and tenancy, strict input, idempotent commands,
//! optimistic concurrency, RFC 9457 problems, cursor pagination, health, metrics and OpenAPI.
//!
//! Handlers never touch SQL: they call the domain crates' commands and queries inside the
//! transaction [`command::execute`] opens. Long-running work, outbox polling and consumer loops
//! do not belong here.

pub mod app;
pub mod command;
pub mod etag;
pub mod extract;
pub mod idempotency;
pub mod middleware;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod response;
pub mod routes;
pub mod state;

pub use app::{openapi_json, router, run, Application, StartupError};
