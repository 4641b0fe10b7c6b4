//! Configuration validation and pricing against a catalog version.
