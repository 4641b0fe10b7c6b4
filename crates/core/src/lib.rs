//! Shared vocabulary of the platform: who is calling ([`Principal`], [`TenantId`], [`Role`]) and
//! what went wrong ([`Error`]), and the [`canonical`] JSON form whose digests audit records,
//! catalog content hashes and price snapshots share. Pure: no I/O, no HTTP, no database.

pub mod canonical;
mod currency;
mod error;
mod principal;

pub use canonical::{canonical_json, digest};
pub use currency::Currency;
pub use error::{Error, FieldError};
pub use principal::{Principal, Role, TenantGrant, TenantId};
