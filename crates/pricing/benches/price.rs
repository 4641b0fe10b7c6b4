//! Pricing 10 and 1,000 configured lines against a synthetic catalog of 2,000 offerings and
//! 8,000 price entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chrono::NaiveDate;
use cpq_catalog::compile;
use cpq_catalog::synthetic::{generate, Spec};
use cpq_configuration::{validate, ConfigItem, Context};
use cpq_pricing::{price, PriceItem, PricingContext};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn items(catalog: &cpq_catalog::CompiledCatalog, context: &Context, n: usize) -> Vec<PriceItem> {
    (0..n)
        .map(|i| {
            let code = format!("OFF-{:05}", (i * 7) % 2000);
            let config: ConfigItem =
                serde_json::from_value(json!({ "offering": code, "quantity": 1 + (i % 120) as u32,
                "characteristics": { "c00": format!("v{}", i % 4), "c02": "20" } }))
                .unwrap();
            let v = validate(catalog, context, &config);
            PriceItem {
                line_id: format!("{i:05}"),
                configured: v.configuration,
                manual_discount_percent: (i % 5 == 0).then(|| "2.5".parse().unwrap()),
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let catalog = compile(&generate(Spec {
        offerings: 2000,
        ..Spec::default()
    }))
    .unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let context = Context {
        market: None,
        channel: None,
        segment: None,
        date,
    };
    let pricing: PricingContext = serde_json::from_value(json!({ "market": "DE", "channel": "direct", "segment": "enterprise", "currency": "EUR", "date": "2026-11-22" })).unwrap();
    let ten = items(&catalog, &context, 10);
    let thousand = items(&catalog, &context, 1000);
    price(&catalog, &pricing, &thousand).unwrap();
    c.bench_function("price_10_lines", |b| {
        b.iter(|| price(black_box(&catalog), &pricing, black_box(&ten)).unwrap())
    });
    c.bench_function("price_1000_lines", |b| {
        b.iter(|| price(black_box(&catalog), &pricing, black_box(&thousand)).unwrap())
    });
}

criterion_group!(group, benches);
criterion_main!(group);
