//! The untyped-but-shaped layer ([`RawConfig`]) and its validation into [`Config`]. Validation
//! never stops at the first problem: it records each one and carries on.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use url::Url;

use crate::model::*;
use crate::Secret;

/// A value that may arrive typed (from TOML) or as text (from an environment variable).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Lenient<T> {
    Typed(T),
    Text(String),
}

type Num = Option<Lenient<u64>>;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawConfig {
    http: RawHttp,
    database: RawDatabase,
    redis: RawRedis,
    auth: RawAuth,
    log: RawLog,
    worker: Option<RawWorker>,
    kafka: Option<RawKafka>,
    callbacks: RawCallbacks,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawCallbacks {
    secrets: std::collections::BTreeMap<String, Secret<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawKafka {
    bootstrap_servers: Option<String>,
    security_protocol: Option<String>,
    sasl_mechanism: Option<String>,
    sasl_username: Option<String>,
    sasl_password: Option<Secret<String>>,
    client_id_prefix: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawWorker {
    group: Option<String>,
    admin_bind: Option<String>,
    timer_scan_interval_ms: Num,
    heartbeat_interval_ms: Num,
    shutdown_grace_ms: Num,
    job_types: Vec<RawJobType>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawJobType {
    job_type: Option<String>,
    handler: Option<String>,
    url: Option<String>,
    max_active: Num,
    lease_ms: Num,
    poll_interval_ms: Num,
    retry_backoff_ms: Num,
    request_timeout_ms: Num,
    // handler = "system" only
    system: Option<String>,
    operation: Option<String>,
    callback_url: Option<String>,
    max_retries: Num,
    retry_backoff_max_ms: Num,
    breaker_failure_threshold: Num,
    breaker_open_ms: Num,
}

/// The `handler = "system"` keys of a job type, taken out of it.
#[derive(Debug, Default)]
struct RawSystemPart {
    system: Option<String>,
    operation: Option<String>,
    callback_url: Option<String>,
    max_retries: Num,
    retry_backoff_max_ms: Num,
    breaker_failure_threshold: Num,
    breaker_open_ms: Num,
}

impl RawSystemPart {
    fn take(j: &mut RawJobType) -> RawSystemPart {
        RawSystemPart {
            system: j.system.take(),
            operation: j.operation.take(),
            callback_url: j.callback_url.take(),
            max_retries: j.max_retries.take(),
            retry_backoff_max_ms: j.retry_backoff_max_ms.take(),
            breaker_failure_threshold: j.breaker_failure_threshold.take(),
            breaker_open_ms: j.breaker_open_ms.take(),
        }
    }

    /// The keys that are set, for refusing them on another handler.
    fn keys_set(&self) -> Vec<&'static str> {
        [
            ("system", self.system.is_some()),
            ("operation", self.operation.is_some()),
            ("callback_url", self.callback_url.is_some()),
            ("max_retries", self.max_retries.is_some()),
            ("retry_backoff_max_ms", self.retry_backoff_max_ms.is_some()),
            (
                "breaker_failure_threshold",
                self.breaker_failure_threshold.is_some(),
            ),
            ("breaker_open_ms", self.breaker_open_ms.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHttp {
    bind: Option<String>,
    request_timeout_ms: Num,
    body_limit_bytes: Num,
    default_page_size: Num,
    max_page_size: Num,
    idempotency_retention_hours: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawDatabase {
    host: Option<String>,
    port: Num,
    name: Option<String>,
    app_user: Option<String>,
    app_password: Option<Secret<String>>,
    owner_user: Option<String>,
    owner_password: Option<Secret<String>>,
    max_connections: Num,
    acquire_timeout_ms: Num,
    statement_timeout_ms: Num,
    tls: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRedis {
    url: Option<String>,
    password: Option<Secret<String>>,
    connect_timeout_ms: Num,
    command_timeout_ms: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawAuth {
    issuer: Option<String>,
    audience: Option<String>,
    jwks: Option<String>,
    clock_skew_secs: Num,
    dev_signing_key: Option<String>,
    dev_key_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

/// Collects problems while values are checked one by one.
struct Checker {
    problems: Vec<String>,
}

impl Checker {
    fn problem(&mut self, key: &str, what: impl Display) {
        self.problems.push(format!("{key}: {what}"));
    }

    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            let var = format!("CPQ_{}", key.to_ascii_uppercase().replacen('.', "__", 1));
            self.problem(
                key,
                format!("missing required value (set it in the environment's file or {var})"),
            );
        }
        value
    }

    fn text(&mut self, key: &str, value: Option<String>) -> Option<String> {
        match self.required(key, value) {
            Some(v) if v.trim().is_empty() => {
                self.problem(key, "must not be empty");
                None
            }
            other => other,
        }
    }

    fn number<T>(&mut self, key: &str, value: Num, range: RangeInclusive<u64>) -> Option<T>
    where
        T: TryFrom<u64>,
    {
        let raw = match self.required(key, value)? {
            Lenient::Typed(n) => n,
            Lenient::Text(s) => match u64::from_str(s.trim()) {
                Ok(n) => n,
                Err(_) => {
                    self.problem(key, format!("\"{s}\" is not a whole number"));
                    return None;
                }
            },
        };
        if !range.contains(&raw) {
            self.problem(
                key,
                format!(
                    "{raw} is out of range; expected {} to {}",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        match T::try_from(raw) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(key, format!("{raw} does not fit"));
                None
            }
        }
    }

    fn parsed<T: FromStr>(&mut self, key: &str, value: Option<String>, expected: &str) -> Option<T>
    where
        T::Err: Display,
    {
        let raw = self.text(key, value)?;
        match T::from_str(raw.trim()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, format!("\"{raw}\" is not {expected}: {e}"));
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<String>,
        options: &[(&str, T)],
    ) -> Option<T> {
        let raw = self.text(key, value)?;
        match options.iter().find(|(name, _)| *name == raw) {
            Some((_, v)) => Some(*v),
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.problem(key, format!("\"{raw}\" is not one of {}", names.join(", ")));
                None
            }
        }
    }

    fn url(&mut self, key: &str, raw: &str, schemes: &[&str]) -> Option<Url> {
        match Url::parse(raw) {
            Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => Some(u),
            Ok(u) => {
                self.problem(
                    key,
                    format!(
                        "\"{raw}\" must be a {} URL with a host (scheme is \"{}\")",
                        schemes.join(" or "),
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.problem(key, format!("\"{raw}\" is not a valid URL: {e}"));
                None
            }
        }
    }
}

fn resolve(base: &Path, raw: &str) -> PathBuf {
    let p = PathBuf::from(raw);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

pub(crate) fn validate(
    env: Environment,
    raw: RawConfig,
    base: &Path,
) -> Result<Config, Vec<String>> {
    let mut c = Checker {
        problems: Vec::new(),
    };

    // [http]
    let bind: Option<SocketAddr> = c.parsed("http.bind", raw.http.bind, "an address:port");
    let request_timeout_ms = c.number(
        "http.request_timeout_ms",
        raw.http.request_timeout_ms,
        10..=300_000,
    );
    let body_limit_bytes = c.number(
        "http.body_limit_bytes",
        raw.http.body_limit_bytes,
        1024..=64 * 1024 * 1024,
    );
    let default_page_size: Option<u32> = c.number(
        "http.default_page_size",
        raw.http.default_page_size,
        1..=1000,
    );
    let max_page_size: Option<u32> =
        c.number("http.max_page_size", raw.http.max_page_size, 1..=1000);
    if let (Some(d), Some(m)) = (default_page_size, max_page_size) {
        if d > m {
            c.problem(
                "http.default_page_size",
                format!("{d} is larger than http.max_page_size ({m})"),
            );
        }
    }
    let idempotency_retention_hours = c.number(
        "http.idempotency_retention_hours",
        raw.http.idempotency_retention_hours,
        1..=24 * 30,
    );

    // [database]
    let db_host = c.text("database.host", raw.database.host);
    let db_port = c.number("database.port", raw.database.port, 1..=65535);
    let db_name = c.text("database.name", raw.database.name);
    let app_user = c.text("database.app_user", raw.database.app_user);
    let app_password = c.required("database.app_password", raw.database.app_password);
    let owner_user = c.text("database.owner_user", raw.database.owner_user);
    let owner_password = c.required("database.owner_password", raw.database.owner_password);
    if let (Some(a), Some(o)) = (&app_user, &owner_user) {
        if a == o {
            c.problem("database.app_user", "must differ from database.owner_user: the application must not own the tables, or row-level security would not apply to it");
        }
    }
    let max_connections = c.number(
        "database.max_connections",
        raw.database.max_connections,
        1..=1000,
    );
    let acquire_timeout_ms = c.number(
        "database.acquire_timeout_ms",
        raw.database.acquire_timeout_ms,
        10..=60_000,
    );
    let statement_timeout_ms = c.number(
        "database.statement_timeout_ms",
        raw.database.statement_timeout_ms,
        10..=600_000,
    );
    let tls = c.choice(
        "database.tls",
        raw.database.tls,
        &[
            ("disable", TlsMode::Disable),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-full", TlsMode::VerifyFull),
        ],
    );
    if env.is_hardened() && matches!(tls, Some(TlsMode::Disable | TlsMode::Prefer)) {
        c.problem(
            "database.tls",
            format!("{} requires \"require\" or \"verify-full\"", env.as_str()),
        );
    }

    // [redis]
    let redis_url = c
        .text("redis.url", raw.redis.url)
        .and_then(|u| c.url("redis.url", &u, &["redis", "rediss"]));
    if let Some(u) = &redis_url {
        if u.password().is_some() {
            c.problem(
                "redis.url",
                "must not carry a password; set redis.password (a secret) instead",
            );
        }
    }
    let redis_connect = c.number(
        "redis.connect_timeout_ms",
        raw.redis.connect_timeout_ms,
        10..=60_000,
    );
    let redis_command = c.number(
        "redis.command_timeout_ms",
        raw.redis.command_timeout_ms,
        1..=60_000,
    );

    // [auth]
    let issuer = c.text("auth.issuer", raw.auth.issuer);
    let audience = c.text("auth.audience", raw.auth.audience);
    let jwks = c.text("auth.jwks", raw.auth.jwks).and_then(|j| {
        if let Some(path) = j.strip_prefix("file:") {
            let path = resolve(base, path);
            if !path.is_file() {
                c.problem(
                    "auth.jwks",
                    format!("file {} does not exist", path.display()),
                );
                return None;
            }
            Some(JwksSource::File(path))
        } else {
            c.url("auth.jwks", &j, &["https", "http"])
                .map(JwksSource::Url)
        }
    });
    if env.is_hardened() {
        match &jwks {
            Some(JwksSource::Url(u)) if u.scheme() == "https" => {}
            Some(_) => c.problem(
                "auth.jwks",
                format!("{} requires an https:// JWKS URL", env.as_str()),
            ),
            None => {}
        }
    }
    let clock_skew_secs = c.number("auth.clock_skew_secs", raw.auth.clock_skew_secs, 0..=300);
    let dev_signing_key = match raw.auth.dev_signing_key {
        None => None,
        Some(_) if !env.allows_dev_tokens() => {
            c.problem(
                "auth.dev_signing_key",
                format!(
                    "not allowed in {}: dev tokens are for local and integration only",
                    env.as_str()
                ),
            );
            None
        }
        Some(p) => {
            let path = resolve(base, &p);
            if !path.is_file() {
                c.problem(
                    "auth.dev_signing_key",
                    format!("file {} does not exist", path.display()),
                );
            }
            Some(path)
        }
    };
    let dev_key_id = c.text("auth.dev_key_id", raw.auth.dev_key_id);

    // [log]
    let level = c.text("log.level", raw.log.level);
    let format = c.choice(
        "log.format",
        raw.log.format,
        &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)],
    );
    if env.is_hardened() && format == Some(LogFormat::Pretty) {
        c.problem("log.format", format!("{} requires json logs", env.as_str()));
    }

    let kafka = raw.kafka.map(|k| {
        let servers = c.text("kafka.bootstrap_servers", k.bootstrap_servers);
        let security = c.choice(
            "kafka.security_protocol",
            k.security_protocol.or(Some("plaintext".into())),
            &[
                ("plaintext", KafkaSecurity::Plaintext),
                ("ssl", KafkaSecurity::Ssl),
                ("sasl_plaintext", KafkaSecurity::SaslPlaintext),
                ("sasl_ssl", KafkaSecurity::SaslSsl),
            ],
        );
        let sasl = matches!(
            security,
            Some(KafkaSecurity::SaslPlaintext | KafkaSecurity::SaslSsl)
        );
        if sasl {
            match k.sasl_mechanism.as_deref() {
                Some("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {}
                other => c.problem(
                    "kafka.sasl_mechanism",
                    format!("{other:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
                ),
            }
            if k.sasl_username
                .as_deref()
                .is_none_or(|u| u.trim().is_empty())
            {
                c.problem(
                    "kafka.sasl_username",
                    "required with a SASL security protocol",
                );
            }
        }
        if env.is_hardened()
            && !matches!(security, Some(KafkaSecurity::Ssl | KafkaSecurity::SaslSsl))
        {
            c.problem(
                "kafka.security_protocol",
                format!("{} requires ssl or sasl_ssl", env.as_str()),
            );
        }
        let prefix = c.text(
            "kafka.client_id_prefix",
            k.client_id_prefix.or(Some("cpq".into())),
        );
        (|| {
            Some(KafkaConfig {
                bootstrap_servers: servers?,
                security_protocol: security?,
                sasl_mechanism: if sasl { k.sasl_mechanism } else { None },
                sasl_username: if sasl { k.sasl_username } else { None },
                sasl_password: if sasl { k.sasl_password } else { None },
                client_id_prefix: prefix?,
                namespace: k.namespace.unwrap_or_default(),
            })
        })()
    });

    for (system, secret) in &raw.callbacks.secrets {
        let key = format!("callbacks.secrets.{system}");
        if !ExternalSystem::ALL.iter().any(|s| s.as_str() == system) {
            c.problem(
                &key,
                format!(
                    "is not an external system (one of {})",
                    ExternalSystem::ALL.map(|s| s.as_str()).join(", ")
                ),
            );
        }
        if secret.expose().trim().len() < 12 {
            c.problem(&key, "must be at least 12 characters");
        }
    }
    let callbacks = CallbacksConfig {
        secrets: raw.callbacks.secrets,
    };

    let worker = raw.worker.map(|w| {
        let group = c.text("worker.group", w.group);
        let admin_bind: Option<SocketAddr> = c.parsed("worker.admin_bind", w.admin_bind.or(Some("127.0.0.1:9091".into())), "an address:port");
        let timer_scan = c.number("worker.timer_scan_interval_ms", w.timer_scan_interval_ms.or(Some(Lenient::Typed(1000))), 50..=60_000);
        let heartbeat = c.number("worker.heartbeat_interval_ms", w.heartbeat_interval_ms.or(Some(Lenient::Typed(10_000))), 500..=300_000);
        let grace = c.number("worker.shutdown_grace_ms", w.shutdown_grace_ms.or(Some(Lenient::Typed(30_000))), 0..=600_000);
        if w.job_types.is_empty() {
            c.problem("worker.job_types", "a worker group executes at least one job type");
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut types = Vec::new();
        for (i, mut j) in w.job_types.into_iter().enumerate() {
            let at = |f: &str| format!("worker.job_types[{i}].{f}");
            let system_part = RawSystemPart::take(&mut j);
            let job_type = c.text(&at("job_type"), j.job_type);
            if let Some(t) = &job_type {
                if !seen.insert(t.clone()) {
                    c.problem(&at("job_type"), format!("\"{t}\" is configured twice"));
                }
            }
            let handler = c.choice(
                &at("handler"),
                j.handler,
                &[("http", JobHandlerKind::Http), ("system", JobHandlerKind::System), ("fulfillment", JobHandlerKind::Fulfillment)],
            );
            // The internal handler calls nothing: a URL would be a mistake; the others need one.
            let url = if handler == Some(JobHandlerKind::Fulfillment) {
                if j.url.is_some() {
                    c.problem(&at("url"), "not with handler = \"fulfillment\" (it calls no external system)");
                }
                if let Some(t) = job_type.as_deref().filter(|t| !FULFILLMENT_INTERNAL_JOB_TYPES.contains(t)) {
                    c.problem(
                        &at("job_type"),
                        format!("handler \"fulfillment\" runs {}, not \"{t}\"", FULFILLMENT_INTERNAL_JOB_TYPES.join(", ")),
                    );
                }
                Some(None)
            } else {
                c.text(&at("url"), j.url).and_then(|u| c.url(&at("url"), &u, &["http", "https"])).map(Some)
            };
            let max_active = c.number(&at("max_active"), j.max_active.or(Some(Lenient::Typed(8))), 1..=1000);
            let lease_ms = c.number(&at("lease_ms"), j.lease_ms.or(Some(Lenient::Typed(30_000))), 100..=3_600_000);
            let poll_interval_ms = c.number(&at("poll_interval_ms"), j.poll_interval_ms.or(Some(Lenient::Typed(1000))), 10..=60_000);
            let retry_backoff_ms = c.number(&at("retry_backoff_ms"), j.retry_backoff_ms.or(Some(Lenient::Typed(5000))), 0..=3_600_000);
            let request_timeout_ms = c.number(&at("request_timeout_ms"), j.request_timeout_ms.or(Some(Lenient::Typed(10_000))), 10..=600_000);
            if let (Some(lease), Some(req)) = (lease_ms, request_timeout_ms) {
                if req >= lease {
                    c.problem(&at("request_timeout_ms"), format!("{req} must be shorter than lease_ms ({lease}), or a slow call outlives its lease"));
                }
            }
            let system = match handler {
                Some(JobHandlerKind::System) => {
                    let s = system_handler(&mut c, &at, system_part, retry_backoff_ms);
                    if s.is_none() {
                        types.push(None);
                        continue;
                    }
                    s
                }
                _ => {
                    for key in system_part.keys_set() {
                        c.problem(&at(key), "only with handler = \"system\"");
                    }
                    None
                }
            };
            types.push((|| {
                Some(JobTypeConfig {
                    job_type: job_type?,
                    handler: handler?,
                    url: url?,
                    max_active: max_active?,
                    lease_ms: lease_ms?,
                    poll_interval_ms: poll_interval_ms?,
                    retry_backoff_ms: retry_backoff_ms?,
                    request_timeout_ms: request_timeout_ms?,
                    system,
                })
            })());
        }
        check_shared_breakers(&mut c, &types);
        (|| {
            Some(WorkerConfig {
                group: group?,
                admin_bind: admin_bind?,
                timer_scan_interval_ms: timer_scan?,
                heartbeat_interval_ms: heartbeat?,
                shutdown_grace_ms: grace?,
                job_types: types.into_iter().collect::<Option<Vec<_>>>()?,
            })
        })()
    });

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let build = || -> Option<Config> {
        Some(Config {
            environment: env,
            http: HttpConfig {
                bind: bind?,
                request_timeout_ms: request_timeout_ms?,
                body_limit_bytes: body_limit_bytes?,
                default_page_size: default_page_size?,
                max_page_size: max_page_size?,
                idempotency_retention_hours: idempotency_retention_hours?,
            },
            database: DatabaseConfig {
                host: db_host?,
                port: db_port?,
                name: db_name?,
                app_user: app_user?,
                app_password: app_password?,
                owner_user: owner_user?,
                owner_password: owner_password?,
                max_connections: max_connections?,
                acquire_timeout_ms: acquire_timeout_ms?,
                statement_timeout_ms: statement_timeout_ms?,
                tls: tls?,
            },
            redis: RedisConfig {
                url: redis_url?,
                password: raw.redis.password,
                connect_timeout_ms: redis_connect?,
                command_timeout_ms: redis_command?,
            },
            auth: AuthConfig {
                issuer: issuer?,
                audience: audience?,
                jwks: jwks?,
                clock_skew_secs: clock_skew_secs?,
                dev_signing_key,
                dev_key_id: dev_key_id?,
            },
            log: LogConfig {
                level: level?,
                format: format?,
            },
            worker: match worker {
                None => None,
                Some(w) => Some(w?),
            },
            kafka: match kafka {
                None => None,
                Some(k) => Some(k?),
            },
            callbacks,
        })
    };
    build().ok_or_else(|| {
        vec!["configuration incomplete without a reported problem (a bug)".to_owned()]
    })
}

/// The most a retry may wait (the job API's own limit, seven days).
const MAX_BACKOFF_MS: u64 = 604_800_000;

/// The settings of a `handler = "system"` job type; `None` after reporting each problem.
fn system_handler(
    c: &mut Checker,
    at: &dyn Fn(&str) -> String,
    j: RawSystemPart,
    retry_backoff_ms: Option<u64>,
) -> Option<SystemHandlerConfig> {
    let systems: Vec<(&str, ExternalSystem)> = ExternalSystem::ALL
        .iter()
        .map(|s| (s.as_str(), *s))
        .collect();
    let system = c.choice(&at("system"), j.system, &systems);
    let operation = c.text(&at("operation"), j.operation);
    if let Some(op) = &operation {
        if op.len() > 200 {
            c.problem(&at("operation"), "must be at most 200 characters");
        }
    }
    let callback_url = match &j.callback_url {
        None => Some(None),
        Some(u) => c.url(&at("callback_url"), u, &["http", "https"]).map(Some),
    };
    let max_retries = match j.max_retries {
        None => Some(None),
        Some(n) => c.number(&at("max_retries"), Some(n), 1..=100).map(Some),
    };
    let backoff_max: Option<u64> = c.number(
        &at("retry_backoff_max_ms"),
        j.retry_backoff_max_ms.or(Some(Lenient::Typed(60_000))),
        0..=MAX_BACKOFF_MS,
    );
    if let (Some(base), Some(max)) = (retry_backoff_ms, backoff_max) {
        if max < base {
            c.problem(
                &at("retry_backoff_max_ms"),
                format!("{max} is smaller than retry_backoff_ms ({base})"),
            );
        }
    }
    let threshold = c.number(
        &at("breaker_failure_threshold"),
        j.breaker_failure_threshold.or(Some(Lenient::Typed(5))),
        1..=1000,
    );
    let open_ms = c.number(
        &at("breaker_open_ms"),
        j.breaker_open_ms.or(Some(Lenient::Typed(30_000))),
        100..=3_600_000,
    );
    Some(SystemHandlerConfig {
        system: system?,
        operation: operation?,
        callback_url: callback_url?,
        max_retries: max_retries?,
        retry_backoff_max_ms: backoff_max?,
        breaker_failure_threshold: threshold?,
        breaker_open_ms: open_ms?,
    })
}

/// A system's circuit breaker is shared by every job type calling it, so those job types must
/// agree on its settings.
fn check_shared_breakers(c: &mut Checker, types: &[Option<JobTypeConfig>]) {
    let mut first: std::collections::BTreeMap<ExternalSystem, (usize, u32, u64)> =
        Default::default();
    for (i, t) in types.iter().enumerate() {
        let Some(s) = t.as_ref().and_then(|t| t.system.as_ref()) else {
            continue;
        };
        let mine = (i, s.breaker_failure_threshold, s.breaker_open_ms);
        let (j, threshold, open_ms) = *first.entry(s.system).or_insert(mine);
        if (threshold, open_ms) != (mine.1, mine.2) {
            c.problem(
                &format!("worker.job_types[{i}].breaker_failure_threshold"),
                format!(
                    "the {} circuit breaker is shared: breaker_failure_threshold and breaker_open_ms must equal worker.job_types[{j}]'s ({threshold}, {open_ms})",
                    s.system.as_str()
                ),
            );
        }
    }
}
