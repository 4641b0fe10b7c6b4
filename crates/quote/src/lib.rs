//! Quotes: the lifecycle ([`lifecycle`]) and the approval policy ([`approval`]), both pure, and
//! the commands that create, edit and price quotes in PostgreSQL ([`commands`]). Submission into
//! approval, acceptance, revisions and conversion build on these next.

pub mod approval;
pub mod commands;
pub mod lifecycle;
