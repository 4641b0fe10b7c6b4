//! Customer accounts: who quotes and orders are for.
//!
//! [`domain`] holds the rules (pure: parsing, validation, transitions); [`store`] the SQL;
//! [`commands`] the application services that the API calls inside its tenant transaction, each
//! writing its change, its audit record and its events together.

pub mod commands;
pub mod domain;
pub mod store;

pub use domain::{AccountInput, AccountPatch, AccountStatus, CustomerAccount, Segment};
