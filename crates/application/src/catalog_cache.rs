//! Compiled catalog versions for runtime: in process, then Redis, then PostgreSQL; and which
//! version is in force, from each tenant's activation schedule held in process
//! ([`crate::activations`]).
//!
//! A published version never changes, so a compiled version is cached under its id for good
//! (Redis key `{environment}:{tenant}:catalog:{version}:compiled`, with a TTL only to bound memory),
//! and publishing invalidates the id in both layers. What changes is which version is *active*:
//! that comes from the tenant's activation schedule, dropped by every instance when PostgreSQL
//! notifies an activation, so an activation is seen at once everywhere. Concurrent misses for one key share
//! one load (single flight). Redis unreachable: the load goes to PostgreSQL, the caller
//! sees no error, and `catalog_cache_redis_errors_total` counts it. Metrics:
//! `catalog_cache_requests_total{layer, outcome}`, `catalog_cache_rebuilds_total`,
//! `catalog_cache_miss_seconds`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use cpq_catalog::store;
use cpq_catalog::CompiledCatalog;
use cpq_core::{Error, TenantId};
use cpq_db::tenant;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::activations::Schedules;
use crate::redis_link::RedisLink;

const COMPILED_TTL_SECS: u64 = 7 * 24 * 3600;

type Slot = Arc<OnceCell<Arc<CompiledCatalog>>>;

pub struct CatalogCache {
    environment: &'static str,
    redis: RedisLink,
    compiled: Mutex<HashMap<(TenantId, Uuid), Slot>>,
    pub schedules: Arc<Schedules>,
}

fn count(layer: &'static str, outcome: &'static str) {
    metrics::counter!("catalog_cache_requests_total", "layer" => layer, "outcome" => outcome)
        .increment(1);
}

impl CatalogCache {
    pub fn new(environment: &'static str, redis: RedisLink) -> CatalogCache {
        CatalogCache {
            environment,
            redis,
            compiled: Mutex::new(HashMap::new()),
            schedules: Arc::new(Schedules::default()),
        }
    }

    fn key(&self, tenant: &TenantId, id: Uuid) -> String {
        format!("{}:{}:catalog:{}:compiled", self.environment, tenant, id)
    }

    fn slot(&self, tenant: &TenantId, id: Uuid) -> Slot {
        match self.compiled.lock() {
            Ok(mut map) => map.entry((tenant.clone(), id)).or_default().clone(),
            // A poisoned map only loses caching, never correctness.
            Err(_) => Arc::new(OnceCell::new()),
        }
    }

    /// The compiled form of a published version.
    pub async fn compiled(
        &self,
        db: &PgPool,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Arc<CompiledCatalog>, Error> {
        let slot = self.slot(tenant, id);
        if let Some(c) = slot.get() {
            count("process", "hit");
            return Ok(c.clone());
        }
        count("process", "miss");
        slot.get_or_try_init(|| self.load(db, tenant, id))
            .await
            .cloned()
    }

    async fn load(
        &self,
        db: &PgPool,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Arc<CompiledCatalog>, Error> {
        let start = Instant::now();
        let key = self.key(tenant, id);
        match self.redis.get(&key).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<CompiledCatalog>(&bytes) {
                Ok(c) => {
                    count("redis", "hit");
                    metrics::histogram!("catalog_cache_miss_seconds", "source" => "redis")
                        .record(start.elapsed().as_secs_f64());
                    return Ok(Arc::new(c));
                }
                Err(e) => {
                    tracing::warn!(error = %e, key, "unreadable compiled catalog in Redis; reloading")
                }
            },
            Ok(None) => count("redis", "miss"),
            Err(e) => {
                metrics::counter!("catalog_cache_redis_errors_total").increment(1);
                tracing::warn!(error = %e, "Redis unavailable for the catalog cache; loading from PostgreSQL");
            }
        }
        let mut tx = tenant::begin(db, tenant)
            .await
            .map_err(cpq_db::error::db_error)?;
        let compiled = store::catalog_version_compiled(&mut tx, tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("published catalog version", id))?;
        drop(tx);
        metrics::counter!("catalog_cache_rebuilds_total").increment(1);
        metrics::histogram!("catalog_cache_miss_seconds", "source" => "postgresql")
            .record(start.elapsed().as_secs_f64());
        if let Ok(bytes) = serde_json::to_vec(&compiled) {
            if self
                .redis
                .set(&key, &bytes, COMPILED_TTL_SECS)
                .await
                .is_err()
            {
                metrics::counter!("catalog_cache_redis_errors_total").increment(1);
            }
        }
        Ok(Arc::new(compiled))
    }

    /// The version in force for `tenant` at `at`: from the held schedule, or read from
    /// PostgreSQL (and held) when there is none to trust.
    pub async fn active(
        &self,
        db: &PgPool,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Uuid, Error> {
        let none = || Error::conflict(format!("no catalog version is active at {at}"));
        if let Some(v) = self.schedules.in_force(tenant, at) {
            count("activation", "hit");
            return v.ok_or_else(none);
        }
        count("activation", "miss");
        let epoch = self.schedules.epoch();
        let mut tx = tenant::begin(db, tenant)
            .await
            .map_err(cpq_db::error::db_error)?;
        let entries = store::catalog_activation_schedule(&mut tx, tenant).await?;
        drop(tx);
        let v = crate::activations::in_force(&entries, at);
        self.schedules.keep(tenant, epoch, entries);
        v.ok_or_else(none)
    }

    /// Drops a version from the process cache and Redis (used when a version stops being
    /// servable; published content itself never changes).
    pub async fn invalidate(&self, tenant: &TenantId, id: Uuid) {
        if let Ok(mut map) = self.compiled.lock() {
            map.remove(&(tenant.clone(), id));
        }
        if self.redis.delete(&self.key(tenant, id)).await.is_err() {
            metrics::counter!("catalog_cache_redis_errors_total").increment(1);
        }
    }
}
