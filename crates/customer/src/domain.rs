//! Customer account rules. Pure: no I/O, no clock (times are passed in).

use chrono::{DateTime, Utc};
use cpq_core::{Currency, Error, FieldError, TenantId};
use serde::Serialize;
use uuid::Uuid;

pub const NAME_MAX: usize = 200;
pub const EXTERNAL_REF_MAX: usize = 64;
pub const CLOSE_REASON_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Segment {
    Consumer,
    SmallBusiness,
    Enterprise,
    PublicSector,
}

impl Segment {
    pub const ALL: [Segment; 4] = [
        Segment::Consumer,
        Segment::SmallBusiness,
        Segment::Enterprise,
        Segment::PublicSector,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Consumer => "consumer",
            Segment::SmallBusiness => "small-business",
            Segment::Enterprise => "enterprise",
            Segment::PublicSector => "public-sector",
        }
    }

    pub fn parse(raw: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStatus {
    Active,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<AccountStatus> {
        match raw {
            "active" => Some(AccountStatus::Active),
            "closed" => Some(AccountStatus::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerAccount {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant: TenantId,
    pub name: String,
    pub external_ref: Option<String>,
    pub segment: Segment,
    pub market: String,
    pub currency: Currency,
    pub status: AccountStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
}

/// What a client sends to create an account; every field is checked and every problem reported.
#[derive(Debug, Clone, Default)]
pub struct AccountInput {
    pub name: Option<String>,
    pub external_ref: Option<String>,
    pub segment: Option<String>,
    pub market: Option<String>,
    pub currency: Option<String>,
}

/// A partial change: `None` leaves a field alone; `external_ref: Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub external_ref: Option<Option<String>>,
    pub segment: Option<String>,
    pub market: Option<String>,
    pub currency: Option<String>,
}

impl AccountPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.external_ref.is_none()
            && self.segment.is_none()
            && self.market.is_none()
            && self.currency.is_none()
    }
}

fn parse_name(raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let name = raw.trim();
    if name.is_empty() {
        errors.push(FieldError::new(
            "name",
            "required",
            "name must not be blank",
        ));
        None
    } else if name.chars().count() > NAME_MAX {
        errors.push(FieldError::new(
            "name",
            "too-long",
            format!("name is at most {NAME_MAX} characters"),
        ));
        None
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            "invalid-characters",
            "name must not contain control characters",
        ));
        None
    } else {
        Some(name.to_owned())
    }
}

fn parse_external_ref(raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= EXTERNAL_REF_MAX
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Some(raw.to_owned())
    } else {
        errors.push(FieldError::new(
            "external_ref",
            "invalid-format",
            format!("external_ref is 1-{EXTERNAL_REF_MAX} characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'"),
        ));
        None
    }
}

fn parse_segment(raw: &str, errors: &mut Vec<FieldError>) -> Option<Segment> {
    let parsed = Segment::parse(raw);
    if parsed.is_none() {
        let names: Vec<&str> = Segment::ALL.iter().map(|s| s.as_str()).collect();
        errors.push(FieldError::new(
            "segment",
            "unknown-value",
            format!("segment must be one of {}", names.join(", ")),
        ));
    }
    parsed
}

/// Markets are business-defined codes such as `DE` or `EU-WEST`.
fn parse_market(raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let ok = (2..=16).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        && raw.as_bytes()[0].is_ascii_uppercase();
    if ok {
        Some(raw.to_owned())
    } else {
        errors.push(FieldError::new(
            "market",
            "invalid-format",
            "market is 2-16 characters of A-Z, 0-9 and '-', starting with a letter (e.g. DE, EU-WEST)",
        ));
        None
    }
}

fn parse_currency(raw: &str, errors: &mut Vec<FieldError>) -> Option<Currency> {
    let parsed = Currency::parse(raw);
    if parsed.is_none() {
        errors.push(FieldError::new(
            "currency",
            "unknown-currency",
            format!("\"{raw}\" is not an ISO 4217 currency code"),
        ));
    }
    parsed
}

fn required<'a>(
    field: &str,
    value: &'a Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    if value.is_none() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    value.as_deref()
}

/// Who creates or changes an account, and when.
#[derive(Debug, Clone)]
pub struct Stamp<'a> {
    pub tenant: &'a TenantId,
    pub subject: &'a str,
    pub at: DateTime<Utc>,
}

impl CustomerAccount {
    /// A new active account at version 1, or every field problem.
    pub fn create(
        id: Uuid,
        input: &AccountInput,
        stamp: &Stamp<'_>,
    ) -> Result<CustomerAccount, Error> {
        let mut errors = Vec::new();
        let name =
            required("name", &input.name, &mut errors).and_then(|n| parse_name(n, &mut errors));
        let external_ref = input
            .external_ref
            .as_deref()
            .map(|r| parse_external_ref(r, &mut errors));
        let segment = required("segment", &input.segment, &mut errors)
            .and_then(|s| parse_segment(s, &mut errors));
        let market = required("market", &input.market, &mut errors)
            .and_then(|m| parse_market(m, &mut errors));
        let currency = required("currency", &input.currency, &mut errors)
            .and_then(|c| parse_currency(c, &mut errors));
        match (name, external_ref, segment, market, currency) {
            (
                Some(name),
                external_ref @ (None | Some(Some(_))),
                Some(segment),
                Some(market),
                Some(currency),
            ) if errors.is_empty() => Ok(CustomerAccount {
                id,
                tenant: stamp.tenant.clone(),
                name,
                external_ref: external_ref.flatten(),
                segment,
                market,
                currency,
                status: AccountStatus::Active,
                version: 1,
                created_at: stamp.at,
                created_by: stamp.subject.to_owned(),
                updated_at: stamp.at,
                updated_by: stamp.subject.to_owned(),
                closed_at: None,
                close_reason: None,
            }),
            _ => Err(Error::validation(errors)),
        }
    }

    fn ensure_active(&self) -> Result<(), Error> {
        match self.status {
            AccountStatus::Active => Ok(()),
            AccountStatus::Closed => Err(Error::conflict(format!(
                "customer account {} is closed; a closed account cannot change",
                self.id
            ))),
        }
    }

    /// The account with `patch` applied and its version bumped, or every field problem. A patch
    /// that changes nothing is refused, so that versions only move on real changes.
    pub fn apply(&self, patch: &AccountPatch, stamp: &Stamp<'_>) -> Result<CustomerAccount, Error> {
        self.ensure_active()?;
        if patch.is_empty() {
            return Err(Error::validation(vec![FieldError::new(
                "",
                "empty-patch",
                "the patch changes no field",
            )]));
        }
        let mut errors = Vec::new();
        let mut next = self.clone();
        if let Some(n) = &patch.name {
            if let Some(n) = parse_name(n, &mut errors) {
                next.name = n;
            }
        }
        if let Some(r) = &patch.external_ref {
            next.external_ref = match r {
                None => None,
                Some(r) => parse_external_ref(r, &mut errors),
            };
        }
        if let Some(s) = &patch.segment {
            if let Some(s) = parse_segment(s, &mut errors) {
                next.segment = s;
            }
        }
        if let Some(m) = &patch.market {
            if let Some(m) = parse_market(m, &mut errors) {
                next.market = m;
            }
        }
        if let Some(c) = &patch.currency {
            if let Some(c) = parse_currency(c, &mut errors) {
                next.currency = c;
            }
        }
        if !errors.is_empty() {
            return Err(Error::validation(errors));
        }
        next.version += 1;
        next.updated_at = stamp.at;
        next.updated_by = stamp.subject.to_owned();
        Ok(next)
    }

    /// Closes an active account, with a reason. Closing is final.
    pub fn close(&self, reason: &str, stamp: &Stamp<'_>) -> Result<CustomerAccount, Error> {
        self.ensure_active()?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > CLOSE_REASON_MAX {
            return Err(Error::validation(vec![FieldError::new(
                "reason",
                "required",
                format!(
                    "a reason of 1-{CLOSE_REASON_MAX} characters is required to close an account"
                ),
            )]));
        }
        let mut next = self.clone();
        next.status = AccountStatus::Closed;
        next.closed_at = Some(stamp.at);
        next.close_reason = Some(reason.to_owned());
        next.version += 1;
        next.updated_at = stamp.at;
        next.updated_by = stamp.subject.to_owned();
        Ok(next)
    }

    /// The names of the fields that differ between two versions of an account.
    pub fn changed_fields(&self, other: &CustomerAccount) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.name != other.name {
            fields.push("name");
        }
        if self.external_ref != other.external_ref {
            fields.push("external_ref");
        }
        if self.segment != other.segment {
            fields.push("segment");
        }
        if self.market != other.market {
            fields.push("market");
        }
        if self.currency != other.currency {
            fields.push("currency");
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp(tenant: &TenantId) -> Stamp<'_> {
        Stamp {
            tenant,
            subject: "rep-1",
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    fn input() -> AccountInput {
        AccountInput {
            name: Some("Acme GmbH".into()),
            external_ref: Some("CRM-1".into()),
            segment: Some("enterprise".into()),
            market: Some("DE".into()),
            currency: Some("EUR".into()),
        }
    }

    fn field_codes(e: Error) -> Vec<(String, String)> {
        match e {
            Error::Validation { errors } => errors.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let t = TenantId::parse("acme").unwrap();
        let bad = AccountInput {
            name: Some("  ".into()),
            external_ref: Some("has space".into()),
            segment: Some("huge".into()),
            market: None,
            currency: Some("EURO".into()),
        };
        let codes =
            field_codes(CustomerAccount::create(Uuid::nil(), &bad, &stamp(&t)).unwrap_err());
        assert_eq!(
            codes,
            [
                ("name".into(), "required".into()),
                ("external_ref".into(), "invalid-format".into()),
                ("segment".into(), "unknown-value".into()),
                ("market".into(), "required".into()),
                ("currency".into(), "unknown-currency".into()),
            ]
        );
    }

    #[test]
    fn closing_is_final_and_bumps_the_version() {
        let t = TenantId::parse("acme").unwrap();
        let a = CustomerAccount::create(Uuid::nil(), &input(), &stamp(&t)).unwrap();
        let closed = a.close("churned", &stamp(&t)).unwrap();
        assert_eq!((closed.status, closed.version), (AccountStatus::Closed, 2));
        assert!(matches!(
            closed.close("again", &stamp(&t)),
            Err(Error::Conflict { .. })
        ));
        let patch = AccountPatch {
            name: Some("New".into()),
            ..Default::default()
        };
        assert!(matches!(
            closed.apply(&patch, &stamp(&t)),
            Err(Error::Conflict { .. })
        ));
        assert!(matches!(
            a.close(" ", &stamp(&t)),
            Err(Error::Validation { .. })
        ));
    }

    proptest! {
        #[test]
        fn a_valid_patch_bumps_the_version_by_one_and_changes_only_its_fields(
            name in proptest::option::of("[A-Za-z][A-Za-z ]{0,30}"),
            drop_ref in any::<bool>(),
            segment in proptest::option::of(prop::sample::select(vec!["consumer", "small-business", "enterprise", "public-sector"])),
        ) {
            let t = TenantId::parse("acme").unwrap();
            let a = CustomerAccount::create(Uuid::nil(), &input(), &stamp(&t)).unwrap();
            let patch = AccountPatch {
                name: name.clone(),
                external_ref: drop_ref.then_some(None),
                segment: segment.map(str::to_owned),
                ..Default::default()
            };
            match a.apply(&patch, &stamp(&t)) {
                Ok(next) => {
                    prop_assert_eq!(next.version, a.version + 1);
                    prop_assert_eq!(&next.market, &a.market);
                    prop_assert_eq!(next.currency, a.currency);
                    if let Some(n) = name { prop_assert_eq!(next.name, n.trim()); } else { prop_assert_eq!(&next.name, &a.name); }
                    prop_assert_eq!(next.external_ref.is_none(), drop_ref);
                }
                Err(e) => {
                    prop_assert!(patch.is_empty(), "unexpected refusal {e:?}");
                }
            }
        }

        #[test]
        fn created_accounts_always_satisfy_the_field_rules(name in "\\PC{0,250}", market in "[A-Z0-9-]{0,20}") {
            let t = TenantId::parse("acme").unwrap();
            let i = AccountInput { name: Some(name), market: Some(market), ..input() };
            if let Ok(a) = CustomerAccount::create(Uuid::nil(), &i, &stamp(&t)) {
                prop_assert!(!a.name.is_empty() && a.name.chars().count() <= NAME_MAX);
                prop_assert!(a.name.trim() == a.name);
                prop_assert!((2..=16).contains(&a.market.len()));
            }
        }
    }
}
