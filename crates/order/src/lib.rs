//! Orders: an order and its items, made from an accepted quote's price snapshot, its fulfillment
//! plan (the items decomposed through the technical catalog: [`model::plan`]) and the
//! fulfillment process that starts with it. Laid out as every domain crate is: [`model`] (pure
//! types, the conversion's decision and decomposition: no I/O, no clock), [`store`] (named SQL)
//! and [`commands`] (one function per command: lock, decide, write, audit).
//!
//! `order` depends on `quote` (its lifecycle decides whether a quote may convert; the quote's
//! row is read and marked converted here) and on the pure catalog (the technical catalog), never
//! the other way. Executing the plan lands here next.

pub mod assets;
pub mod commands;
pub mod execution;
pub mod fallout;
pub mod model;
pub mod search;
pub mod store;

pub use model::{Order, OrderItem, FULFILLMENT_PROCESS, ORDER_AGGREGATE};
