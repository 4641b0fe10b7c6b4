//! The operational order search, and stuck fulfillment tasks.
