use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cpq_application::redis_link::RedisLink;
use cpq_application::workflow::jobs::{
    activate_jobs, ActivateJobs, Waiting, EVERY_TENANT, MAX_JOBS,
};
use cpq_application::workflow::worker_groups::{HeartbeatOwnWorkerGroup, HeartbeatWorkerGroup};
use cpq_application::{Call, Services};
use cpq_config::{Config, JobTypeConfig, WorkerConfig};
use cpq_core::{Principal, Role, TenantGrant, TenantId};
use cpq_workflow::instances::{self, JOB_CHANNEL};
use sqlx::postgres::PgListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::breakers::Breakers;
use crate::handler;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no [worker] section in the configuration")]
    NotConfigured,
    #[error("telemetry: {0}")]
    Telemetry(#[from] cpq_telemetry::TelemetryError),
    #[error("cannot listen on the admin port {0}: {1}")]
    Admin(std::net::SocketAddr, std::io::Error),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("redis: {0}")]
    Redis(String),
    #[error("{0}")]
    Identity(cpq_core::Error),
}

/// Quotes expire by date: scanning once a minute is plenty.
const EXPIRY_SCAN_EVERY: Duration = Duration::from_secs(60);
/// How often the stuck-task gauge is counted again.
const STUCK_COUNT_EVERY: Duration = Duration::from_secs(30);

/// The tenant the worker's own principal belongs to (worker groups are platform-wide).
fn platform() -> Result<TenantId, cpq_core::Error> {
    TenantId::parse("platform").map_err(|e| cpq_core::Error::internal(e.detail))
}

/// Who the group acts as: the platform's own worker, authorised for every tenant. It claims
/// and reports jobs through the same application operations as a worker calling the job API.
fn identity(group: &str) -> Result<Principal, cpq_core::Error> {
    Ok(Principal {
        subject: format!("cpq-worker:{group}"),
        tenant: platform()?,
        roles: [Role::Worker].into(),
        groups: Default::default(),
        grant: TenantGrant::All,
    })
}

/// Registers the group's job types through the same operation as a platform operator's
/// heartbeat, as the platform's own worker.
async fn heartbeat(cx: &Context, w: &WorkerConfig) {
    let group = HeartbeatWorkerGroup {
        name: w.group.clone(),
        job_types: w.job_types.iter().map(|j| j.job_type.clone()).collect(),
        worker_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let call = Call::new(cx.worker.clone(), cx.worker_name.clone(), None);
    match cpq_application::execute(&cx.services, &call, HeartbeatOwnWorkerGroup(group)).await {
        Ok(_) => {
            metrics::gauge!("worker_heartbeat_timestamp_seconds").set(Utc::now().timestamp() as f64)
        }
        Err(e) => tracing::warn!(error = %e, "worker group heartbeat failed"),
    }
}

/// Where a job type's loop runs.
#[derive(Clone)]
struct Context {
    services: Services,
    http: reqwest::Client,
    /// One circuit breaker per external system, shared by the job types calling it.
    breakers: Arc<Breakers>,
    worker: Principal,
    worker_name: String,
}

/// One job type's loop: claim what capacity allows, run, wait for work.
async fn job_type_loop(
    cx: Context,
    cfg: JobTypeConfig,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let capacity = Arc::new(Semaphore::new(cfg.max_active as usize));
    let cfg = Arc::new(cfg);
    let call = Call::new(cx.worker.clone(), cx.worker_name.clone(), None);
    let mut running = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        while running.try_join_next().is_some() {}
        let free = capacity.available_permits();
        let mut failed = false;
        if free > 0 {
            // The platform's own worker group serves every tenant: it acts with the all-tenants
            // grant and says so. One activation claims at most MAX_JOBS; with more capacity the
            // loop claims again at once.
            let request = ActivateJobs {
                job_type: cfg.job_type.clone(),
                worker: cx.worker_name.clone(),
                max_jobs: u32::try_from(free).unwrap_or(MAX_JOBS).min(MAX_JOBS),
                timeout_ms: cfg.lease_ms,
                // Nothing to claim: wait for this type's wake-up or the poll interval ...
                request_timeout_ms: cfg.poll_interval_ms,
                tenant_ids: Some(vec![EVERY_TENANT.to_owned()]),
            };
            // ... or the stop, or a job in flight finishing (capacity to claim more); only the
            // wait is interrupted.
            let interrupt = async {
                tokio::select! {
                    _ = stop.changed() => {}
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
            };
            let waiting = Waiting::Notified {
                wake: &wake,
                interrupt,
            };
            match activate_jobs(&cx.services, &call, &request, waiting).await {
                // Empty: the wait already ran, so the loop claims again at once.
                Ok(jobs) => {
                    for job in jobs {
                        let Ok(permit) = capacity.clone().acquire_owned().await else {
                            break;
                        };
                        let (cx, cfg) = (cx.clone(), cfg.clone());
                        running.spawn(async move {
                            let id = job.job_id;
                            if let Err(e) =
                                handler::handle(&cx.services, &cx.http, &cx.breakers, &cx.worker, &cfg, job).await
                            {
                                tracing::error!(error = %e, job = %id, "job handling failed; the job is re-claimed after its lease");
                            }
                            drop(permit);
                        });
                    }
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, job_type = cfg.job_type, "claiming jobs failed")
                }
            }
        }
        if failed || capacity.available_permits() == 0 {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(cfg.poll_interval_ms)) => {}
                _ = stop.changed() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
    }
    // Stop claiming; let jobs in flight finish within the grace period.
    let _ = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    running.abort_all();
}

/// Runs the worker group until `shutdown` resolves.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), WorkerError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let w = config.worker.clone().ok_or(WorkerError::NotConfigured)?;
    let metrics_handle = cpq_telemetry::metrics_handle()?;
    let pool = cpq_db::pool::app_pool(&config.database, "cpq-worker");
    let http = reqwest::Client::builder().build()?;
    let worker_name = format!("{}@{}", w.group, std::process::id());
    // The worker's operations reach no Redis: the link is made lazily and never connects.
    let redis = RedisLink::new(&config.redis).map_err(|e| WorkerError::Redis(e.to_string()))?;
    let services = Services::new(config.environment.as_str(), pool.clone(), redis);
    let worker = identity(&w.group).map_err(WorkerError::Identity)?;
    let cx = Context {
        services,
        http,
        breakers: Arc::new(Breakers::new(&w.job_types)),
        worker,
        worker_name,
    };

    let listener = tokio::net::TcpListener::bind(w.admin_bind)
        .await
        .map_err(|e| WorkerError::Admin(w.admin_bind, e))?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), group = w.group, "cpq-worker admin port");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    {
        let (pool, metrics_handle, mut stop) =
            (pool.clone(), metrics_handle.clone(), stop_rx.clone());
        tasks.spawn(async move {
            let _ = axum::serve(listener, cpq_telemetry::admin::router(pool, metrics_handle))
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        });
    }

    // Wake-ups: one Notify per job type, fed by LISTEN cpq_jobs.
    let wakes: HashMap<String, Arc<Notify>> = w
        .job_types
        .iter()
        .map(|j| (j.job_type.clone(), Arc::new(Notify::new())))
        .collect();
    {
        let (pool, wakes, mut stop) = (pool.clone(), wakes.clone(), stop_rx.clone());
        tasks.spawn(async move {
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection failed; polling until it returns");
                        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(2)) => continue, _ = stop.changed() => return }
                    }
                };
                if listener.listen(JOB_CHANNEL).await.is_err() {
                    continue;
                }
                loop {
                    tokio::select! {
                        n = listener.recv() => match n {
                            Ok(n) => if let Some(w) = wakes.get(n.payload()) { w.notify_one() },
                            Err(_) => break,
                        },
                        _ = stop.changed() => return,
                    }
                }
            }
        });
    }
    {
        let (cx, w2, mut stop) = (cx.clone(), w.clone(), stop_rx.clone());
        tasks.spawn(async move {
            loop {
                heartbeat(&cx, &w2).await;
                tokio::select! { _ = tokio::time::sleep(Duration::from_millis(w2.heartbeat_interval_ms)) => {}, _ = stop.changed() => return }
            }
        });
    }
    {
        let (pool, interval, mut stop) = (pool.clone(), w.timer_scan_interval_ms, stop_rx.clone());
        tasks.spawn(async move {
            let (mut last_expiry, mut last_stuck_count) = (None, None);
            loop {
                instances::fire_due_timers(&pool, 200).await;
                instances::fire_due_start_timers(&pool, 100).await;
                if let Err(e) = instances::purge_expired_messages(&pool, 500).await {
                    tracing::warn!(error = %e, "purging expired messages failed");
                }
                if last_expiry.is_none_or(|t: std::time::Instant| t.elapsed() >= EXPIRY_SCAN_EVERY) {
                    last_expiry = Some(std::time::Instant::now());
                    if let Err(e) = cpq_quote::expiry::expire_due(&pool, Utc::now().date_naive(), 500).await {
                        tracing::warn!(error = %e, "quote expiry scan failed");
                    }
                }
                if last_stuck_count.is_none_or(|t: std::time::Instant| t.elapsed() >= STUCK_COUNT_EVERY) {
                    last_stuck_count = Some(std::time::Instant::now());
                    if let Err(e) = cpq_application::order_search::publish_stuck_tasks(&pool).await {
                        tracing::warn!(error = %e, "counting stuck fulfillment tasks failed");
                    }
                }
                tokio::select! { _ = tokio::time::sleep(Duration::from_millis(interval)) => {}, _ = stop.changed() => return }
            }
        });
    }
    let grace = Duration::from_millis(w.shutdown_grace_ms);
    for cfg in w.job_types.clone() {
        let wake = wakes.get(&cfg.job_type).cloned().unwrap_or_default();
        tasks.spawn(job_type_loop(cx.clone(), cfg, wake, stop_rx.clone(), grace));
    }
    tracing::info!(
        group = w.group,
        job_types = w.job_types.len(),
        "cpq-worker running"
    );
    shutdown.await;
    tracing::info!("shutdown requested: no more claims; finishing jobs in flight");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    pool.close().await;
    tracing::info!("cpq-worker stopped");
    Ok(())
}
