//! The API's test harness (zero-to-production's `spawn_app`): [`TestApp::spawn`] runs the real API
//! in-process on 127.0.0.1:0 against a fresh database from `cpq_testkit::TestDb`, the real Redis
//! and the dev JWKS; [`TestApp::token`] mints a token for any tenant and roles.
//!
//! It lives with the API's tests, not in `cpq-testkit`, so that library crates never compile the
//! API for their own tests. Each test target of this crate includes it (`mod support;`).

// Each test target uses a different part of the harness.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpq_auth::DevSigner;
use cpq_config::Config;
use cpq_core::{Role, TenantId};
use cpq_testkit::TestDb;

/// The API running in-process on an ephemeral port.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub config: Config,
    signer: DevSigner,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(TestDb::fresh().await, |_| {}).await
    }

    pub async fn spawn_on(db: TestDb) -> TestApp {
        TestApp::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = db.config();
        tweak(&mut config);
        // TEST_LOG=1 shows the application's logs (pretty) while debugging a test.
        if std::env::var_os("TEST_LOG").is_some() {
            let log = cpq_config::LogConfig {
                level: "info,sqlx=warn".into(),
                format: cpq_config::LogFormat::Pretty,
            };
            let _ = cpq_telemetry::init_tracing(&log);
        }
        let app = cpq_api::Application::build(config.clone()).await.unwrap();
        let address = format!("http://{}", app.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        TestApp {
            address,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            signer: DevSigner::from_config(&config).unwrap(),
            db,
            config,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The Prometheus page the API serves on `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics page")
    }

    /// A token for `subject` in `tenant` with `roles`, valid for ten minutes.
    pub fn token_for(&self, subject: &str, tenant: &str, roles: &[Role]) -> String {
        self.signer
            .mint(
                subject,
                &TenantId::parse(tenant).unwrap(),
                roles,
                Duration::from_secs(600),
            )
            .unwrap()
    }

    /// A token for `subject` in `tenant` with `roles` and `groups` (approval levels, say).
    pub fn token_with_groups(
        &self,
        subject: &str,
        tenant: &str,
        roles: &[Role],
        groups: &[&str],
    ) -> String {
        self.signer
            .mint_with_groups(
                subject,
                &TenantId::parse(tenant).unwrap(),
                roles,
                groups,
                Duration::from_secs(600),
            )
            .unwrap()
    }

    /// A token for `user@<tenant>` with `roles`.
    pub fn token(&self, tenant: &str, roles: &[Role]) -> String {
        self.token_for(&format!("user@{tenant}"), tenant, roles)
    }

    /// The signer, to forge tokens with other claims.
    pub fn signer(&self) -> &DevSigner {
        &self.signer
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
