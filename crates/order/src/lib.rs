//! Orders: an order and its items, made from an accepted quote's price snapshot, and the
//! fulfillment process that starts with it. Laid out as every domain crate is: [`model`] (pure
//! types and the conversion's decision: no I/O, no clock), [`store`] (named SQL) and
//! [`commands`] (one function per command: lock, decide, write, audit).
//!
//! `order` depends on `quote` (its lifecycle decides whether a quote may convert; the quote's
//! row is read and marked converted here) and never the other way. Decomposition and
//! fulfillment land here next.

pub mod commands;
pub mod model;
pub mod store;

pub use model::{Order, OrderItem, FULFILLMENT_PROCESS, ORDER_AGGREGATE};
