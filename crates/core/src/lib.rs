//! Shared vocabulary of the platform: who is calling ([`Principal`], [`TenantId`], [`Role`]) and
//! what went wrong ([`Error`]). Pure: no I/O, no HTTP, no database.

mod currency;
mod error;
mod principal;

pub use currency::Currency;
pub use error::{Error, FieldError};
pub use principal::{Principal, Role, TenantGrant, TenantId};
