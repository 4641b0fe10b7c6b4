//! Expiry: open quotes past their validity expire, each in its own tenant transaction, with its
//! approval process (if any) cancelled, an audit record and a `quote.expired` event. The worker
//! runs [`expire_due`] on its timer scan.

use chrono::{NaiveDate, Utc};
use cpq_audit::CommandMeta;
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed, Tx};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::approvals::end_approval;
use crate::commands::{event, quote_fetch, touch};
use crate::lifecycle::{apply, Action};

/// Expires one quote if it is still open and past its validity on `today`; `false` otherwise
/// (someone changed it since the scan).
pub async fn expire(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    today: NaiveDate,
) -> Result<bool, Error> {
    let q = quote_fetch(tx, &meta.tenant, id, true).await?;
    let Ok(next) = apply(q.status, Action::Expire) else {
        return Ok(false);
    };
    if q.valid_until >= today {
        return Ok(false);
    }
    end_approval(tx, meta, &q).await?;
    touch(tx, meta, &q, next, q.price_stale).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.expire",
        "quote.expired",
        &updated,
        json!({ "quote_id": id, "revision_no": q.revision_no, "valid_until": q.valid_until }),
    )
    .await?;
    Ok(true)
}

/// Expires up to `limit` quotes whose validity ended before `today`, across tenants. Returns how
/// many expired; failures are logged and retried by the next scan.
pub async fn expire_due(pool: &PgPool, today: NaiveDate, limit: i32) -> Result<usize, Error> {
    let due: Vec<(Uuid, String)> = timed(
        "quote_expiry_due",
        sqlx::query_as("SELECT quote_id, tenant_id FROM quote_expiry_due($1, $2)")
            .bind(today)
            .bind(limit)
            .fetch_all(pool),
    )
    .await
    .map_err(db_error)?;
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
