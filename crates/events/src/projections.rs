//! What each consumer does with an event, inside the transaction that also writes its inbox row.
//!
//! - `quote-search-projection`: one `quote_search` row per quote, from the quote and order
//!   topics. The two are independent streams, so the result must not depend on which arrives
//!   first: an order event for a quote the projection has not seen yet writes a partial row
//!   (converted, with its order and customer) that the quote's events complete. The quote's own
//!   fields follow its stream in order (`last_position`; an older quote event after a newer one is
//!   refused as out of order); the row's last event and time come from the event with the highest
//!   outbox position (`latest_position`), so a late older event never overwrites a newer one.
//! - `audit-export`: every event of every topic, as received, into `audit_export`.

use cpq_db::timed;
use serde::Serialize;
use serde_json::Value;
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

fn uuid_field(payload: &Value, field: &str) -> Option<Uuid> {
    payload
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

async fn quote_search(
    conn: &mut PgConnection,
    table: &str,
    e: &Envelope,
) -> Result<(), HandlerError> {
    if e.event_type.starts_with("order.") {
        return order_into_quote_search(conn, table, e).await;
    }
    if !e.event_type.starts_with("quote.") {
        return Ok(());
    }
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
    let status = match e.event_type.as_str() {
        "quote.created"
        | "quote.revised"
        | "quote.returned"
        | "quote.item-added"
        | "quote.item-removed"
        | "quote.item-changed"
        | "quote.terms-changed" => Some("draft"),
        "quote.priced" => Some("priced"),
        "quote.submitted" => Some(
            if e.payload
                .get("levels")
                .and_then(Value::as_array)
                .is_some_and(|l| !l.is_empty())
            {
                "approval-pending"
            } else {
                "submitted"
            },
        ),
        "quote.approval-requested" => Some("approval-pending"),
        "quote.approved" => Some("approved"),
        "quote.rejected" => Some("rejected"),
        "quote.accepted" => Some("accepted"),
        "quote.converted" => Some("converted"),
        "quote.cancelled" => Some("cancelled"),
        "quote.expired" => Some("expired"),
        _ => None,
    };
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
           snapshot_hash = CASE WHEN $9 IN ('quote.revised', 'quote.item-added', 'quote.item-removed', 'quote.item-changed') THEN NULL \
                                ELSE coalesce(EXCLUDED.snapshot_hash, {table}.snapshot_hash) END, \
           order_id = coalesce(EXCLUDED.order_id, {table}.order_id), \
           {latest}, \
           events_applied = {table}.events_applied + 1, last_position = EXCLUDED.last_position",
        latest = latest_event(table),
    ))
    .bind(e.aggregate_id)
    .bind(&e.tenant_id)
    .bind(uuid_field(&e.payload, "customer_account_id"))
    .bind(status)
    .bind(e.payload.get("revision_no").and_then(Value::as_i64).map(|n| n as i32))
    .bind(e.payload.get("snapshot_hash").and_then(Value::as_str))
    .bind(uuid_field(&e.payload, "order_id"))
    .bind(e.event_id)
    .bind(&e.event_type)
    .bind(e.occurred_at)
    .bind(e.outbox_position)
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
) -> Result<(), HandlerError> {
    let quote = uuid_field(&e.payload, "quote_id").ok_or_else(|| {
        HandlerError::permanent("missing-quote-id", "an order event without quote_id")
    })?;
    let order = uuid_field(&e.payload, "order_id").unwrap_or(e.aggregate_id);
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
    .bind(uuid_field(&e.payload, "customer_account_id"))
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
