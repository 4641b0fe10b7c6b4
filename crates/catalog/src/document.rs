//! The catalog version document: everything one catalog version holds, as authored, imported and
//! exported. Money is always a decimal string (`"49.90"`), never a JSON number. Unknown fields are
//! refused. Codes identify elements within a version and are how elements reference each other.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    #[serde(default)]
    pub offerings: Vec<Offering>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub price_lists: Vec<PriceList>,
    #[serde(default)]
    pub promotions: Vec<Promotion>,
    #[serde(default)]
    pub tax_rates: Vec<TaxRate>,
    /// The technical catalog: what each offering needs fulfilled.
    #[serde(default)]
    pub technical: Vec<TechnicalMapping>,
    /// Fulfillment tasks that run once per order, whatever its items (e.g. notifying the
    /// customer after every other task): see [`TaskTemplate`] for what their dependencies mean.
    /// Absent from documents that have none, so that those serialize (and hash) as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_tasks: Vec<TaskTemplate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferingKind {
    Simple,
    Configurable,
    Bundle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub kind: OfferingKind,
    /// Where it may be sold; empty means everywhere.
    #[serde(default)]
    pub markets: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<NaiveDate>,
    /// Exclusive end date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_to: Option<NaiveDate>,
    /// Whether it may be sold on its own line (components of bundles often are not).
    #[serde(default = "yes")]
    pub sellable: bool,
    #[serde(default)]
    pub characteristics: Vec<Characteristic>,
    #[serde(default)]
    pub components: Vec<Component>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CharacteristicKind {
    Enum {
        values: Vec<String>,
    },
    Number {
        #[serde(with = "optional_decimal_str", default)]
        min: Option<Decimal>,
        #[serde(with = "optional_decimal_str", default)]
        max: Option<Decimal>,
        #[serde(with = "optional_decimal_str", default)]
        step: Option<Decimal>,
    },
    Text {
        #[serde(default)]
        pattern: Option<String>,
        #[serde(default)]
        max_length: Option<usize>,
    },
    Boolean,
}

/// An optional decimal written as a string: absent or `null` is none. (`str_option` writes none
/// as `null` but refuses to read it back, so a stored draft with an open-ended number could not
/// be read again.)
mod optional_decimal_str {
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str_option::serialize(value, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| Decimal::from_str(&raw).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Characteristic {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: CharacteristicKind,
    #[serde(default)]
    pub required: bool,
    /// A JSON value of the characteristic's type: string for enum and text, decimal string for
    /// number, boolean for boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Code of the child offering.
    pub offering: String,
    #[serde(default)]
    pub min: u32,
    pub max: u32,
    /// Added with quantity `max(min, 1)` when the configuration leaves it out.
    #[serde(default)]
    pub default_included: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// When `when` holds, component `component` must be present and/or `then` must hold.
    Requires,
    /// When `when` holds, component `component` must be absent and/or `then` must not hold.
    Excludes,
    /// `then` must hold (when `when` holds, if given).
    Constraint,
    /// When `when` holds and the user did not choose `set.characteristic`, it takes `set.value`.
    Default,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultSetting {
    pub characteristic: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub code: String,
    /// The offering whose configurations the rule checks.
    pub offering: String,
    pub kind: RuleKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<DefaultSetting>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceList {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub currency: String,
    /// `None` matches any market (and so for channel and segment); a list naming one is more
    /// specific and wins over one that does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_to: Option<NaiveDate>,
    /// Breaks ties between equally specific lists: higher wins.
    #[serde(default)]
    pub priority: i32,
    /// Whether every sellable offering eligible for this list's context must have an entry:
    /// publishing refuses gaps when true.
    #[serde(default)]
    pub complete: bool,
    #[serde(default)]
    pub entries: Vec<PriceEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub offering: String,
    #[serde(with = "rust_decimal::serde::str", default)]
    pub one_time: Decimal,
    /// Monthly recurring charge.
    #[serde(with = "rust_decimal::serde::str", default)]
    pub recurring: Decimal,
    /// Volume tiers: the tier with the largest `min_quantity` not above the line's quantity sets
    /// the unit price of every unit.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
    #[serde(default)]
    pub surcharges: Vec<Surcharge>,
    /// Unit prices when sold as a component of a given bundle.
    #[serde(default)]
    pub in_bundle: Vec<BundlePrice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTier {
    pub min_quantity: u32,
    #[serde(with = "rust_decimal::serde::str")]
    pub one_time: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub recurring: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surcharge {
    pub characteristic: String,
    /// The characteristic value (as text: `"500"`, `"premium"`, `"true"`) that triggers it.
    pub value: String,
    #[serde(with = "rust_decimal::serde::str", default)]
    pub one_time: Decimal,
    #[serde(with = "rust_decimal::serde::str", default)]
    pub recurring: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundlePrice {
    pub bundle: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub one_time: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub recurring: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeScope {
    OneTime,
    Recurring,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectKind {
    /// `value` percent off the line's net amount.
    Percent,
    /// `value` off each unit.
    Amount,
    /// The unit price becomes `value`.
    Override,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionEffect {
    pub kind: EffectKind,
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
    pub applies_to: ChargeScope,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    #[serde(default)]
    pub markets: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    /// Offerings whose lines it applies to; empty means every line.
    #[serde(default)]
    pub offerings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// Customer attributes that must equal these values (e.g. `{"new_customer": true}`).
    #[serde(default)]
    pub customer: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    pub code: String,
    pub name: String,
    /// Higher applies first.
    #[serde(default)]
    pub priority: i32,
    /// At most one promotion of a group applies to a line, unless each is `stackable`.
    pub stacking_group: String,
    #[serde(default)]
    pub stackable: bool,
    /// An exclusive promotion, when chosen, is the only one on its line.
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub eligibility: Eligibility,
    pub effect: PromotionEffect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    pub market: String,
    /// A fraction: `"0.19"` is 19 %.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
}

/// The technical catalog of one offering: the fulfillment items (services, resources) an order
/// line of it becomes, each with the tasks that fulfil it. A bundle's components are decomposed
/// through their own mappings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TechnicalMapping {
    pub offering: String,
    pub items: Vec<FulfillmentItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentItem {
    /// Names the item within its mapping, and across the catalog in `after_all` references
    /// (`access-line/provision-access`): items of different offerings may share a code.
    pub code: String,
    /// A service or resource specification, e.g. `service:internet-access`, `resource:router`.
    pub spec: String,
    pub tasks: Vec<TaskTemplate>,
}

/// The external systems fulfillment tasks run against (a task's `system`).
pub const SYSTEMS: [&str; 5] = [
    "inventory",
    "provisioning",
    "billing",
    "crm",
    "notification",
];

/// One task of a fulfillment item (in [`FulfillmentItem::tasks`]) or of every order
/// ([`CatalogDocument::order_tasks`]).
///
/// Dependencies, all "must finish first":
/// - `depends_on`: codes of tasks of the same item of the same order line (for an order task:
///   other order tasks);
/// - `after_all`: `item/task` references (`access-line/provision-access`): that task of EVERY
///   fulfillment item of the order with that item code, whatever its line or offering; none in
///   the order, no constraint. An order task may also name `*`: every item task of the order.
///
/// `system` and `after_all` are absent from documents that do not use them, so that documents
/// written before they existed serialize, and hash, as they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    pub code: String,
    /// The workflow job type a worker executes, e.g. `reserve-inventory`.
    pub job_type: String,
    /// The external system the task acts on: one of [`SYSTEMS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Codes of tasks (in the same item) that must finish first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// `item/task` references to tasks of every item of the order with that code (`*` for
    /// every item task: order tasks only) that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_all: Vec<String>,
}

/// What an `after_all` entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskReference<'a> {
    /// `*`: every item task of the order.
    Every,
    /// `item/task`.
    Task { item: &'a str, task: &'a str },
}

impl<'a> TaskReference<'a> {
    /// `None` when `raw` is neither `*` nor `item/task` with both parts non-empty.
    pub fn parse(raw: &'a str) -> Option<TaskReference<'a>> {
        if raw == "*" {
            return Some(TaskReference::Every);
        }
        match raw.split_once('/') {
            Some((item, task)) if !item.is_empty() && !task.is_empty() && !task.contains('/') => {
                Some(TaskReference::Task { item, task })
            }
            _ => None,
        }
    }
}

/// The element collections of a document that can be edited one element at a time, with the
/// field that keys each.
pub const COLLECTIONS: [(&str, &str); 7] = [
    ("offerings", "code"),
    ("rules", "code"),
    ("price-lists", "code"),
    ("promotions", "code"),
    ("tax-rates", "market"),
    ("technical", "offering"),
    ("order-tasks", "code"),
];

/// One of [`COLLECTIONS`], by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collection(&'static str);

impl Collection {
    /// The collection named `name`; not found otherwise, listing the collections there are.
    pub fn parse(name: &str) -> Result<Collection, cpq_core::Error> {
        match COLLECTIONS.iter().find(|(c, _)| *c == name) {
            Some((c, _)) => Ok(Collection(c)),
            None => {
                let names: Vec<&str> = COLLECTIONS.iter().map(|(c, _)| *c).collect();
                Err(cpq_core::Error::not_found(
                    "catalog collection",
                    format!("{name} (collections: {})", names.join(", ")),
                ))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

fn upsert_in<T: serde::de::DeserializeOwned>(
    list: &mut Vec<T>,
    key: &str,
    key_of: fn(&T) -> &str,
    element: serde_json::Value,
) -> Result<bool, String> {
    let parsed: T = serde_json::from_value(element).map_err(|e| e.to_string())?;
    if key_of(&parsed) != key {
        return Err(format!(
            "the element's key \"{}\" differs from \"{key}\" in the path",
            key_of(&parsed)
        ));
    }
    match list.iter().position(|x| key_of(x) == key) {
        Some(i) => {
            list[i] = parsed;
            Ok(false)
        }
        None => {
            list.push(parsed);
            Ok(true)
        }
    }
}

fn remove_in<T>(list: &mut Vec<T>, key: &str, key_of: fn(&T) -> &str) -> bool {
    let before = list.len();
    list.retain(|x| key_of(x) != key);
    list.len() != before
}

impl CatalogDocument {
    /// Puts one element into `collection` (see [`COLLECTIONS`]), replacing the one with the same
    /// key. `Ok(true)` when it was added, `Ok(false)` when replaced.
    pub fn upsert(
        &mut self,
        collection: &str,
        key: &str,
        element: serde_json::Value,
    ) -> Result<bool, String> {
        match collection {
            "offerings" => upsert_in(&mut self.offerings, key, |x| &x.code, element),
            "rules" => upsert_in(&mut self.rules, key, |x| &x.code, element),
            "price-lists" => upsert_in(&mut self.price_lists, key, |x| &x.code, element),
            "promotions" => upsert_in(&mut self.promotions, key, |x| &x.code, element),
            "tax-rates" => upsert_in(&mut self.tax_rates, key, |x| &x.market, element),
            "technical" => upsert_in(&mut self.technical, key, |x| &x.offering, element),
            "order-tasks" => upsert_in(&mut self.order_tasks, key, |x| &x.code, element),
            other => Err(format!("unknown collection \"{other}\"")),
        }
    }

    /// Removes one element; `Ok(false)` when there was none with that key.
    pub fn remove(&mut self, collection: &str, key: &str) -> Result<bool, String> {
        Ok(match collection {
            "offerings" => remove_in(&mut self.offerings, key, |x| &x.code),
            "rules" => remove_in(&mut self.rules, key, |x| &x.code),
            "price-lists" => remove_in(&mut self.price_lists, key, |x| &x.code),
            "promotions" => remove_in(&mut self.promotions, key, |x| &x.code),
            "tax-rates" => remove_in(&mut self.tax_rates, key, |x| &x.market),
            "technical" => remove_in(&mut self.technical, key, |x| &x.offering),
            "order-tasks" => remove_in(&mut self.order_tasks, key, |x| &x.code),
            other => return Err(format!("unknown collection \"{other}\"")),
        })
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;

    #[test]
    fn an_open_ended_number_characteristic_reads_back_as_written() {
        let c: Characteristic = serde_json::from_value(
            serde_json::json!({ "code": "n", "kind": "number", "min": "1" }),
        )
        .unwrap();
        let written = serde_json::to_value(&c).unwrap();
        assert_eq!(
            serde_json::from_value::<Characteristic>(written).unwrap(),
            c
        );
        let null: Characteristic = serde_json::from_value(
            serde_json::json!({ "code": "n", "kind": "number", "max": null }),
        )
        .unwrap();
        assert_eq!(
            null.kind,
            CharacteristicKind::Number {
                min: None,
                max: None,
                step: None
            }
        );
    }
}

#[cfg(test)]
mod collections {
    use super::*;

    #[test]
    fn every_listed_collection_parses_and_another_name_is_not_found_naming_them() {
        for (name, _) in COLLECTIONS {
            assert_eq!(Collection::parse(name).unwrap().as_str(), name);
        }
        let err = Collection::parse("widgets").unwrap_err().to_string();
        assert!(err.contains("widgets"), "{err}");
        assert!(err.contains("price-lists"), "{err}");
    }
}
