//! The product catalog.
//!
//! A catalog version is one [`document::CatalogDocument`]: offerings, characteristics, bundle
//! components, configuration rules, price lists, promotions, tax rates and the technical catalog.
//! Drafts change; [`validate`] lists every problem that stops publishing; publishing hashes the
//! canonical document and [`compile`]s it into the indexed [`compiled::CompiledCatalog`] that
//! runtime reads. Published versions never change. The pure parts (document, expressions,
//! validation, compilation) do no I/O; [`store`] holds the SQL.

#[cfg(feature = "store")]
pub mod commands;
pub mod compiled;
pub mod document;
pub mod expr;
#[cfg(feature = "store")]
pub mod seed;
#[cfg(feature = "store")]
pub mod store;
pub mod synthetic;
pub mod validate;
pub mod values;
pub mod version;

pub use compiled::{canonical, compile, content_hash, CompiledCatalog};
pub use document::CatalogDocument;
pub use validate::{validate, Problem};
