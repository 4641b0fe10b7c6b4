#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every event type against its checked-in JSON Schema: a representative instance of each type
//! validates against `schemas/events/<type>.v<version>.json` (formats included) and reads back as
//! itself; every schema file has a type and every type a schema file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{NaiveDate, TimeZone, Utc};
use cpq_audit::events::*;
use cpq_audit::NewEvent;
use cpq_core::Currency;
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events")
}

/// The event as the outbox gets it, after checking that its payload reads back as itself.
fn sample<E: DomainEvent + PartialEq + std::fmt::Debug>(event: E) -> NewEvent {
    let new = NewEvent::of(&event).unwrap();
    assert_eq!(
        decode::<E>(&new.payload).unwrap(),
        event,
        "{} reads back",
        E::TYPE
    );
    assert_eq!(new.aggregate_id, event.aggregate_id());
    new
}

fn samples() -> Vec<NewEvent> {
    let id = |n: u128| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n);
    let at = Utc.with_ymd_and_hms(2026, 12, 4, 9, 30, 0).unwrap();
    let hash = "ab".repeat(32);
    let amounts = |net: i64| ChargeAmounts {
        list: Decimal::new(net * 100 + 1000, 2),
        discount: Decimal::new(-1000, 2),
        net: Decimal::new(net * 100, 2),
        tax: Decimal::new(net * 19, 2),
        gross: Decimal::new(net * 119, 2),
    };
    let totals = Totals {
        one_time: amounts(100),
        recurring: amounts(25),
    };
    let account = CustomerAccountState {
        id: id(1),
        name: "Acme".into(),
        external_ref: Some("CRM-1".into()),
        segment: "enterprise".into(),
        market: "DE".into(),
        currency: Currency::parse("EUR").unwrap(),
        status: "active".into(),
        version: 1,
        created_at: at,
        created_by: "rep".into(),
        updated_at: at,
        updated_by: "rep".into(),
        closed_at: None,
        close_reason: None,
    };
    let decision = |decision| QuoteDecision {
        quote_id: id(2),
        revision_no: 1,
        level: "manager".into(),
        decision,
        decided_by: "mgr".into(),
        comment: Some("see notes".into()),
        task_id: id(9),
    };
    vec![
        sample(CatalogVersionCreated {
            catalog_version_id: id(3),
            label: "2027-Q1".into(),
            offerings: 12,
        }),
        sample(CatalogVersionChanged {
            catalog_version_id: id(3),
            change: CatalogChange::Import,
            offerings: Some(12),
            collection: None,
            key: None,
        }),
        sample(CatalogVersionChanged {
            catalog_version_id: id(3),
            change: CatalogChange::Put,
            offerings: None,
            collection: Some("offerings".into()),
            key: Some("CLOUD-BACKUP".into()),
        }),
        sample(CatalogVersionPublished {
            catalog_version_id: id(3),
            label: "2027-Q1".into(),
            content_hash: hash.clone(),
        }),
        sample(CatalogVersionActivated {
            catalog_version_id: id(3),
            effective_from: at,
        }),
        sample(CustomerAccountCreated {
            customer_account: account.clone(),
        }),
        sample(CustomerAccountUpdated {
            customer_account: CustomerAccountState {
                name: "Acme GmbH".into(),
                version: 2,
                ..account.clone()
            },
            changed_fields: vec!["name".into()],
        }),
        sample(CustomerAccountClosed {
            customer_account_id: id(1),
            version: 3,
            closed_at: at,
            reason: Some("merged".into()),
        }),
        sample(OrderCreated {
            order_id: id(4),
            quote_id: id(2),
            customer_account_id: id(1),
            currency: "EUR".into(),
            snapshot_hash: hash.clone(),
            totals: totals.clone(),
            lines: 2,
            fulfillment_instance_id: id(5),
        }),
        sample(OrderDecomposed {
            order_id: id(4),
            catalog_version_id: id(3),
            tasks: 12,
            ready: 4,
            systems: vec!["billing".into(), "inventory".into(), "notification".into()],
            plan_hash: hash.clone(),
        }),
        sample(OrderTaskCompleted {
            order_id: id(4),
            task_key: "L1/ACCESS-LINE/provision-access".into(),
            job_type: "provision-access".into(),
            system: Some("provisioning".into()),
            status: "completed".into(),
            attempts: 2,
            released: vec!["L1/ACCESS-LINE/start-billing".into()],
        }),
        sample(OrderTaskCompleted {
            order_id: id(4),
            task_key: "order/notify-customer".into(),
            job_type: "send-notification".into(),
            system: None,
            status: "skipped".into(),
            attempts: 0,
            released: vec![],
        }),
        sample(OrderInFallout {
            order_id: id(4),
            fallout_case_id: id(8),
            task_key: "L1/ACCESS-LINE/provision-access".into(),
            system: Some("provisioning".into()),
            category: "business-failure".into(),
            error_code: Some("PORT_UNAVAILABLE".into()),
        }),
        sample(OrderInFallout {
            order_id: id(4),
            fallout_case_id: id(8),
            task_key: "L1/ACCESS-LINE/provision-access".into(),
            system: None,
            category: "callback-timeout".into(),
            error_code: None,
        }),
        sample(OrderFalloutResolved {
            order_id: id(4),
            fallout_case_id: id(8),
            task_key: "L1/ACCESS-LINE/provision-access".into(),
            action: "retry".into(),
            reason: "port freed by the network team".into(),
        }),
        sample(OrderCompleted {
            order_id: id(4),
            customer_account_id: id(1),
            completed_at: at,
            asset_ids: vec![id(10), id(11)],
            skipped_tasks: vec!["order/notify-customer".into()],
        }),
        sample(OrderCancelled {
            order_id: id(4),
            reason: "customer withdrew".into(),
            cancelled_at: at,
        }),
        sample(ProcessDefinitionDeployed {
            process_definition_id: id(6),
            bpmn_process_id: "quote-approval".into(),
            version: 1,
            checksum: hash.clone(),
            deployment_id: Some(id(7)),
        }),
        sample(DecisionDefinitionDeployed {
            decision_definition_id: id(8),
            decision_id: "discount-tier".into(),
            version: 2,
            decision_requirements_id: "pricing-rules".into(),
            checksum: hash.clone(),
            version_tag: Some("2026-q4".into()),
            deployment_id: id(7),
        }),
        sample(QuoteCreated {
            quote_id: id(2),
            customer_account_id: id(1),
            catalog_version_id: id(3),
        }),
        sample(QuoteItemAdded {
            quote_id: id(2),
            line_no: 1,
            offering: "CLOUD-BACKUP".into(),
        }),
        sample(QuoteItemChanged {
            quote_id: id(2),
            line_no: 1,
            offering: "CLOUD-BACKUP".into(),
        }),
        sample(QuoteItemRemoved {
            quote_id: id(2),
            line_no: 1,
        }),
        sample(QuoteTermsChanged {
            quote_id: id(2),
            special_terms: Some("net 60".into()),
        }),
        sample(QuoteTermsChanged {
            quote_id: id(2),
            special_terms: None,
        }),
        sample(QuotePriced {
            quote_id: id(2),
            snapshot_hash: hash.clone(),
            totals,
        }),
        sample(QuoteSubmitted {
            quote_id: id(2),
            revision_no: 1,
            snapshot_hash: hash.clone(),
            policy_version: 1,
            levels: vec!["manager".into()],
        }),
        sample(QuoteApprovalRequested {
            quote_id: id(2),
            revision_no: 1,
            levels: vec!["manager".into()],
            reasons: vec![ApprovalReason {
                level: "manager".into(),
                rule: "discount".into(),
                detail: "discount 12 % above 10 %".into(),
            }],
            process_instance_id: id(7),
        }),
        sample(QuoteApproved(decision(ApprovalDecision::Approved))),
        sample(QuoteRejected(decision(ApprovalDecision::Rejected))),
        sample(QuoteReturned(decision(ApprovalDecision::Returned))),
        sample(QuoteAccepted {
            quote_id: id(2),
            revision_no: 1,
            snapshot_hash: hash.clone(),
            accepted_by: "rep".into(),
        }),
        sample(QuoteCancelled {
            quote_id: id(2),
            reason: "customer declined".into(),
        }),
        sample(QuoteConverted {
            quote_id: id(2),
            revision_no: 1,
            order_id: id(4),
            snapshot_hash: hash,
        }),
        sample(QuoteExpired {
            quote_id: id(2),
            revision_no: 1,
            valid_until: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        }),
        sample(QuoteRevised {
            quote_id: id(2),
            revision_no: 2,
            previous_revision_no: 1,
            previous_status: "rejected".into(),
            reason: None,
        }),
    ]
}

#[test]
fn every_event_type_validates_against_its_checked_in_schema() {
    for event in samples() {
        let name = format!("{}.v{}.json", event.event_type, event.schema_version);
        let raw = std::fs::read_to_string(schema_dir().join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let schema: Value = serde_json::from_str(&raw).unwrap();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&event.payload)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}\n{}", event.payload);
    }
}

#[test]
fn every_schema_file_has_a_type_and_every_type_a_schema_file() {
    let files: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "published.lock.json")
        .collect();
    let types: BTreeSet<String> = ALL.iter().map(|(t, v)| format!("{t}.v{v}.json")).collect();
    assert_eq!(files, types, "schema files (left) and event types (right)");
    let sampled: BTreeSet<String> = samples()
        .iter()
        .map(|e| format!("{}.v{}.json", e.event_type, e.schema_version))
        .collect();
    assert_eq!(sampled, types, "every type has a sample in this test");
}

#[test]
fn a_payload_missing_fields_reads_with_zero_values() {
    let created: QuoteCreated =
        decode(&serde_json::json!({ "quote_id": Uuid::nil(), "extra": 1 })).unwrap();
    assert_eq!(created, QuoteCreated::default());
    let order: OrderCreated = decode(&serde_json::json!({ "totals": {} })).unwrap();
    assert_eq!(order.totals, Totals::default());
    assert!(decode::<QuoteCreated>(&serde_json::json!({ "quote_id": "not-a-uuid" })).is_err());
}
