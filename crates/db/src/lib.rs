//! PostgreSQL, the platform's source of truth.
//!
//! Owns: connection pools ([`pool`]), the embedded migrations and the schema version the binary
//! needs ([`migrations`]), tenant-scoped transactions that row-level security keys on
//! ([`tenant`]), query naming and timing ([`timed`]) and the translation of driver errors into
//! [`cpq_core::Error`] ([`error`]). It knows no business tables.

pub mod error;
pub mod migrations;
pub mod pool;
pub mod tenant;
mod timing;

pub use sqlx;
pub use timing::timed;

/// A transaction on the application pool.
pub type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
