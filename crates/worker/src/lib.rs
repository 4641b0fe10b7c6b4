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
//! The HTTP handler records each external call as an attempt (in its own committed transaction)
//! before making it, sends the job's stable idempotency key, and maps the answer: 2xx completes
//! the job with the JSON object returned; 4xx with an `error_code` throws that BPMN error (with
//! the body's `message` and `variables` object, if any); other
//! 4xx fail the job without retries (an incident); 5xx, timeouts and connection errors fail it with
//! one retry fewer after the configured back-off. Handlers are idempotent by contract: a job may
//! be delivered twice after a lease expires, always with the same key.

mod handler;
mod run;

pub use run::{run, WorkerError};
