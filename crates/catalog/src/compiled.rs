//! The compiled catalog: what runtime (configuration and pricing) reads. Built once from a
//! validated document: expressions parsed, patterns compiled, rules indexed by offering and by the
//! characteristic that triggers them, default rules in dependency order, price entries indexed by
//! list and offering, promotions indexed by offering. Serializable, so that caches can hold it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::*;
use crate::expr::Expr;
use crate::validate::{validate, Problem};
use crate::values::{compile_pattern, Pattern};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledCharacteristic {
    pub def: Characteristic,
    pub pattern: Option<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledRule {
    pub code: String,
    pub offering: String,
    pub kind: RuleKind,
    pub message: String,
    pub when: Option<Expr>,
    pub then: Option<Expr>,
    pub component: Option<String>,
    pub set: Option<DefaultSetting>,
    /// Every characteristic the rule reads (its triggers).
    pub reads: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledOffering {
    pub code: String,
    pub name: String,
    pub kind: OfferingKind,
    pub markets: Vec<String>,
    pub channels: Vec<String>,
    pub segments: Vec<String>,
    pub effective_from: Option<NaiveDate>,
    pub effective_to: Option<NaiveDate>,
    pub sellable: bool,
    pub characteristics: BTreeMap<String, CompiledCharacteristic>,
    pub components: BTreeMap<String, Component>,
    /// Indexes into [`CompiledCatalog::rules`]: the checking rules (requires, excludes,
    /// constraint) of this offering.
    pub checks: Vec<usize>,
    /// Default rules in an order where each runs after those that set what it reads.
    pub defaults: Vec<usize>,
    /// Characteristic → the rules (checks and defaults) that read it.
    pub triggers: BTreeMap<String, Vec<usize>>,
}

impl CompiledOffering {
    /// Whether it may be sold in this context on this date.
    pub fn available(
        &self,
        market: Option<&str>,
        channel: Option<&str>,
        segment: Option<&str>,
        date: NaiveDate,
    ) -> bool {
        let allows = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_none_or(|v| list.iter().any(|x| x == v))
        };
        allows(&self.markets, market)
            && allows(&self.channels, channel)
            && allows(&self.segments, segment)
            && self.effective_from.is_none_or(|f| f <= date)
            && self.effective_to.is_none_or(|t| date < t)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledPriceList {
    pub code: String,
    pub currency: String,
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    pub effective_from: Option<NaiveDate>,
    pub effective_to: Option<NaiveDate>,
    pub priority: i32,
    pub entries: BTreeMap<String, PriceEntry>,
}

impl CompiledPriceList {
    /// How many of market, channel and segment it names: more specific lists win.
    pub fn specificity(&self) -> usize {
        [&self.market, &self.channel, &self.segment]
            .iter()
            .filter(|v| v.is_some())
            .count()
    }

    pub fn applies(
        &self,
        currency: &str,
        market: &str,
        channel: &str,
        segment: &str,
        date: NaiveDate,
    ) -> bool {
        self.currency == currency
            && self.market.as_deref().is_none_or(|m| m == market)
            && self.channel.as_deref().is_none_or(|c| c == channel)
            && self.segment.as_deref().is_none_or(|s| s == segment)
            && self.effective_from.is_none_or(|f| f <= date)
            && self.effective_to.is_none_or(|t| date < t)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledCatalog {
    /// SHA-256 of the canonical document: equal documents, equal hashes.
    pub content_hash: String,
    pub offerings: BTreeMap<String, CompiledOffering>,
    pub rules: Vec<CompiledRule>,
    /// Most specific first, then higher priority, then code.
    pub price_lists: Vec<CompiledPriceList>,
    /// In application order: higher priority first, then code.
    pub promotions: Vec<Promotion>,
    /// Offering → promotions (indexes) that name it; `promotions_for_all` name none.
    pub promotions_by_offering: BTreeMap<String, Vec<usize>>,
    pub promotions_for_all: Vec<usize>,
    pub tax_rates: BTreeMap<String, Decimal>,
    /// Offering → its fulfillment items (the technical catalog).
    pub technical: BTreeMap<String, Vec<FulfillmentItem>>,
    /// Tasks of every order, in authored order (absent from versions compiled before they
    /// existed: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_tasks: Vec<TaskTemplate>,
}

/// The document with every code-keyed collection in code order: two documents that differ only in
/// the order of their offerings, rules, lists, entries, promotions, rates or mappings are the same
/// catalog.
pub fn canonical(doc: &CatalogDocument) -> CatalogDocument {
    let mut d = doc.clone();
    d.offerings.sort_by(|a, b| a.code.cmp(&b.code));
    for o in &mut d.offerings {
        o.characteristics.sort_by(|a, b| a.code.cmp(&b.code));
        o.components.sort_by(|a, b| a.offering.cmp(&b.offering));
    }
    d.rules.sort_by(|a, b| a.code.cmp(&b.code));
    d.price_lists.sort_by(|a, b| a.code.cmp(&b.code));
    for l in &mut d.price_lists {
        l.entries.sort_by(|a, b| a.offering.cmp(&b.offering));
    }
    d.promotions.sort_by(|a, b| a.code.cmp(&b.code));
    d.tax_rates.sort_by(|a, b| a.market.cmp(&b.market));
    d.technical.sort_by(|a, b| a.offering.cmp(&b.offering));
    d
}

/// SHA-256 (hex) of the canonical JSON of the [`canonical`] document.
pub fn content_hash(doc: &CatalogDocument) -> String {
    let value = serde_json::to_value(canonical(doc)).unwrap_or(serde_json::Value::Null);
    hex::encode(Sha256::digest(cpq_core::canonical_json(&value).as_bytes()))
}

fn order_defaults(rules: &[CompiledRule], defaults: &[usize]) -> Vec<usize> {
    // Kahn's algorithm over "rule a sets what rule b reads"; validation has excluded cycles.
    let sets = |i: usize| rules[i].set.as_ref().map(|s| s.characteristic.clone());
    let mut remaining: Vec<usize> = defaults.to_vec();
    let mut ordered = Vec::new();
    while !remaining.is_empty() {
        let ready: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&b| {
                !remaining
                    .iter()
                    .any(|&a| a != b && sets(a).is_some_and(|c| rules[b].reads.contains(&c)))
            })
            .collect();
        if ready.is_empty() {
            // A cycle slipped through: keep the authored order rather than loop.
            ordered.append(&mut remaining);
            break;
        }
        remaining.retain(|r| !ready.contains(r));
        ordered.extend(ready);
    }
    ordered
}

/// Validates and compiles `doc`; every problem when it cannot be published.
pub fn compile(doc: &CatalogDocument) -> Result<CompiledCatalog, Vec<Problem>> {
    let problems = validate(doc);
    if !problems.is_empty() {
        return Err(problems);
    }
    let internal = |detail: String| {
        vec![Problem {
            kind: "invalid-definition",
            path: String::new(),
            detail,
        }]
    };

    let mut rules = Vec::with_capacity(doc.rules.len());
    for r in &doc.rules {
        let parse = |src: &Option<String>| src.as_deref().map(Expr::parse).transpose();
        let when = parse(&r.when).map_err(|e| internal(e.to_string()))?;
        let then = parse(&r.then).map_err(|e| internal(e.to_string()))?;
        let mut reads: BTreeSet<String> = BTreeSet::new();
        for e in when.iter().chain(then.iter()) {
            reads.extend(e.identifiers().iter().cloned());
        }
        rules.push(CompiledRule {
            code: r.code.clone(),
            offering: r.offering.clone(),
            kind: r.kind,
            message: r.message.clone(),
            when,
            then,
            component: r.component.clone(),
            set: r.set.clone(),
            reads,
        });
    }

    let mut offerings = BTreeMap::new();
    for o in &doc.offerings {
        let mut characteristics = BTreeMap::new();
        for c in &o.characteristics {
            let pattern = match &c.kind {
                CharacteristicKind::Text {
                    pattern: Some(src), ..
                } => Some(compile_pattern(src).map_err(internal)?),
                _ => None,
            };
            characteristics.insert(
                c.code.clone(),
                CompiledCharacteristic {
                    def: c.clone(),
                    pattern,
                },
            );
        }
        let mine: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.offering == o.code)
            .map(|(i, _)| i)
            .collect();
        let checks: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| rules[i].kind != RuleKind::Default)
            .collect();
        let defaults: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| rules[i].kind == RuleKind::Default)
            .collect();
        let mut triggers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in &mine {
            for read in &rules[i].reads {
                triggers.entry(read.clone()).or_default().push(i);
            }
        }
        offerings.insert(
            o.code.clone(),
            CompiledOffering {
                code: o.code.clone(),
                name: o.name.clone(),
                kind: o.kind,
                markets: o.markets.clone(),
                channels: o.channels.clone(),
                segments: o.segments.clone(),
                effective_from: o.effective_from,
                effective_to: o.effective_to,
                sellable: o.sellable,
                characteristics,
                components: o
                    .components
                    .iter()
                    .map(|c| (c.offering.clone(), c.clone()))
                    .collect(),
                checks,
                defaults: order_defaults(&rules, &defaults),
                triggers,
            },
        );
    }

    let mut price_lists: Vec<CompiledPriceList> = doc
        .price_lists
        .iter()
        .map(|l| CompiledPriceList {
            code: l.code.clone(),
            currency: l.currency.clone(),
            market: l.market.clone(),
            channel: l.channel.clone(),
            segment: l.segment.clone(),
            effective_from: l.effective_from,
            effective_to: l.effective_to,
            priority: l.priority,
            entries: l
                .entries
                .iter()
                .map(|e| (e.offering.clone(), e.clone()))
                .collect(),
        })
        .collect();
    price_lists.sort_by(|a, b| {
        b.specificity()
            .cmp(&a.specificity())
            .then(b.priority.cmp(&a.priority))
            .then(a.code.cmp(&b.code))
    });

    let mut promotions = doc.promotions.clone();
    promotions.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.code.cmp(&b.code)));
    let mut promotions_by_offering: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut promotions_for_all = Vec::new();
    for (i, p) in promotions.iter().enumerate() {
        if p.eligibility.offerings.is_empty() {
            promotions_for_all.push(i);
        }
        for o in &p.eligibility.offerings {
            promotions_by_offering.entry(o.clone()).or_default().push(i);
        }
    }

    Ok(CompiledCatalog {
        content_hash: content_hash(doc),
        offerings,
        rules,
        price_lists,
        promotions,
        promotions_by_offering,
        promotions_for_all,
        tax_rates: doc
            .tax_rates
            .iter()
            .map(|t| (t.market.clone(), t.rate))
            .collect(),
        technical: doc
            .technical
            .iter()
            .map(|t| (t.offering.clone(), t.items.clone()))
            .collect(),
        order_tasks: doc.order_tasks.clone(),
    })
}
