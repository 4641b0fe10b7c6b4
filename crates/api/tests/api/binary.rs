//! The real `cpq-api` binary: configuration errors, dumped configuration, and logs that carry
//! request ids and never secrets.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use cpq_testkit::TestDb;
use serde_json::Value;

fn cpq_api() -> std::process::Command {
    cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-api"))
}

#[test]
fn an_invalid_configuration_exits_non_zero_naming_each_problem() {
    let out = cpq_api()
        .env("CPQ_ENV", "production")
        .env("CPQ_HTTP__REQUEST_TIMEOUT_MS", "0")
        .env("CPQ_REDIS__URL", "mysql://nope")
        .env("CPQ_DATABASE__OWNER_PASSWORD", "owner-pw-in-env")
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "database.app_password: missing required value",
        "http.request_timeout_ms: 0 is out of range",
        "redis.url: \"mysql://nope\" must be a redis or rediss URL",
    ] {
        assert!(err.contains(problem), "missing {problem:?} in:\n{err}");
    }
    assert!(!err.contains("owner-pw-in-env"));

    let out = cpq_api()
        .env("CPQ_ENV", "prod")
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown environment \"prod\""));
}

#[test]
fn dumped_configuration_redacts_secrets() {
    let out = cpq_api()
        .env("CPQ_ENV", "staging")
        .env("CPQ_DATABASE__APP_PASSWORD", "s3cret-app-pw")
        .env("CPQ_DATABASE__OWNER_PASSWORD", "s3cret-owner-pw")
        .env("CPQ_REDIS__PASSWORD", "s3cret-redis-pw")
        .arg("--dump-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains("environment = \"staging\""), "{dump}");
    assert!(dump.contains("[redacted]"));
    for secret in ["s3cret-app-pw", "s3cret-owner-pw", "s3cret-redis-pw"] {
        assert!(!dump.contains(secret), "{secret} in dump:\n{dump}");
    }
}

/// Starts the binary against a fresh database with secrets it does not need (owner password,
/// Redis password), drives a few requests, and reads every log line it wrote.
#[tokio::test]
async fn logs_are_json_with_request_ids_and_never_show_secrets() {
    let db = TestDb::fresh().await;
    let config = db.config();
    let mut child = cpq_api()
        .env("CPQ_ENV", "local")
        .env("CPQ_HTTP__BIND", "127.0.0.1:0")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_DATABASE__HOST", &config.database.host)
        .env("CPQ_DATABASE__PORT", config.database.port.to_string())
        .env(
            "CPQ_DATABASE__APP_PASSWORD",
            config.database.app_password.expose(),
        )
        .env("CPQ_DATABASE__OWNER_PASSWORD", "owner-secret-never-logged")
        .env("CPQ_REDIS__PASSWORD", "redis-secret-never-logged")
        .env("CPQ_LOG__LEVEL", "debug,sqlx=debug,hyper=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = cpq_testkit::KillOnDrop(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    let mut log = Vec::new();
    let addr = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("cpq-api did not start");
        log.push(line.clone());
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["message"] == "cpq-api serving" {
            break v["addr"]
                .as_str()
                .unwrap()
                .trim_start_matches("Some(")
                .trim_end_matches(')')
                .to_owned();
        }
    };
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let signer = cpq_auth::DevSigner::from_config(&config).unwrap();
    let token = signer
        .mint(
            "rep-1",
            &cpq_core::TenantId::parse("acme").unwrap(),
            &[cpq_core::Role::Sales],
            Duration::from_secs(60),
        )
        .unwrap();
    let created = client.post(format!("{base}/v1/customer-accounts")).bearer_auth(&token)
        .header("x-request-id", "req-log-check")
        .json(&serde_json::json!({"name": "Acme", "segment": "enterprise", "market": "DE", "currency": "EUR"}))
        .send().await.unwrap();
    assert_eq!(created.status(), 201);
    client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/v1/customer-accounts"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(2)) {
        log.push(line);
    }
    let text = log.join("\n");
    for secret in ["owner-secret-never-logged", "redis-secret-never-logged"] {
        assert!(!text.contains(secret), "{secret} appears in the logs");
    }
    assert!(
        text.contains("[redacted]"),
        "the start-up configuration is logged, redacted"
    );
    let entries: Vec<Value> = log
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let finished = entries
        .iter()
        .find(|e| e["message"] == "request finished" && e["span"]["request_id"] == "req-log-check")
        .unwrap_or_else(|| panic!("no request log for req-log-check in:\n{text}"));
    assert_eq!(finished["span"]["route"], "/v1/customer-accounts");
    assert_eq!(finished["span"]["tenant"], "acme");
    assert_eq!(finished["status"], 201);
}
