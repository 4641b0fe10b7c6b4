#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cpq-admin` as an operator runs it.

use std::process::Command;
use std::time::Duration;

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
    // The seven Modeler fixtures (all deploy) and one file the reader refuses.
    let dir = std::env::temp_dir().join(format!("admin-deploy-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = cpq_testkit::repo_root().join("../shared/fixtures/bpmn-modeler");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bpmn") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    // A Modeler DMN file: its five decisions deploy before the processes.
    std::fs::copy(
        cpq_testkit::repo_root().join("crates/api/tests/fixtures/quote-pricing-decisions.dmn"),
        dir.join("pricing.dmn"),
    )
    .unwrap();
    std::fs::write(
        dir.join("zz-refused.bpmn"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="refused" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:complexGateway id="Gateway_complex" />
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="Gateway_complex" />
    <bpmn:sequenceFlow id="f2" sourceRef="Gateway_complex" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#,
    )
    .unwrap();
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
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "one file was refused");
    assert_eq!(
        stdout.matches(": deployed ").count(),
        13,
        "every Modeler fixture deploys (seven files, eight processes) and the DMN file's five decisions: {stdout}\n{stderr}"
    );
    assert!(
        stdout.starts_with("pricing.dmn: deployed decision segmentDiscount version 1\n"),
        "decisions first: {stdout}"
    );
    assert!(
        stderr.contains("zz-refused.bpmn: refused")
            && stderr.contains("Gateway_complex [unsupported-element] complexGateway"),
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

const ONE_JOB: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="admin-repair" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="provision"><bpmn:extensionElements><zeebe:taskDefinition type="admin-repair-job" retries="1" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="provision" />
    <bpmn:sequenceFlow id="f2" sourceRef="provision" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

/// `cpq-admin deploy-bpmn` and `cpq-admin incidents` run the API's own operations: a deployment
/// is audited with its `process-definition.deployed` event, and an incident is listed and
/// resolved (audited, its job activatable again) as `GET /v1/incidents` and its resolution do.
#[tokio::test]
async fn deploy_and_incident_repair_run_the_apis_operations() {
    use cpq_application::workflow::instances::StartInstance;
    use cpq_application::workflow::jobs::{activate_jobs, ActivateJobs, FailJob, Waiting};
    use cpq_application::{execute, Call, Services};
    use cpq_core::{Principal, Role, TenantGrant, TenantId};

    let db = cpq_testkit::TestDb::fresh().await;
    let config = db.config();
    let admin = |args: &[&str]| {
        let out = cpq_admin("local")
            .env("CPQ_DATABASE__NAME", &db.name)
            .env("CPQ_DATABASE__HOST", &config.database.host)
            .env(
                "CPQ_DATABASE__APP_PASSWORD",
                config.database.app_password.expose(),
            )
            .args(args)
            .output()
            .unwrap();
        let text = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "cpq-admin {args:?}: {text:?}");
        text.0
    };
    let dir = std::env::temp_dir().join(format!("admin-repair-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("admin-repair.bpmn");
    std::fs::write(&file, ONE_JOB).unwrap();
    let out = admin(&[
        "deploy-bpmn",
        "--allow-unsupported-job-types",
        file.to_str().unwrap(),
    ]);
    assert!(out.contains("deployed admin-repair version 1"), "{out}");

    let owner = db.owner_pool().await;
    let deployed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_event e JOIN audit_record a \
         ON a.aggregate_id = e.aggregate_id AND a.action = 'process-definition.deploy' \
         WHERE e.event_type = 'process-definition.deployed' AND a.actor_subject = 'cpq-admin'",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(deployed, 1, "the deployment is audited with its event");

    // --together: one deployment of both files; the process file is unchanged but the
    // deployment is new, so it gets a new version beside the decisions.
    let dmn = dir.join("pricing.dmn");
    std::fs::copy(
        cpq_testkit::repo_root().join("crates/api/tests/fixtures/quote-pricing-decisions.dmn"),
        &dmn,
    )
    .unwrap();
    let out = admin(&[
        "deploy-bpmn",
        "--together",
        "--allow-unsupported-job-types",
        file.to_str().unwrap(),
        dmn.to_str().unwrap(),
    ]);
    assert!(
        out.contains("admin-repair.bpmn: deployed admin-repair version 2")
            && out.contains("pricing.dmn: deployed decision segmentDiscount version 1"),
        "{out}"
    );
    let deployments: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT deployment_id) FROM (SELECT deployment_id FROM process_definition \
         WHERE version = 2 UNION ALL SELECT deployment_id FROM decision_definition) d",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(deployments, 1, "one deployment: {out}");

    // An incident: the job's one retry fails.
    let services = Services::new(
        config.environment.as_str(),
        db.app_pool().await,
        cpq_application::redis_link::RedisLink::new(&config.redis).unwrap(),
    );
    let acme = TenantId::parse("acme").unwrap();
    let as_role = |role: Role| {
        let principal = Principal {
            subject: "test".into(),
            tenant: acme.clone(),
            roles: [role].into(),
            groups: Default::default(),
            grant: TenantGrant::Own,
        };
        Call::new(principal, "c".into(), None)
    };
    let start = StartInstance {
        bpmn_process_id: "admin-repair".into(),
        variables: Default::default(),
        product_line: None,
        release_flags: vec![],
    };
    execute(&services, &as_role(Role::Operator), start)
        .await
        .unwrap();
    let activate = ActivateJobs {
        job_type: "admin-repair-job".into(),
        worker: "test".into(),
        max_jobs: 1,
        timeout_ms: 60_000,
        request_timeout_ms: 0,
        tenant_ids: None,
    };
    let worker = as_role(Role::Worker);
    let jobs = activate_jobs(
        &services,
        &worker,
        &activate,
        Waiting::listen(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(jobs.len(), 1);
    let fail = FailJob {
        job: jobs[0].job_id,
        retries: 0,
        retry_back_off_ms: 0,
        error_message: "the inventory said no".into(),
    };
    execute(&services, &worker, fail).await.unwrap();

    let listed = admin(&["incidents", "list", "--tenant", "acme"]);
    let lines: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{listed}");
    let id = lines[0]["incident_id"].as_str().unwrap().to_owned();
    assert_eq!(admin(&["incidents", "list", "--tenant", "other"]), "");

    let out = admin(&[
        "incidents",
        "resolve",
        "--tenant",
        "acme",
        "--id",
        &id,
        "--reason",
        "inventory fixed",
    ]);
    assert!(out.contains("resolved"), "{out}");
    assert_eq!(admin(&["incidents", "list", "--tenant", "acme"]), "");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_record WHERE action = 'incident.resolve' \
         AND actor_subject = 'cpq-admin' AND reason = 'inventory fixed' AND tenant_id = 'acme'",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let again = activate_jobs(
        &services,
        &worker,
        &activate,
        Waiting::listen(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(
        again.len(),
        1,
        "the resolved incident's job is activatable again"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
