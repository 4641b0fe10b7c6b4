#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cpq-admin` as an operator runs it.

use std::process::Command;

fn cpq_admin(env: &str) -> Command {
    let mut cmd = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-admin"));
    cmd.env("CPQ_ENV", env)
        .env("CPQ_DATABASE__APP_PASSWORD", "x")
        .env("CPQ_DATABASE__OWNER_PASSWORD", "y");
    cmd
}

#[test]
fn token_mints_a_jwt_locally_and_refuses_in_production() {
    let out = cpq_admin("local")
        .args(["token", "--tenant", "demo", "--role", "sales"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.trim().split('.').count(), 3, "{token}");

    for env in ["staging", "production"] {
        let out = cpq_admin(env)
            .args(["token", "--tenant", "demo", "--role", "sales"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "no token may be printed in {env}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("dev tokens are refused in"), "{err}");
    }

    let out = cpq_admin("local")
        .args(["token", "--tenant", "demo", "--role", "superuser"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role \"superuser\""));
}

#[test]
fn an_invalid_configuration_is_refused_before_any_command() {
    let out = cpq_admin("local")
        .env("CPQ_DATABASE__PORT", "0")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.port: 0 is out of range"));
}

#[tokio::test]
async fn seed_demo_loads_the_catalog_once_and_generate_catalog_writes_a_publishable_document() {
    let db = cpq_testkit::TestDb::fresh().await;
    let config = db.config();
    let run = || {
        cpq_admin("local")
            .env("CPQ_DATABASE__NAME", &db.name)
            .env("CPQ_DATABASE__HOST", &config.database.host)
            .env(
                "CPQ_DATABASE__APP_PASSWORD",
                config.database.app_password.expose(),
            )
            .args(["seed", "demo", "--tenant", "demo"])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("loaded catalog demo-telecom-"));
    let second = run();
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("is already loaded"));

    let pool = db.owner_pool().await;
    let (versions, activations, offerings): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM catalog_version WHERE status = 'published'), \
                (SELECT count(*) FROM catalog_activation), (SELECT count(*) FROM catalog_offering)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((versions, activations, offerings), (1, 1, 7));
    pool.close().await;

    let out = cpq_admin("local")
        .args(["generate-catalog", "--offerings", "120"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: cpq_catalog::CatalogDocument = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc.offerings.len(), 120);
    assert!(cpq_catalog::validate(&doc).is_empty());
}

#[tokio::test]
async fn deploy_bpmn_deploys_a_folder_and_names_what_it_refuses() {
    let db = cpq_testkit::TestDb::fresh().await;
    let config = db.config();
    let out = cpq_admin("local")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_DATABASE__HOST", &config.database.host)
        .env(
            "CPQ_DATABASE__APP_PASSWORD",
            config.database.app_password.expose(),
        )
        .args([
            "deploy-bpmn",
            "--allow-unsupported-job-types",
            "--release-id",
            "r1",
        ])
        .arg(cpq_testkit::repo_root().join("../shared/fixtures/bpmn-modeler"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !out.status.success(),
        "two fixtures hold unsupported elements"
    );
    assert_eq!(
        stdout.matches(": deployed ").count(),
        5,
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("c8ex--get-up.bpmn: refused") && stderr.contains("[unsupported-element]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Activity_1l743sj [unsupported-element] callActivity"),
        "{stderr}"
    );

    let refused = cpq_admin("production")
        .args(["deploy-bpmn", "--allow-unsupported-job-types", "x.bpmn"])
        .env("CPQ_REDIS__PASSWORD", "z")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr)
        .contains("--allow-unsupported-job-types is refused in production"));
}
