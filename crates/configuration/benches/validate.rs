//! Configuration validation: a normal configurable offering, a 50-characteristic bundle with ten
//! components, and re-validation after one change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::NaiveDate;
use cpq_catalog::synthetic::large_bundle;
use cpq_catalog::{compile, CatalogDocument};
use cpq_configuration::{validate, ConfigItem, Context, ItemState};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn benches(c: &mut Criterion) {
    let context = Context {
        market: Some("DE".into()),
        channel: Some("direct".into()),
        segment: Some("enterprise".into()),
        date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
    };
    let demo: CatalogDocument =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    let demo = compile(&demo).unwrap();
    let normal: ConfigItem = serde_json::from_value(json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold", "access": "fiber", "site_reference": "DE-1234" } })).unwrap();
    c.bench_function("validate_normal", |b| {
        b.iter(|| validate(black_box(&demo), &context, black_box(&normal)))
    });

    let big = compile(&large_bundle(50)).unwrap();
    let mut chars = serde_json::Map::new();
    for i in 0..50 {
        chars.insert(
            format!("c{i:02}"),
            match i % 4 {
                0 | 1 => json!("v1"),
                2 => json!("20"),
                _ => json!(false),
            },
        );
    }
    let components: Vec<_> = (0..10).map(|i| json!({ "offering": format!("OFF-{i:05}"), "quantity": 2, "characteristics": { "c00": "v2", "c02": "30" } })).collect();
    let bundle: ConfigItem = serde_json::from_value(
        json!({ "offering": "BIG-BUNDLE", "characteristics": chars, "components": components }),
    )
    .unwrap();
    let once = validate(&big, &context, &bundle);
    assert!(once.rules_evaluated > 50, "{}", once.rules_evaluated);
    c.bench_function("validate_large_bundle_50_characteristics", |b| {
        b.iter(|| validate(black_box(&big), &context, black_box(&bundle)))
    });

    let (state, full) = ItemState::of(&big, &bundle).unwrap();
    let mut one_change = state.clone();
    let cost = one_change.change(&big, "c05", Some(&json!("v2")));
    println!("large bundle: full validation of the bundle item evaluates {full} rules; one change evaluates {cost}");
    c.bench_function("revalidate_one_change_large_bundle", |b| {
        b.iter_batched(
            || state.clone(),
            |mut s| s.change(&big, "c05", Some(&json!("v2"))),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(group, benches);
criterion_main!(group);
