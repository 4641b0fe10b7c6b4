//! The event types: one Rust type per event type and schema version, written by its producer
//! ([`NewEvent::of`]) and read by every projection ([`decode`]), each checked against its JSON
//! Schema `schemas/events/<TYPE>.v<SCHEMA_VERSION>.json` by this crate's `event_schemas` test.
//!
//! The fields are the schema's, with the names and JSON types published today: a payload is the
//! `serde_json` form of its type, nothing else. Writing is complete (a producer names every
//! field); reading is tolerant, as consumers of published events must be: a field missing from a
//! payload (an event written before the field existed, or by hand in a test) reads as its zero
//! value (nil UUID, empty text, 0), as in proto3, and unknown fields are ignored. Consumers treat
//! a zero value as "not given".
//!
//! This module owns no I/O: it only describes payloads. A new event type is a struct here, its
//! entry in [`ALL`] and its schema file; a new version of one is a new type.

use chrono::{DateTime, NaiveDate, Utc};
use cpq_core::{Currency, Error};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::NewEvent;

/// A versioned fact about one aggregate, as it travels in the outbox and on Kafka.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// The event type, e.g. `quote.created`.
    const TYPE: &'static str;
    const SCHEMA_VERSION: i32;
    /// The aggregate type it is keyed by, e.g. `quote`.
    const AGGREGATE: &'static str;
    fn aggregate_id(&self) -> Uuid;
}

impl NewEvent {
    /// The outbox event for `event`: its type, version, aggregate and payload.
    pub fn of<E: DomainEvent>(event: &E) -> Result<NewEvent, Error> {
        Ok(NewEvent {
            event_type: E::TYPE,
            schema_version: E::SCHEMA_VERSION,
            aggregate_type: E::AGGREGATE,
            aggregate_id: event.aggregate_id(),
            payload: serde_json::to_value(event).map_err(Error::internal)?,
        })
    }
}

/// Reads a payload as `E` (tolerantly: see the module docs). Fails only on a field of the wrong
/// JSON type.
pub fn decode<E: DomainEvent>(payload: &Value) -> Result<E, serde_json::Error> {
    E::deserialize(payload)
}

/// Implements [`DomainEvent`] for `$ty` and lists it in [`ALL`].
macro_rules! domain_events {
    ($($ty:ident = ($name:literal, $ver:literal), $agg:literal, |$e:ident| $id:expr;)*) => {
        $(
            impl DomainEvent for $ty {
                const TYPE: &'static str = $name;
                const SCHEMA_VERSION: i32 = $ver;
                const AGGREGATE: &'static str = $agg;
                fn aggregate_id(&self) -> Uuid {
                    let $e = self;
                    $id
                }
            }
        )*
        /// Every event type and schema version the platform writes.
        pub const ALL: &[(&str, i32)] = &[$(($ty::TYPE, $ty::SCHEMA_VERSION)),*];
    };
}

domain_events! {
    CatalogVersionCreated = ("catalog-version.created", 1), "catalog-version", |e| e.catalog_version_id;
    CatalogVersionChanged = ("catalog-version.changed", 1), "catalog-version", |e| e.catalog_version_id;
    CatalogVersionPublished = ("catalog-version.published", 1), "catalog-version", |e| e.catalog_version_id;
    CatalogVersionActivated = ("catalog-version.activated", 1), "catalog-version", |e| e.catalog_version_id;
    DecisionDefinitionDeployed = ("decision-definition.deployed", 1), "decision-definition", |e| e.decision_definition_id;
    CustomerAccountCreated = ("customer-account.created", 1), "customer-account", |e| e.customer_account.id;
    CustomerAccountUpdated = ("customer-account.updated", 1), "customer-account", |e| e.customer_account.id;
    CustomerAccountClosed = ("customer-account.closed", 1), "customer-account", |e| e.customer_account_id;
    OrderCreated = ("order.created", 1), "order", |e| e.order_id;
    OrderDecomposed = ("order.decomposed", 1), "order", |e| e.order_id;
    OrderTaskCompleted = ("order.task-completed", 1), "order", |e| e.order_id;
    OrderInFallout = ("order.in-fallout", 1), "order", |e| e.order_id;
    OrderFalloutResolved = ("order.fallout-resolved", 1), "order", |e| e.order_id;
    OrderCompleted = ("order.completed", 1), "order", |e| e.order_id;
    OrderCancelled = ("order.cancelled", 1), "order", |e| e.order_id;
    ProcessDefinitionDeployed = ("process-definition.deployed", 1), "process-definition", |e| e.process_definition_id;
    QuoteCreated = ("quote.created", 1), "quote", |e| e.quote_id;
    QuoteItemAdded = ("quote.item-added", 1), "quote", |e| e.quote_id;
    QuoteItemChanged = ("quote.item-changed", 1), "quote", |e| e.quote_id;
    QuoteItemRemoved = ("quote.item-removed", 1), "quote", |e| e.quote_id;
    QuoteTermsChanged = ("quote.terms-changed", 1), "quote", |e| e.quote_id;
    QuotePriced = ("quote.priced", 1), "quote", |e| e.quote_id;
    QuoteSubmitted = ("quote.submitted", 1), "quote", |e| e.quote_id;
    QuoteApprovalRequested = ("quote.approval-requested", 1), "quote", |e| e.quote_id;
    QuoteApproved = ("quote.approved", 1), "quote", |e| e.0.quote_id;
    QuoteRejected = ("quote.rejected", 1), "quote", |e| e.0.quote_id;
    QuoteReturned = ("quote.returned", 1), "quote", |e| e.0.quote_id;
    QuoteAccepted = ("quote.accepted", 1), "quote", |e| e.quote_id;
    QuoteCancelled = ("quote.cancelled", 1), "quote", |e| e.quote_id;
    QuoteConverted = ("quote.converted", 1), "quote", |e| e.quote_id;
    QuoteExpired = ("quote.expired", 1), "quote", |e| e.quote_id;
    QuoteRevised = ("quote.revised", 1), "quote", |e| e.quote_id;
}

// ---- Shared parts --------------------------------------------------------------------------

/// One charge type's amounts, rounded to the currency's minor units (decimal strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChargeAmounts {
    pub list: Decimal,
    pub discount: Decimal,
    pub net: Decimal,
    pub tax: Decimal,
    pub gross: Decimal,
}

/// A price snapshot's totals: one-time and monthly recurring.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Totals {
    pub one_time: ChargeAmounts,
    pub recurring: ChargeAmounts,
}

// ---- Catalog versions ----------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogVersionCreated {
    pub catalog_version_id: Uuid,
    pub label: String,
    pub offerings: usize,
}

/// What changed in a draft: a whole import, or one element put or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogChange {
    Import,
    Put,
    Remove,
}

/// An import names the number of offerings; an edit names the element (`collection`, `key`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogVersionChanged {
    #[serde(default)]
    pub catalog_version_id: Uuid,
    pub change: CatalogChange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offerings: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogVersionPublished {
    pub catalog_version_id: Uuid,
    pub label: String,
    pub content_hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogVersionActivated {
    pub catalog_version_id: Uuid,
    pub effective_from: DateTime<Utc>,
}

// ---- Customer accounts ---------------------------------------------------------------------

/// A customer account as its events carry it (the account as stored, without its tenant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerAccountState {
    pub id: Uuid,
    pub name: String,
    pub external_ref: Option<String>,
    /// `consumer`, `small-business`, `enterprise` or `public-sector`.
    pub segment: String,
    pub market: String,
    pub currency: Currency,
    /// `active` or `closed`.
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerAccountCreated {
    pub customer_account: CustomerAccountState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerAccountUpdated {
    pub customer_account: CustomerAccountState,
    #[serde(default)]
    pub changed_fields: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerAccountClosed {
    pub customer_account_id: Uuid,
    pub version: i64,
    pub closed_at: DateTime<Utc>,
    pub reason: Option<String>,
}

// ---- Orders and process definitions --------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub quote_id: Uuid,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub snapshot_hash: String,
    pub totals: Totals,
    /// The number of order items.
    pub lines: usize,
    pub fulfillment_instance_id: Uuid,
}

/// An order's items were decomposed into its fulfillment plan (written with `order.created`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderDecomposed {
    pub order_id: Uuid,
    /// The catalog version whose technical catalog decomposed it.
    pub catalog_version_id: Uuid,
    /// The number of tasks in the plan.
    pub tasks: usize,
    /// How many of them wait for nothing (they start `ready`).
    pub ready: usize,
    /// The systems the plan acts on, sorted.
    pub systems: Vec<String>,
    /// SHA-256 (hex) of the plan's canonical JSON: the same order, the same hash.
    pub plan_hash: String,
}

/// A plan task finished: done by its system (`completed`) or skipped by a repair (`skipped`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderTaskCompleted {
    pub order_id: Uuid,
    pub task_key: String,
    pub job_type: String,
    pub system: Option<String>,
    /// `completed` or `skipped`.
    pub status: String,
    pub attempts: i32,
    /// The dependants this made ready (their keys, sorted).
    pub released: Vec<String>,
}

/// A plan task failed permanently or exhausted its retries: a fallout case is open and the order
/// is `in-fallout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderInFallout {
    pub order_id: Uuid,
    pub fallout_case_id: Uuid,
    pub task_key: String,
    pub system: Option<String>,
    /// `business-failure`, `technical-failure`, `callback-failed` or `callback-timeout`.
    pub category: String,
    pub error_code: Option<String>,
}

/// A fallout case was repaired: `retry`, `skip` or `cancel-order`, with the reason given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderFalloutResolved {
    pub order_id: Uuid,
    pub fallout_case_id: Uuid,
    pub task_key: String,
    pub action: String,
    pub reason: String,
}

/// Every task of the order's plan is done: the order is `completed` and its items are the
/// customer's assets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderCompleted {
    pub order_id: Uuid,
    pub customer_account_id: Uuid,
    pub completed_at: DateTime<Utc>,
    /// The assets made or updated, one per order item.
    pub asset_ids: Vec<Uuid>,
    /// Tasks skipped by a repair rather than done.
    pub skipped_tasks: Vec<String>,
}

/// The order was cancelled (by a repair of its fallout): its fulfillment stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessDefinitionDeployed {
    pub process_definition_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
    pub checksum: String,
    /// The deployment it was deployed in, with the other files deployed together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
}

/// A new version of a DMN decision was deployed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionDefinitionDeployed {
    pub decision_definition_id: Uuid,
    pub decision_id: String,
    pub version: i32,
    /// The `<definitions>` (decision requirements graph) it belongs to.
    pub decision_requirements_id: String,
    pub checksum: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_tag: Option<String>,
    pub deployment_id: Uuid,
}

// ---- Quotes --------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteCreated {
    pub quote_id: Uuid,
    pub customer_account_id: Uuid,
    pub catalog_version_id: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteItemAdded {
    pub quote_id: Uuid,
    pub line_no: i32,
    pub offering: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteItemChanged {
    pub quote_id: Uuid,
    pub line_no: i32,
    pub offering: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteItemRemoved {
    pub quote_id: Uuid,
    pub line_no: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteTermsChanged {
    pub quote_id: Uuid,
    /// `None` (null): the terms were cleared.
    pub special_terms: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotePriced {
    pub quote_id: Uuid,
    pub snapshot_hash: String,
    pub totals: Totals,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteSubmitted {
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub snapshot_hash: String,
    pub policy_version: i32,
    /// The approval levels required, in order; empty: approval-free.
    pub levels: Vec<String>,
}

/// Why the policy requires a level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalReason {
    pub level: String,
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteApprovalRequested {
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub levels: Vec<String>,
    pub reasons: Vec<ApprovalReason>,
    pub process_instance_id: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalDecision {
    Approved,
    Rejected,
    Returned,
}

/// An approver's decision that moved the quote: the payload of [`QuoteApproved`],
/// [`QuoteRejected`] and [`QuoteReturned`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteDecision {
    #[serde(default)]
    pub quote_id: Uuid,
    #[serde(default)]
    pub revision_no: i32,
    #[serde(default)]
    pub level: String,
    pub decision: ApprovalDecision,
    #[serde(default)]
    pub decided_by: String,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub task_id: Uuid,
}

/// The last required level approved the quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuoteApproved(pub QuoteDecision);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuoteRejected(pub QuoteDecision);

/// Returned for revision: the quote is a draft again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuoteReturned(pub QuoteDecision);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteAccepted {
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub snapshot_hash: String,
    pub accepted_by: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteCancelled {
    pub quote_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteConverted {
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub order_id: Uuid,
    pub snapshot_hash: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteExpired {
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub valid_until: NaiveDate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuoteRevised {
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub previous_revision_no: i32,
    /// The status the previous revision was frozen in.
    pub previous_status: String,
    pub reason: Option<String>,
}
