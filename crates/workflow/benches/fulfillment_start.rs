//! The engine's pure part of starting the order fulfillment process (`processes/
//! order-fulfillment-v2.bpmn`) for a 10-item order: 32 plan tasks, each a parallel multi-instance
//! body with its input mappings and gateways, the ready ones reaching their service task's job
//! and the others their receive task's subscription; then the state serialised, as the store
//! writes it. What a conversion spends in the engine, apart from SQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator the deployables run with (cpq-api, cpq-worker).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::Utc;
use cpq_workflow::bpmn::read;
use cpq_workflow::runtime::{apply, Command, InstanceState};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};

fn plan(order: &str) -> Value {
    let mut tasks = Vec::new();
    for line in 1..=10 {
        let reserve = format!("L{line}/access-line/reserve-port");
        let provision = format!("L{line}/access-line/provision-access");
        for (key, system, job_type, depends_on) in [
            (reserve.clone(), "inventory", "reserve-inventory", vec![]),
            (
                provision.clone(),
                "provisioning",
                "provision-service",
                vec![reserve.clone()],
            ),
            (
                format!("L{line}/billing"),
                "billing",
                "activate-billing",
                vec![provision.clone()],
            ),
        ] {
            tasks.push(json!({
                "key": key, "system": system, "job_type": job_type,
                "ready_key": format!("{order}/{key}"), "depends_on": depends_on,
            }));
        }
    }
    tasks.push(json!({
        "key": "crm", "system": "crm", "job_type": "update-crm",
        "ready_key": format!("{order}/crm"), "depends_on": [],
    }));
    tasks.push(json!({
        "key": "notify", "system": "notification", "job_type": "send-notification",
        "ready_key": format!("{order}/notify"), "depends_on": ["L10/billing"],
    }));
    Value::Array(tasks)
}

fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    let xml = std::fs::read_to_string(root.join("order-fulfillment-v2.bpmn")).unwrap();
    let definitions = read(&xml).unwrap();
    let process = &definitions.processes[0];
    let order = "01a24963-f2dd-7022-86b2-3c8f059ce2df";
    let mut variables = Map::new();
    variables.insert("order_id".into(), json!(order));
    variables.insert(
        "quote_id".into(),
        json!("01a24963-f29d-72ba-854c-237cc76ba3a7"),
    );
    variables.insert(
        "customer_account_id".into(),
        json!("01a24963-0000-7000-8000-000000000001"),
    );
    variables.insert("plan_tasks".into(), plan(order));
    let command = Command::Start { variables };
    let now = Utc::now();
    let (state, effects) = apply(process, &InstanceState::new(), &command, now).unwrap();
    let bodies = state
        .active
        .values()
        .filter(|e| e.element_id == "FulfilTask")
        .count();
    assert_eq!(bodies, 33, "the multi-instance and its 32 bodies");
    assert!(!effects.is_empty());
    c.bench_function("fulfillment_start_32_tasks", |b| {
        b.iter(|| apply(process, &InstanceState::new(), &command, now).unwrap())
    });
    c.bench_function("fulfillment_start_32_tasks_and_state_json", |b| {
        b.iter(|| {
            let (state, effects) = apply(process, &InstanceState::new(), &command, now).unwrap();
            (
                serde_json::to_value(&state).unwrap(),
                serde_json::to_value(&effects).unwrap(),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
