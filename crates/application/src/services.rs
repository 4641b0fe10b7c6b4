//! What an operation may reach besides its transaction.

use std::sync::Arc;

use sqlx::PgPool;

use crate::catalog_cache::CatalogCache;
use crate::redis_link::RedisLink;

/// Shared by every operation of a process. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// For work outside the caller's transaction (loading a published catalog version).
    pub db: PgPool,
    pub redis: RedisLink,
    pub catalogs: Arc<CatalogCache>,
}

impl Services {
    /// `environment` prefixes the shared cache's keys.
    pub fn new(environment: &'static str, db: PgPool, redis: RedisLink) -> Services {
        let catalogs = Arc::new(CatalogCache::new(environment, redis.clone()));
        Services {
            db,
            redis,
            catalogs,
        }
    }
}
