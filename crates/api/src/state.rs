use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cpq_auth::Verifier;
use cpq_config::Config;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use cpq_application::catalog_cache::CatalogCache;
use cpq_application::redis_link::RedisLink;
use cpq_application::Services;

/// What every handler may reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: RedisLink,
    pub verifier: Arc<Verifier>,
    pub metrics: PrometheusHandle,
    pub catalogs: Arc<CatalogCache>,
    /// What the application layer's operations reach (the same pool, Redis link and cache).
    pub services: Services,
    started: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        db: PgPool,
        redis: RedisLink,
        verifier: Arc<Verifier>,
        metrics: PrometheusHandle,
    ) -> AppState {
        let services = Services::new(config.environment.as_str(), db.clone(), redis.clone());
        AppState {
            catalogs: services.catalogs.clone(),
            services,
            config,
            db,
            redis,
            verifier,
            metrics,
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Start-up is complete once the listener is bound and serving.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}
