//! Orders as pure types, and what a conversion decides from the quote it locked: whether the
//! quote may become an order (converted already, the version the caller saw, the lifecycle, the
//! snapshot still matching its hash) and the order lines its snapshot makes; [`plan`]: the
//! decomposition of an order's items into its fulfillment plan. No I/O, no clock:
//! [`crate::store`] reads and writes, [`crate::commands`] puts the two together.

pub mod execution;
pub mod plan;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cpq_core::Error;
use cpq_pricing::PriceSnapshot;
use cpq_quote::model::lifecycle::{apply, Action, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use plan::PlanItem;

/// The BPMN process id of `processes/order-fulfillment-v2.bpmn` (named in `cpq_quote::processes`,
/// which lists the processes the platform needs without depending on this crate).
pub use cpq_quote::processes::FULFILLMENT_PROCESS;

pub const ORDER_AGGREGATE: &str = "order";

/// The status of a new order: its fulfillment process runs.
pub const IN_FULFILLMENT: &str = "in-fulfillment";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub line_no: i32,
    /// `in-fulfillment`, `completed` (with its order) or `cancelled`.
    pub status: String,
    pub offering_code: String,
    pub configuration: Value,
    /// The line as priced in the quote's snapshot (amounts, adjustments, explanation).
    pub price: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub order_id: Uuid,
    pub quote_id: Uuid,
    pub quote_revision_no: i32,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub snapshot_hash: String,
    pub totals: Value,
    /// `in-fulfillment`, `in-fallout` (a fallout case is open), `completed` or `cancelled`.
    pub status: String,
    pub fulfillment_instance_id: Option<Uuid>,
    /// When the last plan task finished.
    pub completed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
}

/// What conversion reads of the quote, under the quote's row lock.
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteToConvert {
    pub quote_id: Uuid,
    pub status: Status,
    pub version: i64,
    pub revision_no: i32,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub snapshot_hash: Option<String>,
    pub price_snapshot: Option<Value>,
    /// The order the quote became, once converted.
    pub order_id: Option<Uuid>,
    /// The catalog version the quote was priced with: its technical catalog decomposes the order.
    pub catalog_version_id: Uuid,
    /// The current revision's line configurations, by line number.
    pub configurations: BTreeMap<i32, Value>,
}

/// One order line to write: the snapshot's line, with the quote line it prices.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub line_no: i32,
    pub offering_code: String,
    /// The snapshot's line as JSON (amounts, adjustments, explanation).
    pub price: Value,
}

/// What a conversion writes, decided by [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The quote's status afterwards (`converted`).
    pub quote_status: Status,
    pub snapshot_hash: String,
    pub totals: Value,
    /// In the snapshot's line order.
    pub lines: Vec<OrderLine>,
}

/// The refusal of a second conversion: 409 naming the order that exists.
pub fn already_converted(quote: Uuid, order: Uuid) -> Error {
    Error::ConflictWithExisting {
        detail: format!("quote {quote} is already converted into order {order}"),
        existing: format!("/v1/orders/{order}"),
    }
}

/// A snapshot line that names no line of the quote: a bug, never the caller's fault.
pub fn line_without_item(quote: Uuid, line_id: &str) -> Error {
    Error::internal(format!(
        "snapshot line {line_id} of quote {quote} has no item"
    ))
}

/// The order lines a conversion makes, each with its quote line's configuration, as
/// [`plan::decompose`] reads them.
pub fn plan_items<'a>(
    q: &'a QuoteToConvert,
    lines: &'a [OrderLine],
) -> Result<Vec<PlanItem<'a>>, Error> {
    lines
        .iter()
        .map(|l| {
            Ok(PlanItem {
                line_no: l.line_no,
                offering_code: &l.offering_code,
                configuration: q
                    .configurations
                    .get(&l.line_no)
                    .ok_or_else(|| line_without_item(q.quote_id, &format!("{:04}", l.line_no)))?,
            })
        })
        .collect()
}

/// A quote status as stored.
pub fn status_text(s: Status) -> Result<String, Error> {
    match serde_json::to_value(s) {
        Ok(Value::String(v)) => Ok(v),
        _ => Err(Error::internal("quote status does not serialize")),
    }
}

/// A stored quote status.
pub fn status_from(raw: &str) -> Result<Status, Error> {
    serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|_| Error::internal(format!("stored quote status {raw}")))
}

/// The quote line a snapshot line prices: line ids are the line number in four digits.
fn line_no_of(line_id: &str) -> Option<i32> {
    line_id
        .parse::<i32>()
        .ok()
        .filter(|n| format!("{n:04}") == line_id)
}

/// Decides whether `q` becomes an order, for a caller who saw version `expected`. A quote that
/// is already converted answers with its order whatever version was expected.
pub fn decide(q: &QuoteToConvert, expected: i64) -> Result<Conversion, Error> {
    if let (Status::Converted, Some(order)) = (q.status, q.order_id) {
        return Err(already_converted(q.quote_id, order));
    }
    if q.version != expected {
        return Err(Error::PreconditionFailed {
            current: q.version.to_string(),
        });
    }
    let next = apply(q.status, Action::Convert).map_err(|r| Error::conflict(r.to_string()))?;
    let (stored, hash) = match (&q.price_snapshot, &q.snapshot_hash) {
        (Some(s), Some(h)) => (s, h),
        _ => {
            return Err(Error::internal(format!(
                "accepted quote {} has no price snapshot",
                q.quote_id
            )))
        }
    };
    let snapshot: PriceSnapshot = serde_json::from_value(stored.clone())
        .map_err(|e| Error::internal(format!("stored snapshot: {e}")))?;
    let recomputed = cpq_pricing::snapshot_hash(&snapshot);
    if &recomputed != hash || &snapshot.hash != hash {
        return Err(Error::conflict(format!(
            "the price snapshot of quote {} no longer matches its hash ({hash}); the quote cannot be converted until it is revised and priced again",
            q.quote_id
        )));
    }
    let lines = snapshot
        .lines
        .iter()
        .map(|line| {
            Ok(OrderLine {
                line_no: line_no_of(&line.line_id)
                    .ok_or_else(|| line_without_item(q.quote_id, &line.line_id))?,
                offering_code: line.offering.clone(),
                price: serde_json::to_value(line).map_err(Error::internal)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Conversion {
        quote_status: next,
        snapshot_hash: hash.clone(),
        totals: serde_json::to_value(&snapshot.totals).map_err(Error::internal)?,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(status: Status) -> QuoteToConvert {
        QuoteToConvert {
            quote_id: Uuid::nil(),
            status,
            version: 7,
            revision_no: 1,
            customer_account_id: Uuid::nil(),
            currency: "EUR".into(),
            snapshot_hash: None,
            price_snapshot: None,
            order_id: None,
            catalog_version_id: Uuid::nil(),
            configurations: BTreeMap::new(),
        }
    }

    #[test]
    fn a_converted_quote_names_its_order_whatever_version_was_expected() {
        let order = Uuid::now_v7();
        let q = QuoteToConvert {
            order_id: Some(order),
            ..quote(Status::Converted)
        };
        match decide(&q, 1) {
            Err(Error::ConflictWithExisting { existing, .. }) => {
                assert_eq!(existing, format!("/v1/orders/{order}"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stale_version_is_refused_before_the_lifecycle() {
        match decide(&quote(Status::Draft), 6) {
            Err(Error::PreconditionFailed { current }) => assert_eq!(current, "7"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&quote(Status::Draft), 7),
            Err(Error::Conflict { .. })
        ));
    }

    #[test]
    fn snapshot_line_ids_are_four_digit_line_numbers() {
        assert_eq!(line_no_of("0001"), Some(1));
        assert_eq!(line_no_of("0120"), Some(120));
        assert_eq!(line_no_of("1"), None);
        assert_eq!(line_no_of("x"), None);
    }
}
