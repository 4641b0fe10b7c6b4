//! `cpq-worker`: executes workflow jobs of the types its group is configured for.
//!
//! Per job type: claim up to `max_active` jobs of every tenant (one `FOR UPDATE SKIP LOCKED`
//! claim, leased for `lease_ms`; the platform's own group serves all tenants, and says so to the
//! library), run each, report the outcome; when nothing is ready, wait for a `NOTIFY cpq_jobs`
//! of that type or `poll_interval_ms`, whichever comes first. A due-time scan fires timers. The
//! group registers its job types with a heartbeat. Shutdown stops claiming and lets jobs in flight
//! finish within `shutdown_grace_ms`; whatever does not finish is re-claimed after its lease.
//! The timer scan also purges expired messages and message-id records.
//!
//! Handlers (`handler` in the job type's config): `http` POSTs the job to a URL; `system` sends a
//! request to one of the external business systems with exponential back-off, jitter and a
//! circuit breaker per system (see the `handler` module and its submodules). Both record each
//! external call as an attempt (in its own committed transaction) before making it, send the
//! job's stable idempotency key, make the call outside any transaction, and report the outcome
//! in a new one. Handlers are idempotent by contract: a job may be delivered twice after a lease
//! expires, always with the same key.

mod breakers;
mod handler;
pub mod resilience;
mod run;

pub use run::{run, WorkerError};
