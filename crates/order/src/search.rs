//! The operational order search and stuck fulfillment tasks (issue 15, items 5 and 6): the
//! filters as checked values, their named SQL (each statement through `timed`), and the plans of
//! the search statements for the plan-baseline tests (`crates/order/tests/plans.rs`).
//!
//! Orders page newest first on `(created_at, order_id)`, a total order; every filter has an index
//! in that order (`migrations/20261205000025_order_search.sql`). Several statuses are read as one
//! bounded index scan per status (a lateral subquery each, merged and cut to the page), so a page
//! never sorts more than `statuses x limit` rows. The task filters:
//! - *stuck*: the order has a task that is `running` or `waiting-callback` and started before the
//!   cut-off (now minus `older_than`, 15 minutes by default);
//! - *system*: the order has a task on that system that is not finished yet: `pending`, `ready`,
//!   `running`, `waiting-callback` or `failed` (finished: `completed`, `skipped`, `cancelled`);
//! - *in fallout*: the order's status is `in-fallout`, which an order has exactly while a fallout
//!   case of it is open (opening a case sets it, its repair moves the order on).
//!
//! Stuck tasks page oldest start first on `(started_at, order_id, task_key)`.

use chrono::{DateTime, Duration, Utc};
use cpq_core::{Error, FieldError, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// An order's statuses, as stored.
pub const ORDER_STATUSES: [&str; 4] = ["in-fulfillment", "in-fallout", "completed", "cancelled"];
/// The status of an order with an open fallout case.
pub const IN_FALLOUT: &str = "in-fallout";
/// The systems a task may target (as `fulfillment_task.system`).
pub const SYSTEMS: [&str; 5] = [
    "inventory",
    "provisioning",
    "billing",
    "crm",
    "notification",
];
/// The gauge's label for tasks that name no system.
pub const NO_SYSTEM: &str = "none";
/// A task in flight: its call was made, its outcome is not in yet.
const IN_FLIGHT: &str = "('running', 'waiting-callback')";
/// A task not finished yet (finished: completed, skipped, cancelled).
const UNFINISHED: &str = "('pending', 'ready', 'running', 'waiting-callback', 'failed')";
/// A task in flight for longer than this is stuck, unless the caller says otherwise.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::minutes(15);
/// The shortest and longest `older_than` a caller may ask for.
pub const MIN_STUCK_AFTER: Duration = Duration::minutes(1);
pub const MAX_STUCK_AFTER: Duration = Duration::days(30);

/// One order as the search lists it (its items and plan are one request away).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderSummary {
    pub order_id: Uuid,
    pub quote_id: Uuid,
    pub customer_account_id: Uuid,
    pub status: String,
    pub currency: String,
    pub totals: Value,
    pub fulfillment_instance_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One stuck task.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StuckTask {
    pub order_id: Uuid,
    pub task_key: String,
    pub job_type: String,
    pub system: Option<String>,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<Value>,
}

/// The checked filters of one order search. `statuses` of `Some(empty)` matches nothing (for
/// example `status=completed&in_fallout=true`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OrderFilter {
    pub statuses: Option<Vec<String>>,
    pub customer_account_id: Option<Uuid>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Only orders with a task in flight since before this instant.
    pub stuck_before: Option<DateTime<Utc>>,
    /// Only orders with a task on this system that is not finished.
    pub system: Option<String>,
}

/// The checked filters of the stuck-task list.
#[derive(Debug, Clone, PartialEq)]
pub struct StuckFilter {
    /// In flight since before this instant.
    pub started_before: DateTime<Utc>,
    pub system: Option<String>,
}

/// The order search's query parameters as the caller sent them.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderParams<'a> {
    /// One status or a comma-separated list of them.
    pub status: Option<&'a str>,
    pub customer_account_id: Option<&'a str>,
    pub created_from: Option<&'a str>,
    pub created_to: Option<&'a str>,
    pub in_fallout: Option<&'a str>,
    pub stuck: Option<&'a str>,
    pub older_than: Option<&'a str>,
    pub system: Option<&'a str>,
}

/// Collects the refusals of one request: malformed values (400) first, then values refused as
/// inconsistent (422).
#[derive(Default)]
struct Refusals {
    malformed: Vec<FieldError>,
    refused: Vec<FieldError>,
}

impl Refusals {
    fn malformed(&mut self, field: &str, code: &str, detail: impl Into<String>) {
        self.malformed.push(FieldError::new(field, code, detail));
    }

    fn refused(&mut self, field: &str, code: &str, detail: impl Into<String>) {
        self.refused.push(FieldError::new(field, code, detail));
    }

    fn finish<T>(self, value: T) -> Result<T, Error> {
        if !self.malformed.is_empty() {
            let fields: Vec<&str> = self.malformed.iter().map(|e| e.field.as_str()).collect();
            return Err(Error::Malformed {
                detail: format!("query parameter(s) not valid: {}", fields.join(", ")),
                errors: self.malformed,
            });
        }
        if !self.refused.is_empty() {
            return Err(Error::Validation {
                errors: self.refused,
            });
        }
        Ok(value)
    }
}

fn parse_bool(r: &mut Refusals, field: &str, raw: Option<&str>) -> Option<bool> {
    match raw? {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            r.malformed(field, "invalid-boolean", "true or false");
            None
        }
    }
}

fn parse_time(r: &mut Refusals, field: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            r.malformed(
                field,
                "invalid-timestamp",
                "an RFC 3339 timestamp such as 2026-12-01T00:00:00Z",
            );
            None
        }
    }
}

fn parse_system(r: &mut Refusals, raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    if SYSTEMS.contains(&raw) {
        Some(raw.to_owned())
    } else {
        r.malformed(
            "system",
            "unknown-value",
            format!("one of {}", SYSTEMS.join(", ")),
        );
        None
    }
}

/// An ISO 8601 duration of days and time (`PT15M`, `PT2H`, `P1D`, `P1DT12H`), as the fallout
/// worklist's `older_than` takes it; `None` for anything else (years and months included).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    match cpq_workflow::feel::parse_duration(raw) {
        Ok(cpq_workflow::feel::Value::Duration(d)) => Some(d),
        _ => None,
    }
}

/// `older_than` (default 15 minutes) as the instant before which a task in flight is stuck.
fn parse_older_than(r: &mut Refusals, raw: Option<&str>, now: DateTime<Utc>) -> DateTime<Utc> {
    let Some(raw) = raw else {
        return now - DEFAULT_STUCK_AFTER;
    };
    match parse_duration(raw) {
        None => {
            r.malformed(
                "older_than",
                "invalid-duration",
                "an ISO 8601 duration of days and time, such as PT15M, PT2H or P1D",
            );
            now - DEFAULT_STUCK_AFTER
        }
        Some(d) if d < MIN_STUCK_AFTER || d > MAX_STUCK_AFTER => {
            r.refused(
                "older_than",
                "out-of-range",
                "between 1 minute (PT1M) and 30 days (P30D)",
            );
            now - DEFAULT_STUCK_AFTER
        }
        Some(d) => now - d,
    }
}

impl OrderFilter {
    /// The filters of a request at `now`: every parameter that is not valid is named, malformed
    /// ones (400) before inconsistent ones (422).
    pub fn parse(p: OrderParams<'_>, now: DateTime<Utc>) -> Result<OrderFilter, Error> {
        let mut r = Refusals::default();
        let mut statuses: Option<Vec<String>> = None;
        if let Some(raw) = p.status {
            let mut list: Vec<String> = Vec::new();
            for s in raw.split(',').map(str::trim) {
                if !ORDER_STATUSES.contains(&s) {
                    r.malformed(
                        "status",
                        "unknown-value",
                        format!(
                            "\"{s}\" is not an order status: one or more (comma-separated) of {}",
                            ORDER_STATUSES.join(", ")
                        ),
                    );
                } else if !list.iter().any(|x| x == s) {
                    list.push(s.to_owned());
                }
            }
            statuses = Some(list);
        }
        let customer_account_id = p.customer_account_id.and_then(|raw| {
            Uuid::parse_str(raw)
                .map_err(|_| r.malformed("customer_account_id", "invalid-uuid", "a UUID"))
                .ok()
        });
        let created_from = parse_time(&mut r, "created_from", p.created_from);
        let created_to = parse_time(&mut r, "created_to", p.created_to);
        let in_fallout = parse_bool(&mut r, "in_fallout", p.in_fallout);
        let stuck = parse_bool(&mut r, "stuck", p.stuck);
        let system = parse_system(&mut r, p.system);
        let stuck_before = parse_older_than(&mut r, p.older_than, now);
        if let (Some(from), Some(to)) = (created_from, created_to) {
            if from >= to {
                r.refused(
                    "created_to",
                    "before-start",
                    "created_to must be later than created_from",
                );
            }
        }
        if p.older_than.is_some() && stuck != Some(true) {
            r.refused(
                "older_than",
                "needs-stuck",
                "older_than applies only with stuck=true",
            );
        }
        // in_fallout is a condition on the status: narrow the statuses asked for.
        if let Some(f) = in_fallout {
            let all = || ORDER_STATUSES.iter().map(|s| (*s).to_owned()).collect();
            let base: Vec<String> = statuses.take().unwrap_or_else(all);
            statuses = Some(
                base.into_iter()
                    .filter(|s| (s == IN_FALLOUT) == f)
                    .collect(),
            );
        }
        r.finish(OrderFilter {
            statuses,
            customer_account_id,
            created_from,
            created_to,
            stuck_before: (stuck == Some(true)).then_some(stuck_before),
            system,
        })
    }
}

impl StuckFilter {
    /// The stuck-task list's filters at `now`: `older_than` (default 15 minutes) and `system`.
    pub fn parse(
        older_than: Option<&str>,
        system: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StuckFilter, Error> {
        let mut r = Refusals::default();
        let started_before = parse_older_than(&mut r, older_than, now);
        let system = parse_system(&mut r, system);
        r.finish(StuckFilter {
            started_before,
            system,
        })
    }
}

const ORDER_COLUMNS: &str =
    "o.order_id, o.quote_id, o.customer_account_id, o.status, o.currency, o.totals, \
     o.fulfillment_instance_id, o.version, o.created_at, o.updated_at, o.completed_at";

/// The search statement: one index scan in `(created_at, order_id)` order, or with statuses one
/// bounded scan per status merged.
fn order_search_query<'q>(
    explain: bool,
    tenant: &'q TenantId,
    f: &'q OrderFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::QueryBuilder<'q, sqlx::Postgres> {
    let mut q = sqlx::QueryBuilder::new(if explain { "EXPLAIN " } else { "" });
    if let Some(statuses) = &f.statuses {
        q.push(format!("SELECT {ORDER_COLUMNS} FROM unnest("))
            .push_bind(statuses.as_slice())
            .push("::text[]) AS s (status) CROSS JOIN LATERAL (");
    }
    q.push(format!(
        "SELECT {ORDER_COLUMNS} FROM sales_order o WHERE o.tenant_id = "
    ))
    .push_bind(tenant.as_str());
    if f.statuses.is_some() {
        q.push(" AND o.status = s.status");
    }
    if let Some(c) = f.customer_account_id {
        q.push(" AND o.customer_account_id = ").push_bind(c);
    }
    if let Some(t) = f.created_from {
        q.push(" AND o.created_at >= ").push_bind(t);
    }
    if let Some(t) = f.created_to {
        q.push(" AND o.created_at < ").push_bind(t);
    }
    if let Some(t) = f.stuck_before {
        // Driven from the stuck tasks (few: a subset of the tasks in flight, read from their
        // partial index once), not by probing the tasks of every order newest first, which
        // reads every order when the stuck ones are few and old.
        q.push(
            " AND o.order_id = ANY (ARRAY(SELECT t.order_id FROM fulfillment_task t WHERE t.tenant_id = ",
        )
        .push_bind(tenant.as_str())
        .push(" AND t.status IN ")
        .push(IN_FLIGHT)
        .push(" AND t.started_at < ")
        .push_bind(t)
        .push("))");
    }
    if let Some(s) = &f.system {
        q.push(
            " AND EXISTS (SELECT 1 FROM fulfillment_task t WHERE t.order_id = o.order_id AND t.tenant_id = o.tenant_id \
             AND t.system = ",
        )
        .push_bind(s.as_str())
        .push(" AND t.status IN ")
        .push(UNFINISHED)
        .push(")");
    }
    if let Some((at, id)) = after {
        q.push(" AND (o.created_at, o.order_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY o.created_at DESC, o.order_id DESC LIMIT ")
        .push_bind(limit);
    if f.statuses.is_some() {
        q.push(") o ORDER BY o.created_at DESC, o.order_id DESC LIMIT ")
            .push_bind(limit);
    }
    q
}

/// Up to `limit` orders after the key `after`, newest first.
pub async fn order_search_list(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &OrderFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<OrderSummary>, Error> {
    if f.statuses.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut q = order_search_query(false, tenant, f, after, limit);
    timed("order_search_list", q.build_query_as().fetch_all(&mut **tx))
        .await
        .map_err(db_error)
}

/// The plan PostgreSQL picks for [`order_search_list`], as text (for plan-baseline tests).
pub async fn order_search_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &OrderFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<String, Error> {
    let mut q = order_search_query(true, tenant, f, after, limit);
    let lines: Vec<String> = timed(
        "order_search_explain",
        q.build_query_scalar().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(lines.join("\n"))
}

/// The stuck-task key: `(started_at, order_id, task_key)` of the previous page's last row.
pub type StuckKey = (DateTime<Utc>, Uuid, String);

fn stuck_query<'q>(
    explain: bool,
    tenant: &'q TenantId,
    f: &'q StuckFilter,
    after: Option<&'q StuckKey>,
    limit: i64,
) -> sqlx::QueryBuilder<'q, sqlx::Postgres> {
    let mut q = sqlx::QueryBuilder::new(if explain { "EXPLAIN " } else { "" });
    q.push(
        "SELECT t.order_id, t.task_key, t.job_type, t.system, t.status, t.started_at, t.attempts, t.last_error \
         FROM fulfillment_task t WHERE t.tenant_id = ",
    )
    .push_bind(tenant.as_str())
    .push(" AND t.status IN ")
    .push(IN_FLIGHT)
    .push(" AND t.started_at < ")
    .push_bind(f.started_before);
    if let Some(s) = &f.system {
        q.push(" AND t.system = ").push_bind(s.as_str());
    }
    if let Some((at, order, key)) = after {
        q.push(" AND (t.started_at, t.order_id, t.task_key) > (")
            .push_bind(*at)
            .push(", ")
            .push_bind(*order)
            .push(", ")
            .push_bind(key.as_str())
            .push(")");
    }
    q.push(" ORDER BY t.started_at, t.order_id, t.task_key LIMIT ")
        .push_bind(limit);
    q
}

/// Up to `limit` stuck tasks after the key `after`, the longest stuck first.
pub async fn stuck_task_list(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &StuckFilter,
    after: Option<&StuckKey>,
    limit: i64,
) -> Result<Vec<StuckTask>, Error> {
    let mut q = stuck_query(false, tenant, f, after, limit);
    timed(
        "fulfillment_task_stuck_list",
        q.build_query_as().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// The plan PostgreSQL picks for [`stuck_task_list`], as text (for plan-baseline tests).
pub async fn stuck_task_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &StuckFilter,
    after: Option<&StuckKey>,
    limit: i64,
) -> Result<String, Error> {
    let mut q = stuck_query(true, tenant, f, after, limit);
    let lines: Vec<String> = timed(
        "fulfillment_task_stuck_explain",
        q.build_query_scalar().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(lines.join("\n"))
}

/// Stuck tasks across every tenant, per system (`none` for tasks without one), every system
/// listed (zero when none is stuck): through the SECURITY DEFINER function
/// `fulfillment_tasks_stuck`, which returns counts only.
pub async fn stuck_task_counts(
    pool: &PgPool,
    older_than: Duration,
) -> Result<Vec<(String, i64)>, Error> {
    let secs = older_than.num_milliseconds() as f64 / 1000.0;
    let rows: Vec<(String, i64)> = timed(
        "fulfillment_tasks_stuck",
        sqlx::query_as(
            "SELECT system, stuck FROM fulfillment_tasks_stuck(make_interval(secs => $1))",
        )
        .bind(secs)
        .fetch_all(pool),
    )
    .await
    .map_err(db_error)?;
    let mut counts: Vec<(String, i64)> = SYSTEMS
        .iter()
        .chain(std::iter::once(&NO_SYSTEM))
        .map(|s| {
            let n = rows.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n);
            ((*s).to_owned(), n)
        })
        .collect();
    // A system the database knows and this build does not (a newer schema) is kept.
    for (s, n) in rows {
        if !counts.iter().any(|(x, _)| *x == s) {
            counts.push((s, n));
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fields(e: &Error) -> Vec<String> {
        match e {
            Error::Malformed { errors, .. } | Error::Validation { errors } => {
                errors.iter().map(|e| e.field.clone()).collect()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn statuses_are_a_comma_list_and_in_fallout_narrows_them() {
        let p = OrderParams {
            status: Some("completed, in-fallout,completed"),
            ..Default::default()
        };
        let f = OrderFilter::parse(p, now()).unwrap();
        assert_eq!(
            f.statuses,
            Some(vec!["completed".to_owned(), "in-fallout".to_owned()])
        );
        let f = OrderFilter::parse(
            OrderParams {
                in_fallout: Some("true"),
                ..p
            },
            now(),
        )
        .unwrap();
        assert_eq!(f.statuses, Some(vec!["in-fallout".to_owned()]));
        let f = OrderFilter::parse(
            OrderParams {
                in_fallout: Some("false"),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(
            f.statuses,
            Some(vec![
                "in-fulfillment".to_owned(),
                "completed".to_owned(),
                "cancelled".to_owned()
            ])
        );
        let f = OrderFilter::parse(
            OrderParams {
                status: Some("completed"),
                in_fallout: Some("true"),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(f.statuses, Some(vec![]));
    }

    #[test]
    fn stuck_defaults_to_fifteen_minutes() {
        let f = OrderFilter::parse(
            OrderParams {
                stuck: Some("true"),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(f.stuck_before, Some(now() - Duration::minutes(15)));
        let f = OrderFilter::parse(
            OrderParams {
                stuck: Some("true"),
                older_than: Some("PT2H"),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(f.stuck_before, Some(now() - Duration::hours(2)));
        let f = OrderFilter::parse(
            OrderParams {
                stuck: Some("false"),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        assert_eq!(f.stuck_before, None);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let e = OrderFilter::parse(
            OrderParams {
                status: Some("shipped"),
                customer_account_id: Some("x"),
                created_from: Some("yesterday"),
                in_fallout: Some("yes"),
                stuck: Some("1"),
                system: Some("erp"),
                older_than: Some("15m"),
                ..Default::default()
            },
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }));
        assert_eq!(
            fields(&e),
            [
                "status",
                "customer_account_id",
                "created_from",
                "in_fallout",
                "stuck",
                "system",
                "older_than"
            ]
        );
        let e = OrderFilter::parse(
            OrderParams {
                created_from: Some("2026-12-02T00:00:00Z"),
                created_to: Some("2026-12-01T00:00:00+01:00"),
                older_than: Some("PT30S"),
                ..Default::default()
            },
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Validation { .. }));
        assert_eq!(fields(&e), ["older_than", "created_to", "older_than"]);
    }

    #[test]
    fn durations_are_iso_8601_days_and_time() {
        assert_eq!(parse_duration("PT90S"), Some(Duration::seconds(90)));
        assert_eq!(parse_duration("PT15M"), Some(Duration::minutes(15)));
        assert_eq!(parse_duration("P1DT12H"), Some(Duration::hours(36)));
        for bad in ["", "15m", "P", "P1M", "P1Y", "PT", "5", "PT5 M"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert!(StuckFilter::parse(None, Some("billing"), now()).is_ok());
        assert!(StuckFilter::parse(Some("P31D"), None, now()).is_err());
    }
}
