//! Pools for the two database roles. The application role owns nothing and cannot bypass
//! row-level security; the owner role is used only for migrations.

use std::time::Duration;

use cpq_config::{DatabaseConfig, TlsMode};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;

fn options(
    config: &DatabaseConfig,
    user: &str,
    password: &str,
    app_name: &str,
) -> PgConnectOptions {
    let ssl = match config.tls {
        TlsMode::Disable => PgSslMode::Disable,
        TlsMode::Prefer => PgSslMode::Prefer,
        TlsMode::Require => PgSslMode::Require,
        TlsMode::VerifyFull => PgSslMode::VerifyFull,
    };
    PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .database(&config.name)
        .username(user)
        .password(password)
        .ssl_mode(ssl)
        .application_name(app_name)
        .options([(
            "statement_timeout",
            format!("{}ms", config.statement_timeout_ms),
        )])
}

/// The application pool. Lazy: a service starts (and reports not-ready) while the database is
/// down, and connects when it returns. A connection is not pinged before each use (sqlx's
/// default): that ping is a round trip per transaction, a ninth of a small command's time. A
/// connection that the database dropped fails its next statement instead, is discarded, and that
/// one request is answered 503 (retry it: commands are idempotent by key); readiness notices.
pub fn app_pool(config: &DatabaseConfig, app_name: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_lazy_with(options(
            config,
            &config.app_user,
            config.app_password.expose(),
            app_name,
        ))
}

/// A small pool as the schema owner, for migrations. Connects eagerly so that a wrong password
/// fails at once.
pub async fn owner_pool(config: &DatabaseConfig, app_name: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_with(options(
            config,
            &config.owner_user,
            config.owner_password.expose(),
            app_name,
        ))
        .await
}
