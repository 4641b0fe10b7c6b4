//! Decomposing a 10-line order of the demo catalog (every offering with a mapping, the SD-WAN
//! bundle with its default router, billing after every access line, order tasks last) into its
//! fulfillment plan, and a 100-line one. The target is p95 <= 20 ms for a 10-item order
//! through the API; this is the pure part only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use cpq_catalog::{compile, CatalogDocument};
use cpq_order::model::plan::{decompose, PlanItem};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

fn lines(n: usize) -> Vec<(i32, &'static str, Value)> {
    let kinds = [
        (
            "BIZ-INTERNET",
            json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500" } }),
        ),
        (
            "SDWAN-BUNDLE",
            json!({ "offering": "SDWAN-BUNDLE", "components": [{ "offering": "SDWAN-LICENSE", "quantity": 3 }] }),
        ),
        (
            "MOBILE-FLEET",
            json!({ "offering": "MOBILE-FLEET", "quantity": 20 }),
        ),
        (
            "CLOUD-BACKUP",
            json!({ "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }),
        ),
    ];
    (0..n)
        .map(|i| {
            let (code, config) = &kinds[i % kinds.len()];
            (i as i32 + 1, *code, config.clone())
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let doc: CatalogDocument =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    let catalog = compile(&doc).unwrap();
    for n in [10, 100] {
        let lines = lines(n);
        let items: Vec<PlanItem<'_>> = lines
            .iter()
            .map(|(line_no, offering, config)| PlanItem {
                line_no: *line_no,
                offering_code: offering,
                configuration: config,
            })
            .collect();
        let plan = decompose(&items, &catalog).unwrap();
        assert!(plan.tasks.len() > 2 * n);
        c.bench_function(&format!("decompose_{n}_lines"), |b| {
            b.iter(|| decompose(black_box(&items), black_box(&catalog)).unwrap())
        });
    }
}

criterion_group!(group, benches);
criterion_main!(group);
