//! The customer's installed base: one asset per fulfilled order item.
