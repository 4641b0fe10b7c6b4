//! Quotes: the lifecycle ([`lifecycle`]) and the approval policy ([`approval`]), both pure; the
//! quote commands in PostgreSQL ([`commands`]: create, items, price, cancel, worklist); approval
//! ([`approvals`]: policy versions, submission, approval tasks, acceptance); [`revisions`];
//! conversion into exactly one order ([`orders`]); the processes these need ([`processes`]); and
//! the validity sweep ([`expiry`]).

pub mod approval;
pub mod approvals;
pub mod commands;
pub mod expiry;
pub mod lifecycle;
pub mod orders;
pub mod processes;
pub mod revisions;
