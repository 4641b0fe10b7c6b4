//! Quotes, in the layout of `customer` and `order`:
//!
//! - [`model`] (pure: no I/O, no clock): the quote and its lines, the lifecycle state machine
//!   ([`model::lifecycle`]), the approval policy ([`model::policy`]), and the rules the commands
//!   decide with, including who may decide an approval task;
//! - [`store`]: every SQL statement of the crate, named resource-first and timed;
//! - the commands, one function each (lock, decide with the model, write, audit): [`commands`]
//!   (create, items, terms, price, submit, accept, cancel, the approval policy's versions),
//!   [`approval_tasks`] (an approver's decision), [`revisions`] (revise), [`expiry`] (the
//!   validity sweep);
//! - [`processes`]: the BPMN processes the quote commands and their orders need, for readiness.
//!
//! Modules depend downwards only: commands on store and model, store on model, model on
//! nothing of this crate. Conversion into an order is the `cpq-order` crate's (it depends on
//! this one, never the other way).

pub mod approval_tasks;
pub mod commands;
pub mod expiry;
pub mod model;
pub mod processes;
pub mod revisions;
pub mod store;

pub use model::lifecycle;
