#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The configuration engine against the demo catalog.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cpq_catalog::{compile, CatalogDocument, CompiledCatalog};
use cpq_configuration::{validate, ConfigItem, Context, ItemState, Source};
use proptest::prelude::*;
use serde_json::{json, Value};

fn catalog() -> CompiledCatalog {
    let doc: CatalogDocument =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    compile(&doc).unwrap()
}

fn context() -> Context {
    Context {
        market: Some("DE".into()),
        channel: Some("direct".into()),
        segment: Some("enterprise".into()),
        date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
    }
}

fn item(value: Value) -> ConfigItem {
    serde_json::from_value(value).unwrap()
}

fn rules(v: &cpq_configuration::Validation) -> Vec<&str> {
    v.violations.iter().map(|x| x.rule.as_str()).collect()
}

#[test]
fn defaults_apply_in_order_and_say_where_they_came_from() {
    let c = catalog();
    let v = validate(
        &c,
        &context(),
        &item(json!({ "offering": "BIZ-INTERNET", "characteristics": { "sla": "gold" } })),
    );
    assert!(v.valid, "{:#?}", v.violations);
    let chars = &v.configuration.characteristics;
    assert_eq!(
        (chars["sla"].value.clone(), chars["sla"].source),
        (json!("gold"), Source::Chosen)
    );
    assert_eq!(
        (
            chars["static_ips"].value.clone(),
            chars["static_ips"].source
        ),
        (json!("1"), Source::Rule)
    );
    assert_eq!(
        chars["static_ips"].rule.as_deref(),
        Some("BI-GOLD-STATIC-IP")
    );
    assert_eq!(
        (chars["bandwidth"].value.clone(), chars["bandwidth"].source),
        (json!("100"), Source::Default)
    );
    assert!(!chars.contains_key("site_reference"));

    let standard = validate(&c, &context(), &item(json!({ "offering": "BIZ-INTERNET" })));
    assert_eq!(
        standard.configuration.characteristics["static_ips"].source,
        Source::Default
    );
    assert_eq!(
        standard.configuration.characteristics["static_ips"].value,
        json!("0")
    );
}

#[test]
fn a_violation_names_its_rule_message_and_the_choices_behind_it() {
    let c = catalog();
    let v = validate(
        &c,
        &context(),
        &item(json!({ "offering": "BIZ-INTERNET", "characteristics": { "sla": "platinum" } })),
    );
    assert_eq!(rules(&v), ["BI-PLATINUM-BANDWIDTH"]);
    let x = &v.violations[0];
    assert_eq!(x.message, "The platinum SLA needs at least 500 Mbit/s");
    assert_eq!(x.path, "");
    let chain: Vec<(String, Value, Option<Source>)> = x
        .chain
        .iter()
        .map(|c| (c.characteristic.clone(), c.value.clone(), c.source))
        .collect();
    assert_eq!(
        chain,
        [
            ("bandwidth".to_owned(), json!("100"), Some(Source::Default)),
            ("sla".to_owned(), json!("platinum"), Some(Source::Chosen)),
        ]
    );

    let copper = validate(
        &c,
        &context(),
        &item(
            json!({ "offering": "BIZ-INTERNET", "characteristics": { "access": "copper", "bandwidth": "500", "static_ips": 9 } }),
        ),
    );
    assert_eq!(rules(&copper), ["BI-COPPER-BANDWIDTH", "BI-COPPER-IPS"]);
}

#[test]
fn bad_values_unknown_characteristics_and_availability_are_reported() {
    let c = catalog();
    let v = validate(
        &c,
        &context(),
        &item(
            json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "300", "colour": "red", "site_reference": "berlin", "static_ips": 1.5 } }),
        ),
    );
    let found: Vec<(&str, &str)> = v
        .violations
        .iter()
        .map(|x| (x.rule.as_str(), x.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("characteristic-value", "characteristics.bandwidth"),
            ("characteristic-unknown", "characteristics.colour"),
            ("characteristic-value", "characteristics.site_reference"),
            ("characteristic-value", "characteristics.static_ips"),
        ]
    );

    let mut us = context();
    us.market = Some("US".into());
    assert_eq!(
        rules(&validate(
            &c,
            &us,
            &item(json!({ "offering": "BIZ-INTERNET" }))
        )),
        ["offering-unavailable"]
    );
    assert_eq!(
        rules(&validate(
            &c,
            &context(),
            &item(json!({ "offering": "SDWAN-ROUTER" }))
        )),
        ["offering-not-sellable"]
    );
    assert_eq!(
        rules(&validate(
            &c,
            &context(),
            &item(json!({ "offering": "NOPE" }))
        )),
        ["offering-unknown"]
    );
}

#[test]
fn bundles_include_default_components_and_enforce_cardinality_and_requirements() {
    let c = catalog();
    let small = validate(
        &c,
        &context(),
        &item(json!({ "offering": "SDWAN-BUNDLE", "characteristics": { "sites": 2 } })),
    );
    assert!(small.valid, "{:#?}", small.violations);
    let included: Vec<(&str, u32, Source)> = small
        .configuration
        .components
        .iter()
        .map(|x| (x.offering.as_str(), x.quantity, x.source))
        .collect();
    assert_eq!(
        included,
        [
            ("SDWAN-LICENSE", 1, Source::Included),
            ("SDWAN-ROUTER", 1, Source::Included)
        ]
    );
    assert_eq!(
        small.configuration.components[0].characteristics["tier"].value,
        json!("essential")
    );

    let big = validate(
        &c,
        &context(),
        &item(
            json!({ "offering": "SDWAN-BUNDLE", "characteristics": { "sites": 6 },
        "components": [{ "offering": "SDWAN-ROUTER", "quantity": 6 }, { "offering": "SDWAN-LICENSE", "quantity": 6, "characteristics": { "tier": "platinum" } }] }),
        ),
    );
    assert_eq!(
        rules(&big),
        ["SDWAN-MANAGED-ABOVE-5", "characteristic-value"]
    );
    assert_eq!(big.violations[1].path, "components[1].characteristics.tier");

    let managed = validate(
        &c,
        &context(),
        &item(
            json!({ "offering": "SDWAN-BUNDLE", "characteristics": { "sites": 6 },
        "components": [{ "offering": "SDWAN-ROUTER", "quantity": 6 }, { "offering": "SDWAN-LICENSE", "quantity": 6 }, { "offering": "MANAGED-SERVICE", "characteristics": { "hours": "24x7" } }] }),
        ),
    );
    assert!(managed.valid, "{:#?}", managed.violations);

    let wrong = validate(
        &c,
        &context(),
        &item(json!({ "offering": "SDWAN-BUNDLE",
        "components": [{ "offering": "SDWAN-ROUTER", "quantity": 51 }, { "offering": "MOBILE-FLEET" }, { "offering": "MANAGED-SERVICE", "quantity": 2 }] })),
    );
    let found: Vec<(&str, &str)> = wrong
        .violations
        .iter()
        .map(|x| (x.rule.as_str(), x.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("component-unknown", "components[1]"),
            ("component-cardinality", "components[MANAGED-SERVICE]"),
            ("component-cardinality", "components[SDWAN-ROUTER]"),
        ]
    );
}

fn internet_value(name: &str, pick: usize) -> Value {
    match name {
        "bandwidth" => json!(["100", "250", "500", "1000", "300"][pick % 5]),
        "access" => json!(["fiber", "copper"][pick % 2]),
        "sla" => json!(["standard", "gold", "platinum"][pick % 3]),
        "static_ips" => json!(pick % 12),
        _ => json!(["DE-1234", "bad"][pick % 2]),
    }
}

proptest! {
    /// After any sequence of single changes, incremental re-validation agrees with validating the
    /// changed configuration from scratch, and evaluates no rule that the change cannot affect.
    #[test]
    fn incremental_revalidation_equals_full_validation(changes in prop::collection::vec((0usize..5, 0usize..12, any::<bool>()), 1..12)) {
        let c = catalog();
        let names = ["bandwidth", "access", "sla", "static_ips", "site_reference"];
        let mut chosen: BTreeMap<String, Value> = BTreeMap::new();
        let start = ConfigItem { offering: "BIZ-INTERNET".into(), quantity: 1, characteristics: chosen.clone(), components: vec![] };
        let (mut state, full_cost) = ItemState::of(&c, &start).unwrap();
        let offering = &c.offerings["BIZ-INTERNET"];
        for (which, pick, clear) in changes {
            let name = names[which];
            let value = internet_value(name, pick);
            if clear { chosen.remove(name); } else { chosen.insert(name.to_owned(), value.clone()); }
            let cost = state.change(&c, name, if clear { None } else { Some(&value) });
            let fresh = ConfigItem { offering: "BIZ-INTERNET".into(), quantity: 1, characteristics: chosen.clone(), components: vec![] };
            let (expected, _) = ItemState::of(&c, &fresh).unwrap();
            prop_assert_eq!(state.own_violations(&c), expected.own_violations(&c));
            let reachable: std::collections::BTreeSet<usize> = offering.triggers.values().flatten().copied().collect();
            prop_assert!(cost <= reachable.len() * 2, "cost {} for one change", cost);
            if name == "site_reference" {
                prop_assert_eq!(cost, 0, "no rule reads site_reference");
            }
        }
        prop_assert!(full_cost >= offering.checks.len());
    }
}
