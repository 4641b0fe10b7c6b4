#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The pricing engine against the demo catalog: amounts, promotions, bundles, rounding,
//! determinism.

use cpq_catalog::{compile, CatalogDocument, CompiledCatalog};
use cpq_configuration::{validate, ConfigItem, Context};
use cpq_pricing::{price, PriceItem, PricingContext, PricingError};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn document() -> CatalogDocument {
    serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap()
}

fn catalog() -> CompiledCatalog {
    compile(&document()).unwrap()
}

fn ctx(date: &str, channel: &str, new_customer: bool) -> PricingContext {
    serde_json::from_value(json!({
        "market": "DE", "channel": channel, "segment": "enterprise", "currency": "EUR", "date": date,
        "customer": { "new_customer": new_customer }
    }))
    .unwrap()
}

fn item(
    c: &CompiledCatalog,
    p: &PricingContext,
    line: &str,
    config: Value,
    discount: Option<&str>,
) -> PriceItem {
    let config: ConfigItem = serde_json::from_value(config).unwrap();
    let context = Context {
        market: Some(p.market.clone()),
        channel: Some(p.channel.clone()),
        segment: Some(p.segment.clone()),
        date: p.date,
    };
    let v = validate(c, &context, &config);
    assert!(v.valid, "{:#?}", v.violations);
    PriceItem {
        line_id: line.into(),
        configured: v.configuration,
        manual_discount_percent: discount.map(|d| d.parse().unwrap()),
    }
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn a_configured_line_gets_base_surcharges_promotions_and_tax() {
    let c = catalog();
    let p = ctx("2026-11-22", "direct", false);
    let s = price(&c, &p, &[item(&c, &p, "1", json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold" } }), None)]).unwrap();
    let l = &s.lines[0];
    assert_eq!(
        (
            l.one_time.list,
            l.one_time.net,
            l.one_time.discount,
            l.one_time.tax,
            l.one_time.gross
        ),
        (
            d("199.00"),
            d("149.00"),
            d("50.00"),
            d("28.31"),
            d("177.31")
        )
    );
    assert_eq!(
        (
            l.recurring.list,
            l.recurring.net,
            l.recurring.tax,
            l.recurring.gross
        ),
        (d("184.00"), d("184.00"), d("34.96"), d("218.96"))
    );
    let adjustments: Vec<(&str, &str)> = l
        .adjustments
        .iter()
        .map(|a| (a.kind.as_str(), a.source.as_str()))
        .collect();
    assert_eq!(
        adjustments,
        [
            ("surcharge", "bandwidth=500"),
            ("surcharge", "sla=gold"),
            ("promotion", "Q4-INTERNET")
        ]
    );
    assert_eq!(s.totals.one_time.gross, d("177.31"));
    assert_eq!(s.hash.len(), 64);
    assert_eq!(
        l.one_time.net.to_string(),
        "149.00",
        "amounts carry the currency's minor units"
    );

    // The partner channel prices from its own, more specific list.
    let partner = ctx("2026-11-22", "partner", false);
    let s = price(
        &c,
        &partner,
        &[item(
            &c,
            &partner,
            "1",
            json!({ "offering": "BIZ-INTERNET" }),
            None,
        )],
    )
    .unwrap();
    assert_eq!(s.lines[0].one_time.list, d("149.00"));
    assert!(s.lines[0].explanation.children[0]
        .label
        .contains("PL-EUR-PARTNER"));
}

#[test]
fn tiers_apply_to_every_unit_and_an_exclusive_deal_wins_alone_when_better() {
    let c = catalog();
    let config = json!({ "offering": "MOBILE-FLEET", "quantity": 12, "characteristics": { "data": "50GB", "roaming": true } });
    let nov = ctx("2026-11-22", "direct", true);
    let s = price(&c, &nov, &[item(&c, &nov, "1", config.clone(), None)]).unwrap();
    // 12 lines at the 10+ tier (22) plus 10 + 5 surcharges = 37 each. The acquisition group's first
    // promotion by priority is NEW-CUSTOMER-10 (one-time only, nothing to take), so MOBILE-WELCOME,
    // of the same group, does not apply.
    assert_eq!(s.lines[0].recurring.net, d("444.00"));
    assert!(s.lines[0].adjustments.iter().all(|a| a.kind != "promotion"));

    let dec = ctx("2026-12-05", "direct", true);
    let s = price(&c, &dec, &[item(&c, &dec, "1", config, None)]).unwrap();
    assert_eq!(s.lines[0].recurring.net, d("310.80"));
    let promos: Vec<&str> = s.lines[0]
        .adjustments
        .iter()
        .filter(|a| a.kind == "promotion")
        .map(|a| a.source.as_str())
        .collect();
    assert_eq!(promos, ["Q4-FLEET-EXCLUSIVE"]);
}

#[test]
fn bundle_components_take_their_bundle_price_and_roll_up_into_the_line() {
    let c = catalog();
    let p = ctx("2026-11-22", "direct", false);
    let s = price(&c, &p, &[item(&c, &p, "1", json!({ "offering": "SDWAN-BUNDLE", "characteristics": { "sites": 2 },
        "components": [{ "offering": "SDWAN-ROUTER", "quantity": 2 }, { "offering": "SDWAN-LICENSE", "quantity": 2, "characteristics": { "tier": "advanced" } }] }), None)]).unwrap();
    let l = &s.lines[0];
    // Bundle fee 250 less 15 % = 212.50; routers 2 × 299 inside the bundle; licences 2 × (39 + 20).
    assert_eq!(l.one_time.list, d("848.00"));
    assert_eq!(l.one_time.net, d("810.50"));
    assert_eq!(l.recurring.net, d("118.00"));
    let bundle: Vec<(&str, Decimal)> = l
        .adjustments
        .iter()
        .filter(|a| a.kind == "bundle")
        .map(|a| (a.offering.as_str(), a.amount))
        .collect();
    assert_eq!(bundle, [("SDWAN-ROUTER", d("-302"))]);
    assert_eq!(
        l.explanation.children.len(),
        4,
        "base, promotion and two components: {:#?}",
        l.explanation
    );
}

#[test]
fn manual_discounts_and_refusals() {
    let c = catalog();
    let p = ctx("2026-11-22", "direct", false);
    let s = price(
        &c,
        &p,
        &[item(
            &c,
            &p,
            "1",
            json!({ "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }),
            Some("7.5"),
        )],
    )
    .unwrap();
    // 89.00 less 7.5 % = 82.325 → 82.33 (half away from zero).
    assert_eq!(s.lines[0].recurring.net, d("82.33"));
    assert_eq!(s.lines[0].recurring.discount, d("6.67"));
    // The manual discount's explanation entry is the change, not the discounted line.
    let manual = s.lines[0]
        .explanation
        .children
        .iter()
        .find(|e| e.label == "manual discount 7.5%")
        .unwrap();
    assert_eq!(manual.recurring, d("-6.675"));
    // The snapshot survives a round trip through JSON with its hash (as stored with a quote).
    let stored: cpq_pricing::PriceSnapshot =
        serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(cpq_pricing::snapshot_hash(&stored), s.hash);

    let bad = price(
        &c,
        &p,
        &[item(
            &c,
            &p,
            "1",
            json!({ "offering": "CLOUD-BACKUP" }),
            Some("120"),
        )],
    );
    let bad = bad.unwrap_err();
    assert_eq!(
        bad,
        PricingError::InvalidDiscount {
            line: 0,
            line_id: "1".into()
        }
    );
    assert_eq!(bad.field(), "items[0].manual_discount_percent");
    let mut usd = p.clone();
    usd.currency = "USD".into();
    let no_price = price(
        &c,
        &usd,
        &[item(
            &c,
            &p,
            "1",
            json!({ "offering": "CLOUD-BACKUP" }),
            None,
        )],
    );
    assert!(matches!(no_price, Err(PricingError::NoPrice { .. })));
    assert_eq!(no_price.unwrap_err().field(), "items[0].configuration");
    let twice = price(
        &c,
        &p,
        &[
            item(&c, &p, "a", json!({ "offering": "CLOUD-BACKUP" }), None),
            item(&c, &p, "a", json!({ "offering": "CLOUD-BACKUP" }), None),
        ],
    );
    let twice = twice.unwrap_err();
    assert_eq!(
        twice,
        PricingError::DuplicateLineId {
            line: 1,
            line_id: "a".into()
        }
    );
    assert_eq!(twice.field(), "items[1].line_id");
}

#[test]
fn lines_come_back_in_request_order() {
    let c = catalog();
    let p = ctx("2026-11-22", "direct", false);
    let ids = ["10", "2", "b", "a"];
    let items: Vec<PriceItem> = ids
        .iter()
        .map(|id| item(&c, &p, id, json!({ "offering": "CLOUD-BACKUP" }), None))
        .collect();
    let s = price(&c, &p, &items).unwrap();
    let got: Vec<&str> = s.lines.iter().map(|l| l.line_id.as_str()).collect();
    assert_eq!(got, ids);
}

fn arb_line() -> impl Strategy<Value = (Value, Option<String>)> {
    let internet = (0usize..4, 0usize..3, 0u32..3).prop_map(|(b, s, ips)| json!({ "offering": "BIZ-INTERNET", "characteristics": {
        "bandwidth": (["100", "250", "500", "1000"][b]), "sla": (["standard", "gold", "gold"][s]), "static_ips": ips } }));
    let mobile = (1u32..80, 0usize..3, any::<bool>()).prop_map(|(q, data, roaming)| {
        json!({ "offering": "MOBILE-FLEET", "quantity": q,
        "characteristics": { "data": (["10GB", "50GB", "unlimited"][data]), "roaming": roaming } })
    });
    let backup = (0usize..3, 30u32..365).prop_map(|(s, r)| json!({ "offering": "CLOUD-BACKUP", "characteristics": { "storage": (["1TB", "5TB", "20TB"][s]), "retention_days": r } }));
    let bundle = (1u32..5, 1u32..5).prop_map(|(r, l)| json!({ "offering": "SDWAN-BUNDLE", "characteristics": { "sites": 3 },
        "components": [{ "offering": "SDWAN-ROUTER", "quantity": r }, { "offering": "SDWAN-LICENSE", "quantity": l }] }));
    (
        prop_oneof![internet, mobile, backup, bundle],
        proptest::option::of((1u32..3000).prop_map(|bp| format!("{}.{:02}", bp / 100, bp % 100))),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Item order and promotion order in the document change nothing: same snapshot, same hash.
    #[test]
    fn the_snapshot_does_not_depend_on_input_order(lines in prop::collection::vec(arb_line(), 1..8), seed in any::<u64>(), dec in any::<bool>(), newc in any::<bool>()) {
        let c = catalog();
        let p = ctx(if dec { "2026-12-10" } else { "2026-11-22" }, "direct", newc);
        let items: Vec<PriceItem> = lines.iter().enumerate().map(|(i, (cfg, disc))| item(&c, &p, &format!("line-{i:03}"), cfg.clone(), disc.as_deref())).collect();
        let first = price(&c, &p, &items).unwrap();

        let mut shuffled = items.clone();
        let n = shuffled.len();
        for i in 0..n {
            shuffled.swap(i, (seed as usize).wrapping_add(i * 7) % n);
        }
        let mut doc = document();
        doc.promotions.reverse();
        let reordered = compile(&doc).unwrap();
        let second = price(&reordered, &p, &shuffled).unwrap();
        prop_assert_eq!(&first.hash, &second.hash);
        // Lines come back in request order; in line-id order the two are identical.
        let ids = |s: &cpq_pricing::PriceSnapshot| s.lines.iter().map(|l| l.line_id.clone()).collect::<Vec<_>>();
        let sent = |items: &[PriceItem]| items.iter().map(|i| i.line_id.clone()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&first), sent(&items));
        prop_assert_eq!(ids(&second), sent(&shuffled));
        let (mut a, mut b) = (first.clone(), second.clone());
        a.lines.sort_by(|x, y| x.line_id.cmp(&y.line_id));
        b.lines.sort_by(|x, y| x.line_id.cmp(&y.line_id));
        prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    }

    /// Every explanation node's entries add up to the node's amount (exact), manual discounts
    /// included, and the line's top node is its exact net.
    #[test]
    fn explanation_entries_add_up_to_their_node(lines in prop::collection::vec(arb_line(), 1..8), newc in any::<bool>()) {
        let c = catalog();
        let p = ctx("2026-12-10", "direct", newc);
        let items: Vec<PriceItem> = lines.iter().enumerate().map(|(i, (cfg, disc))| item(&c, &p, &format!("l{i}"), cfg.clone(), disc.as_deref())).collect();
        let s = price(&c, &p, &items).unwrap();
        fn check(e: &cpq_pricing::Explanation) -> Result<(), TestCaseError> {
            if !e.children.is_empty() {
                let one_time: Decimal = e.children.iter().map(|c| c.one_time).sum();
                let recurring: Decimal = e.children.iter().map(|c| c.recurring).sum();
                prop_assert_eq!(one_time, e.one_time, "one-time entries of {:?}", e.label);
                prop_assert_eq!(recurring, e.recurring, "recurring entries of {:?}", e.label);
            }
            e.children.iter().try_for_each(check)
        }
        for l in &s.lines {
            check(&l.explanation)?;
        }
    }

    /// Totals are the sums of the lines, and rounding each line once moves no line by more than
    /// half a cent from its exact amount.
    #[test]
    fn totals_equal_the_lines_and_rounding_is_bounded(lines in prop::collection::vec(arb_line(), 1..10)) {
        let c = catalog();
        let p = ctx("2026-12-10", "direct", true);
        let items: Vec<PriceItem> = lines.iter().enumerate().map(|(i, (cfg, disc))| item(&c, &p, &format!("l{i}"), cfg.clone(), disc.as_deref())).collect();
        let s = price(&c, &p, &items).unwrap();
        let half_cent = d("0.005");
        for charge in ["one_time", "recurring"] {
            let pick = |a: &cpq_pricing::PricedLine| if charge == "one_time" { a.one_time.clone() } else { a.recurring.clone() };
            let total = if charge == "one_time" { &s.totals.one_time } else { &s.totals.recurring };
            let net: Decimal = s.lines.iter().map(|l| pick(l).net).sum();
            let gross: Decimal = s.lines.iter().map(|l| pick(l).gross).sum();
            prop_assert_eq!(total.net, net);
            prop_assert_eq!(total.gross, gross);
            prop_assert_eq!(total.list - total.discount, total.net);
            for l in &s.lines {
                let exact = if charge == "one_time" { l.explanation.one_time } else { l.explanation.recurring };
                prop_assert!((pick(l).net - exact).abs() <= half_cent, "{} vs {}", pick(l).net, exact);
                prop_assert_eq!(pick(l).net.scale(), 2);
                prop_assert!(pick(l).net >= Decimal::ZERO);
            }
        }
    }
}
