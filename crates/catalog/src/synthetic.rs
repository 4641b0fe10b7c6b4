//! Synthetic catalogs for benchmarks and load tests: deterministic (same spec, same document),
//! valid (they publish), and as large as asked: thousands of offerings, tens of thousands of
//! price rows, rules on every configurable offering, bundles, promotions.

use rust_decimal::Decimal;
use serde_json::json;

use crate::document::*;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub offerings: usize,
    /// Characteristics per configurable offering (at least 4).
    pub characteristics: usize,
    /// Price lists; every one prices every offering.
    pub price_lists: usize,
    pub promotions: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            offerings: 1000,
            characteristics: 6,
            price_lists: 4,
            promotions: 40,
        }
    }
}

const MARKETS: [&str; 4] = ["DE", "FR", "GB", "NL"];
const SEGMENTS: [&str; 3] = ["small-business", "enterprise", "public-sector"];
const WORDS: [&str; 12] = [
    "fiber", "mobile", "cloud", "backup", "router", "voice", "security", "storage", "edge", "wan",
    "office", "data",
];

fn money(cents: u64) -> Decimal {
    Decimal::new(cents as i64, 2)
}

/// A configurable offering with `n` characteristics (enums, numbers, a boolean) and rules that
/// read them: a constraint and a default for every four characteristics.
fn configurable(
    code: &str,
    name: &str,
    n: usize,
    markets: Vec<String>,
    rules: &mut Vec<Rule>,
) -> Offering {
    let mut characteristics = Vec::with_capacity(n);
    for c in 0..n.max(4) {
        let code_c = format!("c{c:02}");
        let kind = match c % 4 {
            0 | 1 => CharacteristicKind::Enum {
                values: (0..4).map(|v| format!("v{v}")).collect(),
            },
            2 => CharacteristicKind::Number {
                min: Some(Decimal::ZERO),
                max: Some(Decimal::from(100)),
                step: Some(Decimal::ONE),
            },
            _ => CharacteristicKind::Boolean,
        };
        let default = match c % 4 {
            0 | 1 => json!("v0"),
            2 => json!("10"),
            _ => json!(false),
        };
        characteristics.push(Characteristic {
            code: code_c,
            name: None,
            kind,
            required: c % 4 == 0,
            default: Some(default),
        });
    }
    for group in 0..n.max(4) / 4 {
        let (a, b, num, flag) = (group * 4, group * 4 + 1, group * 4 + 2, group * 4 + 3);
        rules.push(Rule {
            code: format!("{code}-R{group}-LIMIT"),
            offering: code.to_owned(),
            kind: RuleKind::Constraint,
            message: format!("c{a:02} v3 allows at most 50 of c{num:02}"),
            when: Some(format!("c{a:02} == 'v3'")),
            then: Some(format!("c{num:02} <= 50")),
            component: None,
            set: None,
        });
        rules.push(Rule {
            code: format!("{code}-R{group}-EXCL"),
            offering: code.to_owned(),
            kind: RuleKind::Excludes,
            message: format!("c{flag:02} excludes c{b:02} v2"),
            when: Some(format!("c{flag:02} == true")),
            then: Some(format!("c{b:02} == 'v2'")),
            component: None,
            set: None,
        });
        rules.push(Rule {
            code: format!("{code}-R{group}-DEF"),
            offering: code.to_owned(),
            kind: RuleKind::Default,
            message: format!("c{b:02} v1 turns c{flag:02} on"),
            when: Some(format!("c{b:02} == 'v1'")),
            then: None,
            component: None,
            set: Some(DefaultSetting {
                characteristic: format!("c{flag:02}"),
                value: json!(true),
            }),
        });
    }
    Offering {
        code: code.to_owned(),
        name: name.to_owned(),
        description: Some(format!("Synthetic {name}")),
        kind: OfferingKind::Configurable,
        markets,
        channels: vec![],
        segments: vec![],
        effective_from: None,
        effective_to: None,
        sellable: true,
        characteristics,
        components: vec![],
    }
}

/// A whole synthetic catalog document.
pub fn generate(spec: Spec) -> CatalogDocument {
    let mut doc = CatalogDocument::default();
    for i in 0..spec.offerings {
        let code = format!("OFF-{i:05}");
        let name = format!(
            "{} {} {}",
            WORDS[i % WORDS.len()],
            WORDS[(i / 12) % WORDS.len()],
            i
        );
        let markets = if i % 3 == 0 {
            vec![]
        } else {
            vec![MARKETS[i % 4].to_owned(), MARKETS[(i + 1) % 4].to_owned()]
        };
        if i % 25 == 24 {
            // Every 25th offering bundles the five before it.
            let mut o = configurable(&code, &format!("bundle {name}"), 4, markets, &mut doc.rules);
            o.kind = OfferingKind::Bundle;
            o.components = (i - 5..i)
                .map(|c| Component {
                    offering: format!("OFF-{c:05}"),
                    min: 0,
                    max: 10,
                    default_included: c % 2 == 0,
                })
                .collect();
            doc.offerings.push(o);
        } else {
            doc.offerings.push(configurable(
                &code,
                &name,
                spec.characteristics,
                markets,
                &mut doc.rules,
            ));
        }
    }
    for l in 0..spec.price_lists {
        let (currency, market) = if l % 4 == 2 {
            ("GBP", Some("GB".to_owned()))
        } else {
            ("EUR", None)
        };
        let entries = doc
            .offerings
            .iter()
            .enumerate()
            .map(|(i, o)| PriceEntry {
                offering: o.code.clone(),
                one_time: money(1000 + (i as u64 * 37 + l as u64 * 11) % 50_000),
                recurring: money(500 + (i as u64 * 53 + l as u64 * 7) % 20_000),
                tiers: vec![
                    PriceTier {
                        min_quantity: 10,
                        one_time: money(900),
                        recurring: money(450 + (i as u64 % 100)),
                    },
                    PriceTier {
                        min_quantity: 100,
                        one_time: money(800),
                        recurring: money(400 + (i as u64 % 100)),
                    },
                ],
                surcharges: (1..4)
                    .map(|v| Surcharge {
                        characteristic: "c00".into(),
                        value: format!("v{v}"),
                        one_time: Decimal::ZERO,
                        recurring: money(100 * v),
                    })
                    .collect(),
                in_bundle: vec![],
            })
            .collect();
        doc.price_lists.push(PriceList {
            code: format!("PL-{l}"),
            name: None,
            currency: currency.into(),
            market,
            channel: (l % 4 == 1).then(|| "partner".to_owned()),
            segment: (l % 4 == 3).then(|| "enterprise".to_owned()),
            effective_from: None,
            effective_to: None,
            priority: 0,
            complete: false,
            entries,
        });
    }
    for p in 0..spec.promotions {
        let offerings = if p % 5 == 0 {
            vec![]
        } else {
            (0..3)
                .map(|k| format!("OFF-{:05}", (p * 97 + k * 13) % spec.offerings.max(1)))
                .collect()
        };
        doc.promotions.push(Promotion {
            code: format!("PROMO-{p:03}"),
            name: format!("Promotion {p}"),
            priority: p as i32,
            stacking_group: format!("group-{}", p % 6),
            stackable: false,
            exclusive: p % 11 == 10,
            eligibility: Eligibility {
                segments: if p % 2 == 0 {
                    vec![SEGMENTS[p % 3].to_owned()]
                } else {
                    vec![]
                },
                offerings,
                ..Eligibility::default()
            },
            effect: PromotionEffect {
                kind: [
                    EffectKind::Percent,
                    EffectKind::Amount,
                    EffectKind::Override,
                ][p % 3],
                value: [Decimal::from(5 + p as i64 % 20), money(250), money(300)][p % 3],
                applies_to: [
                    ChargeScope::Recurring,
                    ChargeScope::OneTime,
                    ChargeScope::Both,
                ][p % 3],
            },
        });
    }
    doc.tax_rates = MARKETS
        .iter()
        .map(|m| TaxRate {
            market: (*m).to_owned(),
            rate: Decimal::new(19, 2),
        })
        .collect();
    doc
}

/// A catalog holding one bundle with `characteristics` characteristics (and their rules) and ten
/// components: the "large bundle" of the configuration benchmarks.
pub fn large_bundle(characteristics: usize) -> CatalogDocument {
    let mut doc = generate(Spec {
        offerings: 10,
        characteristics: 6,
        price_lists: 1,
        promotions: 0,
    });
    let mut bundle = configurable(
        "BIG-BUNDLE",
        "Large bundle",
        characteristics,
        vec![],
        &mut doc.rules,
    );
    bundle.kind = OfferingKind::Bundle;
    bundle.components = (0..10)
        .map(|c| Component {
            offering: format!("OFF-{c:05}"),
            min: 1,
            max: 5,
            default_included: true,
        })
        .collect();
    doc.offerings.push(bundle);
    doc.price_lists[0].entries.push(PriceEntry {
        offering: "BIG-BUNDLE".into(),
        one_time: money(10_000),
        recurring: money(5_000),
        tiers: vec![],
        surcharges: vec![],
        in_bundle: vec![],
    });
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_catalogs_publish_and_are_deterministic() {
        let spec = Spec {
            offerings: 300,
            ..Spec::default()
        };
        let doc = generate(spec);
        assert_eq!(doc, generate(spec));
        let compiled =
            crate::compile(&doc).unwrap_or_else(|p| panic!("{:#?}", &p[..p.len().min(5)]));
        assert_eq!(compiled.offerings.len(), 300);
        assert_eq!(
            doc.price_lists
                .iter()
                .map(|l| l.entries.len())
                .sum::<usize>(),
            1200
        );
        let big = crate::compile(&large_bundle(50))
            .unwrap_or_else(|p| panic!("{:#?}", &p[..p.len().min(5)]));
        assert_eq!(big.offerings["BIG-BUNDLE"].characteristics.len(), 50);
    }
}
