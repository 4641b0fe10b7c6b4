//! Quotes. So far the pure core the quote commands will be built on: the lifecycle
//! ([`lifecycle`]) and the approval policy ([`approval`]). No I/O, no clock.

pub mod approval;
pub mod lifecycle;
