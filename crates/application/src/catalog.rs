//! Catalog versions: authoring, publishing, activation, offering search; the version in force.
