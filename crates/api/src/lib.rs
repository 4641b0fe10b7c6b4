//! The HTTP API (`cpq-api`): authentication and tenancy, strict input, idempotent commands,
//! optimistic concurrency, RFC 9457 problems, cursor pagination, health, metrics and OpenAPI.
//!
//! Handlers only translate HTTP: each runs one `cpq-application` operation through
//! [`command::command`] (tenant-scoped transaction, idempotency key, one commit) or
//! [`command::query`]. Long-running work, outbox polling and consumer loops
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
