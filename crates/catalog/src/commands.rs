//! Catalog commands. Each runs in the caller's tenant transaction and writes its change, audit
//! record and event together.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cpq_audit::events::{
    CatalogChange, CatalogVersionActivated, CatalogVersionChanged, CatalogVersionCreated,
    CatalogVersionPublished, DomainEvent,
};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, FieldError};
use cpq_db::Tx;
use uuid::Uuid;

use crate::compiled::compile;
use crate::document::CatalogDocument;
use crate::store;
use crate::validate::{check_job_types, Problem};
use crate::version::{CatalogVersion, VersionStatus};

pub const AGGREGATE: &str = "catalog-version";

/// The audit record of a catalog command and its one event, with the event's payload as the
/// record's `after`.
async fn audit<E: DomainEvent>(
    tx: &mut Tx,
    meta: &CommandMeta,
    action: &'static str,
    event: &E,
) -> Result<(), Error> {
    let event = NewEvent::of(event)?;
    let audit = AuditEntry {
        action,
        aggregate_type: E::AGGREGATE,
        aggregate_id: event.aggregate_id,
        before: None,
        after: Some(event.payload.clone()),
        reason: None,
    };
    record(tx, meta, &audit, &[event]).await.map(|_| ())
}

fn label_ok(label: &str) -> Result<(), Error> {
    if label.trim().is_empty() || label.chars().count() > 64 {
        return Err(Error::validation(vec![FieldError::new(
            "label",
            "invalid-format",
            "a label is 1-64 characters",
        )]));
    }
    Ok(())
}

pub async fn create_draft(
    tx: &mut Tx,
    meta: &CommandMeta,
    label: &str,
    document: &CatalogDocument,
) -> Result<CatalogVersion, Error> {
    label_ok(label)?;
    let v = CatalogVersion {
        id: Uuid::now_v7(),
        tenant: meta.tenant.clone(),
        label: label.trim().to_owned(),
        status: VersionStatus::Draft,
        content_hash: None,
        version: 1,
        created_at: meta.occurred_at,
        created_by: meta.actor_subject.clone(),
        updated_at: meta.occurred_at,
        updated_by: meta.actor_subject.clone(),
        published_at: None,
        published_by: None,
    };
    store::catalog_version_insert(tx, &v, document).await?;
    let event = CatalogVersionCreated {
        catalog_version_id: v.id,
        label: v.label.clone(),
        offerings: document.offerings.len(),
    };
    audit(tx, meta, "catalog-version.create", &event).await?;
    Ok(v)
}

/// A draft's document, locked, after checking the caller saw its current version.
async fn lock_draft(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
) -> Result<(CatalogVersion, CatalogDocument), Error> {
    let (v, doc) = store::catalog_version_fetch_document_for_update(tx, &meta.tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("catalog version", id))?;
    if v.version != expected {
        return Err(Error::PreconditionFailed {
            current: v.version.to_string(),
        });
    }
    v.ensure_draft()?;
    Ok((v, doc))
}

/// Replaces a draft's whole document (bulk import into an existing draft).
pub async fn replace_document(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    document: &CatalogDocument,
) -> Result<CatalogVersion, Error> {
    let (v, _) = lock_draft(tx, meta, id, expected).await?;
    let next = v.touched(&meta.actor_subject, meta.occurred_at);
    store::catalog_version_update_draft(tx, &next, document, v.version).await?;
    let event = CatalogVersionChanged {
        catalog_version_id: id,
        change: CatalogChange::Import,
        offerings: Some(document.offerings.len()),
        collection: None,
        key: None,
    };
    audit(tx, meta, "catalog-version.import", &event).await?;
    Ok(next)
}

/// Puts or removes (`element: None`) one element of a draft.
pub async fn edit_element(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    collection: &str,
    key: &str,
    element: Option<serde_json::Value>,
) -> Result<CatalogVersion, Error> {
    let (v, mut doc) = lock_draft(tx, meta, id, expected).await?;
    let invalid = |detail: String| {
        Error::validation(vec![FieldError::new(collection, "invalid-element", detail)])
    };
    let change = match element {
        Some(e) => {
            doc.upsert(collection, key, e).map_err(invalid)?;
            CatalogChange::Put
        }
        None => {
            if !doc.remove(collection, key).map_err(invalid)? {
                return Err(Error::not_found(
                    "catalog element",
                    format!("{collection}/{key}"),
                ));
            }
            CatalogChange::Remove
        }
    };
    let next = v.touched(&meta.actor_subject, meta.occurred_at);
    store::catalog_version_update_draft(tx, &next, &doc, v.version).await?;
    let event = CatalogVersionChanged {
        catalog_version_id: id,
        change,
        offerings: None,
        collection: Some(collection.to_owned()),
        key: Some(key.to_owned()),
    };
    audit(tx, meta, "catalog-version.edit", &event).await?;
    Ok(next)
}

/// Validates, compiles and publishes a draft; refuses with every problem when it cannot. With
/// `handled` (the job types some process handles: `cpq-application`'s publish operation reads
/// them), a task whose job type is not among them is a problem too; seeding (`crate::seed`,
/// the operator's trusted files) does not check job types.
pub async fn publish(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    handled: Option<&BTreeSet<String>>,
) -> Result<CatalogVersion, Error> {
    let (v, doc) = lock_draft(tx, meta, id, expected).await?;
    let unhandled = handled
        .map(|h| check_job_types(&doc, h))
        .unwrap_or_default();
    let refuse = |problems: Vec<Problem>| {
        Error::validation(
            problems
                .into_iter()
                .map(|p| FieldError::new(p.path, p.kind, p.detail))
                .collect(),
        )
    };
    let compiled = match compile(&doc) {
        Ok(compiled) if unhandled.is_empty() => compiled,
        Ok(_) => return Err(refuse(unhandled)),
        Err(mut problems) => {
            problems.extend(unhandled);
            return Err(refuse(problems));
        }
    };
    let mut next = v.touched(&meta.actor_subject, meta.occurred_at);
    next.status = VersionStatus::Published;
    next.content_hash = Some(compiled.content_hash.clone());
    next.published_at = Some(meta.occurred_at);
    next.published_by = Some(meta.actor_subject.clone());
    store::catalog_version_publish(tx, &next, &compiled, v.version).await?;
    store::catalog_offering_insert_all(tx, &meta.tenant, id, &doc).await?;
    let event = CatalogVersionPublished {
        catalog_version_id: id,
        label: next.label.clone(),
        content_hash: compiled.content_hash.clone(),
    };
    audit(tx, meta, "catalog-version.publish", &event).await?;
    Ok(next)
}

/// Puts a published version in force from `effective_from`.
pub async fn activate(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    effective_from: DateTime<Utc>,
) -> Result<CatalogVersion, Error> {
    let v = store::catalog_version_fetch(tx, &meta.tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("catalog version", id))?;
    v.ensure_published()?;
    store::catalog_activation_insert(
        tx,
        &meta.tenant,
        id,
        effective_from,
        meta.occurred_at,
        &meta.actor_subject,
    )
    .await?;
    let event = CatalogVersionActivated {
        catalog_version_id: id,
        effective_from,
    };
    audit(tx, meta, "catalog-version.activate", &event).await?;
    Ok(v)
}
