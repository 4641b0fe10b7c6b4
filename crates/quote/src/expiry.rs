//! Expiry: open quotes past their validity expire, each in its own tenant transaction, with its
//! approval process (if any) cancelled, an audit record and a `quote.expired` event. The worker
//! runs [`expire_due`] on its timer scan.

use chrono::{NaiveDate, Utc};
use cpq_audit::events::QuoteExpired;
use cpq_audit::CommandMeta;
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, Tx};
use sqlx::PgPool;
use uuid::Uuid;

use crate::commands::{audit_event, change, end_approval};
use crate::model::lifecycle::{apply, Action};
use crate::store::{self, QuoteFields};

/// Expires one quote if it is still open and past its validity on `today`; `false` otherwise
/// (someone changed it since the scan).
pub async fn expire(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    today: NaiveDate,
) -> Result<bool, Error> {
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let Ok(next) = apply(q.status, Action::Expire) else {
        return Ok(false);
    };
    if q.valid_until >= today {
        return Ok(false);
    }
    end_approval(tx, meta, &q).await?;
    store::quote_update(
        tx,
        &change(meta, &q, next, q.price_stale),
        QuoteFields::None,
    )
    .await?;
    let event = QuoteExpired {
        quote_id: id,
        revision_no: q.revision_no,
        valid_until: q.valid_until,
    };
    audit_event(tx, meta, "quote.expire", &event).await?;
    Ok(true)
}

/// Expires up to `limit` quotes whose validity ended before `today`, across tenants. Returns how
/// many expired; failures are logged and retried by the next scan.
pub async fn expire_due(pool: &PgPool, today: NaiveDate, limit: i32) -> Result<usize, Error> {
    let due = store::quote_expiry_due(pool, today, limit).await?;
    let mut expired = 0;
    for (id, tenant_id) in due {
        let Ok(t) = TenantId::parse(&tenant_id) else {
            continue;
        };
        let result = async {
            let mut tx = tenant::begin(pool, &t).await.map_err(db_error)?;
            let meta = CommandMeta {
                tenant: t.clone(),
                actor_subject: "system:quote-expiry".into(),
                correlation_id: format!("quote-expiry-{id}"),
                causation_id: None,
                occurred_at: Utc::now(),
            };
            let done = expire(&mut tx, &meta, id, today).await?;
            tx.commit().await.map_err(db_error)?;
            Ok::<bool, Error>(done)
        }
        .await;
        match result {
            Ok(true) => {
                expired += 1;
                metrics::counter!("quotes_expired_total").increment(1);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, quote = %id, "expiring a quote failed; the next scan retries it")
            }
        }
    }
    Ok(expired)
}
