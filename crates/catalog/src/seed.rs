//! Loading a whole catalog as a published, active version in one go (`cpq-admin seed`). Safe to
//! repeat: the version is labelled with its content hash, so the same document is loaded once.
//! Seeding publishes through [`commands::publish`] directly, as the platform's operator, and so
//! does not check the technical catalog's job types against the deployed processes (the API's
//! publish operation in `cpq-application` does).

use chrono::{DateTime, Utc};
use cpq_audit::CommandMeta;
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed};
use sqlx::PgPool;

use crate::document::CatalogDocument;
use crate::{commands, content_hash, store};

/// The built-in demo catalog: business internet, SD-WAN bundle, mobile fleet, cloud backup.
pub const DEMO_TELECOM: &str = include_str!("../../../catalogs/demo-telecom.json");

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeded {
    /// Created, published and activated now.
    Loaded {
        id: uuid::Uuid,
        label: String,
        effective_from: DateTime<Utc>,
    },
    /// The same content was loaded before.
    AlreadyLoaded { id: uuid::Uuid, label: String },
}

pub async fn seed(
    pool: &PgPool,
    tenant_id: &TenantId,
    name: &str,
    doc: &CatalogDocument,
    effective_from: DateTime<Utc>,
    actor: &str,
) -> Result<Seeded, Error> {
    let hash = content_hash(doc);
    let label = format!("{name}-{}", &hash[..12]);
    let now = Utc::now();
    let meta = CommandMeta {
        tenant: tenant_id.clone(),
        actor_subject: actor.to_owned(),
        correlation_id: format!("seed-{label}"),
        causation_id: None,
        occurred_at: now,
    };
    let mut tx = tenant::begin(pool, tenant_id).await.map_err(db_error)?;
    if let Some(existing) = store::catalog_version_find_by_label(&mut tx, tenant_id, &label).await?
    {
        if store::catalog_activation_exists(&mut tx, tenant_id, existing.id).await? {
            return Ok(Seeded::AlreadyLoaded {
                id: existing.id,
                label,
            });
        }
    }
    let v = match store::catalog_version_find_by_label(&mut tx, tenant_id, &label).await? {
        Some(v) => v,
        None => {
            let draft = commands::create_draft(&mut tx, &meta, &label, doc).await?;
            commands::publish(&mut tx, &meta, draft.id, draft.version, None).await?
        }
    };
    // Another version may already be active from that instant: then this one starts now.
    let taken: bool = timed(
        "catalog_activation_taken",
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM catalog_activation WHERE tenant_id = $1 AND effective_from = $2)")
            .bind(tenant_id.as_str())
            .bind(effective_from)
            .fetch_one(&mut *tx),
    )
    .await
    .map_err(db_error)?;
    let from = if taken { now } else { effective_from };
    commands::activate(&mut tx, &meta, v.id, from).await?;
    timed("transaction_commit", tx.commit())
        .await
        .map_err(db_error)?;
    Ok(Seeded::Loaded {
        id: v.id,
        label,
        effective_from: from,
    })
}
