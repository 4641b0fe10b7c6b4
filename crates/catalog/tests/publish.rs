#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Publish validation and compilation of catalog documents: the demo catalog compiles; each kind
//! of problem is found and named; equal documents hash equally.

use cpq_catalog::document::*;
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
