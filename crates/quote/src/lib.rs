//! Quotes: the lifecycle ([`lifecycle`]) and the approval policy ([`approval`]), both pure; the
//! quote commands in PostgreSQL ([`commands`]: create, items, price, cancel, worklist); approval
//! ([`approvals`]: policy versions, submission, approval tasks, acceptance); [`revisions`]; the
//! processes the platform needs for quotes and their orders ([`processes`]); and the validity
//! sweep ([`expiry`]). Conversion into an order is the `cpq-order` crate's (it depends on this
//! one, never the other way).

pub mod approval;
pub mod approvals;
pub mod commands;
pub mod expiry;
pub mod lifecycle;
pub mod processes;
pub mod revisions;
