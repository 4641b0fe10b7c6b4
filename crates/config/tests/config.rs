#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every config file in the repository loads; invalid configurations name every problem; secrets
//! never show in dumps or errors.

use std::path::PathBuf;

use cpq_config::{load, Environment, ExternalSystem, JobHandlerKind, JwksSource, Sources};

fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn sources(env: &str, vars: &[(&str, &str)]) -> Sources {
    Sources {
        environment: Some(env.to_owned()),
        config_dir: config_dir(),
        extra_files: vec![],
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

const INJECTED_SECRETS: [(&str, &str); 4] = [
    ("CPQ_DATABASE__APP_PASSWORD", "app-secret-from-store"),
    ("CPQ_DATABASE__OWNER_PASSWORD", "owner-secret-from-store"),
    ("CPQ_REDIS__PASSWORD", "redis-secret-from-store"),
    ("CPQ_KAFKA__SASL_PASSWORD", "kafka-secret-from-store"),
];

#[test]
fn every_shipped_config_file_loads() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(config_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let env = Environment::parse(&name)
            .unwrap_or_else(|| panic!("{} is not named after an environment", path.display()));
        let config = load(&sources(&name, &INJECTED_SECRETS))
            .unwrap_or_else(|e| panic!("{} does not load:\n{e}", path.display()));
        assert_eq!(config.environment, env);
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, ["integration", "local", "production", "staging"]);
}

#[test]
fn later_layers_win_and_variables_are_typed() {
    let config = load(&sources(
        "local",
        &[
            ("CPQ_HTTP__REQUEST_TIMEOUT_MS", "2500"),
            ("CPQ_DATABASE__NAME", "cpq_other"),
        ],
    ))
    .unwrap();
    assert_eq!(config.http.request_timeout_ms, 2500); // variable over default
    assert_eq!(config.database.name, "cpq_other"); // variable over file
    assert_eq!(config.database.app_user, "cpq_app"); // file over default
    assert_eq!(config.http.max_page_size, 200); // default
    assert!(
        matches!(config.auth.jwks, JwksSource::File(ref p) if p.ends_with("dev-keys/jwks.json"))
    );
}

#[test]
fn an_invalid_configuration_names_every_problem() {
    let err = load(&sources(
        "production",
        &[
            // no CPQ_DATABASE__APP_PASSWORD: missing required value
            ("CPQ_DATABASE__OWNER_PASSWORD", "x"),
            ("CPQ_REDIS__URL", "not a url"),
            ("CPQ_HTTP__REQUEST_TIMEOUT_MS", "0"),
            ("CPQ_DATABASE__ACQUIRE_TIMEOUT_MS", "99999999"),
            ("CPQ_AUTH__JWKS", "http://login.example.com/jwks.json"),
            ("CPQ_AUTH__DEV_SIGNING_KEY", "dev-keys/dev-signing-key.pem"),
        ],
    ))
    .unwrap_err();
    let text = err.to_string();
    let expected = [
        "database.app_password: missing required value",
        "redis.url: \"not a url\" is not a valid URL",
        "http.request_timeout_ms: 0 is out of range",
        "database.acquire_timeout_ms: 99999999 is out of range",
        "auth.jwks: production requires an https:// JWKS URL",
        "auth.dev_signing_key: not allowed in production",
    ];
    for e in expected {
        assert!(text.contains(e), "missing problem {e:?} in:\n{text}");
    }
    assert_eq!(err.problems.len(), expected.len(), "{text}");
}

#[test]
fn an_unknown_or_missing_environment_is_a_problem() {
    let err = load(&sources("prod", &[])).unwrap_err();
    assert_eq!(
        err.problems,
        ["environment: unknown environment \"prod\"; expected one of local, integration, staging, production"]
    );
    let mut s = sources("local", &[]);
    s.environment = None;
    let err = load(&s).unwrap_err();
    assert!(err.problems[0].starts_with("environment: missing required value"));
}

#[test]
fn unknown_keys_and_bad_types_are_reported_with_their_path() {
    let err = load(&sources("local", &[("CPQ_HTTP__BINDD", "x")])).unwrap_err();
    assert!(err.to_string().contains("bindd"), "{err}");
    let err = load(&sources("local", &[("CPQ_DATABASE__PORT", "five")])).unwrap_err();
    assert!(
        err.to_string()
            .contains("database.port: \"five\" is not a whole number"),
        "{err}"
    );
}

#[test]
fn only_section_key_variables_are_configuration() {
    // What Kubernetes injects for a Service named `cpq-api`, and other CPQ_* names without the
    // `<SECTION>__<KEY>` form: none of them is configuration, none stops the start.
    let injected = [
        ("CPQ_API_PORT", "tcp://10.0.0.7:8080"),
        ("CPQ_API_PORT_8080_TCP_ADDR", "10.0.0.7"),
        ("CPQ_API_SERVICE_HOST", "10.0.0.7"),
        ("CPQ_", "x"),
        ("CPQ___BIND", "x"),
        ("CPQ_HTTP__", "x"),
    ];
    let config = load(&sources("local", &injected)).unwrap();
    assert_eq!(config.http.bind.to_string(), "127.0.0.1:8080");
    // The documented form still is configuration.
    let config = load(&sources(
        "local",
        &[
            ("CPQ_API_PORT", "tcp://10.0.0.7:8080"),
            ("CPQ_HTTP__BIND", "127.0.0.1:9999"),
        ],
    ))
    .unwrap();
    assert_eq!(config.http.bind.to_string(), "127.0.0.1:9999");
}

#[test]
fn every_unknown_key_is_listed_at_once() {
    let err = load(&sources(
        "local",
        &[
            ("CPQ_HTTP__BINDD", "x"),
            ("CPQ_DATABASE__PORTT", "1"),
            ("CPQ_NOSUCH__KEY", "y"),
            ("CPQ_DATABASE__PORT", "five"),
        ],
    ))
    .unwrap_err();
    for expected in [
        "http.bindd: unknown key",
        "database.portt: unknown key",
        "nosuch: unknown key",
        "database.port: \"five\" is not a whole number",
    ] {
        assert!(
            err.problems.iter().any(|p| p == expected),
            "{expected} missing from {err}"
        );
    }
}

#[test]
fn secrets_never_appear_in_dumps_or_errors() {
    let config = load(&sources("staging", &INJECTED_SECRETS)).unwrap();
    let dump = config.dump();
    let debug = format!("{config:?}");
    for (_, secret) in INJECTED_SECRETS {
        assert!(!dump.contains(secret), "dump shows {secret}:\n{dump}");
        assert!(!debug.contains(secret), "Debug shows {secret}");
    }
    assert!(dump.contains("app_password = \"[redacted]\""), "{dump}");
    assert_eq!(
        config.database.app_password.expose(),
        "app-secret-from-store"
    );

    // A configuration that fails elsewhere still does not echo its secrets.
    let mut vars = INJECTED_SECRETS.to_vec();
    vars.push(("CPQ_HTTP__BIND", "nowhere"));
    let err = load(&sources("staging", &vars)).unwrap_err().to_string();
    for (_, secret) in INJECTED_SECRETS {
        assert!(!err.contains(secret), "error shows {secret}: {err}");
    }
}

#[test]
fn a_worker_group_file_is_validated_with_every_problem() {
    let dir = std::env::temp_dir().join(format!("cpq-worker-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        r#"
[worker]
group = "fulfillment-workers"

[[worker.job_types]]
job_type = "reserve-inventory"
handler = "http"
url = "http://127.0.0.1:7070/inventory/reservations"
max_active = 4
"#,
    )
    .unwrap();
    let mut s = sources("local", &[]);
    s.extra_files.push(good);
    let config = load(&s).unwrap();
    let w = config.worker.unwrap();
    assert_eq!(
        (w.group.as_str(), w.job_types.len(), w.job_types[0].lease_ms),
        ("fulfillment-workers", 1, 30_000)
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[worker]
group = ""

[[worker.job_types]]
job_type = "a"
handler = "ftp"
url = "not a url"
lease_ms = 1000
request_timeout_ms = 5000

[[worker.job_types]]
job_type = "a"
handler = "http"
url = "http://x"
"#,
    )
    .unwrap();
    let mut s = sources("local", &[]);
    s.extra_files.push(bad);
    let err = load(&s).unwrap_err().to_string();
    for needle in [
        "worker.group: must not be empty",
        "worker.job_types[0].handler",
        "worker.job_types[0].url",
        "must be shorter than lease_ms",
        "worker.job_types[1].job_type: \"a\" is configured twice",
    ] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_shipped_worker_group_files_load() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = root.join("deploy/local/fulfillment-workers.toml");
    let mut s = sources("local", &[]);
    s.extra_files.push(file);
    let w = load(&s).unwrap().worker.unwrap();
    let systems: Vec<(&str, &str)> = w
        .job_types
        .iter()
        .filter(|j| j.handler == JobHandlerKind::System)
        .map(|j| {
            let sys = j.system.as_ref().unwrap();
            (j.job_type.as_str(), sys.system.as_str())
        })
        .collect();
    // The fulfillment process's internal jobs: no URL, no system settings.
    let internal: Vec<&str> = w
        .job_types
        .iter()
        .filter(|j| j.handler == JobHandlerKind::Fulfillment)
        .map(|j| {
            assert!(j.url.is_none() && j.system.is_none(), "{}", j.job_type);
            j.job_type.as_str()
        })
        .collect();
    assert_eq!(internal, cpq_config::FULFILLMENT_INTERNAL_JOB_TYPES);
    assert_eq!(
        systems,
        [
            ("reserve-inventory", "inventory"),
            ("ship-equipment", "inventory"),
            ("provision-service", "provisioning"),
            ("activate-billing", "billing"),
            ("update-crm", "crm"),
            ("send-notification", "notification"),
        ]
    );
}

#[test]
fn a_system_handler_is_validated_naming_each_field() {
    let dir = std::env::temp_dir().join(format!("cpq-system-handler-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        r#"
[worker]
group = "fulfillment-workers"

[[worker.job_types]]
job_type = "provision-service"
handler = "system"
system = "provisioning"
operation = "provision"
url = "http://127.0.0.1:8090"
callback_url = "http://127.0.0.1:8080/v1/callbacks/provisioning"
max_retries = 4
"#,
    )
    .unwrap();
    let mut s = sources("local", &[]);
    s.extra_files.push(good);
    let w = load(&s).unwrap().worker.unwrap();
    let sys = w.job_types[0].system.clone().unwrap();
    assert_eq!(sys.system, ExternalSystem::Provisioning);
    assert_eq!(sys.operation, "provision");
    assert_eq!(sys.max_retries, Some(4));
    assert_eq!(
        (
            sys.retry_backoff_max_ms,
            sys.breaker_failure_threshold,
            sys.breaker_open_ms
        ),
        (60_000, 5, 30_000),
        "defaults"
    );
    assert!(sys.callback_url.is_some());

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[worker]
group = "g"

[[worker.job_types]]
job_type = "a"
handler = "system"
system = "erp"
operation = ""
url = "http://127.0.0.1:8090"
callback_url = "ftp://x"
max_retries = 0
retry_backoff_ms = 5000
retry_backoff_max_ms = 100
breaker_failure_threshold = 0
breaker_open_ms = 10

[[worker.job_types]]
job_type = "b"
handler = "http"
url = "http://x"
system = "crm"
breaker_open_ms = 1000

[[worker.job_types]]
job_type = "c"
handler = "system"
system = "crm"
operation = "x"
url = "http://127.0.0.1:8090"

[[worker.job_types]]
job_type = "d"
handler = "system"
system = "crm"
operation = "y"
url = "http://127.0.0.1:8090"
breaker_failure_threshold = 3
"#,
    )
    .unwrap();
    let mut s = sources("local", &[]);
    s.extra_files.push(bad);
    let err = load(&s).unwrap_err().to_string();
    for needle in [
        "worker.job_types[0].system: \"erp\" is not one of inventory, provisioning, billing, crm, notification",
        "worker.job_types[0].operation: must not be empty",
        "worker.job_types[0].callback_url",
        "worker.job_types[0].max_retries: 0 is out of range",
        "worker.job_types[0].retry_backoff_max_ms: 100 is smaller than retry_backoff_ms (5000)",
        "worker.job_types[0].breaker_failure_threshold: 0 is out of range",
        "worker.job_types[0].breaker_open_ms: 10 is out of range",
        "worker.job_types[1].system: only with handler = \"system\"",
        "worker.job_types[1].breaker_open_ms: only with handler = \"system\"",
        "worker.job_types[3].breaker_failure_threshold: the crm circuit breaker is shared",
    ] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn kafka_settings_are_checked_and_the_old_broker_workaround_keys_are_unknown() {
    let local = load(&sources("local", &[])).unwrap().kafka.unwrap();
    assert!(local.check_credentials().is_ok());
    assert_eq!(local.bootstrap_servers, "127.0.0.1:9092");

    // Production's SASL password is only needed by the deployables that connect to Kafka.
    let secrets_without_kafka: Vec<(&str, &str)> = INJECTED_SECRETS
        .iter()
        .copied()
        .filter(|(k, _)| !k.starts_with("CPQ_KAFKA"))
        .collect();
    let prod = load(&sources("production", &secrets_without_kafka))
        .unwrap()
        .kafka
        .unwrap();
    assert!(prod
        .check_credentials()
        .unwrap_err()
        .contains("CPQ_KAFKA__SASL_PASSWORD"));
    let prod = load(&sources("production", &INJECTED_SECRETS))
        .unwrap()
        .kafka
        .unwrap();
    assert!(prod.check_credentials().is_ok());

    let mut vars = INJECTED_SECRETS.to_vec();
    vars.extend([
        ("CPQ_KAFKA__SECURITY_PROTOCOL", "plaintext"),
        ("CPQ_KAFKA__SASL_MECHANISM", "GSSAPI"),
    ]);
    let err = load(&sources("production", &vars)).unwrap_err().to_string();
    assert!(
        err.contains("kafka.security_protocol: production requires ssl or sasl_ssl"),
        "{err}"
    );
    let mut vars = INJECTED_SECRETS.to_vec();
    vars.push(("CPQ_KAFKA__SASL_MECHANISM", "GSSAPI"));
    let err = load(&sources("staging", &vars)).unwrap_err().to_string();
    assert!(err.contains("kafka.sasl_mechanism"), "{err}");

    // The former local broker's workarounds are gone: a file (or variable) that still sets them
    // is refused in every environment, each key named.
    let dir = std::env::temp_dir().join(format!("cpq-config-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old-kafka.toml");
    std::fs::write(
        &old,
        "[kafka]\none_record_per_batch = true\nconsumer_assignment = \"all-partitions\"\n",
    )
    .unwrap();
    let mut s = sources("local", &[]);
    s.extra_files.push(old);
    let err = load(&s).unwrap_err().to_string();
    assert!(
        err.contains("kafka.one_record_per_batch: unknown key"),
        "{err}"
    );
    assert!(
        err.contains("kafka.consumer_assignment: unknown key"),
        "{err}"
    );
    let err = load(&sources(
        "local",
        &[("CPQ_KAFKA__CONSUMER_ASSIGNMENT", "group")],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("kafka.consumer_assignment: unknown key"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn callback_secrets_name_external_systems_are_long_enough_and_never_show() {
    let config = load(&sources(
        "staging",
        &[
            INJECTED_SECRETS.as_slice(),
            &[(
                "CPQ_CALLBACKS__SECRETS__PROVISIONING",
                "provisioning-secret-from-store",
            )],
        ]
        .concat(),
    ))
    .unwrap();
    assert_eq!(
        config.callbacks.secret("provisioning").unwrap().expose(),
        "provisioning-secret-from-store"
    );
    assert!(config.callbacks.secret("billing").is_none());
    assert!(!config.dump().contains("provisioning-secret-from-store"));
    assert!(!format!("{config:?}").contains("provisioning-secret-from-store"));

    let err = load(&sources(
        "staging",
        &[
            INJECTED_SECRETS.as_slice(),
            &[
                (
                    "CPQ_CALLBACKS__SECRETS__TELEPORTATION",
                    "a-long-enough-secret",
                ),
                ("CPQ_CALLBACKS__SECRETS__BILLING", "short"),
            ],
        ]
        .concat(),
    ))
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("callbacks.secrets.teleportation: is not an external system"),
        "{text}"
    );
    assert!(
        text.contains("callbacks.secrets.billing: must be at least 12 characters"),
        "{text}"
    );
    assert!(
        !text.contains("a-long-enough-secret") && !text.contains("short\""),
        "{text}"
    );
    assert_eq!(err.problems.len(), 2, "{text}");
}
