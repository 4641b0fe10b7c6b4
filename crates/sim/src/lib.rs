//! `cpq-sim`: the external business systems (inventory, provisioning, billing, CRM,
//! notification) simulated over real HTTP, so that the platform's workers call them exactly as
//! they would call real ones. Each system has knobs (latency, transient, timeout and permanent
//! failure rates, callback delay and drop rate, up/slow/down), switchable at run time; every
//! request is stored by its `Idempotency-Key` in the simulator's own database, so a repeated key
//! returns the first answer and "duplicate external executions" is a number anyone can query
//! (`GET /admin/executions?duplicates_only=true`, `GET /admin/stats`). See docs/simulators.md.
//!
//! Pure parts: [`system`] (results, business codes), [`knobs`], [`latency`], [`force`],
//! [`decide`], [`request`], [`signature`]. I/O: [`store`] (named SQL), [`execute`] (one request),
//! [`callbacks`] (the delivery loop), [`routes`] (HTTP). It shares no table with the platform and
//! calls none of its code: it stands for systems outside it.

pub mod callbacks;
pub mod config;
pub mod decide;
pub mod execute;
pub mod force;
pub mod knobs;
pub mod latency;
pub mod problem;
pub mod request;
pub mod routes;
pub mod signature;
pub mod state;
pub mod store;
pub mod system;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::{Options, Systems};
use state::Sim;

/// The local database (`scripts/lib.sh` creates it, owned by the platform's schema owner role).
pub const LOCAL_DATABASE_URL: &str = "postgres://cpq_owner:cpq_owner_local@127.0.0.1:5432/cpq_sim";

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Telemetry(#[from] cpq_telemetry::TelemetryError),
    #[error("--database-url is not a PostgreSQL URL: {0}")]
    DatabaseUrl(sqlx::Error),
    #[error("migrating the simulator's database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Migrates its database, serves until `shutdown` resolves, then stops within the grace period.
pub async fn run<F>(options: Options, shutdown: F) -> Result<(), SimError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let metrics = cpq_telemetry::metrics_handle()?;
    let connect: PgConnectOptions = options
        .database_url
        .expose()
        .parse()
        .map_err(SimError::DatabaseUrl)?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(
            connect
                .application_name("cpq-sim")
                .disable_statement_logging(),
        );
    store::MIGRATOR.run(&pool).await?;
    let seed = options.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    let http = reqwest::Client::builder().build()?;
    let sim = Arc::new(Sim::new(
        pool.clone(),
        http,
        options.systems,
        seed,
        options.callback_retry_base,
    ));
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| SimError::Listen(options.listen, e))?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr, seed, "cpq-sim serving");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // Stops after the deliveries at hand; what it leased and did not finish is due again later.
    tasks.spawn(callbacks::deliver_loop(sim.clone(), stop_rx.clone()));
    {
        let app = routes::router(sim.clone(), metrics);
        let mut stop = stop_rx.clone();
        // Stops taking connections on stop and finishes the requests in flight (a simulated
        // timeout may hold one until the grace runs out).
        tasks.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "serving failed");
            }
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    cpq_telemetry::process::stop_within("cpq-sim", options.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    // Whatever did not finish in the grace is abandoned: an execution not stored executes again
    // on a retry once its claim is stale; a callback not recorded is sent again.
    tasks.abort_all();
    drop(sim);
    pool.close().await;
    Ok(())
}
