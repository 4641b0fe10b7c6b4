//! What each consumer does with an event, inside the transaction that also writes its inbox row.
//!
//! - `quote-search-projection`: one `quote_search` row per quote, from the quote and order
//!   topics. The two are independent streams, so the result must not depend on which arrives
//!   first: an order event for a quote the projection has not seen yet writes a partial row
//!   (converted, with its order and customer) that the quote's events complete. The quote's own
//!   fields follow its stream in order (`last_position`; an older quote event after a newer one is
//!   refused as out of order); the row's last event and time come from the event with the highest
//!   outbox position (`latest_position`), so a late older event never overwrites a newer one.
//!   Events are read as their `cpq_audit::events` types ([`QuoteSearchEvent`]); a payload that
//!   does not fit its type (a field of the wrong JSON type) or a schema version this consumer
//!   does not know is refused as permanent. Missing fields read as zero values, taken as "not
//!   given": the row keeps what it had.
//! - `audit-export`: every event of every topic, as received, into `audit_export`.

use cpq_audit::events::{
    decode, DomainEvent, OrderCreated, QuoteAccepted, QuoteApprovalRequested, QuoteApproved,
    QuoteCancelled, QuoteConverted, QuoteCreated, QuoteExpired, QuoteItemAdded, QuoteItemChanged,
    QuoteItemRemoved, QuotePriced, QuoteRejected, QuoteReturned, QuoteRevised, QuoteSubmitted,
    QuoteTermsChanged,
};
use cpq_db::timed;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::envelope::Envelope;

/// Why an event could not be applied. Transient failures are retried with back-off; after the
/// retries, and at once for permanent ones, the event goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerError {
    pub code: String,
    pub category: Category,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Transient,
    Permanent,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Transient => "transient",
            Category::Permanent => "permanent",
        }
    }
}

impl HandlerError {
    pub fn transient(code: &str, message: impl Into<String>) -> HandlerError {
        HandlerError {
            code: code.into(),
            category: Category::Transient,
            message: message.into(),
        }
    }
    pub fn permanent(code: &str, message: impl Into<String>) -> HandlerError {
        HandlerError {
            code: code.into(),
            category: Category::Permanent,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::transient("database", e.to_string())
    }
}

/// The consumers this platform runs, one consumer group each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    QuoteSearch,
    AuditExport,
}

impl Projection {
    pub const ALL: [Projection; 2] = [Projection::QuoteSearch, Projection::AuditExport];

    /// The consumer's name: its group id (after the namespace) and its inbox key.
    pub fn name(self) -> &'static str {
        match self {
            Projection::QuoteSearch => "cpq.quote-search-projection",
            Projection::AuditExport => "cpq.audit-export",
        }
    }

    pub fn parse(raw: &str) -> Option<Projection> {
        Projection::ALL
            .into_iter()
            .find(|p| p.name() == raw || p.name().trim_start_matches("cpq.") == raw)
    }

    /// Catalogue topics it reads (every topic that lists its group).
    pub fn topics(self, catalogue: &crate::catalogue::Catalogue) -> Vec<String> {
        catalogue
            .topics
            .iter()
            .filter(|t| t.consumer_groups.iter().any(|g| g == self.name()))
            .map(|t| t.name.clone())
            .collect()
    }

    /// Applies `e` to the live projection.
    pub async fn apply(
        self,
        conn: &mut PgConnection,
        topic: &str,
        e: &Envelope,
    ) -> Result<(), HandlerError> {
        self.apply_to(conn, Target::Live, topic, e).await
    }

    /// Applies `e` to the live projection or to its rebuild table (replays).
    pub async fn apply_to(
        self,
        conn: &mut PgConnection,
        target: Target,
        topic: &str,
        e: &Envelope,
    ) -> Result<(), HandlerError> {
        match self {
            Projection::QuoteSearch => quote_search(conn, self.table(target), e).await,
            Projection::AuditExport => audit_export(conn, self.table(target), topic, e).await,
        }
    }

    /// The table `target` names for this projection.
    pub fn table(self, target: Target) -> &'static str {
        match (self, target) {
            (Projection::QuoteSearch, Target::Live) => "quote_search",
            (Projection::QuoteSearch, Target::Rebuild) => "quote_search_rebuild",
            (Projection::AuditExport, Target::Live) => "audit_export",
            (Projection::AuditExport, Target::Rebuild) => "audit_export_rebuild",
        }
    }
}

/// Where a projection writes: its live table, or the rebuild table a replay fills and compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Live,
    Rebuild,
}

/// What the quote search reads of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum QuoteSearchEvent {
    /// An event of the quote's own stream; one of a type this projection does not know still
    /// counts as the quote's last event, with no facts.
    Quote(QuoteFacts),
    Order(OrderCreated),
}

/// What one quote event says about its row; `None`: the event does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuoteFacts {
    pub status: Option<&'static str>,
    pub customer_account_id: Option<Uuid>,
    pub revision_no: Option<i32>,
    pub snapshot_hash: Option<String>,
    pub order_id: Option<Uuid>,
    /// The items or the revision changed: the stored price no longer holds.
    pub clears_price: bool,
}

/// Zero values (a field the payload did not carry) are not facts.
fn given_id(id: Uuid) -> Option<Uuid> {
    Some(id).filter(|id| !id.is_nil())
}

fn given_revision(n: i32) -> Option<i32> {
    Some(n).filter(|n| *n > 0)
}

fn given_text(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// `e`'s payload as `E`, refused as permanent when it does not fit.
fn read<E: DomainEvent>(e: &Envelope) -> Result<E, HandlerError> {
    if e.schema_version != E::SCHEMA_VERSION {
        return Err(HandlerError::permanent(
            "unknown-schema-version",
            format!(
                "{} v{} (this consumer reads v{})",
                E::TYPE,
                e.schema_version,
                E::SCHEMA_VERSION
            ),
        ));
    }
    decode(&e.payload).map_err(|err| {
        HandlerError::permanent(
            "invalid-payload",
            format!("{} v{}: {err}", E::TYPE, E::SCHEMA_VERSION),
        )
    })
}

impl QuoteSearchEvent {
    /// What the quote search reads of `e`; `None` for events of other aggregates and order
    /// events other than `order.created`.
    pub fn read(e: &Envelope) -> Result<Option<QuoteSearchEvent>, HandlerError> {
        if e.aggregate_type == OrderCreated::AGGREGATE {
            return Ok(match e.event_type.as_str() {
                OrderCreated::TYPE => Some(QuoteSearchEvent::Order(read(e)?)),
                _ => None,
            });
        }
        if e.aggregate_type != QuoteCreated::AGGREGATE {
            return Ok(None);
        }
        let draft = Some("draft");
        let facts = match e.event_type.as_str() {
            QuoteCreated::TYPE => {
                let q: QuoteCreated = read(e)?;
                QuoteFacts {
                    status: draft,
                    customer_account_id: given_id(q.customer_account_id),
                    ..QuoteFacts::default()
                }
            }
            QuoteRevised::TYPE => {
                let q: QuoteRevised = read(e)?;
                QuoteFacts {
                    status: draft,
                    revision_no: given_revision(q.revision_no),
                    clears_price: true,
                    ..QuoteFacts::default()
                }
            }
            QuoteItemAdded::TYPE => {
                read::<QuoteItemAdded>(e)?;
                QuoteFacts {
                    status: draft,
                    clears_price: true,
                    ..QuoteFacts::default()
                }
            }
            QuoteItemChanged::TYPE => {
                read::<QuoteItemChanged>(e)?;
                QuoteFacts {
                    status: draft,
                    clears_price: true,
                    ..QuoteFacts::default()
                }
            }
            QuoteItemRemoved::TYPE => {
                read::<QuoteItemRemoved>(e)?;
                QuoteFacts {
                    status: draft,
                    clears_price: true,
                    ..QuoteFacts::default()
                }
            }
            QuoteTermsChanged::TYPE => {
                read::<QuoteTermsChanged>(e)?;
                QuoteFacts {
                    status: draft,
                    ..QuoteFacts::default()
                }
            }
            QuotePriced::TYPE => {
                let q: QuotePriced = read(e)?;
                QuoteFacts {
                    status: Some("priced"),
                    snapshot_hash: given_text(q.snapshot_hash),
                    ..QuoteFacts::default()
                }
            }
            QuoteSubmitted::TYPE => {
                let q: QuoteSubmitted = read(e)?;
                QuoteFacts {
                    status: Some(if q.levels.is_empty() {
                        "submitted"
                    } else {
                        "approval-pending"
                    }),
                    revision_no: given_revision(q.revision_no),
                    snapshot_hash: given_text(q.snapshot_hash),
                    ..QuoteFacts::default()
                }
            }
            QuoteApprovalRequested::TYPE => {
                let q: QuoteApprovalRequested = read(e)?;
                QuoteFacts {
                    status: Some("approval-pending"),
                    revision_no: given_revision(q.revision_no),
                    ..QuoteFacts::default()
                }
            }
            QuoteApproved::TYPE => decided("approved", read::<QuoteApproved>(e)?.0.revision_no),
            QuoteRejected::TYPE => decided("rejected", read::<QuoteRejected>(e)?.0.revision_no),
            QuoteReturned::TYPE => decided("draft", read::<QuoteReturned>(e)?.0.revision_no),
            QuoteAccepted::TYPE => {
                let q: QuoteAccepted = read(e)?;
                QuoteFacts {
                    status: Some("accepted"),
                    revision_no: given_revision(q.revision_no),
                    snapshot_hash: given_text(q.snapshot_hash),
                    ..QuoteFacts::default()
                }
            }
            QuoteConverted::TYPE => {
                let q: QuoteConverted = read(e)?;
                QuoteFacts {
                    status: Some("converted"),
                    revision_no: given_revision(q.revision_no),
                    snapshot_hash: given_text(q.snapshot_hash),
                    order_id: given_id(q.order_id),
                    ..QuoteFacts::default()
                }
            }
            QuoteCancelled::TYPE => {
                read::<QuoteCancelled>(e)?;
                QuoteFacts {
                    status: Some("cancelled"),
                    ..QuoteFacts::default()
                }
            }
            QuoteExpired::TYPE => {
                let q: QuoteExpired = read(e)?;
                QuoteFacts {
                    status: Some("expired"),
                    revision_no: given_revision(q.revision_no),
                    ..QuoteFacts::default()
                }
            }
            _ => QuoteFacts::default(),
        };
        Ok(Some(QuoteSearchEvent::Quote(facts)))
    }
}

/// An approver's decision that moved the quote to `status`.
fn decided(status: &'static str, revision_no: i32) -> QuoteFacts {
    QuoteFacts {
        status: Some(status),
        revision_no: given_revision(revision_no),
        ..QuoteFacts::default()
    }
}

async fn quote_search(
    conn: &mut PgConnection,
    table: &str,
    e: &Envelope,
) -> Result<(), HandlerError> {
    let facts = match QuoteSearchEvent::read(e)? {
        Some(QuoteSearchEvent::Quote(facts)) => facts,
        Some(QuoteSearchEvent::Order(order)) => {
            return order_into_quote_search(conn, table, e, &order).await
        }
        None => return Ok(()),
    };
    let last: Option<i64> = timed(
        "quote_search_fetch_for_update",
        sqlx::query_scalar(&format!(
            "SELECT last_position FROM {table} WHERE quote_id = $1 FOR UPDATE"
        ))
        .bind(e.aggregate_id)
        .fetch_optional(&mut *conn),
    )
    .await?;
    if last.is_some_and(|l| l > e.outbox_position) {
        return Err(HandlerError::permanent(
            "out-of-order",
            format!(
                "event at outbox position {} arrived after position {} of quote {}",
                e.outbox_position,
                last.unwrap_or_default(),
                e.aggregate_id
            ),
        ));
    }
    // The quote's own fields follow its stream (in order, checked above). A quote with an order
    // is converted for good (conversion is terminal), whichever of the two arrived first. The
    // last event and the time come from the event with the highest outbox position applied.
    timed("quote_search_upsert", sqlx::query(&format!(
        "INSERT INTO {table} (quote_id, tenant_id, customer_account_id, status, revision_no, snapshot_hash, order_id, last_event_id, last_event_type, \
         events_applied, updated_at, last_position, latest_position) \
         VALUES ($1, $2, $3, CASE WHEN $7::uuid IS NOT NULL THEN 'converted' ELSE coalesce($4, 'draft') END, $5, $6, $7, $8, $9, 1, $10, $11, $11) \
         ON CONFLICT (quote_id) DO UPDATE SET \
           customer_account_id = coalesce(EXCLUDED.customer_account_id, {table}.customer_account_id), \
           status = CASE WHEN {table}.order_id IS NOT NULL OR EXCLUDED.order_id IS NOT NULL THEN 'converted' \
                         ELSE coalesce($4, {table}.status) END, \
           revision_no = coalesce(EXCLUDED.revision_no, {table}.revision_no), \
           snapshot_hash = CASE WHEN $12 THEN NULL \
                                ELSE coalesce(EXCLUDED.snapshot_hash, {table}.snapshot_hash) END, \
           order_id = coalesce(EXCLUDED.order_id, {table}.order_id), \
           {latest}, \
           events_applied = {table}.events_applied + 1, last_position = EXCLUDED.last_position",
        latest = latest_event(table),
    ))
    .bind(e.aggregate_id)
    .bind(&e.tenant_id)
    .bind(facts.customer_account_id)
    .bind(facts.status)
    .bind(facts.revision_no)
    .bind(facts.snapshot_hash)
    .bind(facts.order_id)
    .bind(e.event_id)
    .bind(&e.event_type)
    .bind(e.occurred_at)
    .bind(e.outbox_position)
    .bind(facts.clears_price)
    .execute(&mut *conn))
    .await?;
    Ok(())
}

/// `SET` items that take the last event's id, type and time from `EXCLUDED` only when it is later
/// in the outbox than every event the row has seen, and keep the highest position.
fn latest_event(table: &str) -> String {
    let newer = format!("EXCLUDED.latest_position > {table}.latest_position");
    format!(
        "last_event_id = CASE WHEN {newer} THEN EXCLUDED.last_event_id ELSE {table}.last_event_id END, \
         last_event_type = CASE WHEN {newer} THEN EXCLUDED.last_event_type ELSE {table}.last_event_type END, \
         updated_at = CASE WHEN {newer} THEN EXCLUDED.updated_at ELSE {table}.updated_at END, \
         latest_position = greatest({table}.latest_position, EXCLUDED.latest_position)"
    )
}

/// An order event: its quote is converted and has this order. When the quote's own events have
/// not arrived yet (the order topic is another stream), a partial row is written (status
/// `converted`, the order, the customer from the order) that they complete: nothing waits for
/// them and nothing is refused.
async fn order_into_quote_search(
    conn: &mut PgConnection,
    table: &str,
    e: &Envelope,
    order: &OrderCreated,
) -> Result<(), HandlerError> {
    let quote = given_id(order.quote_id).ok_or_else(|| {
        HandlerError::permanent("missing-quote-id", "an order event without quote_id")
    })?;
    let customer = given_id(order.customer_account_id);
    let order = given_id(order.order_id).unwrap_or(e.aggregate_id);
    timed("quote_search_upsert_order", sqlx::query(&format!(
        "INSERT INTO {table} (quote_id, tenant_id, customer_account_id, status, order_id, last_event_id, last_event_type, \
         events_applied, updated_at, last_position, latest_position) \
         VALUES ($1, $2, $3, 'converted', $4, $5, $6, 1, $7, 0, $8) \
         ON CONFLICT (quote_id) DO UPDATE SET \
           customer_account_id = coalesce({table}.customer_account_id, EXCLUDED.customer_account_id), \
           status = 'converted', order_id = EXCLUDED.order_id, \
           {latest}, \
           events_applied = {table}.events_applied + 1",
        latest = latest_event(table),
    ))
    .bind(quote)
    .bind(&e.tenant_id)
    .bind(customer)
    .bind(order)
    .bind(e.event_id)
    .bind(&e.event_type)
    .bind(e.occurred_at)
    .bind(e.outbox_position)
    .execute(&mut *conn))
    .await?;
    Ok(())
}

async fn audit_export(
    conn: &mut PgConnection,
    table: &str,
    topic: &str,
    e: &Envelope,
) -> Result<(), HandlerError> {
    timed("audit_export_insert", sqlx::query(&format!(
        "INSERT INTO {table} (event_id, tenant_id, topic, event_type, schema_version, aggregate_id, occurred_at, payload, exported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())"
    ))
    .bind(e.event_id)
    .bind(&e.tenant_id)
    .bind(topic)
    .bind(&e.event_type)
    .bind(e.schema_version)
    .bind(e.aggregate_id)
    .bind(e.occurred_at)
    .bind(&e.payload)
    .execute(&mut *conn))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;
    use serde_json::{json, Value};

    use super::*;

    fn envelope(aggregate_type: &str, event_type: &str, payload: Value) -> Envelope {
        Envelope {
            event_id: Uuid::now_v7(),
            outbox_position: 1,
            tenant_id: "acme".into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            occurred_at: Utc::now(),
            correlation_id: "c".into(),
            causation_id: None,
            payload,
        }
    }

    fn facts(event_type: &str, payload: Value) -> QuoteFacts {
        match QuoteSearchEvent::read(&envelope("quote", event_type, payload)).unwrap() {
            Some(QuoteSearchEvent::Quote(f)) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quote_events_give_their_status_and_the_fields_they_carry() {
        let levels = json!({ "quote_id": Uuid::now_v7(), "revision_no": 2, "snapshot_hash": "h", "policy_version": 1, "levels": ["manager"] });
        let f = facts("quote.submitted", levels);
        assert_eq!(f.status, Some("approval-pending"));
        assert_eq!(
            (f.revision_no, f.snapshot_hash.as_deref()),
            (Some(2), Some("h"))
        );
        let free = json!({ "quote_id": Uuid::now_v7(), "levels": [] });
        assert_eq!(facts("quote.submitted", free).status, Some("submitted"));
        let item = facts("quote.item-added", json!({ "line_no": 1 }));
        assert!(item.clears_price && item.status == Some("draft"));
        assert_eq!(
            facts(
                "quote.returned",
                json!({ "decision": "returned", "revision_no": 1 })
            )
            .status,
            Some("draft")
        );
        // Unknown types still count as the quote's last event, with no facts.
        assert_eq!(facts("quote.noted", json!({})), QuoteFacts::default());
    }

    #[test]
    fn missing_fields_are_not_facts_and_misfits_are_permanent() {
        let f = facts("quote.created", json!({ "quote_id": Uuid::now_v7() }));
        assert_eq!((f.status, f.customer_account_id), (Some("draft"), None));
        let wrong = envelope("quote", "quote.priced", json!({ "snapshot_hash": 7 }));
        let err = QuoteSearchEvent::read(&wrong).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.category),
            ("invalid-payload", Category::Permanent)
        );
        let mut v2 = envelope("quote", "quote.created", json!({}));
        v2.schema_version = 2;
        assert_eq!(
            QuoteSearchEvent::read(&v2).unwrap_err().code,
            "unknown-schema-version"
        );
    }

    #[test]
    fn order_created_is_read_and_other_aggregates_are_not() {
        let quote = Uuid::now_v7();
        let e = envelope("order", "order.created", json!({ "quote_id": quote }));
        match QuoteSearchEvent::read(&e).unwrap() {
            Some(QuoteSearchEvent::Order(o)) => {
                assert_eq!((o.quote_id, o.order_id), (quote, Uuid::nil()))
            }
            other => panic!("{other:?}"),
        }
        let e = envelope("customer-account", "customer-account.created", json!({}));
        assert_eq!(QuoteSearchEvent::read(&e).unwrap(), None);
    }
}
