//! Quotes: create, change lines and terms, price, submit, accept, revise, cancel, read.
//!
//! Each operation runs one command of [`cpq_quote`] (lock, decide, write, audit) or one read of
//! its store. The rules that are the platform's and not the quote model's (the defaults of a new
//! quote, which catalog a line is checked and priced against) are here; conversion into an order
//! is [`crate::orders`]', approval tasks and the policy [`crate::approvals`]'.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cpq_configuration::ConfigItem;
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_quote::model::{NewQuote, Quote};
use cpq_quote::store::{self, ApprovalRecord, QuoteSummary, Revision, RevisionSummary, Worklist};
use cpq_quote::{commands, revisions};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{Call, Operation, Services};

const SELLERS: &[Role] = &[Role::Sales];
/// Who may read quotes (and the orders made of them, [`crate::orders`]).
pub(crate) const READERS: &[Role] = &[
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
];

/// The sales channel of a quote created without one.
const DEFAULT_CHANNEL: &str = "direct";
/// How long a quote created without `valid_until` stays valid, from the day it is created.
const DEFAULT_VALIDITY_DAYS: i64 = 30;

/// Creates a draft quote for an active customer account, pinned to the catalog version in force.
pub struct CreateQuote {
    pub customer_account_id: Uuid,
    /// Default [`DEFAULT_CHANNEL`].
    pub channel: Option<String>,
    /// Default: [`DEFAULT_VALIDITY_DAYS`] from the day of the call.
    pub valid_until: Option<NaiveDate>,
    pub special_terms: Option<String>,
}

impl Operation for CreateQuote {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        let today = call.meta.occurred_at.date_naive();
        let input = NewQuote {
            customer_account_id: self.customer_account_id,
            channel: self.channel.unwrap_or_else(|| DEFAULT_CHANNEL.to_owned()),
            valid_until: self
                .valid_until
                .unwrap_or_else(|| today + Duration::days(DEFAULT_VALIDITY_DAYS)),
            special_terms: self.special_terms,
        };
        commands::create(tx, &call.meta, &input).await
    }
}

/// A quote as it stands and every approval decision on it (all revisions, oldest first).
pub struct QuoteWithApprovals {
    pub quote: Quote,
    pub approvals: Vec<ApprovalRecord>,
}

pub struct FetchQuote(pub Uuid);

impl Operation for FetchQuote {
    type Output = QuoteWithApprovals;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        let tenant = &call.principal.tenant;
        let quote = store::quote_fetch(tx, tenant, self.0).await?;
        let approvals = store::quote_approval_history(tx, tenant, self.0).await?;
        Ok(QuoteWithApprovals { quote, approvals })
    }
}

/// A quote line's content: a configuration, checked against the quote's catalog version, and
/// an optional manual discount.
pub struct LineInput {
    pub configuration: ConfigItem,
    pub manual_discount_percent: Option<Decimal>,
}

/// Adds a line to the quote at `expected_version`; a priced quote's price becomes stale.
pub struct AddLine {
    pub id: Uuid,
    pub expected_version: i64,
    pub line: LineInput,
}

impl Operation for AddLine {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, services: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        let tenant = &call.meta.tenant;
        // Lines are checked against the quote's pinned version (cached: published versions
        // never change).
        let catalog = |version| services.catalogs.compiled(&services.db, tenant, version);
        commands::add_item(
            tx,
            &call.meta,
            self.id,
            self.expected_version,
            catalog,
            &self.line.configuration,
            self.line.manual_discount_percent,
        )
        .await
    }
}

/// Replaces line `line_no`, checked as when it was added.
pub struct ChangeLine {
    pub id: Uuid,
    pub expected_version: i64,
    pub line_no: i32,
    pub line: LineInput,
}

impl Operation for ChangeLine {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, services: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        let tenant = &call.meta.tenant;
        let catalog = |version| services.catalogs.compiled(&services.db, tenant, version);
        commands::change_item(
            tx,
            &call.meta,
            self.id,
            self.expected_version,
            self.line_no,
            catalog,
            &self.line.configuration,
            self.line.manual_discount_percent,
        )
        .await
    }
}

pub struct RemoveLine {
    pub id: Uuid,
    pub expected_version: i64,
    pub line_no: i32,
}

impl Operation for RemoveLine {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        commands::remove_item(tx, &call.meta, self.id, self.expected_version, self.line_no).await
    }
}

/// Sets the quote's non-standard terms; `None` (or empty) clears them.
pub struct SetTerms {
    pub id: Uuid,
    pub expected_version: i64,
    pub special_terms: Option<String>,
}

impl Operation for SetTerms {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        let terms = self.special_terms.as_deref();
        commands::set_terms(tx, &call.meta, self.id, self.expected_version, terms).await
    }
}

/// Prices the current lines with the quote's catalog version.
pub struct PriceQuote {
    pub id: Uuid,
    pub expected_version: i64,
}

impl Operation for PriceQuote {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, services: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        let tenant = &call.meta.tenant;
        let catalog = |version| services.catalogs.compiled(&services.db, tenant, version);
        commands::price(tx, &call.meta, self.id, self.expected_version, catalog).await
    }
}

/// Submits a priced quote; the approval policy decides whether it needs approval.
pub struct SubmitQuote {
    pub id: Uuid,
    pub expected_version: i64,
}

impl Operation for SubmitQuote {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        commands::submit(tx, &call.meta, self.id, self.expected_version).await
    }
}

/// Records the customer's acceptance of an approved or approval-free quote.
pub struct AcceptQuote {
    pub id: Uuid,
    pub expected_version: i64,
}

impl Operation for AcceptQuote {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        commands::accept(tx, &call.meta, self.id, self.expected_version).await
    }
}

/// Opens the next revision in draft; the current one is frozen.
pub struct ReviseQuote {
    pub id: Uuid,
    pub expected_version: i64,
    pub reason: Option<String>,
}

impl Operation for ReviseQuote {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        let reason = self.reason.as_deref();
        revisions::revise(tx, &call.meta, self.id, self.expected_version, reason).await
    }
}

/// Cancels an open quote, ending any approval process.
pub struct CancelQuote {
    pub id: Uuid,
    pub expected_version: i64,
    pub reason: String,
}

impl Operation for CancelQuote {
    type Output = Quote;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Quote, Error> {
        commands::cancel(tx, &call.meta, self.id, self.expected_version, &self.reason).await
    }
}

/// One page of the worklist, newest change first: at most `limit` after `after`
/// (`updated_at`, `quote_id`).
pub struct ListQuotes {
    pub filter: Worklist,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl Operation for ListQuotes {
    type Output = Vec<QuoteSummary>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        let tenant = &call.principal.tenant;
        store::quote_worklist(tx, tenant, &self.filter, self.after, self.limit).await
    }
}

/// The superseded revisions of a quote, newest first.
pub struct ListRevisions(pub Uuid);

impl Operation for ListRevisions {
    type Output = Vec<RevisionSummary>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        store::quote_revision_list(tx, &call.principal.tenant, self.0).await
    }
}

/// A superseded revision as it stood.
pub struct FetchRevision {
    pub id: Uuid,
    pub revision_no: i32,
}

impl Operation for FetchRevision {
    type Output = Revision;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Revision, Error> {
        store::quote_revision_fetch(tx, &call.principal.tenant, self.id, self.revision_no).await
    }
}
