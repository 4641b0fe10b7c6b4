use std::collections::BTreeSet;

use chrono::NaiveDate;
use cpq_catalog::compiled::CompiledPriceList;
use cpq_catalog::document::{ChargeScope, EffectKind, OfferingKind, PriceEntry, Promotion};
use cpq_catalog::CompiledCatalog;
use cpq_configuration::Configured;
use cpq_core::Currency;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Adjustment, ChargeAmounts, Explanation, PriceSnapshot, PricedLine, Totals};

/// At most this many exclusive promotions are tried alone on one node: the search is bounded.
pub const MAX_EXCLUSIVE_OPTIONS: usize = 8;

const MONTHS_PER_YEAR: u32 = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingContext {
    pub market: String,
    pub channel: String,
    pub segment: String,
    pub currency: String,
    pub date: NaiveDate,
    /// Customer attributes promotions may require, e.g. `{"new_customer": true}`.
    #[serde(default)]
    pub customer: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceItem {
    pub line_id: String,
    /// A configuration the configuration engine validated (defaults applied).
    pub configured: Configured,
    /// Percent off the whole line, 0 to 100.
    pub manual_discount_percent: Option<Decimal>,
}

/// Why a request cannot be priced. Line errors carry the line's index in the request, so that
/// the caller can point at it ([`PricingError::field`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("\"{0}\" is not an ISO 4217 currency")]
    UnknownCurrency(String),
    #[error("no applicable price list in {currency} prices {offering} (at {path})")]
    NoPrice {
        line: usize,
        offering: String,
        currency: String,
        path: String,
    },
    #[error("line {line_id}: the manual discount must be between 0 and 100 percent")]
    InvalidDiscount { line: usize, line_id: String },
    #[error("line id \"{line_id}\" is used more than once")]
    DuplicateLineId { line: usize, line_id: String },
    #[error("an amount is too large to compute")]
    Overflow,
}

impl PricingError {
    /// A stable code for the API's field errors.
    pub fn code(&self) -> &'static str {
        match self {
            PricingError::NoPrice { .. } => "no-price",
            PricingError::UnknownCurrency(_) => "unknown-currency",
            PricingError::InvalidDiscount { .. } => "invalid-discount",
            PricingError::DuplicateLineId { .. } => "duplicate-line-id",
            PricingError::Overflow => "overflow",
        }
    }

    /// The request field at fault, in the shape `{items: [{line_id, configuration,
    /// manual_discount_percent}], context: {currency}}`: `items[3].configuration.components[0]`.
    pub fn field(&self) -> String {
        match self {
            PricingError::NoPrice { line, path, .. } if path == "line" => {
                format!("items[{line}].configuration")
            }
            PricingError::NoPrice { line, path, .. } => {
                format!("items[{line}].configuration.{path}")
            }
            PricingError::UnknownCurrency(_) => "context.currency".into(),
            PricingError::InvalidDiscount { line, .. } => {
                format!("items[{line}].manual_discount_percent")
            }
            PricingError::DuplicateLineId { line, .. } => format!("items[{line}].line_id"),
            PricingError::Overflow => "items".into(),
        }
    }

    fn at_line(self, index: usize) -> PricingError {
        match self {
            PricingError::NoPrice {
                offering,
                currency,
                path,
                ..
            } => PricingError::NoPrice {
                line: index,
                offering,
                currency,
                path,
            },
            other => other,
        }
    }
}

fn entry_for<'c>(
    catalog: &'c CompiledCatalog,
    ctx: &PricingContext,
    offering: &str,
) -> Option<(&'c CompiledPriceList, &'c PriceEntry)> {
    catalog
        .price_lists
        .iter()
        .filter(|l| {
            l.applies(
                &ctx.currency,
                &ctx.market,
                &ctx.channel,
                &ctx.segment,
                ctx.date,
            )
        })
        .find_map(|l| l.entries.get(offering).map(|e| (l, e)))
}

fn eligible(p: &Promotion, ctx: &PricingContext) -> bool {
    let e = &p.eligibility;
    let allows = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    allows(&e.markets, &ctx.market)
        && allows(&e.channels, &ctx.channel)
        && allows(&e.segments, &ctx.segment)
        && e.from.is_none_or(|f| f <= ctx.date)
        && e.to.is_none_or(|t| ctx.date < t)
        && e.customer
            .iter()
            .all(|(k, v)| ctx.customer.get(k) == Some(v))
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Money {
    one_time: Decimal,
    recurring: Decimal,
}

impl Money {
    fn add(self, o: Money) -> Result<Money, PricingError> {
        Ok(Money {
            one_time: self
                .one_time
                .checked_add(o.one_time)
                .ok_or(PricingError::Overflow)?,
            recurring: self
                .recurring
                .checked_add(o.recurring)
                .ok_or(PricingError::Overflow)?,
        })
    }

    fn first_year(self) -> Decimal {
        self.one_time + self.recurring * Decimal::from(MONTHS_PER_YEAR)
    }
}

fn mul(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_mul(b).ok_or(PricingError::Overflow)
}

/// Applies promotions in order to a node's own amounts; returns the amounts and the adjustments.
fn apply_promotions(
    promos: &[&Promotion],
    qty: Decimal,
    start: Money,
    offering: &str,
) -> Result<(Money, Vec<Adjustment>), PricingError> {
    let mut m = start;
    let mut adjustments = Vec::new();
    for p in promos {
        let charges: &[&str] = match p.effect.applies_to {
            ChargeScope::OneTime => &["one_time"],
            ChargeScope::Recurring => &["recurring"],
            ChargeScope::Both => &["one_time", "recurring"],
        };
        for &charge in charges {
            let current = if charge == "one_time" {
                m.one_time
            } else {
                m.recurring
            };
            let v = p.effect.value;
            let next = match p.effect.kind {
                EffectKind::Percent => current - mul(current, v)? / Decimal::ONE_HUNDRED,
                EffectKind::Amount => current - mul(v, qty)?,
                EffectKind::Override => current.min(mul(v, qty)?),
            }
            .max(Decimal::ZERO);
            if next != current {
                adjustments.push(Adjustment {
                    kind: "promotion".into(),
                    source: p.code.clone(),
                    offering: offering.to_owned(),
                    charge: charge.into(),
                    amount: next - current,
                });
                if charge == "one_time" {
                    m.one_time = next;
                } else {
                    m.recurring = next;
                }
            }
        }
    }
    Ok((m, adjustments))
}

/// Chooses and applies the promotions of one node (see the crate docs).
fn promote(
    catalog: &CompiledCatalog,
    ctx: &PricingContext,
    offering: &str,
    qty: Decimal,
    own: Money,
) -> Result<(Money, Vec<Adjustment>), PricingError> {
    let mut candidates: BTreeSet<usize> = catalog.promotions_for_all.iter().copied().collect();
    candidates.extend(
        catalog
            .promotions_by_offering
            .get(offering)
            .into_iter()
            .flatten()
            .copied(),
    );
    let ordered: Vec<&Promotion> = candidates
        .into_iter()
        .map(|i| &catalog.promotions[i])
        .filter(|p| eligible(p, ctx))
        .collect();
    if ordered.is_empty() {
        return Ok((own, Vec::new()));
    }
    let mut stack: Vec<&Promotion> = Vec::new();
    let mut groups_taken: BTreeSet<&str> = BTreeSet::new();
    for p in ordered.iter().filter(|p| !p.exclusive) {
        if p.stackable || groups_taken.insert(p.stacking_group.as_str()) {
            stack.push(p);
        }
    }
    let mut best = apply_promotions(&stack, qty, own, offering)?;
    for p in ordered
        .iter()
        .filter(|p| p.exclusive)
        .take(MAX_EXCLUSIVE_OPTIONS)
    {
        let alone = apply_promotions(&[p], qty, own, offering)?;
        if alone.0.first_year() < best.0.first_year() {
            best = alone;
        }
    }
    Ok(best)
}

struct Node {
    list: Money,
    net: Money,
    adjustments: Vec<Adjustment>,
    explanation: Explanation,
}

fn price_node(
    catalog: &CompiledCatalog,
    ctx: &PricingContext,
    node: &Configured,
    multiplier: u32,
    bundle: Option<&str>,
    path: &str,
) -> Result<Node, PricingError> {
    let units = node
        .quantity
        .checked_mul(multiplier)
        .ok_or(PricingError::Overflow)?;
    let qty = Decimal::from(units);
    let (list, entry) =
        entry_for(catalog, ctx, &node.offering).ok_or_else(|| PricingError::NoPrice {
            line: 0,
            offering: node.offering.clone(),
            currency: ctx.currency.clone(),
            path: if path.is_empty() {
                "line".into()
            } else {
                path.to_owned()
            },
        })?;
    let mut adjustments = Vec::new();
    let mut explain = Vec::new();

    let tier = entry.tiers.iter().rev().find(|t| t.min_quantity <= units);
    let (mut unit_ot, mut unit_rc, mut label) = match tier {
        Some(t) => (
            t.one_time,
            t.recurring,
            format!(
                "base: tier from {} units, list {}",
                t.min_quantity, list.code
            ),
        ),
        None => (
            entry.one_time,
            entry.recurring,
            format!("base: list {}", list.code),
        ),
    };
    if let Some(b) = bundle.and_then(|b| entry.in_bundle.iter().find(|x| x.bundle == b)) {
        for (charge, own, inside) in [
            ("one_time", unit_ot, b.one_time),
            ("recurring", unit_rc, b.recurring),
        ] {
            if own != inside {
                adjustments.push(Adjustment {
                    kind: "bundle".into(),
                    source: b.bundle.clone(),
                    offering: node.offering.clone(),
                    charge: charge.into(),
                    amount: mul(inside - own, qty)?,
                });
            }
        }
        unit_ot = b.one_time;
        unit_rc = b.recurring;
        label = format!("base: price inside {}, list {}", b.bundle, list.code);
    }
    let mut own = Money {
        one_time: mul(unit_ot, qty)?,
        recurring: mul(unit_rc, qty)?,
    };
    explain.push(Explanation {
        label,
        one_time: own.one_time,
        recurring: own.recurring,
        children: vec![],
    });

    for s in &entry.surcharges {
        let chosen = node
            .characteristics
            .get(&s.characteristic)
            .map(|v| text_of(&v.value));
        if chosen.as_deref() == Some(s.value.as_str()) {
            let add = Money {
                one_time: mul(s.one_time, qty)?,
                recurring: mul(s.recurring, qty)?,
            };
            own = own.add(add)?;
            let source = format!("{}={}", s.characteristic, s.value);
            for (charge, amount) in [("one_time", add.one_time), ("recurring", add.recurring)] {
                if !amount.is_zero() {
                    adjustments.push(Adjustment {
                        kind: "surcharge".into(),
                        source: source.clone(),
                        offering: node.offering.clone(),
                        charge: charge.into(),
                        amount,
                    });
                }
            }
            explain.push(Explanation {
                label: format!("surcharge {source}"),
                one_time: add.one_time,
                recurring: add.recurring,
                children: vec![],
            });
        }
    }

    let own_list = own;
    let (own_net, promos) = promote(catalog, ctx, &node.offering, qty, own)?;
    for a in &promos {
        let (ot, rc) = if a.charge == "one_time" {
            (a.amount, Decimal::ZERO)
        } else {
            (Decimal::ZERO, a.amount)
        };
        explain.push(Explanation {
            label: format!("promotion {}", a.source),
            one_time: ot,
            recurring: rc,
            children: vec![],
        });
    }
    adjustments.extend(promos);

    let mut list_total = own_list;
    let mut net_total = own_net;
    let child_bundle = (catalog.offerings.get(&node.offering).map(|o| o.kind)
        == Some(OfferingKind::Bundle))
    .then_some(node.offering.as_str());
    for (i, child) in node.components.iter().enumerate() {
        let cpath = if path.is_empty() {
            format!("components[{i}]")
        } else {
            format!("{path}.components[{i}]")
        };
        let priced = price_node(catalog, ctx, child, units, child_bundle, &cpath)?;
        list_total = list_total.add(priced.list)?;
        net_total = net_total.add(priced.net)?;
        adjustments.extend(priced.adjustments);
        explain.push(priced.explanation);
    }
    Ok(Node {
        list: list_total,
        net: net_total,
        adjustments,
        explanation: Explanation {
            label: format!("{} × {}", node.offering, units),
            one_time: net_total.one_time,
            recurring: net_total.recurring,
            children: explain,
        },
    })
}

fn round(d: Decimal, units: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(units, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(units);
    r
}

fn amounts(
    list: Decimal,
    net: Decimal,
    rate: Decimal,
    units: u32,
) -> Result<ChargeAmounts, PricingError> {
    let list = round(list, units);
    let net = round(net, units);
    let tax = round(mul(net, rate)?, units);
    Ok(ChargeAmounts {
        discount: list - net,
        gross: net + tax,
        list,
        net,
        tax,
    })
}

fn sum(items: impl Iterator<Item = ChargeAmounts>, units: u32) -> ChargeAmounts {
    let zero = round(Decimal::ZERO, units);
    items.fold(
        ChargeAmounts {
            list: zero,
            discount: zero,
            net: zero,
            tax: zero,
            gross: zero,
        },
        |a, b| ChargeAmounts {
            list: a.list + b.list,
            discount: a.discount + b.discount,
            net: a.net + b.net,
            tax: a.tax + b.tax,
            gross: a.gross + b.gross,
        },
    )
}

/// Prices `items` in `ctx` against `catalog`.
pub fn price(
    catalog: &CompiledCatalog,
    ctx: &PricingContext,
    items: &[PriceItem],
) -> Result<PriceSnapshot, PricingError> {
    let currency = Currency::parse(&ctx.currency)
        .ok_or_else(|| PricingError::UnknownCurrency(ctx.currency.clone()))?;
    let units = u32::from(currency.minor_units());
    let rate = catalog
        .tax_rates
        .get(&ctx.market)
        .copied()
        .unwrap_or(Decimal::ZERO);
    let mut seen = BTreeSet::new();
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if !seen.insert(item.line_id.as_str()) {
            return Err(PricingError::DuplicateLineId {
                line: index,
                line_id: item.line_id.clone(),
            });
        }
        let mut node = price_node(catalog, ctx, &item.configured, 1, None, "")
            .map_err(|e| e.at_line(index))?;
        if let Some(pct) = item.manual_discount_percent {
            if pct.is_sign_negative() || pct > Decimal::ONE_HUNDRED {
                return Err(PricingError::InvalidDiscount {
                    line: index,
                    line_id: item.line_id.clone(),
                });
            }
            let mut cuts = Money::default();
            for charge in ["one_time", "recurring"] {
                let current = if charge == "one_time" {
                    node.net.one_time
                } else {
                    node.net.recurring
                };
                let cut = mul(current, pct)? / Decimal::ONE_HUNDRED;
                // Never a negative zero: it would not survive a round trip through text.
                let change = if cut.is_zero() { Decimal::ZERO } else { -cut };
                if charge == "one_time" {
                    cuts.one_time = change;
                } else {
                    cuts.recurring = change;
                }
                if !cut.is_zero() {
                    node.adjustments.push(Adjustment {
                        kind: "manual".into(),
                        source: format!("{pct}%"),
                        offering: item.configured.offering.clone(),
                        charge: charge.into(),
                        amount: -cut,
                    });
                    if charge == "one_time" {
                        node.net.one_time -= cut;
                    } else {
                        node.net.recurring -= cut;
                    }
                }
            }
            // The entry carries the change, so that a node's entries add up to its amount.
            node.explanation.children.push(Explanation {
                label: format!("manual discount {pct}%"),
                one_time: cuts.one_time,
                recurring: cuts.recurring,
                children: vec![],
            });
            node.explanation.one_time = node.net.one_time;
            node.explanation.recurring = node.net.recurring;
        }
        lines.push(PricedLine {
            line_id: item.line_id.clone(),
            offering: item.configured.offering.clone(),
            quantity: item.configured.quantity,
            one_time: amounts(node.list.one_time, node.net.one_time, rate, units)?,
            recurring: amounts(node.list.recurring, node.net.recurring, rate, units)?,
            adjustments: node.adjustments,
            explanation: node.explanation,
        });
    }
    // Lines stay in request order; the hash reads them in line-id order (see `snapshot_hash`).
    let totals = Totals {
        one_time: sum(lines.iter().map(|l| l.one_time.clone()), units),
        recurring: sum(lines.iter().map(|l| l.recurring.clone()), units),
    };
    let mut snapshot = PriceSnapshot {
        catalog_hash: catalog.content_hash.clone(),
        context: ctx.clone(),
        currency: currency.code().to_owned(),
        tax_rate: rate,
        lines,
        totals,
        hash: String::new(),
    };
    snapshot.hash = snapshot_hash(&snapshot);
    Ok(snapshot)
}

/// SHA-256 of the snapshot's canonical JSON with an empty `hash`: what [`PriceSnapshot::hash`]
/// holds, and what a later check recomputes.
pub fn snapshot_hash(snapshot: &PriceSnapshot) -> String {
    let mut unhashed = snapshot.clone();
    unhashed.hash = String::new();
    // The same lines in another order are the same price: hash them in line-id order.
    unhashed.lines.sort_by(|a, b| a.line_id.cmp(&b.line_id));
    let value = serde_json::to_value(&unhashed).unwrap_or(serde_json::Value::Null);
    hex::encode(Sha256::digest(cpq_core::canonical_json(&value).as_bytes()))
}
