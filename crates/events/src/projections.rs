//! What each consumer does with an event, inside the transaction that also writes its inbox row.
//!
//! - `quote-search-projection`: one `quote_search` row per quote, from the quote and order
//!   topics. An order event for a quote the projection has not seen yet (the topics are
//!   independent streams) is a transient failure: retried, then dead-lettered, and applied by a
//!   replay once the quote's events are in.
//! - `audit-export`: every event of every topic, as received, into `audit_export`.

use cpq_db::Tx;
use serde::Serialize;
use serde_json::Value;
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

    pub async fn apply(self, tx: &mut Tx, topic: &str, e: &Envelope) -> Result<(), HandlerError> {
        match self {
            Projection::QuoteSearch => quote_search(tx, e).await,
            Projection::AuditExport => audit_export(tx, topic, e).await,
        }
    }
}

fn uuid_field(payload: &Value, field: &str) -> Option<Uuid> {
    payload
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

async fn quote_search(tx: &mut Tx, e: &Envelope) -> Result<(), HandlerError> {
    if e.event_type.starts_with("order.") {
        let quote = uuid_field(&e.payload, "quote_id").ok_or_else(|| {
            HandlerError::permanent("missing-quote-id", "an order event without quote_id")
        })?;
        let order = uuid_field(&e.payload, "order_id").unwrap_or(e.aggregate_id);
        let updated = sqlx::query(
            "UPDATE quote_search SET order_id = $2, last_event_id = $3, last_event_type = $4, events_applied = events_applied + 1, updated_at = $5 \
             WHERE quote_id = $1",
        )
        .bind(quote)
        .bind(order)
        .bind(e.event_id)
        .bind(&e.event_type)
        .bind(e.occurred_at)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(HandlerError::transient(
                "quote-not-projected",
                format!("quote {quote} is not in the projection yet"),
            ));
        }
        return Ok(());
    }
    if !e.event_type.starts_with("quote.") {
        return Ok(());
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
    sqlx::query(
        "INSERT INTO quote_search (quote_id, tenant_id, customer_account_id, status, revision_no, snapshot_hash, order_id, last_event_id, last_event_type, \
         events_applied, updated_at) VALUES ($1, $2, $3, coalesce($4, 'draft'), $5, $6, $7, $8, $9, 1, $10) \
         ON CONFLICT (quote_id) DO UPDATE SET \
           customer_account_id = coalesce(EXCLUDED.customer_account_id, quote_search.customer_account_id), \
           status = coalesce($4, quote_search.status), \
           revision_no = coalesce(EXCLUDED.revision_no, quote_search.revision_no), \
           snapshot_hash = CASE WHEN $9 IN ('quote.revised', 'quote.item-added', 'quote.item-removed', 'quote.item-changed') THEN NULL \
                                ELSE coalesce(EXCLUDED.snapshot_hash, quote_search.snapshot_hash) END, \
           order_id = coalesce(EXCLUDED.order_id, quote_search.order_id), \
           last_event_id = EXCLUDED.last_event_id, last_event_type = EXCLUDED.last_event_type, \
           events_applied = quote_search.events_applied + 1, updated_at = EXCLUDED.updated_at",
    )
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn audit_export(tx: &mut Tx, topic: &str, e: &Envelope) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO audit_export (event_id, tenant_id, topic, event_type, schema_version, aggregate_id, occurred_at, payload, exported_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())",
    )
    .bind(e.event_id)
    .bind(&e.tenant_id)
    .bind(topic)
    .bind(&e.event_type)
    .bind(e.schema_version)
    .bind(e.aggregate_id)
    .bind(e.occurred_at)
    .bind(&e.payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
