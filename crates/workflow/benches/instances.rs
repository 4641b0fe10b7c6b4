//! Single-service-task instances through PostgreSQL: start → claim → complete → end.
//! `instance_cycle` is one instance at a time (latency); `instances_8_workers` runs 400 instances
//! with 8 concurrent workers claiming in batches (throughput, reported as elements per second).
//! Needs the local PostgreSQL with the roles `scripts/test.sh` provisions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_testkit::TestDb;
use cpq_workflow::deployment::{deploy, DeployRequest};
use cpq_workflow::instances::{
    activate_jobs, complete_job, start_instance, JobTenants, StartRequest,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlx::PgPool;

const PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="one_task" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="bench" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

async fn start(pool: &PgPool, tenant_id: &TenantId) {
    let mut tx = tenant::begin(pool, tenant_id).await.unwrap();
    start_instance(
        &mut tx,
        &StartRequest {
            tenant: tenant_id,
            bpmn_process_id: "one_task",
            product_line: None,
            release_flags: vec![],
            variables: serde_json::Map::new(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn work(pool: &PgPool, tenant_id: &TenantId, batch: i32) -> usize {
    let jobs = activate_jobs(
        pool,
        "bench",
        "bench-worker",
        batch,
        Duration::from_secs(60),
        &JobTenants::Every,
    )
    .await
    .unwrap();
    for j in &jobs {
        let mut tx = tenant::begin(pool, tenant_id).await.unwrap();
        complete_job(&mut tx, j.job_id, serde_json::Map::new(), Utc::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    jobs.len()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, pool) = rt.block_on(async {
        let db = TestDb::fresh().await;
        let mut config = db.config();
        config.database.max_connections = 24;
        let pool = cpq_db::pool::app_pool(&config.database, "bench");
        let t = TenantId::parse("bench").unwrap();
        let mut tx = tenant::begin(&pool, &t).await.unwrap();
        deploy(
            &mut tx,
            &DeployRequest {
                resource_name: "b.bpmn",
                xml: PROCESS,
                release_id: None,
                source_commit: None,
                variable_schema_version: 1,
                allow_unsupported_job_types: true,
                deployed_by: "bench",
                at: Utc::now(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (db, pool)
    });
    let t = TenantId::parse("bench").unwrap();

    c.bench_function("instance_cycle", |b| {
        b.iter(|| {
            rt.block_on(async {
                start(&pool, &t).await;
                assert_eq!(work(&pool, &t, 1).await, 1);
            })
        })
    });

    let mut group = c.benchmark_group("throughput");
    group.sample_size(10);
    const N: usize = 400;
    group.throughput(Throughput::Elements(N as u64));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    group.bench_function("instances_8_workers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let pool = Arc::new(pool.clone());
                let mut tasks = Vec::new();
                for w in 0..8 {
                    let (pool, t, latencies) = (pool.clone(), t.clone(), latencies.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..N / 8 {
                            let begun = Instant::now();
                            start(&pool, &t).await;
                            let mut done = 0;
                            while done == 0 {
                                done = work(&pool, &t, 1).await;
                            }
                            latencies.lock().unwrap().push(begun.elapsed());
                        }
                        w
                    }));
                }
                for task in tasks {
                    task.await.unwrap();
                }
            })
        })
    });
    group.finish();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    if !l.is_empty() {
        let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
        println!(
            "start-to-end with 8 workers over {} instances: p50 {:?}, p99 {:?}",
            l.len(),
            at(0.50),
            at(0.99)
        );
    }
    drop(db);
}

criterion_group!(group, benches);
criterion_main!(group);
