//! Assembling and running the API: state, routes, layers, listener, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use cpq_auth::Verifier;
use cpq_config::Config;
use cpq_db::migrations::schema_status;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middleware;
use crate::openapi::ApiDoc;
use crate::routes::{
    self, approvals, callbacks, catalog, configuration, customer_accounts, decisions, fallout,
    health, jobs, processes, quotes, search, user_tasks, workflow,
};
use crate::state::AppState;
use cpq_application::redis_link::RedisLink;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("telemetry: {0}")]
    Telemetry(#[from] cpq_telemetry::TelemetryError),
    #[error("auth keys: {0}")]
    Auth(#[from] cpq_auth::AuthError),
    #[error("redis configuration: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// All routes with their OpenAPI description, before state and layers.
fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(customer_accounts::create, customer_accounts::list))
        .routes(routes!(customer_accounts::fetch, customer_accounts::update))
        .routes(routes!(customer_accounts::close))
        .routes(routes!(customer_accounts::list_assets))
        .routes(routes!(catalog::create, catalog::list))
        .routes(routes!(catalog::fetch))
        .routes(routes!(catalog::export, catalog::import))
        .routes(routes!(catalog::put_element, catalog::delete_element))
        .routes(routes!(catalog::publish))
        .routes(routes!(catalog::activate))
        .routes(routes!(catalog::search))
        .routes(routes!(configuration::validate_configuration))
        .routes(routes!(configuration::price))
        .routes(routes!(workflow::deploy, workflow::list))
        .routes(routes!(workflow::deploy_many))
        .routes(routes!(workflow::heartbeat))
        .routes(routes!(workflow::routing))
        .routes(routes!(decisions::list))
        .routes(routes!(decisions::fetch))
        .routes(routes!(decisions::evaluate))
        .routes(routes!(jobs::activate))
        .routes(routes!(jobs::complete))
        .routes(routes!(jobs::fail))
        .routes(routes!(jobs::throw_error))
        .routes(routes!(processes::start, processes::list))
        .routes(routes!(processes::fetch))
        .routes(routes!(processes::cancel))
        .routes(routes!(processes::incidents))
        .routes(routes!(processes::resolve))
        .routes(routes!(processes::publish))
        .routes(routes!(processes::broadcast_signal))
        .routes(routes!(callbacks::receive))
        .routes(routes!(user_tasks::list))
        .routes(routes!(user_tasks::assign))
        .routes(routes!(user_tasks::complete))
        .routes(routes!(quotes::create, quotes::list))
        .routes(routes!(quotes::fetch))
        .routes(routes!(quotes::add_item))
        .routes(routes!(quotes::remove_item, quotes::change_item))
        .routes(routes!(quotes::set_terms))
        .routes(routes!(quotes::price))
        .routes(routes!(quotes::cancel))
        .routes(routes!(quotes::submit))
        .routes(routes!(quotes::accept))
        .routes(routes!(quotes::revise))
        .routes(routes!(search::quote_search))
        .routes(routes!(quotes::revision_list))
        .routes(routes!(quotes::revision_fetch))
        .routes(routes!(quotes::convert))
        .routes(routes!(quotes::order_fetch))
        .routes(routes!(quotes::fulfillment_plan))
        .routes(routes!(routes::orders::search))
        .routes(routes!(routes::orders::stuck_tasks))
        .routes(routes!(fallout::list))
        .routes(routes!(fallout::fetch))
        .routes(routes!(fallout::retry))
        .routes(routes!(fallout::skip))
        .routes(routes!(fallout::cancel_order))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(approvals::return_for_revision))
        .routes(routes!(approvals::put_policy, approvals::get_policy))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::startup))
        .routes(routes!(health::diagnostics))
        .routes(routes!(routes::metrics::render))
        .split_for_parts()
}

/// The OpenAPI document as served (pretty JSON).
pub fn openapi_json() -> String {
    let (_, api) = api_routes();
    crate::openapi::document(&api)
}

/// The complete application: routes, state, every cross-cutting layer.
pub fn router(state: AppState) -> Router {
    let (routes, api) = api_routes();
    let spec = Arc::new(crate::openapi::document(&api));
    let router = routes
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "application/json")],
                        spec.as_str().to_owned(),
                    )
                }
            }),
        )
        .fallback(routes::fallback)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.http.body_limit_bytes))
        .with_state(state.clone());
    middleware::apply(router, &state)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Validated configuration in, bound listener out. Does not migrate, and does not need the
    /// database or Redis to be up: readiness says when they are.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let metrics = cpq_telemetry::metrics_handle()?;
        let config = Arc::new(config);
        let db = cpq_db::pool::app_pool(&config.database, "cpq-api");
        let redis = RedisLink::new(&config.redis)?;
        let verifier = Arc::new(Verifier::from_config(&config.auth).await?);
        let addr = config.http.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let state = AppState::new(config, db, redis, verifier, metrics);
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and closes the pool.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), StartupError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.state;
        match schema_status(&state.db).await {
            Ok(s) => match s.incompatibility() {
                None => tracing::info!(schema_version = s.applied, "database schema is compatible"),
                Some(reason) => tracing::warn!(%reason, "not ready until the database is migrated"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "database unreachable at start; not ready until it is")
            }
        }
        let listener = state.catalogs.schedules.clone().listen(state.db.clone());
        let app = router(state.clone());
        state.mark_started();
        let addr = self
            .listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(addr, "cpq-api serving");
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartupError::Serve);
        state.db.close().await;
        let _ = listener.await;
        tracing::info!("cpq-api stopped");
        served
    }
}

/// The binary's entry point: build, serve until a signal.
pub async fn run(config: Config) -> Result<(), StartupError> {
    tracing::info!(environment = config.environment.as_str(), config = %config.dump(), "starting cpq-api");
    Application::build(config)
        .await?
        .run_until(cpq_telemetry::process::shutdown_signal())
        .await
}
