//! The application layer: every business operation of the platform, once.
//!
//! The path of every request is *entry point -> application -> store* (STYLE.md, omicron's
//! `nexus/src/app`): an entry point (an API handler, `cpq-admin`, the worker, a consumer) turns its
//! input into an [`Operation`] and runs it with the caller's identity ([`Call`]) in a transaction;
//! the operation checks who may run it, applies the domain crates' rules and calls their stores.
//! Entry points never write SQL or hold business rules; operations never see HTTP.
//!
//! - [`operation`]: the [`Operation`] trait and the runner for callers without an idempotency key
//!   of their own ([`execute`], [`query`]).
//! - [`services`]: what an operation may reach besides its transaction (the pool, the catalog
//!   cache).
//! - One module per resource: [`customers`], [`catalog`], [`configuration`], [`quotes`],
//!   [`approvals`], [`orders`], [`search`], [`workflow`].

pub mod activations;
pub mod call;
pub mod catalog_cache;
pub mod operation;
pub mod redis_link;
pub mod services;

pub mod approvals;
pub mod assets;
pub mod catalog;
pub mod configuration;
pub mod customers;
pub mod fallout;
pub mod order_search;
pub mod orders;
pub mod quotes;
pub mod search;
pub mod workflow;

pub use call::Call;
pub use operation::{execute, query, Operation};
pub use services::Services;
