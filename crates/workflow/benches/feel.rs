//! FEEL on the engine's hot path: a gateway condition and an output mapping, each evaluated
//! against a job's variables (about 20 of them, one a 10-line order), both as the engine calls
//! them today (`Expression::parse` then `evaluate`, per evaluation) and pre-parsed.
//! `cargo bench -p cpq-workflow --bench feel`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use cpq_workflow::feel::{Env, Expression};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::hint::black_box;

const CONDITION: &str = "=total > 100 and status = \"open\"";
const MAPPING: &str =
    "={id: order.id, customer: order.customer.name, lines: count(order.lines), amount: total * 1.2}";

fn variables() -> serde_json::Map<String, serde_json::Value> {
    let lines: Vec<serde_json::Value> = (1..=10)
        .map(|i| json!({"sku": format!("SKU-{i}"), "qty": i, "price": 19.99, "attributes": {"colour": "blue", "size": "L"}}))
        .collect();
    let mut v = json!({
        "total": 250.5,
        "status": "open",
        "order": {"id": "O-1", "customer": {"name": "ACME", "tier": "gold"}, "lines": lines},
    })
    .as_object()
    .unwrap()
    .clone();
    for i in 0..17 {
        v.insert(format!("var{i}"), json!({"n": i, "s": "some text value"}));
    }
    v
}

fn feel(c: &mut Criterion) {
    let vars = variables();
    let env = Env {
        variables: &vars,
        outer: &[],
        now: Utc::now(),
    };
    let condition = Expression::parse(CONDITION).unwrap();
    let mapping = Expression::parse(MAPPING).unwrap();
    assert!(condition.holds(&env).unwrap());
    c.bench_function("feel_condition_parsed", |b| {
        b.iter(|| black_box(condition.holds(black_box(&env)).unwrap()))
    });
    c.bench_function("feel_condition_parse_and_evaluate", |b| {
        b.iter(|| {
            black_box(
                Expression::parse(black_box(CONDITION))
                    .unwrap()
                    .holds(&env)
                    .unwrap(),
            )
        })
    });
    c.bench_function("feel_mapping_parsed", |b| {
        b.iter(|| black_box(mapping.evaluate(black_box(&env)).unwrap().to_json()))
    });
    c.bench_function("feel_mapping_parse_and_evaluate", |b| {
        b.iter(|| {
            black_box(
                Expression::parse(black_box(MAPPING))
                    .unwrap()
                    .evaluate(&env)
                    .unwrap()
                    .to_json(),
            )
        })
    });
}

criterion_group!(benches, feel);
criterion_main!(benches);
