//! The quote's pure model: the quote and its lines, the lifecycle state machine ([`lifecycle`]),
//! the approval policy ([`policy`]), and the rules the commands decide with (terms, a line's
//! validity, the version the caller saw, what a draft's submission is refused for, who may decide
//! an approval task and what the decision does). No I/O, no clock: the commands pass in the time
//! and what they read; SQL is [`crate::store`]'s.

pub mod lifecycle;
pub mod policy;

use chrono::{DateTime, NaiveDate, Utc};
use cpq_catalog::CompiledCatalog;
use cpq_configuration::{validate, ConfigItem, Context};
use cpq_core::{Error, FieldError};
use cpq_pricing::{PriceItem, PriceSnapshot, PricingContext};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use lifecycle::{apply, Action, Status};
use policy::{discount_pct, Facts, Rule, Timers};

/// The aggregate type of the quote's audit records and events.
pub const AGGREGATE: &str = "quote";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuoteItem {
    pub line_no: i32,
    pub configuration: Value,
    pub manual_discount_percent: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    pub id: Uuid,
    pub customer_account_id: Uuid,
    pub catalog_version_id: Uuid,
    pub market: String,
    pub channel: String,
    pub segment: String,
    pub currency: String,
    pub valid_until: NaiveDate,
    /// Non-standard terms, if any: they need the approval levels the policy gives them.
    pub special_terms: Option<String>,
    pub owner: String,
    pub status: Status,
    pub revision_no: i32,
    pub price_stale: bool,
    pub snapshot_hash: Option<String>,
    pub price_snapshot: Option<Value>,
    /// What the approval policy decided at submission: levels and reasons.
    pub approval_decision: Option<Value>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    /// The approval process instance of the current submission, if it needed approval.
    pub approval_instance_id: Option<Uuid>,
    /// The order this quote became.
    pub order_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub items: Vec<QuoteItem>,
}

#[derive(Debug, Clone)]
pub struct NewQuote {
    pub customer_account_id: Uuid,
    pub channel: String,
    pub valid_until: NaiveDate,
    pub special_terms: Option<String>,
}

/// What a quote takes from its customer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTerms {
    pub market: String,
    pub segment: String,
    pub currency: String,
    pub status: String,
}

pub fn status_from(raw: &str) -> Result<Status, Error> {
    serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|_| Error::internal(format!("stored quote status {raw}")))
}

pub fn status_text(s: Status) -> Result<String, Error> {
    match serde_json::to_value(s) {
        Ok(Value::String(v)) => Ok(v),
        _ => Err(Error::internal("quote status does not serialize")),
    }
}

/// A new quote is for an active account and valid from `today` on.
pub fn check_new_quote(
    input: &NewQuote,
    account: &AccountTerms,
    today: NaiveDate,
) -> Result<(), Error> {
    if account.status != "active" {
        return Err(Error::conflict(format!(
            "customer account {} is {}; quotes are for active accounts",
            input.customer_account_id, account.status
        )));
    }
    if input.valid_until < today {
        return Err(Error::validation(vec![FieldError::new(
            "valid_until",
            "in-the-past",
            "valid_until must not be in the past",
        )]));
    }
    Ok(())
}

/// The version the caller saw must be the quote's.
pub fn check_version(q: &Quote, expected: i64) -> Result<(), Error> {
    if q.version != expected {
        return Err(Error::PreconditionFailed {
            current: q.version.to_string(),
        });
    }
    Ok(())
}

/// The status `action` leads to, if the caller saw the current version and the lifecycle allows it.
pub fn transition(q: &Quote, expected: i64, action: Action) -> Result<Status, Error> {
    check_version(q, expected)?;
    apply(q.status, action).map_err(|r| Error::conflict(r.to_string()))
}

fn context(q: &Quote, date: NaiveDate) -> Context {
    Context {
        market: Some(q.market.clone()),
        channel: Some(q.channel.clone()),
        segment: Some(q.segment.clone()),
        date,
    }
}

/// Special terms as stored: trimmed, empty is none, at most 4,000 characters.
pub fn terms_text(raw: Option<&str>) -> Result<Option<String>, Error> {
    let t = raw.map(str::trim).filter(|t| !t.is_empty());
    if t.is_some_and(|t| t.chars().count() > 4000) {
        return Err(Error::validation(vec![FieldError::new(
            "special_terms",
            "too-long",
            "special terms are at most 4,000 characters",
        )]));
    }
    Ok(t.map(str::to_owned))
}

/// A line's configuration must be valid in the quote's catalog version (every violation reported)
/// and its manual discount within 0 to 100 percent.
pub fn check_line(
    q: &Quote,
    catalog: &CompiledCatalog,
    date: NaiveDate,
    config: &ConfigItem,
    discount: Option<Decimal>,
) -> Result<(), Error> {
    let v = validate(catalog, &context(q, date), config);
    if !v.valid {
        return Err(Error::validation(
            v.violations
                .into_iter()
                .map(|x| {
                    FieldError::new(
                        if x.path.is_empty() {
                            "configuration".to_owned()
                        } else {
                            format!("configuration.{}", x.path)
                        },
                        &x.rule,
                        x.message,
                    )
                })
                .collect(),
        ));
    }
    if discount.is_some_and(|d| d.is_sign_negative() || d > Decimal::ONE_HUNDRED) {
        return Err(Error::validation(vec![FieldError::new(
            "manual_discount_percent",
            "out-of-range",
            "a manual discount is 0 to 100 percent",
        )]));
    }
    Ok(())
}

/// The next line number: one past the highest.
pub fn next_line_no(q: &Quote) -> i32 {
    q.items.iter().map(|i| i.line_no).max().unwrap_or(0) + 1
}

/// What the pricing engine is asked on `date`: the current lines, each still valid in the quote's
/// catalog version, and the quote's context.
pub fn pricing_request(
    q: &Quote,
    catalog: &CompiledCatalog,
    date: NaiveDate,
) -> Result<(PricingContext, Vec<PriceItem>), Error> {
    if q.items.is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "items",
            "required",
            "a quote needs at least one line to be priced",
        )]));
    }
    let mut items = Vec::with_capacity(q.items.len());
    for i in &q.items {
        let config: ConfigItem = serde_json::from_value(i.configuration.clone())
            .map_err(|e| Error::internal(format!("stored configuration: {e}")))?;
        let v = validate(catalog, &context(q, date), &config);
        if !v.valid {
            return Err(Error::conflict(format!(
                "line {} is no longer valid in this catalog version; change it before pricing",
                i.line_no
            )));
        }
        items.push(PriceItem {
            line_id: format!("{:04}", i.line_no),
            configured: v.configuration,
            manual_discount_percent: i.manual_discount_percent,
        });
    }
    let ctx = PricingContext {
        market: q.market.clone(),
        channel: q.channel.clone(),
        segment: q.segment.clone(),
        currency: q.currency.clone(),
        date,
        customer: serde_json::Map::new(),
    };
    Ok((ctx, items))
}

/// The current price snapshot of a quote that may be submitted. A draft is refused for its
/// price, which is what the caller must fix; otherwise the lifecycle says why, priced or not.
pub fn submittable(q: &Quote, expected: i64) -> Result<PriceSnapshot, Error> {
    check_version(q, expected)?;
    let id = q.id;
    if q.status == Status::Draft {
        return Err(Error::conflict(if q.snapshot_hash.is_some() {
            format!(
                "the quote's price is stale: its items or terms changed after it was priced; \
                 price it again (POST /v1/quotes/{id}/price), then submit"
            )
        } else {
            format!(
                "the quote has not been priced: price it (POST /v1/quotes/{id}/price), then submit"
            )
        }));
    }
    apply(q.status, Action::SubmitApprovalFree).map_err(|r| Error::conflict(r.to_string()))?;
    match (&q.price_snapshot, q.price_stale) {
        (Some(s), false) => serde_json::from_value(s.clone())
            .map_err(|e| Error::internal(format!("stored snapshot: {e}"))),
        _ => Err(Error::conflict(
            "the quote needs a current price before it is submitted",
        )),
    }
}

/// The facts the policy decides on, from a price snapshot and the quote's special terms. The
/// catalog carries no costs yet, so the margin is unknown (a margin-floor rule treats unknown as
/// below the floor).
pub fn facts(snapshot: &PriceSnapshot, special_terms: bool) -> Facts {
    let t = &snapshot.totals;
    Facts {
        line_discounts_pct: snapshot
            .lines
            .iter()
            .map(|l| {
                discount_pct(
                    l.one_time.list,
                    l.one_time.discount,
                    l.recurring.list,
                    l.recurring.discount,
                )
            })
            .collect(),
        overall_discount_pct: discount_pct(
            t.one_time.list,
            t.one_time.discount,
            t.recurring.list,
            t.recurring.discount,
        ),
        deal_size: t.one_time.net + t.recurring.net * Decimal::from(12),
        margin_pct: None,
        non_standard_terms: special_terms,
    }
}

/// A new policy version's problems: levels non-empty and distinct, every rule's level one of
/// them, the timers ISO 8601 durations and an escalation group.
pub fn policy_problems(levels: &[String], rules: &[Rule], timers: &Timers) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if levels.is_empty() {
        problems.push(FieldError::new(
            "levels",
            "required",
            "a policy names its approval levels in order",
        ));
    }
    for (i, l) in levels.iter().enumerate() {
        if l.trim().is_empty() || levels[..i].contains(l) {
            problems.push(FieldError::new(
                format!("levels[{i}]"),
                "invalid",
                "levels are non-empty and distinct",
            ));
        }
    }
    for (i, r) in rules.iter().enumerate() {
        if !levels.contains(&r.level) {
            problems.push(FieldError::new(
                format!("rules[{i}].level"),
                "unknown-level",
                format!("\"{}\" is not one of the levels", r.level),
            ));
        }
    }
    for (field, value) in [
        ("timers.reminder_after", &timers.reminder_after),
        ("timers.escalate_after", &timers.escalate_after),
    ] {
        if cpq_workflow::feel::parse_duration(value).is_err() {
            problems.push(FieldError::new(
                field,
                "not-a-duration",
                format!("\"{value}\" is not an ISO 8601 duration such as PT4H or P2D"),
            ));
        }
    }
    if timers.escalation_group.trim().is_empty() {
        problems.push(FieldError::new(
            "timers.escalation_group",
            "required",
            "escalated tasks go to a group",
        ));
    }
    problems
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Approved,
    Rejected,
    Returned,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
            Verdict::Returned => "returned",
        }
    }
}

/// One approver's decision on one task, with the quote's new state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    pub task_id: Uuid,
    pub level: String,
    pub decision: Verdict,
    pub quote: Quote,
}

/// A decision's comment: trimmed, empty is none; rejecting and returning need one.
pub fn decision_comment(
    verdict: Verdict,
    comment: Option<String>,
) -> Result<Option<String>, Error> {
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if verdict != Verdict::Approved && comment.is_none() {
        return Err(Error::validation(vec![FieldError::new(
            "comment",
            "required",
            format!("a {} quote needs a comment for its owner", verdict.as_str()),
        )]));
    }
    Ok(comment)
}

/// An approval task as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskToDecide<'a> {
    pub task_id: Uuid,
    pub status: &'a str,
    pub assignee: Option<&'a str>,
    pub candidate_groups: &'a [String],
}

/// Whether `subject` (with its groups and roles, `groups`) may decide `task` on a quote owned by
/// `quote_owner`: the task is open, assigned to them or offered to one of their groups, and the
/// quote is not their own.
pub fn authorise_decision(
    task: &TaskToDecide<'_>,
    subject: &str,
    groups: &[String],
    quote_owner: &str,
) -> Result<(), Error> {
    if task.status != "created" {
        return Err(Error::conflict(format!(
            "approval task {} is already {}",
            task.task_id, task.status
        )));
    }
    let offered = match task.assignee {
        Some(a) => a == subject,
        None => task.candidate_groups.iter().any(|g| groups.contains(g)),
    };
    if !offered {
        return Err(Error::Forbidden {
            detail: "this approval task is assigned to someone else, or offered to groups you are not in".into(),
        });
    }
    if quote_owner == subject {
        return Err(Error::Forbidden {
            detail: "approvers cannot decide on their own quotes".into(),
        });
    }
    Ok(())
}

/// The levels the submission's policy decision required.
pub fn required_levels(q: &Quote) -> Vec<String> {
    q.approval_decision
        .as_ref()
        .and_then(|d| d.get("levels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

/// What a verdict does to the quote, given the levels approved before it in this submission:
/// the approval of the last required level approves the quote.
pub fn verdict_action(verdict: Verdict, approved_before: i64, required: usize) -> Action {
    match verdict {
        Verdict::Approved if approved_before + 1 >= required as i64 => Action::ApproveFinal,
        Verdict::Approved => Action::ApproveLevel,
        Verdict::Rejected => Action::Reject,
        Verdict::Returned => Action::ReturnForRevision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn task<'a>(
        status: &'a str,
        assignee: Option<&'a str>,
        groups: &'a [String],
    ) -> TaskToDecide<'a> {
        TaskToDecide {
            task_id: Uuid::nil(),
            status,
            assignee,
            candidate_groups: groups,
        }
    }

    #[test]
    fn the_owner_never_decides_on_their_own_quote() {
        let groups = vec!["manager".to_owned()];
        let t = task("created", None, &groups);
        assert!(authorise_decision(&t, "m-1", &groups, "rep-1").is_ok());
        assert!(matches!(
            authorise_decision(&t, "rep-1", &groups, "rep-1"),
            Err(Error::Forbidden { .. })
        ));
    }

    #[test]
    fn a_decided_task_is_a_conflict_before_anything_else() {
        let t = task("completed", Some("someone-else"), &[]);
        assert!(matches!(
            authorise_decision(&t, "m-1", &[], "m-1"),
            Err(Error::Conflict { .. })
        ));
    }

    proptest! {
        /// Allowed exactly when the task is open, offered to the subject (assigned to them, or
        /// unassigned and offered to a group they are in) and the quote is someone else's.
        #[test]
        fn decides_exactly_when_open_offered_and_not_own(
            open in any::<bool>(),
            assignee in proptest::option::of(0..3usize),
            offered in proptest::collection::vec(0..4usize, 0..3),
            mine in proptest::collection::vec(0..4usize, 0..3),
            subject in 0..3usize,
            owner in 0..3usize,
        ) {
            let people = ["a", "b", "c"];
            let names = ["manager", "finance", "deal-desk", "sales"];
            let candidate: Vec<String> = offered.iter().map(|i| names[*i].to_owned()).collect();
            let groups: Vec<String> = mine.iter().map(|i| names[*i].to_owned()).collect();
            let t = task(if open { "created" } else { "completed" }, assignee.map(|i| people[i]), &candidate);
            let got = authorise_decision(&t, people[subject], &groups, people[owner]);
            let is_offered = match assignee {
                Some(a) => a == subject,
                None => candidate.iter().any(|g| groups.contains(g)),
            };
            prop_assert_eq!(got.is_ok(), open && is_offered && subject != owner);
            if !open {
                let is_conflict = matches!(got, Err(Error::Conflict { .. }));
                prop_assert!(is_conflict);
            }
        }

        /// Only an approval can approve the quote, and only the one that completes the levels.
        #[test]
        fn the_last_required_approval_approves(before in 0i64..5, required in 0usize..5) {
            let a = verdict_action(Verdict::Approved, before, required);
            prop_assert_eq!(a == Action::ApproveFinal, before + 1 >= required as i64);
            prop_assert_eq!(verdict_action(Verdict::Rejected, before, required), Action::Reject);
            prop_assert_eq!(verdict_action(Verdict::Returned, before, required), Action::ReturnForRevision);
        }
    }
}
