//! Activating jobs with a wait: claim what is activatable now, else wait until a job of the type
//! may have arrived (a `NOTIFY` on [`JOB_CHANNEL`]) and try again, until the caller's deadline.
//! The API's long poll and the worker's loops both claim through [`activate_or_wait`]; it must
//! not be cancelled while it claims (a dropped claim leaves jobs leased to no one until their
//! lease ends), so callers bound it with `until`, which only ever interrupts the wait.

use std::future::Future;
use std::time::Duration;

use cpq_core::Error;
use cpq_db::error::db_error;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;

use super::job::{activate_jobs, ActivatedJob, JobTenants};
use super::JOB_CHANNEL;

/// How [`activate_or_wait`] waits when nothing is activatable; `U` resolves when the caller stops
/// waiting (its deadline, or anything else it must attend to).
pub enum JobWait<'a, U> {
    /// Not at all: one try.
    Never,
    /// On a LISTEN connection of its own, opened only when the first try finds nothing; every
    /// announcement wakes it (a job retried after a back-off is not announced, so any wake-up is
    /// a reason to try again). The API's long poll.
    Listen(U),
    /// On a `Notify` that a LISTEN connection shared by the process signals for this job type.
    /// The worker's loops.
    Notified(&'a Notify, U),
}

/// Claims up to `max` jobs of `job_type` of `tenants` for `worker`, leasing them for `lease`;
/// when there are none, waits as `wait` says and tries again after each wake-up until it claims
/// some or the wait ends (then the answer is empty).
pub async fn activate_or_wait<U: Future<Output = ()>>(
    pool: &PgPool,
    tenants: &JobTenants,
    job_type: &str,
    worker: &str,
    max: i32,
    lease: Duration,
    wait: JobWait<'_, U>,
) -> Result<Vec<ActivatedJob>, Error> {
    let activate = || activate_jobs(pool, job_type, worker, max, lease, tenants);
    let jobs = activate().await?;
    if !jobs.is_empty() {
        return Ok(jobs);
    }
    match wait {
        JobWait::Never => Ok(jobs),
        JobWait::Listen(until) => {
            let mut listener = PgListener::connect_with(pool).await.map_err(db_error)?;
            listener.listen(JOB_CHANNEL).await.map_err(db_error)?;
            tokio::pin!(until);
            loop {
                // A job may have arrived between the last try and LISTEN (or this wake-up).
                let jobs = activate().await?;
                if !jobs.is_empty() {
                    return Ok(jobs);
                }
                tokio::select! {
                    n = listener.recv() => { n.map_err(db_error)?; }
                    () = &mut until => return Ok(jobs),
                }
            }
        }
        JobWait::Notified(wake, until) => {
            tokio::pin!(until);
            loop {
                tokio::select! {
                    () = wake.notified() => {}
                    () = &mut until => return Ok(Vec::new()),
                }
                let jobs = activate().await?;
                if !jobs.is_empty() {
                    return Ok(jobs);
                }
            }
        }
    }
}
