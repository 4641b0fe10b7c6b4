//! Which version of a process a new instance runs (seed part 056 section 9.3). Pure.
//!
//! A rule names a version and any of tenant, product line and release flag; it matches when every
//! field it names equals the request's. Among matching rules the most specific (most fields named)
//! wins, then the higher priority, then the higher version. No matching rule: the latest version.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRule {
    pub tenant: Option<String>,
    pub product_line: Option<String>,
    pub release_flag: Option<String>,
    pub version: i32,
    pub priority: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteRequest {
    pub tenant: String,
    pub product_line: Option<String>,
    /// Release flags enabled for this request (e.g. a canary flag).
    pub release_flags: Vec<String>,
}

impl VersionRule {
    fn matches(&self, r: &RouteRequest) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == r.tenant)
            && self
                .product_line
                .as_ref()
                .is_none_or(|p| Some(p) == r.product_line.as_ref())
            && self
                .release_flag
                .as_ref()
                .is_none_or(|f| r.release_flags.contains(f))
    }

    fn specificity(&self) -> usize {
        [&self.tenant, &self.product_line, &self.release_flag]
            .iter()
            .filter(|f| f.is_some())
            .count()
    }
}

/// The version for `request`, given the deployed `versions` and the `rules`; `None` when nothing is
/// deployed. A rule naming a version that is not deployed is skipped.
pub fn resolve(versions: &[i32], rules: &[VersionRule], request: &RouteRequest) -> Option<i32> {
    let latest = versions.iter().copied().max()?;
    let best = rules
        .iter()
        .filter(|r| r.matches(request) && versions.contains(&r.version))
        .max_by(|a, b| {
            a.specificity()
                .cmp(&b.specificity())
                .then(a.priority.cmp(&b.priority))
                .then(a.version.cmp(&b.version))
        });
    Some(best.map_or(latest, |r| r.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(
        tenant: Option<&str>,
        line: Option<&str>,
        flag: Option<&str>,
        version: i32,
        priority: i32,
    ) -> VersionRule {
        VersionRule {
            tenant: tenant.map(Into::into),
            product_line: line.map(Into::into),
            release_flag: flag.map(Into::into),
            version,
            priority,
        }
    }

    fn req(tenant: &str, line: Option<&str>, flags: &[&str]) -> RouteRequest {
        RouteRequest {
            tenant: tenant.into(),
            product_line: line.map(Into::into),
            release_flags: flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn the_most_specific_matching_rule_wins_else_the_latest() {
        let versions = [1, 2, 3];
        let rules = [
            rule(Some("acme"), None, None, 1, 0),
            rule(Some("acme"), Some("mobile"), None, 2, 0),
            rule(None, None, Some("canary"), 3, 0),
            rule(Some("globex"), None, None, 9, 0),
        ];
        assert_eq!(resolve(&versions, &rules, &req("acme", None, &[])), Some(1));
        assert_eq!(
            resolve(&versions, &rules, &req("acme", Some("mobile"), &[])),
            Some(2)
        );
        assert_eq!(
            resolve(&versions, &rules, &req("other", None, &["canary"])),
            Some(3)
        );
        assert_eq!(
            resolve(&versions, &rules, &req("globex", None, &[])),
            Some(3),
            "a rule for an undeployed version is skipped"
        );
        assert_eq!(resolve(&versions, &[], &req("acme", None, &[])), Some(3));
        assert_eq!(resolve(&[], &rules, &req("acme", None, &[])), None);
    }

    proptest! {
        #[test]
        fn the_answer_is_always_a_deployed_version(
            versions in prop::collection::btree_set(1i32..20, 1..6),
            rules in prop::collection::vec((proptest::option::of(prop::sample::select(vec!["a", "b"])), proptest::option::of(prop::sample::select(vec!["x", "y"])), 1i32..25, -3i32..3), 0..8),
            tenant in prop::sample::select(vec!["a", "b", "c"]),
        ) {
            let versions: Vec<i32> = versions.into_iter().collect();
            let rules: Vec<VersionRule> = rules.into_iter().map(|(t, f, v, p)| rule(t, None, f, v, p)).collect();
            let chosen = resolve(&versions, &rules, &req(tenant, None, &["x"])).unwrap();
            prop_assert!(versions.contains(&chosen));
        }
    }
}
