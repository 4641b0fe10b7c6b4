#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The runtime in PostgreSQL: instances started in the caller's transaction, jobs claimed with
//! SKIP LOCKED and leases, retries, incidents, errors, and many workers at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_testkit::TestDb;
use cpq_workflow::deployment::{deploy, DeployRequest};
use cpq_workflow::instances::{
    activate_jobs, complete_job, fail_job, resolve_incident, start_instance, throw_error,
    ActivatedJob, JobTenants, StartRequest,
};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

const ORDER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:error id="E" errorCode="OUT_OF_STOCK" />
  <bpmn:process id="order" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="reserve"><bpmn:extensionElements><zeebe:taskDefinition type="reserve-inventory" retries="2" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="no_stock" attachedToRef="reserve"><bpmn:errorEventDefinition errorRef="E" /></bpmn:boundaryEvent>
    <bpmn:serviceTask id="bill"><bpmn:extensionElements><zeebe:taskDefinition type="activate-billing" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:serviceTask id="fallout"><bpmn:extensionElements><zeebe:taskDefinition type="open-fallout" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" /><bpmn:endEvent id="e2" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="reserve" />
    <bpmn:sequenceFlow id="f2" sourceRef="reserve" targetRef="bill" />
    <bpmn:sequenceFlow id="f3" sourceRef="bill" targetRef="e" />
    <bpmn:sequenceFlow id="f4" sourceRef="no_stock" targetRef="fallout" />
    <bpmn:sequenceFlow id="f5" sourceRef="fallout" targetRef="e2" />
  </bpmn:process>
</bpmn:definitions>"#;

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

async fn setup() -> (TestDb, PgPool) {
    let db = TestDb::fresh().await;
    let pool = db.app_pool().await;
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    deploy(
        &mut tx,
        &DeployRequest {
            resource_name: "order.bpmn",
            xml: ORDER,
            release_id: None,
            source_commit: None,
            variable_schema_version: 1,
            allow_unsupported_job_types: true,
            deployed_by: "test",
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (db, pool)
}

async fn start(pool: &PgPool, vars: Value) -> Uuid {
    let mut tx = tenant::begin(pool, &acme()).await.unwrap();
    let started = start_instance(
        &mut tx,
        &StartRequest {
            tenant: &acme(),
            bpmn_process_id: "order",
            product_line: None,
            release_flags: vec![],
            variables: vars.as_object().unwrap().clone(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    started.process_instance_id
}

async fn complete(pool: &PgPool, job: &ActivatedJob, vars: Value) {
    let mut tx = tenant::begin(pool, &TenantId::parse(&job.tenant_id).unwrap())
        .await
        .unwrap();
    complete_job(
        &mut tx,
        job.job_id,
        vars.as_object().unwrap().clone(),
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn status(db: &TestDb, instance: Uuid) -> String {
    let owner = db.owner_pool().await;
    let s: String =
        sqlx::query_scalar("SELECT status FROM process_instance WHERE process_instance_id = $1")
            .bind(instance)
            .fetch_one(&owner)
            .await
            .unwrap();
    owner.close().await;
    s
}

#[tokio::test]
async fn an_instance_started_in_a_rolled_back_transaction_leaves_nothing() {
    let (db, pool) = setup().await;
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    start_instance(
        &mut tx,
        &StartRequest {
            tenant: &acme(),
            bpmn_process_id: "order",
            product_line: None,
            release_flags: vec![],
            variables: Map::new(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        10,
        Duration::from_secs(30),
        &JobTenants::Every
    )
    .await
    .unwrap()
    .is_empty());
    let owner = db.owner_pool().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM process_instance")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(n, 0);
    owner.close().await;
}

#[tokio::test]
async fn jobs_are_claimed_completed_and_the_instance_completes() {
    let (db, pool) = setup().await;
    let instance = start(&pool, json!({ "orderId": "O-1" })).await;
    let jobs = activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        10,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].variables["orderId"], "O-1");
    assert_eq!(jobs[0].idempotency_key(), format!("job-{}", jobs[0].job_id));
    assert!(
        activate_jobs(
            &pool,
            "reserve-inventory",
            "w2",
            10,
            Duration::from_secs(30),
            &JobTenants::Every
        )
        .await
        .unwrap()
        .is_empty(),
        "a leased job is not handed out twice"
    );
    complete(&pool, &jobs[0], json!({ "reservation": "R-1" })).await;
    let bill = activate_jobs(
        &pool,
        "activate-billing",
        "w1",
        10,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap();
    assert_eq!(bill[0].variables["reservation"], "R-1");
    complete(&pool, &bill[0], json!({})).await;
    assert_eq!(status(&db, instance).await, "completed");

    // Completing twice is refused.
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    assert!(
        complete_job(&mut tx, bill[0].job_id, Map::new(), Utc::now())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn failures_retry_after_back_off_then_raise_an_incident_that_retries_resolve() {
    let (db, pool) = setup().await;
    let instance = start(&pool, json!({})).await;
    let job = activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    fail_job(
        &mut tx,
        job.job_id,
        1,
        Duration::from_secs(3600),
        "inventory timeout",
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(
        activate_jobs(
            &pool,
            "reserve-inventory",
            "w1",
            1,
            Duration::from_secs(30),
            &JobTenants::Every
        )
        .await
        .unwrap()
        .is_empty(),
        "backing off"
    );

    // Make the back-off elapse, then fail the last retry.
    let owner = db.owner_pool().await;
    sqlx::query("UPDATE job SET retry_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(job.job_id)
        .execute(&owner)
        .await
        .unwrap();
    let again = activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(
        (again.job_id, again.attempt, again.retries),
        (job.job_id, 2, 1)
    );
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    fail_job(
        &mut tx,
        again.job_id,
        0,
        Duration::ZERO,
        "still down",
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let incident: Uuid = sqlx::query_scalar(
        "SELECT incident_id FROM incident WHERE job_id = $1 AND status = 'open'",
    )
    .bind(job.job_id)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert!(activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every
    )
    .await
    .unwrap()
    .is_empty());

    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    resolve_incident(&mut tx, incident, 3, Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let resumed = activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    complete(&pool, &resumed, json!({})).await;
    let bill = activate_jobs(
        &pool,
        "activate-billing",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    complete(&pool, &bill, json!({})).await;
    assert_eq!(status(&db, instance).await, "completed");
    owner.close().await;
}

#[tokio::test]
async fn an_expired_lease_makes_the_job_activatable_again_with_the_same_idempotency_key() {
    let (_db, pool) = setup().await;
    start(&pool, json!({})).await;
    let first = activate_jobs(
        &pool,
        "reserve-inventory",
        "crashed-worker",
        1,
        Duration::from_millis(1),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = activate_jobs(
        &pool,
        "reserve-inventory",
        "w2",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    assert_eq!(second.job_id, first.job_id);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.idempotency_key(), first.idempotency_key());
    complete(&pool, &second, json!({})).await;
}

#[tokio::test]
async fn a_thrown_error_takes_the_boundary_path() {
    let (db, pool) = setup().await;
    let instance = start(&pool, json!({})).await;
    let job = activate_jobs(
        &pool,
        "reserve-inventory",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    throw_error(
        &mut tx,
        job.job_id,
        "OUT_OF_STOCK",
        "no routers",
        Map::new(),
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let fallout = activate_jobs(
        &pool,
        "open-fallout",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    complete(&pool, &fallout, json!({})).await;
    assert_eq!(status(&db, instance).await, "completed");
    assert!(activate_jobs(
        &pool,
        "activate-billing",
        "w1",
        1,
        Duration::from_secs(30),
        &JobTenants::Every
    )
    .await
    .unwrap()
    .is_empty());
}

#[tokio::test]
async fn eight_concurrent_workers_complete_every_job_once_and_every_instance_once() {
    let (db, pool) = setup().await;
    let mut instances = Vec::new();
    for i in 0..40 {
        instances.push(start(&pool, json!({ "n": i })).await);
    }
    let pool = Arc::new(pool);
    let mut workers = Vec::new();
    for w in 0..8 {
        let pool = pool.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0;
            let mut idle = 0;
            while idle < 3 {
                let mut got = 0;
                for job_type in ["reserve-inventory", "activate-billing"] {
                    for job in activate_jobs(
                        &pool,
                        job_type,
                        &format!("w{w}"),
                        4,
                        Duration::from_secs(60),
                        &JobTenants::Every,
                    )
                    .await
                    .unwrap()
                    {
                        complete(&pool, &job, json!({ format!("by_{job_type}"): w })).await;
                        got += 1;
                    }
                }
                done += got;
                idle = if got == 0 { idle + 1 } else { 0 };
                if got == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert_eq!(total, 80, "two jobs per instance, each completed once");
    let owner = db.owner_pool().await;
    let (completed, attempts_max, jobs): (i64, i32, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM process_instance WHERE status = 'completed'), (SELECT max(attempt) FROM job), (SELECT count(*) FROM job WHERE status = 'completed')",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!((completed, attempts_max, jobs), (40, 1, 80));
    owner.close().await;
}

const EVENTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d2">
  <bpmn:message id="M" name="payment-received"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:process id="events" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="M" /></bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="cool_off"><bpmn:timerEventDefinition><bpmn:timeDuration>PT0S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:serviceTask id="ship"><bpmn:extensionElements><zeebe:taskDefinition type="ship" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="paid" />
    <bpmn:sequenceFlow id="f2" sourceRef="paid" targetRef="cool_off" />
    <bpmn:sequenceFlow id="f3" sourceRef="cool_off" targetRef="ship" />
    <bpmn:sequenceFlow id="f4" sourceRef="ship" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

async fn deploy_events(pool: &PgPool) {
    let mut tx = tenant::begin(pool, &acme()).await.unwrap();
    deploy(
        &mut tx,
        &DeployRequest {
            resource_name: "events.bpmn",
            xml: EVENTS,
            release_id: None,
            source_commit: None,
            variable_schema_version: 1,
            allow_unsupported_job_types: true,
            deployed_by: "test",
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn publish(
    pool: &PgPool,
    key: &str,
    id: Option<&str>,
    ttl: Duration,
) -> Result<cpq_workflow::instances::Publication, cpq_core::Error> {
    let mut tx = tenant::begin(pool, &acme()).await.unwrap();
    let r = cpq_workflow::instances::publish_message(
        &mut tx,
        &cpq_workflow::instances::Message {
            tenant: &acme(),
            name: "payment-received",
            correlation_key: key,
            time_to_live: ttl,
            message_id: id,
            variables: json!({ "paidBy": key }).as_object().unwrap().clone(),
            at: Utc::now(),
        },
    )
    .await;
    tx.commit().await.unwrap();
    r
}

async fn fire_due(pool: &PgPool) -> usize {
    let mut fired = 0;
    for (timer, tenant_id) in cpq_workflow::instances::timers_due(pool, 100)
        .await
        .unwrap()
    {
        let mut tx = tenant::begin(pool, &TenantId::parse(&tenant_id).unwrap())
            .await
            .unwrap();
        if cpq_workflow::instances::fire_timer(&mut tx, timer, Utc::now())
            .await
            .unwrap()
        {
            fired += 1;
        }
        tx.commit().await.unwrap();
    }
    fired
}

async fn start_events(pool: &PgPool, order: &str) -> Uuid {
    let mut tx = tenant::begin(pool, &acme()).await.unwrap();
    let s = start_instance(
        &mut tx,
        &StartRequest {
            tenant: &acme(),
            bpmn_process_id: "events",
            product_line: None,
            release_flags: vec![],
            variables: json!({ "orderId": order }).as_object().unwrap().clone(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    s.process_instance_id
}

#[tokio::test]
async fn messages_correlate_to_waiting_instances_or_wait_in_the_buffer_and_timers_fire_by_scan() {
    use cpq_workflow::instances::Publication;
    let (db, pool) = setup().await;
    deploy_events(&pool).await;

    // Waiting instance: the message correlates at once.
    let waiting = start_events(&pool, "O-1").await;
    assert_eq!(
        publish(&pool, "O-1", None, Duration::ZERO).await.unwrap(),
        Publication::Correlated {
            process_instance_id: waiting
        }
    );

    // No instance yet: buffered (deduplicated by id), and taken when the instance reaches the catch.
    assert!(matches!(
        publish(&pool, "O-2", Some("pay-O-2"), Duration::from_secs(3600))
            .await
            .unwrap(),
        Publication::Buffered { .. }
    ));
    let duplicate = publish(&pool, "O-2", Some("pay-O-2"), Duration::from_secs(3600)).await;
    assert!(matches!(duplicate, Err(cpq_core::Error::Conflict { .. })));
    assert_eq!(
        publish(&pool, "O-3", None, Duration::ZERO).await.unwrap(),
        Publication::Dropped
    );
    let late = start_events(&pool, "O-2").await;

    // Both instances now wait on a zero-length timer: the scan fires both, once.
    assert_eq!(fire_due(&pool).await, 2);
    assert_eq!(fire_due(&pool).await, 0);
    let jobs = activate_jobs(
        &pool,
        "ship",
        "w",
        10,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap();
    assert_eq!(jobs.len(), 2);
    let by_instance = |id: Uuid| {
        jobs.iter()
            .find(|j| j.process_instance_id == id)
            .unwrap()
            .variables["paidBy"]
            .clone()
    };
    assert_eq!(
        (by_instance(waiting), by_instance(late)),
        (json!("O-1"), json!("O-2"))
    );
    for j in &jobs {
        complete(&pool, j, json!({})).await;
    }
    assert_eq!(
        (status(&db, waiting).await, status(&db, late).await),
        ("completed".to_owned(), "completed".to_owned())
    );
}

#[tokio::test]
async fn a_message_start_event_starts_an_instance_of_the_latest_version() {
    use cpq_workflow::instances::Publication;
    let (db, pool) = setup().await;
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d3">
  <bpmn:message id="Q" name="quote-accepted" />
  <bpmn:process id="on_acceptance" isExecutable="true">
    <bpmn:startEvent id="accepted"><bpmn:messageEventDefinition messageRef="Q" /></bpmn:startEvent>
    <bpmn:serviceTask id="convert"><bpmn:extensionElements><zeebe:taskDefinition type="convert-quote" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="accepted" targetRef="convert" />
    <bpmn:sequenceFlow id="f2" sourceRef="convert" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    deploy(
        &mut tx,
        &DeployRequest {
            resource_name: "m.bpmn",
            xml,
            release_id: None,
            source_commit: None,
            variable_schema_version: 1,
            allow_unsupported_job_types: true,
            deployed_by: "t",
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    let published = cpq_workflow::instances::publish_message(
        &mut tx,
        &cpq_workflow::instances::Message {
            tenant: &acme(),
            name: "quote-accepted",
            correlation_key: "Q-1",
            time_to_live: Duration::ZERO,
            message_id: None,
            variables: json!({ "quoteId": "Q-1" }).as_object().unwrap().clone(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let Publication::StartedInstance {
        process_instance_id,
    } = published
    else {
        panic!("{published:?}")
    };
    let jobs = activate_jobs(
        &pool,
        "convert-quote",
        "w",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            jobs[0].process_instance_id,
            jobs[0].variables["quoteId"].clone()
        ),
        (process_instance_id, json!("Q-1"))
    );
    complete(&pool, &jobs[0], json!({})).await;
    assert_eq!(status(&db, process_instance_id).await, "completed");
}

#[tokio::test]
async fn a_timer_start_event_starts_instances_on_its_cycle_for_the_deploying_tenant() {
    let (db, pool) = setup().await;
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d4">
  <bpmn:process id="nightly_expiry" isExecutable="true">
    <bpmn:startEvent id="every"><bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
    <bpmn:serviceTask id="sweep"><bpmn:extensionElements><zeebe:taskDefinition type="expire-quotes" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="every" targetRef="sweep" />
    <bpmn:sequenceFlow id="f2" sourceRef="sweep" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    deploy(
        &mut tx,
        &DeployRequest {
            resource_name: "t.bpmn",
            xml,
            release_id: None,
            source_commit: None,
            variable_schema_version: 1,
            allow_unsupported_job_types: true,
            deployed_by: "t",
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let owner = db.owner_pool().await;
    let fire_all = || async {
        let mut n = 0;
        for (timer, tenant_id) in cpq_workflow::instances::start_timers_due(&pool, 10)
            .await
            .unwrap()
        {
            let mut tx = tenant::begin(&pool, &TenantId::parse(&tenant_id).unwrap())
                .await
                .unwrap();
            if cpq_workflow::instances::fire_start_timer(&mut tx, timer, Utc::now())
                .await
                .unwrap()
            {
                n += 1;
            }
            tx.commit().await.unwrap();
        }
        n
    };
    assert_eq!(fire_all().await, 0, "not due for an hour");
    for _ in 0..2 {
        sqlx::query("UPDATE start_timer SET due_at = now() - interval '1 second'")
            .execute(&owner)
            .await
            .unwrap();
        assert_eq!(fire_all().await, 1);
    }
    let (instances, timers): (i64, i64) = sqlx::query_as("SELECT (SELECT count(*) FROM process_instance WHERE tenant_id = 'acme'), (SELECT count(*) FROM start_timer)")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(
        (instances, timers),
        (2, 0),
        "R2: two instances, then the timer is done"
    );
    assert_eq!(
        activate_jobs(
            &pool,
            "expire-quotes",
            "w",
            10,
            Duration::from_secs(30),
            &JobTenants::Every
        )
        .await
        .unwrap()
        .len(),
        2
    );
    owner.close().await;
}

#[tokio::test]
async fn a_worker_claims_only_the_jobs_of_the_tenants_it_names() {
    let (_db, pool) = setup().await;
    start(&pool, json!({})).await;
    let claim = |tenants: JobTenants| {
        let pool = pool.clone();
        async move {
            activate_jobs(
                &pool,
                "reserve-inventory",
                "w1",
                10,
                Duration::from_secs(30),
                &tenants,
            )
            .await
            .unwrap()
        }
    };
    let globex = TenantId::parse("globex").unwrap();
    assert!(claim(JobTenants::Only(vec![globex])).await.is_empty());
    assert!(
        claim(JobTenants::Only(vec![])).await.is_empty(),
        "naming no tenant claims nothing"
    );
    let mine = claim(JobTenants::Only(vec![acme()])).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].tenant_id, "acme");
}

#[tokio::test]
async fn a_message_id_is_taken_for_the_time_to_live_then_freed_and_purged() {
    use cpq_workflow::instances::{purge_expired_messages, Publication};
    let (db, pool) = setup().await;
    deploy_events(&pool).await;
    // Correlated at once, and still the id is taken for the message's time to live.
    start_events(&pool, "O-7").await;
    assert!(matches!(
        publish(&pool, "O-7", Some("pay-O-7"), Duration::from_millis(300)).await,
        Ok(Publication::Correlated { .. })
    ));
    assert!(matches!(
        publish(&pool, "O-7", Some("pay-O-7"), Duration::from_secs(60)).await,
        Err(cpq_core::Error::Conflict { .. })
    ));
    assert!(
        matches!(
            publish(&pool, "O-7", Some("pay-O-7"), Duration::ZERO).await,
            Err(cpq_core::Error::Conflict { .. })
        ),
        "a live id refuses a message without time to live too"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        publish(&pool, "O-8", Some("pay-O-7"), Duration::from_millis(1)).await,
        Ok(Publication::Buffered { .. })
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(purge_expired_messages(&pool, 100).await.unwrap() >= 2);
    let owner = db.owner_pool().await;
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM message_publication) + (SELECT count(*) FROM message)",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    owner.close().await;
    assert_eq!(left, 0, "only expired rows existed, and they are gone");

    // Far beyond any date: refused, never an overflow.
    let refused = publish(
        &pool,
        "O-9",
        None,
        Duration::from_millis(10_000_000_000_000_000),
    )
    .await;
    assert!(
        matches!(&refused, Err(cpq_core::Error::Validation { errors }) if errors[0].field == "time_to_live_ms"),
        "{refused:?}"
    );
}

const WAITS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d4">
  <bpmn:message id="C" name="work-cancelled"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:message id="H" name="work-held"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:process id="waits" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="work"><bpmn:extensionElements><zeebe:taskDefinition type="work" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="cancelled" attachedToRef="work"><bpmn:messageEventDefinition messageRef="C" /></bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="held" attachedToRef="work"><bpmn:messageEventDefinition messageRef="H" /></bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="late" attachedToRef="work"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:endEvent id="e" /><bpmn:endEvent id="e2" /><bpmn:endEvent id="e3" /><bpmn:endEvent id="e4" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e" />
    <bpmn:sequenceFlow id="f3" sourceRef="cancelled" targetRef="e2" />
    <bpmn:sequenceFlow id="f4" sourceRef="held" targetRef="e3" />
    <bpmn:sequenceFlow id="f5" sourceRef="late" targetRef="e4" />
  </bpmn:process>
</bpmn:definitions>"#;

/// (open subscriptions, timers) of an instance.
async fn waits_of(owner: &PgPool, instance: Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM message_subscription WHERE process_instance_id = $1), \
         (SELECT count(*) FROM timer WHERE process_instance_id = $1)",
    )
    .bind(instance)
    .fetch_one(owner)
    .await
    .unwrap()
}

/// An activity that ends (by its job, or interrupted by one of its messages) leaves none of its
/// boundary events' subscriptions and timers behind: the runtime closes them in one statement
/// each, skipping only the subscription the correlation has taken when it was the only one.
#[tokio::test]
async fn an_activity_that_ends_leaves_no_subscription_or_timer_of_its_boundary_events() {
    use cpq_workflow::instances::{publish_message, Message, Publication};
    let (db, pool) = setup().await;
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    deploy(
        &mut tx,
        &DeployRequest {
            resource_name: "waits.bpmn",
            xml: WAITS,
            release_id: None,
            source_commit: None,
            variable_schema_version: 1,
            allow_unsupported_job_types: true,
            deployed_by: "test",
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let owner = db.owner_pool().await;
    let start_waits = |order: &'static str| {
        let pool = pool.clone();
        async move {
            let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
            let s = start_instance(
                &mut tx,
                &StartRequest {
                    tenant: &acme(),
                    bpmn_process_id: "waits",
                    product_line: None,
                    release_flags: vec![],
                    variables: json!({ "orderId": order }).as_object().unwrap().clone(),
                    at: Utc::now(),
                },
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            s.process_instance_id
        }
    };

    // Interrupted by one of its two messages: the other subscription and the timer go too.
    let interrupted = start_waits("W-1").await;
    assert_eq!(waits_of(&owner, interrupted).await, (2, 1));
    let mut tx = tenant::begin(&pool, &acme()).await.unwrap();
    let published = publish_message(
        &mut tx,
        &Message {
            tenant: &acme(),
            name: "work-cancelled",
            correlation_key: "W-1",
            time_to_live: Duration::ZERO,
            message_id: None,
            variables: Map::new(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        published,
        Publication::Correlated {
            process_instance_id: interrupted
        }
    );
    assert_eq!(waits_of(&owner, interrupted).await, (0, 0));
    assert_eq!(status(&db, interrupted).await, "completed");

    // Completed by its job: both subscriptions and the timer go.
    let completed = start_waits("W-2").await;
    assert_eq!(waits_of(&owner, completed).await, (2, 1));
    let job = activate_jobs(
        &pool,
        "work",
        "w",
        1,
        Duration::from_secs(30),
        &JobTenants::Every,
    )
    .await
    .unwrap()
    .remove(0);
    complete(&pool, &job, json!({})).await;
    assert_eq!(waits_of(&owner, completed).await, (0, 0));
    assert_eq!(status(&db, completed).await, "completed");
}
