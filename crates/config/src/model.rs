//! The validated, typed configuration. Every value here has passed [`crate::load`]'s checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::Secret;

/// Where a deployable runs (seed part 056 section 2). Decides what is allowed: dev tokens only in
/// local and integration; TLS to the database and an HTTPS JWKS in staging and production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Local,
    Integration,
    Staging,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 4] = [
        Environment::Local,
        Environment::Integration,
        Environment::Staging,
        Environment::Production,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Local => "local",
            Environment::Integration => "integration",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }

    pub fn parse(raw: &str) -> Option<Environment> {
        Environment::ALL.into_iter().find(|e| e.as_str() == raw)
    }

    /// Whether `cpq-admin token` may mint tokens from the checked-in dev key here.
    pub fn allows_dev_tokens(self) -> bool {
        matches!(self, Environment::Local | Environment::Integration)
    }

    /// Whether this environment must be production-hardened (TLS, HTTPS JWKS, JSON logs).
    pub fn is_hardened(self) -> bool {
        matches!(self, Environment::Staging | Environment::Production)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub environment: Environment,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    /// Only `cpq-worker` needs it.
    pub worker: Option<WorkerConfig>,
    /// Only the event deployables (`cpq-relay`, `cpq-consumer`, `cpq-admin topics|replay`) need it.
    pub kafka: Option<KafkaConfig>,
    /// The external systems' callback secrets (`POST /v1/callbacks/{system}`); none: every
    /// callback is refused.
    pub callbacks: CallbacksConfig,
}

/// `[callbacks.secrets]`: each external system that calls back, with the secret it signs its
/// callbacks with (HMAC-SHA256 of the raw body).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallbacksConfig {
    pub secrets: std::collections::BTreeMap<String, Secret<String>>,
}

impl CallbacksConfig {
    /// The secret `system` signs with, when it may call back.
    pub fn secret(&self, system: &str) -> Option<&Secret<String>> {
        self.secrets.get(system)
    }
}

impl Config {
    /// The configuration as TOML with every secret redacted: what `--dump-config` prints.
    pub fn dump(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    pub default_page_size: u32,
    pub max_page_size: u32,
    pub idempotency_retention_hours: u32,
}

impl HttpConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    /// The role the services log in as: owns nothing, cannot bypass row-level security.
    pub app_user: String,
    pub app_password: Secret<String>,
    /// The role that owns the schema; only `cpq-admin migrate` uses it.
    pub owner_user: String,
    pub owner_password: Secret<String>,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub tls: TlsMode,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisConfig {
    /// Without credentials; those go in `password`.
    pub url: Url,
    pub password: Option<Secret<String>>,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JwksSource {
    File(PathBuf),
    Url(Url),
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks: JwksSource,
    pub clock_skew_secs: u64,
    /// Ed25519 private key (PEM) for `cpq-admin token`; only local and integration may set it.
    pub dev_signing_key: Option<PathBuf>,
    pub dev_key_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogConfig {
    /// A `tracing` filter directive, e.g. `info` or `info,sqlx=warn`.
    pub level: String,
    pub format: LogFormat,
}

/// How clients reach Kafka (librdkafka settings through `rdkafka`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSecurity {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl KafkaConfig {
    /// The SASL password is a secret only Kafka clients are given (the API has none): the
    /// deployables that connect check it at start with this.
    pub fn check_credentials(&self) -> Result<(), String> {
        match (self.security_protocol, &self.sasl_password) {
            (KafkaSecurity::SaslPlaintext | KafkaSecurity::SaslSsl, None) => {
                Err("kafka.sasl_password: required with a SASL security protocol (set CPQ_KAFKA__SASL_PASSWORD)".into())
            }
            _ => Ok(()),
        }
    }
}

impl KafkaSecurity {
    /// librdkafka's `security.protocol` value.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            KafkaSecurity::Plaintext => "plaintext",
            KafkaSecurity::Ssl => "ssl",
            KafkaSecurity::SaslPlaintext => "sasl_plaintext",
            KafkaSecurity::SaslSsl => "sasl_ssl",
        }
    }
}

/// The Kafka client settings the relay, the consumers and `cpq-admin topics` share.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`
    pub bootstrap_servers: String,
    pub security_protocol: KafkaSecurity,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; with a SASL protocol only.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<Secret<String>>,
    /// Prefixed to every client id (`<prefix>-relay-<host>`), so brokers can tell clients apart.
    pub client_id_prefix: String,
    /// Prefixed to every topic and consumer group name: empty in a dedicated cluster; tests and
    /// shared clusters use it to keep runs apart.
    pub namespace: String,
}

/// A worker group: which job types it executes and how (`cpq-worker`).
#[derive(Debug, Clone, Serialize)]
pub struct WorkerConfig {
    pub group: String,
    /// The small admin port for health and metrics.
    pub admin_bind: SocketAddr,
    pub timer_scan_interval_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// How long a shutdown waits for jobs in flight.
    pub shutdown_grace_ms: u64,
    pub job_types: Vec<JobTypeConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobHandlerKind {
    /// POST the job's variables to `url` with the job's idempotency key.
    Http,
    /// A request to one of the external business systems (`{url}/systems/{system}/requests`),
    /// with back-off, jitter and a circuit breaker per system: [`SystemHandlerConfig`].
    System,
    /// The fulfillment process's internal jobs (`fulfillment-task-done`, `fulfillment-fallout`,
    /// `fulfillment-order-complete`), run in the platform through its application operations:
    /// no URL, no external call.
    Fulfillment,
}

/// The job types [`JobHandlerKind::Fulfillment`] runs.
pub const FULFILLMENT_INTERNAL_JOB_TYPES: &[&str] = &[
    "fulfillment-task-done",
    "fulfillment-fallout",
    "fulfillment-order-complete",
];

/// The external business systems fulfillment calls (simulated by `cpq-sim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalSystem {
    Inventory,
    Provisioning,
    Billing,
    Crm,
    Notification,
}

impl ExternalSystem {
    pub const ALL: [ExternalSystem; 5] = [
        ExternalSystem::Inventory,
        ExternalSystem::Provisioning,
        ExternalSystem::Billing,
        ExternalSystem::Crm,
        ExternalSystem::Notification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExternalSystem::Inventory => "inventory",
            ExternalSystem::Provisioning => "provisioning",
            ExternalSystem::Billing => "billing",
            ExternalSystem::Crm => "crm",
            ExternalSystem::Notification => "notification",
        }
    }
}

/// The settings of a `handler = "system"` job type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemHandlerConfig {
    pub system: ExternalSystem,
    /// Sent as the request's `operation`.
    pub operation: String,
    /// Sent as the request's `callback_url` (asynchronous systems call it back).
    pub callback_url: Option<Url>,
    /// Caps the job's retries (the BPMN's `retries`): after a transient failure a job keeps
    /// `min(its retries, max_retries) - 1`. Unset: the job's retries alone decide.
    pub max_retries: Option<u32>,
    /// Cap of the exponential back-off that grows from `retry_backoff_ms`.
    pub retry_backoff_max_ms: u64,
    /// Consecutive transient failures of the system that open its circuit breaker.
    pub breaker_failure_threshold: u32,
    /// How long an open breaker refuses calls before one probe call (half-open).
    pub breaker_open_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobTypeConfig {
    pub job_type: String,
    pub handler: JobHandlerKind,
    /// `http`: the endpoint; `system`: the systems' base URL; none for `fulfillment`.
    pub url: Option<Url>,
    /// Jobs of this type in flight at once.
    pub max_active: u32,
    pub lease_ms: u64,
    /// Fallback poll when no notification arrives.
    pub poll_interval_ms: u64,
    /// `http`: the retry delay; `system`: the base of the exponential back-off.
    pub retry_backoff_ms: u64,
    pub request_timeout_ms: u64,
    /// `Some` exactly when `handler` is [`JobHandlerKind::System`]; dumped with the job type's
    /// own keys, as the file spells them.
    #[serde(flatten)]
    pub system: Option<SystemHandlerConfig>,
}
