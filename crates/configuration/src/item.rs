//! One configuration item: its values, its rule results, and the tree below it.

use std::collections::{BTreeMap, BTreeSet};

use cpq_catalog::compiled::{CompiledOffering, CompiledRule};
use cpq_catalog::document::RuleKind;
use cpq_catalog::expr::{EvalError, Value};
use cpq_catalog::values::{check, value_json};
use cpq_catalog::CompiledCatalog;

use crate::{Choice, ConfigItem, Configured, ConfiguredValue, Context, Source, Violation};

fn violation(rule: &str, message: impl Into<String>, path: &str) -> Violation {
    Violation {
        rule: rule.to_owned(),
        message: message.into(),
        path: path.to_owned(),
        chain: Vec::new(),
    }
}

fn child_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The state of one item: what incremental re-validation works from.
#[derive(Debug, Clone)]
pub struct ItemState {
    offering: String,
    path: String,
    chosen: BTreeMap<String, Value>,
    /// Every value in effect, with where it came from.
    values: BTreeMap<String, (Value, Source, Option<String>)>,
    /// Quantity per component offering.
    components: BTreeMap<String, u32>,
    /// Value problems found when reading the chosen values, by characteristic.
    value_violations: BTreeMap<String, Violation>,
    /// Result of each checking rule, by rule index: `Some` when violated.
    rule_results: BTreeMap<usize, Option<Violation>>,
}

impl ItemState {
    fn lookup(&self) -> impl Fn(&str) -> Value + '_ {
        |name: &str| {
            self.values
                .get(name)
                .map(|(v, _, _)| v.clone())
                .unwrap_or(Value::Missing)
        }
    }

    fn chain(&self, rule: &CompiledRule) -> Vec<Choice> {
        rule.reads
            .iter()
            .map(|c| {
                let found = self.values.get(c);
                Choice {
                    path: child_path(&self.path, &format!("characteristics.{c}")),
                    characteristic: c.clone(),
                    value: found
                        .map(|(v, _, _)| value_json(v))
                        .unwrap_or(serde_json::Value::Null),
                    source: found.map(|(_, s, _)| *s),
                }
            })
            .collect()
    }

    /// Whether a checking rule holds for the current values; `Err` when it cannot be evaluated.
    fn rule_holds(&self, rule: &CompiledRule) -> Result<bool, EvalError> {
        let lookup = self.lookup();
        if let Some(when) = &rule.when {
            if !when.holds(&lookup)? {
                return Ok(true);
            }
        }
        let present = |c: &String| self.components.get(c).copied().unwrap_or(0) > 0;
        Ok(match rule.kind {
            RuleKind::Requires => {
                rule.component.as_ref().is_none_or(present)
                    && rule
                        .then
                        .as_ref()
                        .map(|t| t.holds(&lookup))
                        .transpose()?
                        .unwrap_or(true)
            }
            RuleKind::Excludes => {
                !rule.component.as_ref().is_some_and(present)
                    && !rule
                        .then
                        .as_ref()
                        .map(|t| t.holds(&lookup))
                        .transpose()?
                        .unwrap_or(false)
            }
            RuleKind::Constraint => rule
                .then
                .as_ref()
                .map(|t| t.holds(&lookup))
                .transpose()?
                .unwrap_or(true),
            RuleKind::Default => true,
        })
    }

    fn evaluate_rule(&mut self, catalog: &CompiledCatalog, index: usize, evaluated: &mut usize) {
        *evaluated += 1;
        let rule = &catalog.rules[index];
        let result = match self.rule_holds(rule) {
            Ok(true) => None,
            Ok(false) => Some(Violation {
                rule: rule.code.clone(),
                message: rule.message.clone(),
                path: self.path.clone(),
                chain: self.chain(rule),
            }),
            Err(e) => Some(Violation {
                rule: rule.code.clone(),
                message: format!("{} (the rule could not be evaluated: {e})", rule.message),
                path: self.path.clone(),
                chain: self.chain(rule),
            }),
        };
        self.rule_results.insert(index, result);
    }

    /// The value `characteristic` takes when the user has not chosen it: the first default rule
    /// (in dependency order) whose condition holds, else the characteristic's default.
    fn resolve_default(
        &mut self,
        catalog: &CompiledCatalog,
        offering: &CompiledOffering,
        characteristic: &str,
        evaluated: &mut usize,
    ) {
        if self.chosen.contains_key(characteristic) {
            return;
        }
        self.values.remove(characteristic);
        for &i in &offering.defaults {
            let rule = &catalog.rules[i];
            let Some(set) = rule
                .set
                .as_ref()
                .filter(|s| s.characteristic == characteristic)
            else {
                continue;
            };
            *evaluated += 1;
            let applies = rule
                .when
                .as_ref()
                .map(|w| w.holds(&self.lookup()).unwrap_or(false))
                .unwrap_or(true);
            if applies {
                if let Some(ch) = offering.characteristics.get(characteristic) {
                    if let Ok(v) = check(&ch.def.kind, ch.pattern.as_ref(), &set.value) {
                        self.values.insert(
                            characteristic.to_owned(),
                            (v, Source::Rule, Some(rule.code.clone())),
                        );
                        return;
                    }
                }
            }
        }
        if let Some(ch) = offering.characteristics.get(characteristic) {
            if let Some(Ok(v)) = ch
                .def
                .default
                .as_ref()
                .map(|d| check(&ch.def.kind, ch.pattern.as_ref(), d))
            {
                self.values
                    .insert(characteristic.to_owned(), (v, Source::Default, None));
            }
        }
    }

    /// Builds the state for `item` and evaluates everything.
    fn new(
        catalog: &CompiledCatalog,
        offering: &CompiledOffering,
        item: &ConfigItem,
        components: BTreeMap<String, u32>,
        path: &str,
        evaluated: &mut usize,
    ) -> ItemState {
        let mut state = ItemState {
            offering: offering.code.clone(),
            path: path.to_owned(),
            chosen: BTreeMap::new(),
            values: BTreeMap::new(),
            components,
            value_violations: BTreeMap::new(),
            rule_results: BTreeMap::new(),
        };
        for (code, raw) in &item.characteristics {
            let vpath = child_path(path, &format!("characteristics.{code}"));
            match offering.characteristics.get(code) {
                None => {
                    state.value_violations.insert(
                        code.clone(),
                        violation(
                            "characteristic-unknown",
                            format!("{} has no characteristic \"{code}\"", offering.code),
                            &vpath,
                        ),
                    );
                }
                Some(ch) => match check(&ch.def.kind, ch.pattern.as_ref(), raw) {
                    Ok(v) => {
                        state.chosen.insert(code.clone(), v.clone());
                        state.values.insert(code.clone(), (v, Source::Chosen, None));
                    }
                    Err(e) => {
                        state.value_violations.insert(
                            code.clone(),
                            violation("characteristic-value", format!("{code} {e}"), &vpath),
                        );
                    }
                },
            }
        }
        // Characteristics no default rule sets first (rules may read them), then the rule
        // targets in the rules' dependency order.
        let mut targets: Vec<String> = Vec::new();
        for &i in &offering.defaults {
            if let Some(set) = &catalog.rules[i].set {
                if !targets.contains(&set.characteristic) {
                    targets.push(set.characteristic.clone());
                }
            }
        }
        let plain: Vec<String> = offering
            .characteristics
            .keys()
            .filter(|c| !targets.contains(c))
            .cloned()
            .collect();
        for code in plain.into_iter().chain(targets) {
            state.resolve_default(catalog, offering, &code, evaluated);
        }
        for &i in &offering.checks {
            state.evaluate_rule(catalog, i, evaluated);
        }
        state
    }

    /// Re-validates after the user sets `characteristic` to `raw` (or clears it with `None`):
    /// re-evaluates only the rules indexed under that characteristic, and under whatever the
    /// default rules it triggers change in turn. Returns how many rule evaluations that took.
    pub fn change(
        &mut self,
        catalog: &CompiledCatalog,
        characteristic: &str,
        raw: Option<&serde_json::Value>,
    ) -> usize {
        let mut evaluated = 0;
        let Some(offering) = catalog.offerings.get(&self.offering) else {
            return 0;
        };
        self.value_violations.remove(characteristic);
        self.chosen.remove(characteristic);
        match (raw, offering.characteristics.get(characteristic)) {
            (Some(raw), Some(ch)) => match check(&ch.def.kind, ch.pattern.as_ref(), raw) {
                Ok(v) => {
                    self.chosen.insert(characteristic.to_owned(), v.clone());
                    self.values
                        .insert(characteristic.to_owned(), (v, Source::Chosen, None));
                }
                Err(e) => {
                    let vpath =
                        child_path(&self.path, &format!("characteristics.{characteristic}"));
                    self.value_violations.insert(
                        characteristic.to_owned(),
                        violation(
                            "characteristic-value",
                            format!("{characteristic} {e}"),
                            &vpath,
                        ),
                    );
                    self.resolve_default(catalog, offering, characteristic, &mut evaluated);
                }
            },
            (Some(_), None) => {
                let vpath = child_path(&self.path, &format!("characteristics.{characteristic}"));
                self.value_violations.insert(
                    characteristic.to_owned(),
                    violation(
                        "characteristic-unknown",
                        format!(
                            "{} has no characteristic \"{characteristic}\"",
                            offering.code
                        ),
                        &vpath,
                    ),
                );
            }
            (None, _) => self.resolve_default(catalog, offering, characteristic, &mut evaluated),
        }
        let mut queue = vec![characteristic.to_owned()];
        let mut seen = BTreeSet::new();
        let mut to_check = BTreeSet::new();
        while let Some(changed) = queue.pop() {
            if !seen.insert(changed.clone()) {
                continue;
            }
            for &i in offering.triggers.get(&changed).into_iter().flatten() {
                let rule = &catalog.rules[i];
                match (&rule.kind, &rule.set) {
                    (RuleKind::Default, Some(set)) => {
                        let before = self.values.get(&set.characteristic).cloned();
                        self.resolve_default(
                            catalog,
                            offering,
                            &set.characteristic,
                            &mut evaluated,
                        );
                        if self.values.get(&set.characteristic) != before.as_ref() {
                            queue.push(set.characteristic.clone());
                        }
                    }
                    _ => {
                        to_check.insert(i);
                    }
                }
            }
        }
        for i in to_check {
            self.evaluate_rule(catalog, i, &mut evaluated);
        }
        evaluated
    }

    /// The item's own violations (not its components'), in a stable order.
    pub fn violations(&self, offering: &CompiledOffering) -> Vec<Violation> {
        let mut out: Vec<Violation> = self.value_violations.values().cloned().collect();
        for (code, ch) in &offering.characteristics {
            if ch.def.required
                && !self.values.contains_key(code)
                && !self.value_violations.contains_key(code)
            {
                out.push(violation(
                    "characteristic-required",
                    format!("{code} is required"),
                    &child_path(&self.path, &format!("characteristics.{code}")),
                ));
            }
        }
        for &i in &offering.checks {
            if let Some(Some(v)) = self.rule_results.get(&i) {
                out.push(v.clone());
            }
        }
        out
    }

    fn configured_values(&self) -> BTreeMap<String, ConfiguredValue> {
        self.values
            .iter()
            .map(|(k, (v, s, r))| {
                (
                    k.clone(),
                    ConfiguredValue {
                        value: value_json(v),
                        source: *s,
                        rule: r.clone(),
                    },
                )
            })
            .collect()
    }

    /// State for the top-level item of `item` alone, for incremental re-validation.
    pub fn of(catalog: &CompiledCatalog, item: &ConfigItem) -> Option<(ItemState, usize)> {
        let offering = catalog.offerings.get(&item.offering)?;
        let mut evaluated = 0;
        let components = component_quantities(offering, item);
        let state = ItemState::new(catalog, offering, item, components, "", &mut evaluated);
        Some((state, evaluated))
    }

    pub fn own_violations(&self, catalog: &CompiledCatalog) -> Vec<Violation> {
        catalog
            .offerings
            .get(&self.offering)
            .map(|o| self.violations(o))
            .unwrap_or_default()
    }
}

fn component_quantities(offering: &CompiledOffering, item: &ConfigItem) -> BTreeMap<String, u32> {
    let mut quantities: BTreeMap<String, u32> = BTreeMap::new();
    for child in &item.components {
        *quantities.entry(child.offering.clone()).or_default() += child.quantity;
    }
    for (code, c) in &offering.components {
        if c.default_included && !quantities.contains_key(code) {
            quantities.insert(code.clone(), c.min.max(1));
        }
    }
    quantities
}

pub(crate) fn configure(
    catalog: &CompiledCatalog,
    context: &Context,
    item: &ConfigItem,
    path: &str,
    top: bool,
    violations: &mut Vec<Violation>,
    evaluated: &mut usize,
) -> Configured {
    let echo = |source| Configured {
        offering: item.offering.clone(),
        quantity: item.quantity,
        source,
        characteristics: item
            .characteristics
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    ConfiguredValue {
                        value: v.clone(),
                        source: Source::Chosen,
                        rule: None,
                    },
                )
            })
            .collect(),
        components: Vec::new(),
    };
    let Some(offering) = catalog.offerings.get(&item.offering) else {
        violations.push(violation(
            "offering-unknown",
            format!(
                "offering \"{}\" is not in this catalog version",
                item.offering
            ),
            path,
        ));
        return echo(Source::Chosen);
    };
    if item.quantity == 0 {
        violations.push(violation(
            "component-cardinality",
            "quantity must be at least 1",
            &child_path(path, "quantity"),
        ));
    }
    if top {
        if !offering.sellable {
            violations.push(violation(
                "offering-not-sellable",
                format!("{} is only sold as part of a bundle", offering.code),
                path,
            ));
        }
        if !offering.available(
            context.market.as_deref(),
            context.channel.as_deref(),
            context.segment.as_deref(),
            context.date,
        ) {
            violations.push(violation(
                "offering-unavailable",
                format!(
                    "{} is not available for this market, channel, segment or date",
                    offering.code
                ),
                path,
            ));
        }
    }

    let quantities = component_quantities(offering, item);
    let state = ItemState::new(catalog, offering, item, quantities.clone(), path, evaluated);
    violations.extend(state.violations(offering));

    let mut children = Vec::new();
    for (i, child) in item.components.iter().enumerate() {
        let cpath = child_path(path, &format!("components[{i}]"));
        if !offering.components.contains_key(&child.offering) {
            violations.push(violation(
                "component-unknown",
                format!("{} is not a component of {}", child.offering, offering.code),
                &cpath,
            ));
            continue;
        }
        children.push(configure(
            catalog, context, child, &cpath, false, violations, evaluated,
        ));
    }
    for (code, c) in &offering.components {
        let given = item.components.iter().any(|x| &x.offering == code);
        if !given && c.default_included {
            let included = ConfigItem {
                offering: code.clone(),
                quantity: c.min.max(1),
                characteristics: BTreeMap::new(),
                components: Vec::new(),
            };
            let cpath = child_path(path, &format!("components[{code}]"));
            let mut added = configure(
                catalog, context, &included, &cpath, false, violations, evaluated,
            );
            added.source = Source::Included;
            children.push(added);
        }
        let qty = quantities.get(code).copied().unwrap_or(0);
        if qty < c.min || qty > c.max {
            violations.push(violation(
                "component-cardinality",
                format!(
                    "{} needs {}..{} of {code}, has {qty}",
                    offering.code, c.min, c.max
                ),
                &child_path(path, &format!("components[{code}]")),
            ));
        }
    }
    Configured {
        offering: offering.code.clone(),
        quantity: item.quantity,
        source: Source::Chosen,
        characteristics: state.configured_values(),
        components: children,
    }
}
