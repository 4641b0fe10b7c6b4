//! The configuration engine. Pure: a compiled catalog and a configuration tree in, the configured
//! tree (defaults applied) and every violation out.
//!
//! For each item, in order: the offering must exist (and, for a top-level item, be sellable and
//! available in the context); chosen values are checked against their characteristics; default
//! rules run in dependency order for what the user did not choose, then characteristic defaults;
//! required characteristics must have a value; components must be declared, `default_included`
//! ones are added, quantities must respect cardinality; then the offering's requires, excludes
//! and constraint rules are evaluated. Each violation names its rule (or the built-in check),
//! its message, the item's path, and the chain of choices the rule read, each marked as chosen by
//! the user or set by a default.
//!
//! [`ItemState::change`] re-validates after one changed value by evaluating only the rules indexed
//! under that characteristic (and under what defaults change in turn); [`Validation::rules_evaluated`]
//! counts rule evaluations so that this is observable.

mod item;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cpq_catalog::CompiledCatalog;
use serde::{Deserialize, Serialize};

pub use item::ItemState;

/// One node of a configuration as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigItem {
    pub offering: String,
    #[serde(default = "one")]
    pub quantity: u32,
    #[serde(default)]
    pub characteristics: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub components: Vec<ConfigItem>,
}

fn one() -> u32 {
    1
}

/// Where and when the configuration is sold; what availability is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The user chose it.
    Chosen,
    /// A default rule set it.
    Rule,
    /// The characteristic's default.
    Default,
    /// Added because the component is included by default.
    Included,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredValue {
    pub value: serde_json::Value,
    pub source: Source,
    /// The default rule that set it, when `source` is `rule`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// The configuration with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Configured {
    pub offering: String,
    pub quantity: u32,
    pub source: Source,
    pub characteristics: BTreeMap<String, ConfiguredValue>,
    pub components: Vec<Configured>,
}

/// One choice a rule read: what it was, and who made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub path: String,
    pub characteristic: String,
    pub value: serde_json::Value,
    /// `None` when the characteristic has no value.
    pub source: Option<Source>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule's code, or a built-in check: `offering-unknown`, `offering-unavailable`,
    /// `offering-not-sellable`, `characteristic-unknown`, `characteristic-value`,
    /// `characteristic-required`, `component-unknown`, `component-cardinality`,
    /// `rule-evaluation`.
    pub rule: String,
    pub message: String,
    pub path: String,
    pub chain: Vec<Choice>,
}

impl Violation {
    /// Where the violation is as a request field, `prefix` being the field that holds the whole
    /// configuration: `prefix` itself for the top item, else `prefix.components[0]`.
    pub fn field(&self, prefix: &str) -> String {
        if self.path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.path)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub valid: bool,
    pub configuration: Configured,
    pub violations: Vec<Violation>,
    pub rules_evaluated: usize,
}

/// Validates a whole configuration tree.
pub fn validate(catalog: &CompiledCatalog, context: &Context, item: &ConfigItem) -> Validation {
    let mut violations = Vec::new();
    let mut evaluated = 0;
    let configuration = item::configure(
        catalog,
        context,
        item,
        "",
        true,
        &mut violations,
        &mut evaluated,
    );
    Validation {
        valid: violations.is_empty(),
        configuration,
        violations,
        rules_evaluated: evaluated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_is_reported_under_the_field_holding_the_configuration() {
        let at = |path: &str| Violation {
            rule: "r".into(),
            message: "m".into(),
            path: path.into(),
            chain: Vec::new(),
        };
        assert_eq!(
            at("").field("items[2].configuration"),
            "items[2].configuration"
        );
        assert_eq!(
            at("components[0]").field("configuration"),
            "configuration.components[0]"
        );
    }
}
