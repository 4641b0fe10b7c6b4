#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Publish validation and compilation of catalog documents: the demo catalog compiles; each kind
//! of problem is found and named; equal documents hash equally; a document published before the
//! technical catalog's later fields keeps its serialized form and content hash.

use std::collections::BTreeSet;

use cpq_catalog::document::*;
use cpq_catalog::validate::check_job_types;
use cpq_catalog::{compile, content_hash, validate, CatalogDocument, CompiledCatalog};
use serde_json::json;

fn demo() -> CatalogDocument {
    serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap()
}

fn kinds(doc: &CatalogDocument) -> Vec<(String, String)> {
    validate(doc)
        .into_iter()
        .map(|p| (p.kind.to_owned(), p.path))
        .collect()
}

#[test]
fn the_demo_catalog_compiles_with_its_indexes() {
    let c = compile(&demo()).unwrap_or_else(|p| panic!("{p:#?}"));
    let internet = &c.offerings["BIZ-INTERNET"];
    assert_eq!(internet.checks.len(), 3);
    assert_eq!(internet.defaults.len(), 1);
    let by_sla: Vec<&str> = internet.triggers["sla"]
        .iter()
        .map(|&i| c.rules[i].code.as_str())
        .collect();
    assert_eq!(by_sla, ["BI-PLATINUM-BANDWIDTH", "BI-GOLD-STATIC-IP"]);
    assert_eq!(
        c.price_lists.first().unwrap().code,
        "PL-EUR-PARTNER",
        "more specific lists first"
    );
    assert_eq!(
        c.promotions.first().unwrap().code,
        "Q4-FLEET-EXCLUSIVE",
        "higher priority first"
    );
    assert_eq!(c.promotions_by_offering["MOBILE-FLEET"].len(), 2);
    assert_eq!(c.promotions_for_all.len(), 1);
    assert_eq!(c.content_hash.len(), 64);

    // The compiled form survives a round trip through its serialized form (what caches hold).
    let back: CompiledCatalog = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}

#[test]
fn equal_documents_hash_equally_and_changes_change_the_hash() {
    let a = demo();
    let text = serde_json::to_string_pretty(&a).unwrap();
    let b: CatalogDocument = serde_json::from_str(&text).unwrap();
    assert_eq!(content_hash(&a), content_hash(&b));
    let mut reordered = demo();
    reordered.promotions.reverse();
    reordered.offerings.reverse();
    assert_eq!(
        content_hash(&a),
        content_hash(&reordered),
        "order of code-keyed elements is not content"
    );
    let mut c = demo();
    c.price_lists[0].entries[0].recurring = "79.01".parse().unwrap();
    assert_ne!(content_hash(&a), content_hash(&c));
}

#[test]
fn dangling_references_are_each_named() {
    let mut doc = demo();
    doc.offerings[4].components[0].offering = "NO-SUCH-ROUTER".into();
    doc.rules[0].then = Some("bandwith in ['500']".into());
    doc.rules[4].component = Some("NOT-A-COMPONENT".into());
    doc.price_lists[0].entries.push(PriceEntry {
        offering: "GHOST".into(),
        one_time: Default::default(),
        recurring: Default::default(),
        tiers: vec![],
        surcharges: vec![],
        in_bundle: vec![],
    });
    doc.promotions[1].eligibility.offerings.push("GHOST".into());
    doc.technical[0].items[0].tasks[1].depends_on = vec!["nowhere".into()];
    let found = kinds(&doc);
    for path in [
        "offerings[SDWAN-BUNDLE].components[NO-SUCH-ROUTER]",
        "rules[BI-PLATINUM-BANDWIDTH].then",
        "rules[SDWAN-MANAGED-ABOVE-5].component",
        "price_lists[PL-EUR].entries[GHOST]",
        "promotions[MOBILE-WELCOME].eligibility.offerings",
        "technical[BIZ-INTERNET].items[access-line].tasks[provision-access]",
    ] {
        assert!(
            found.contains(&("dangling-reference".into(), path.into())),
            "{path} not in {found:#?}"
        );
    }
}

#[test]
fn expressions_that_do_not_parse_are_refused() {
    let mut doc = demo();
    doc.rules[0].when = Some("sla == ".into());
    doc.rules[2].then = Some("static_ips <= 8 8".into());
    let found = kinds(&doc);
    assert!(
        found.contains(&(
            "invalid-expression".into(),
            "rules[BI-PLATINUM-BANDWIDTH].when".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "invalid-expression".into(),
            "rules[BI-COPPER-IPS].then".into()
        )),
        "{found:?}"
    );
    assert!(compile(&doc).is_err());
}

#[test]
fn cycles_among_default_rules_components_and_tasks_are_refused() {
    let mut doc = demo();
    doc.rules.push(
        serde_json::from_value(json!({
            "code": "BI-IPS-SLA", "offering": "BIZ-INTERNET", "kind": "default", "message": "loop",
            "when": "static_ips > 0", "set": { "characteristic": "sla", "value": "gold" }
        }))
        .unwrap(),
    );
    doc.offerings[1].kind = OfferingKind::Bundle;
    doc.offerings[1].components.push(Component {
        offering: "SDWAN-BUNDLE".into(),
        min: 1,
        max: 1,
        default_included: false,
    });
    doc.technical[0].items[0].tasks[0].depends_on = vec!["start-billing".into()];
    let found: Vec<String> = validate(&doc)
        .into_iter()
        .map(|p| p.kind.to_owned())
        .collect();
    for kind in ["rule-cycle", "component-cycle", "task-cycle"] {
        assert!(found.contains(&kind.to_owned()), "{kind} not in {found:?}");
    }
}

#[test]
fn a_complete_price_list_must_price_every_sellable_offering() {
    let mut doc = demo();
    doc.price_lists[0]
        .entries
        .retain(|e| e.offering != "CLOUD-BACKUP");
    let problems = validate(&doc);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, "missing-price");
    assert!(problems[0].detail.contains("CLOUD-BACKUP"));
}

#[test]
fn promotions_whose_order_is_undefined_are_refused() {
    let mut doc = demo();
    // Same group, same priority, both can meet on a mobile line.
    doc.promotions[1].priority = 10;
    let problems = validate(&doc);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, "promotion-order");
    let mut doc = demo();
    doc.promotions[1].stackable = true;
    assert_eq!(validate(&doc)[0].kind, "promotion-order");
}

#[test]
fn invalid_values_and_definitions_are_refused_together() {
    let mut doc = demo();
    doc.offerings[0].characteristics[0].default = Some(json!("42"));
    doc.offerings[0].characteristics[3].default = Some(json!("0.5"));
    doc.price_lists[0].currency = "EURO".into();
    doc.tax_rates[0].rate = "1.5".parse().unwrap();
    doc.offerings.push(doc.offerings[0].clone());
    let found = kinds(&doc);
    for expected in [
        (
            "invalid-value",
            "offerings[BIZ-INTERNET].characteristics[bandwidth].default",
        ),
        (
            "invalid-value",
            "offerings[BIZ-INTERNET].characteristics[static_ips].default",
        ),
        ("invalid-value", "price_lists[PL-EUR].currency"),
        ("invalid-value", "tax_rates[DE]"),
        ("duplicate-code", "offerings[BIZ-INTERNET]"),
    ] {
        assert!(
            found.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {found:#?}"
        );
    }
}

#[test]
fn unknown_fields_in_a_document_are_refused() {
    let mut value: serde_json::Value =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    value["offerings"][0]["colour"] = json!("red");
    assert!(serde_json::from_value::<CatalogDocument>(value).is_err());
    let mut value: serde_json::Value =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    value["price_lists"][0]["entries"][0]["recurring"] = json!(79.0);
    assert!(
        serde_json::from_value::<CatalogDocument>(value).is_err(),
        "money must be a decimal string"
    );
}

/// The demo catalog as `scripts/up.sh` published it on 2026-12-04 (its stored document), before
/// tasks had `system` and `after_all` and documents `order_tasks`: published documents are
/// identified by their hash, so new fields must not change how old documents serialize.
const PUBLISHED_2026_12_04: &str = include_str!("fixtures/demo-telecom-published-2026-12-04.json");

#[test]
fn a_document_published_before_the_technical_fields_serializes_and_hashes_as_it_did() {
    let stored: serde_json::Value = serde_json::from_str(PUBLISHED_2026_12_04).unwrap();
    let doc: CatalogDocument = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&doc).unwrap(),
        stored,
        "serialized as stored"
    );
    assert_eq!(
        content_hash(&doc),
        "7d819ac81a00f9e4a1dd52fd14d94f60a0c74798324aa3b7adf6786f0b68b7ee",
        "the content hash (and label) it was published with"
    );
    let compiled = compile(&doc).unwrap();
    assert!(compiled.order_tasks.is_empty());
    let as_cached: serde_json::Value = serde_json::to_value(&compiled).unwrap();
    assert!(
        as_cached.get("order_tasks").is_none(),
        "{}",
        as_cached["technical"]
    );
}

#[test]
fn the_demo_technical_catalog_has_systems_a_cross_item_dependency_and_order_tasks() {
    let doc = demo();
    let tasks = doc
        .technical
        .iter()
        .flat_map(|t| t.items.iter().flat_map(|i| i.tasks.iter()))
        .chain(doc.order_tasks.iter());
    for t in tasks {
        assert!(
            t.system.as_deref().is_some_and(|s| SYSTEMS.contains(&s)),
            "{t:?}"
        );
    }
    let c = compile(&doc).unwrap();
    let billing = &c.technical["MOBILE-FLEET"][0].tasks[2];
    assert_eq!(billing.after_all, ["access-line/provision-access"]);
    assert_eq!(c.order_tasks.len(), 2);
    assert_eq!(c.order_tasks[1].after_all, ["*"]);
}

#[test]
fn task_systems_references_and_codes_are_checked_and_each_problem_named() {
    let mut doc = demo();
    let internet = &mut doc.technical[0].items[0].tasks;
    internet[0].system = Some("warehouse".into());
    internet[2].after_all = vec!["access-line/nope".into(), "*".into(), "no-slash".into()];
    doc.technical[1].items[0].tasks[1].code = "ship/router".into();
    doc.order_tasks[1].depends_on = vec!["ghost".into()];
    doc.order_tasks[1].after_all = vec!["*".into(), "router/ghost".into()];
    let found = kinds(&doc);
    for (kind, path) in [
        (
            "invalid-value",
            "technical[BIZ-INTERNET].items[access-line].tasks[reserve-port].system",
        ),
        (
            "dangling-reference",
            "technical[BIZ-INTERNET].items[access-line].tasks[start-billing].after_all",
        ),
        (
            "invalid-definition",
            "technical[BIZ-INTERNET].items[access-line].tasks[start-billing].after_all",
        ),
        (
            "invalid-definition",
            "technical[SDWAN-ROUTER].items[router].tasks[ship/router]",
        ),
        ("dangling-reference", "order_tasks[notify-customer]"),
        (
            "dangling-reference",
            "order_tasks[notify-customer].after_all",
        ),
    ] {
        assert!(
            found.contains(&(kind.into(), path.into())),
            "{kind} {path} not in {found:#?}"
        );
    }
    let star = validate(&doc)
        .into_iter()
        .filter(|p| p.path.ends_with("tasks[start-billing].after_all"))
        .count();
    assert_eq!(star, 3, "unknown task, '*' on an item task, not item/task");
}

#[test]
fn cycles_across_items_and_among_order_tasks_are_refused() {
    // The access line's port waits for every licence's billing, which waits for every access
    // line's provisioning, which waits for the port: any order with both has no plan.
    let mut doc = demo();
    doc.technical[0].items[0].tasks[0].after_all = vec!["licence/start-billing".into()];
    let problems = validate(&doc);
    let cycle = problems
        .iter()
        .find(|p| p.kind == "task-cycle")
        .unwrap_or_else(|| panic!("{problems:#?}"));
    assert_eq!(
        cycle.path,
        "technical[BIZ-INTERNET].items[access-line].tasks[provision-access]"
    );
    assert!(
        cycle.detail.contains("SDWAN-LICENSE/licence/start-billing"),
        "{}",
        cycle.detail
    );
    assert!(compile(&doc).is_err());

    // Waiting for oneself through after_all is a cycle too.
    let mut doc = demo();
    doc.technical[0].items[0].tasks[0].after_all = vec!["access-line/reserve-port".into()];
    assert!(kinds(&doc).iter().any(|(k, _)| k == "task-cycle"));

    let mut doc = demo();
    doc.order_tasks[0].depends_on = vec!["notify-customer".into()];
    assert!(
        kinds(&doc).contains(&("task-cycle".into(), "order_tasks[notify-customer]".into())),
        "{:#?}",
        kinds(&doc)
    );
}

#[test]
fn job_types_no_process_handles_are_named_at_each_task() {
    let doc = demo();
    let all: BTreeSet<String> = [
        "reserve-inventory",
        "ship-equipment",
        "provision-service",
        "activate-billing",
        "update-crm",
        "send-notification",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(check_job_types(&doc, &all), vec![]);
    let mut some = all.clone();
    some.remove("ship-equipment");
    some.remove("send-notification");
    let found: Vec<(String, String)> = check_job_types(&doc, &some)
        .into_iter()
        .map(|p| (p.kind.to_owned(), p.path))
        .collect();
    assert_eq!(
        found,
        [
            (
                "unhandled-job-type".to_owned(),
                "technical[SDWAN-ROUTER].items[router].tasks[ship-router].job_type".to_owned()
            ),
            (
                "unhandled-job-type".to_owned(),
                "order_tasks[notify-customer].job_type".to_owned()
            ),
        ]
    );
}

#[test]
fn order_tasks_are_edited_one_at_a_time_like_any_collection() {
    let mut doc = demo();
    let task = json!({ "code": "survey", "job_type": "send-notification", "system": "notification", "after_all": ["*"] });
    assert_eq!(doc.upsert("order-tasks", "survey", task), Ok(true));
    assert_eq!(doc.order_tasks.len(), 3);
    assert!(validate(&doc).is_empty(), "{:#?}", validate(&doc));
    assert_eq!(doc.remove("order-tasks", "survey"), Ok(true));
    assert_eq!(doc.order_tasks.len(), 2);
}
