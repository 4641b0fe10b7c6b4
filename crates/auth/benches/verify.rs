//! Token verification runs on every authenticated request: signature, claims, principal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use cpq_auth::{DevSigner, Verifier};
use cpq_config::{load, Sources};
use cpq_core::{Role, TenantId};
use criterion::{criterion_group, criterion_main, Criterion};

fn verify(c: &mut Criterion) {
    let config = load(&Sources {
        environment: Some("local".into()),
        config_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config"),
        extra_files: vec![],
        vars: vec![],
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verifier = rt.block_on(Verifier::from_config(&config.auth)).unwrap();
    let signer = DevSigner::from_config(&config).unwrap();
    let token = signer
        .mint(
            "rep-1",
            &TenantId::parse("acme").unwrap(),
            &[Role::Sales, Role::Approver],
            Duration::from_secs(3600),
        )
        .unwrap();
    c.bench_function("verify_eddsa_token", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify(std::hint::black_box(&token)))
                .unwrap()
        })
    });
    c.bench_function("mint_eddsa_token", |b| {
        b.iter(|| {
            signer
                .mint(
                    "rep-1",
                    &TenantId::parse("acme").unwrap(),
                    &[Role::Sales],
                    Duration::from_secs(60),
                )
                .unwrap()
        })
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
