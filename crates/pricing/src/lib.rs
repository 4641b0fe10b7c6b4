//! The pricing engine. Pure and deterministic: the same compiled catalog, context and items give
//! the same snapshot, byte for byte, and the same SHA-256 hash. Money is `rust_decimal`. Lines
//! come back in the order of the request; the hash reads them in line-id order, so the same lines
//! sent in another order have the same hash. In every explanation, a node's entries add up to the
//! node's amount.
//!
//! # How a line is priced
//! Each configured node (the line's offering, and each component below it) is priced from the
//! most specific applicable price list that has an entry for its offering (lists naming more of
//! market, channel and segment first, then higher priority, then code):
//! 1. **base**: the entry's unit prices, or the volume tier with the largest `min_quantity` not
//!    above the node's quantity (the tier price applies to every unit); a component sold inside a
//!    bundle that has an `in_bundle` price for that bundle uses it instead (a `bundle`
//!    adjustment records the difference from its own price);
//! 2. **surcharges** for characteristic values, per unit;
//! 3. **promotions** on the node's own amounts: candidates come from the eligibility index
//!    (promotions naming the offering, and those naming none), filtered by market, channel,
//!    segment, date and customer attributes, in the catalog's order (higher priority first, then
//!    code). Two ways to apply them are compared: the *stack* (per stacking group the first
//!    promotion, or all of them when the group is stackable; exclusive ones left out) and each
//!    exclusive promotion *alone* (at most [`MAX_EXCLUSIVE_OPTIONS`] of them, so the search is
//!    bounded). The option with the lowest first-year value (one-time + 12 × monthly) wins; ties go
//!    to the stack, then to the earlier exclusive. Percent effects take a share of the current
//!    amount, amount effects take a fixed sum per unit, overrides set the unit price; no amount
//!    goes below zero.
//! 4. A **manual discount** (percent) applies to the whole line, components included.
//!
//! # Rounding
//! Everything above is exact. Each line is rounded once per charge type, to the currency's
//! minor units, half away from zero: list amount and net amount; the discount is their
//! difference. Tax is the market's rate times the rounded net, rounded the same way. Totals are
//! sums of the rounded lines, so no cent is lost or invented between lines and totals.

mod engine;

pub use engine::{
    price, snapshot_hash, PriceItem, PricingContext, PricingError, MAX_EXCLUSIVE_OPTIONS,
};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeAmounts {
    pub list: Decimal,
    pub discount: Decimal,
    pub net: Decimal,
    pub tax: Decimal,
    pub gross: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adjustment {
    /// `surcharge`, `bundle`, `promotion` or `manual`.
    pub kind: String,
    /// What caused it: a promotion code, `bandwidth=500`, ...
    pub source: String,
    /// The offering (node) it applies to.
    pub offering: String,
    /// `one_time` or `recurring`.
    pub charge: String,
    /// Signed, exact: surcharges positive, discounts negative.
    pub amount: Decimal,
}

/// Where the money of a node comes from; exact amounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub label: String,
    pub one_time: Decimal,
    pub recurring: Decimal,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Explanation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricedLine {
    pub line_id: String,
    pub offering: String,
    pub quantity: u32,
    pub one_time: ChargeAmounts,
    /// Monthly.
    pub recurring: ChargeAmounts,
    pub adjustments: Vec<Adjustment>,
    pub explanation: Explanation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub one_time: ChargeAmounts,
    pub recurring: ChargeAmounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceSnapshot {
    pub catalog_hash: String,
    pub context: PricingContext,
    pub currency: String,
    pub tax_rate: Decimal,
    /// In `line_id` order.
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
    /// SHA-256 (hex) of the canonical JSON of this snapshot with `hash` empty.
    pub hash: String,
}
