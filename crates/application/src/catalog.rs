//! Catalog versions: authoring a draft (create, import, edit one element), publishing and
//! activating it, reading and listing versions, exporting a document; the offering search over a
//! version; and which version a request means ([`version_meant`]), shared with the engines
//! ([`crate::configuration`]).
//!
//! The catalog cache is kept here, next to what changes it: publishing drops the version from the
//! cache and activating drops the tenant's held schedule, so that this process sees the change at
//! once (other processes drop their schedule when PostgreSQL notifies the activation).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use cpq_catalog::document::Collection;
use cpq_catalog::store::{self, OfferingHit, OfferingSearch};
use cpq_catalog::version::{instant_for, CatalogVersion};
use cpq_catalog::{commands, CatalogDocument};
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_order::model::plan::FULFILLMENT_JOB_TYPES;
use cpq_order::FULFILLMENT_PROCESS;
use cpq_workflow::bpmn::USER_TASK_JOB_TYPE;
use serde_json::Value;
use uuid::Uuid;

use crate::{Call, Operation, Services};

const AUTHORS: &[Role] = &[Role::CatalogManager];
/// Who may read the catalog: every read here (entry points that check roles before building an
/// operation, such as a paged search, name it).
pub const READERS: &[Role] = &[
    Role::CatalogManager,
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
];

/// The day a request means: the one it names, else the call's.
pub fn day_meant(date: Option<NaiveDate>, call: &Call) -> NaiveDate {
    date.unwrap_or_else(|| call.meta.occurred_at.date_naive())
}

/// The version in force at the instant `date` means for the call (its own instant for today).
pub async fn version_in_force(
    services: &Services,
    call: &Call,
    date: NaiveDate,
) -> Result<Uuid, Error> {
    let at = instant_for(date, call.meta.occurred_at);
    services
        .catalogs
        .active(&services.db, &call.principal.tenant, at)
        .await
}

/// The version a request means: the one it names (unchecked: loading it checks it), else the one
/// in force on `date`.
pub async fn version_meant(
    services: &Services,
    call: &Call,
    named: Option<Uuid>,
    date: NaiveDate,
) -> Result<Uuid, Error> {
    match named {
        Some(v) => Ok(v),
        None => version_in_force(services, call, date).await,
    }
}

/// A draft, empty or from a whole document (bulk import).
pub struct CreateVersion {
    pub label: String,
    pub document: CatalogDocument,
}

impl Operation for CreateVersion {
    type Output = CatalogVersion;
    const ROLES: &'static [Role] = AUTHORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CatalogVersion, Error> {
        commands::create_draft(tx, &call.meta, &self.label, &self.document).await
    }
}

pub struct FetchVersion(pub Uuid);

impl Operation for FetchVersion {
    type Output = CatalogVersion;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CatalogVersion, Error> {
        store::catalog_version_fetch(tx, &call.principal.tenant, self.0)
            .await?
            .ok_or_else(|| Error::not_found("catalog version", self.0))
    }
}

/// One page of versions in id order: at most `limit` after `after`.
pub struct ListVersions {
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListVersions {
    type Output = Vec<CatalogVersion>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        store::catalog_version_list(tx, &call.principal.tenant, self.after, self.limit).await
    }
}

/// A version's whole document, as imported.
pub struct ExportDocument(pub Uuid);

impl Operation for ExportDocument {
    type Output = Value;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Value, Error> {
        store::catalog_version_document(tx, &call.principal.tenant, self.0)
            .await?
            .ok_or_else(|| Error::not_found("catalog version", self.0))
    }
}

/// Replaces a draft's whole document.
pub struct ImportDocument {
    pub id: Uuid,
    pub expected_version: i64,
    pub document: CatalogDocument,
}

impl Operation for ImportDocument {
    type Output = CatalogVersion;
    const ROLES: &'static [Role] = AUTHORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CatalogVersion, Error> {
        commands::replace_document(
            tx,
            &call.meta,
            self.id,
            self.expected_version,
            &self.document,
        )
        .await
    }
}

/// Puts one element into a draft's collection (`element: Some`) or removes it (`None`).
pub struct EditElement {
    pub id: Uuid,
    pub expected_version: i64,
    pub collection: Collection,
    pub key: String,
    pub element: Option<Value>,
}

impl Operation for EditElement {
    type Output = CatalogVersion;
    const ROLES: &'static [Role] = AUTHORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CatalogVersion, Error> {
        commands::edit_element(
            tx,
            &call.meta,
            self.id,
            self.expected_version,
            self.collection.as_str(),
            &self.key,
            self.element,
        )
        .await
    }
}

/// The job types a technical catalog's tasks may name: those the deployed `order-fulfillment`
/// process declares (every deployed version), and [`FULFILLMENT_JOB_TYPES`], which the
/// fulfillment process to come will handle (until it is deployed, the list is what lets a
/// technical catalog be published at all).
pub async fn handled_job_types(tx: &mut Tx) -> Result<BTreeSet<String>, Error> {
    let mut handled =
        cpq_order::store::process_definition_job_types(tx, FULFILLMENT_PROCESS).await?;
    handled.remove(USER_TASK_JOB_TYPE);
    handled.extend(FULFILLMENT_JOB_TYPES.iter().map(|t| (*t).to_owned()));
    Ok(handled)
}

/// Validates, compiles and publishes a draft; its tasks' job types must be handled
/// ([`handled_job_types`]).
pub struct PublishVersion {
    pub id: Uuid,
    pub expected_version: i64,
}

impl Operation for PublishVersion {
    type Output = CatalogVersion;
    const ROLES: &'static [Role] = AUTHORS;

    async fn run(
        self,
        services: &Services,
        tx: &mut Tx,
        call: &Call,
    ) -> Result<CatalogVersion, Error> {
        let handled = handled_job_types(tx).await?;
        let v = commands::publish(
            tx,
            &call.meta,
            self.id,
            self.expected_version,
            Some(&handled),
        )
        .await?;
        // Safe before the commit: until then the version is a draft, which the cache never holds.
        services
            .catalogs
            .invalidate(&call.principal.tenant, self.id)
            .await;
        Ok(v)
    }
}

/// Puts a published version in force from `effective_from`.
pub struct ActivateVersion {
    pub id: Uuid,
    pub effective_from: DateTime<Utc>,
}

impl Operation for ActivateVersion {
    type Output = CatalogVersion;
    const ROLES: &'static [Role] = AUTHORS;

    async fn run(
        self,
        services: &Services,
        tx: &mut Tx,
        call: &Call,
    ) -> Result<CatalogVersion, Error> {
        let v = commands::activate(tx, &call.meta, self.id, self.effective_from).await?;
        // This process drops the tenant's schedule now, every process (this one included) again
        // when PostgreSQL notifies the committed activation.
        services.catalogs.schedules.forget(&call.principal.tenant);
        Ok(v)
    }
}

/// One page of a search of the offerings of a catalog version, in code order.
pub struct SearchOfferings<R> {
    /// Words in the code, name or description (the last matches as a prefix).
    pub text: Option<String>,
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    /// Effective date (default: the call's day); also picks the version in force then.
    pub date: Option<NaiveDate>,
    /// A specific published version instead of the one in force.
    pub version: Option<Uuid>,
    /// Components that are only sold inside bundles too.
    pub include_components: bool,
    /// The code the page starts after, read once the version searched and the date are known
    /// (a page only continues a search of the same version on the same date).
    pub resume: R,
    pub limit: i64,
}

/// What [`SearchOfferings`] found, and in which version on which date.
pub struct OfferingPage {
    pub catalog_version: Uuid,
    pub date: NaiveDate,
    pub hits: Vec<OfferingHit>,
}

impl<R> Operation for SearchOfferings<R>
where
    R: FnOnce(Uuid, NaiveDate) -> Result<Option<String>, Error> + Send,
{
    type Output = OfferingPage;
    const ROLES: &'static [Role] = READERS;

    async fn run(
        self,
        services: &Services,
        tx: &mut Tx,
        call: &Call,
    ) -> Result<OfferingPage, Error> {
        let tenant = &call.principal.tenant;
        let date = day_meant(self.date, call);
        let version = match self.version {
            // A named version must be one of the caller's published versions, as for validate
            // and price (404 otherwise); the compiled version is usually held in process already.
            Some(v) => {
                services.catalogs.compiled(&services.db, tenant, v).await?;
                v
            }
            None => version_in_force(services, call, date).await?,
        };
        let after = (self.resume)(version, date)?;
        let filter = OfferingSearch {
            text: self.text,
            market: self.market,
            channel: self.channel,
            segment: self.segment,
            date: Some(date),
            sellable_only: !self.include_components,
        };
        let hits = store::catalog_offering_search(
            tx,
            tenant,
            version,
            &filter,
            after.as_deref(),
            self.limit,
        )
        .await?;
        Ok(OfferingPage {
            catalog_version: version,
            date,
            hits,
        })
    }
}
