//! A catalog version's lifecycle: draft (changes) → published (immutable, hashed, compiled) →
//! retired; and which instant a date means when asking for the version in force. Pure.

use chrono::{DateTime, NaiveDate, Utc};
use cpq_core::{Error, TenantId};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionStatus {
    Draft,
    Published,
    Retired,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Published => "published",
            VersionStatus::Retired => "retired",
        }
    }

    pub fn parse(raw: &str) -> Option<VersionStatus> {
        [
            VersionStatus::Draft,
            VersionStatus::Published,
            VersionStatus::Retired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogVersion {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant: TenantId,
    pub label: String,
    pub status: VersionStatus,
    pub content_hash: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub published_at: Option<DateTime<Utc>>,
    pub published_by: Option<String>,
}

impl CatalogVersion {
    pub fn ensure_draft(&self) -> Result<(), Error> {
        match self.status {
            VersionStatus::Draft => Ok(()),
            other => Err(Error::conflict(format!(
                "catalog version {} is {}; only drafts change (create a new draft instead)",
                self.id,
                other.as_str()
            ))),
        }
    }

    pub fn ensure_published(&self) -> Result<(), Error> {
        match self.status {
            VersionStatus::Published => Ok(()),
            other => Err(Error::conflict(format!(
                "catalog version {} is {}; only a published version can be activated",
                self.id,
                other.as_str()
            ))),
        }
    }

    /// The next state after a change by `subject` at `at`.
    pub fn touched(&self, subject: &str, at: DateTime<Utc>) -> CatalogVersion {
        CatalogVersion {
            version: self.version + 1,
            updated_at: at,
            updated_by: subject.to_owned(),
            ..self.clone()
        }
    }
}

/// The instant whose version in force `date` means: `now` for today, else the start of that day
/// (activations usually take effect at midnight).
pub fn instant_for(date: NaiveDate, now: DateTime<Utc>) -> DateTime<Utc> {
    if date == now.date_naive() {
        now
    } else {
        date.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn today_means_now_and_any_other_date_its_midnight() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 18, 30, 5).unwrap();
        assert_eq!(instant_for(now.date_naive(), now), now);
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let midnight = |d| Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).unwrap();
        assert_eq!(instant_for(day(5), now), midnight(5));
        assert_eq!(instant_for(day(1), now), midnight(1));
    }
}
