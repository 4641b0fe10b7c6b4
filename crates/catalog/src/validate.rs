//! Publish validation: every problem of a catalog version document, all at once.
//!
//! Problem kinds (`kind`): `duplicate-code`, `dangling-reference`, `invalid-expression`,
//! `rule-cycle`, `component-cycle`, `task-cycle`, `missing-price`, `promotion-order`,
//! `invalid-value`, `invalid-definition`; and `unhandled-job-type` from [`check_job_types`],
//! which needs to know what the deployed processes handle and so is the publish command's.
//!
//! The technical catalog: item and task codes are codes (they make plan keys and `item/task`
//! references); a task's `system` is one of [`SYSTEMS`]; `depends_on` names tasks of the same
//! item (of an order task: other order tasks), `after_all` existing `item/task` pairs (or `*`,
//! order tasks only); and no cycle, within an item or across the tasks any one order could hold
//! (every offering's items and the order tasks together).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use cpq_core::Currency;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::document::*;
use crate::expr::Expr;
use crate::values::{check, compile_pattern, Pattern};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    /// Where: `offerings[BI-100].characteristics[bandwidth]`, `rules[R7].when`, ...
    pub path: String,
    pub detail: String,
}

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, kind: &'static str, path: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Problem {
            kind,
            path: path.into(),
            detail: detail.into(),
        });
    }

    fn duplicates<'a>(&mut self, path: &str, codes: impl Iterator<Item = &'a str>) {
        let mut seen = BTreeSet::new();
        for code in codes {
            if !seen.insert(code) {
                self.add(
                    "duplicate-code",
                    format!("{path}[{code}]"),
                    format!("code \"{code}\" is used more than once"),
                );
            }
        }
    }
}

fn code_ok(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn window_ok(from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    match (from, to) {
        (Some(f), Some(t)) => f < t,
        _ => true,
    }
}

fn windows_overlap(
    a: (Option<NaiveDate>, Option<NaiveDate>),
    b: (Option<NaiveDate>, Option<NaiveDate>),
) -> bool {
    let starts_before_end = |from: Option<NaiveDate>, to: Option<NaiveDate>| match (from, to) {
        (Some(f), Some(t)) => f < t,
        _ => true,
    };
    starts_before_end(a.0, b.1) && starts_before_end(b.0, a.1)
}

fn matches_any(list: &[String], value: &Option<String>) -> bool {
    match value {
        None => true,
        Some(v) => list.is_empty() || list.contains(v),
    }
}

/// Finds one cycle in a directed graph given as adjacency lists, returning its nodes in order.
pub(crate) fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut HashMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    for node in graph.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(node, graph, &mut marks, &mut stack) {
            return Some(c);
        }
    }
    None
}

fn check_default(p: &mut Problems, path: &str, ch: &Characteristic, value: &serde_json::Value) {
    let pattern = match &ch.kind {
        CharacteristicKind::Text {
            pattern: Some(src), ..
        } => compile_pattern(src).ok(),
        _ => None,
    };
    if let Err(e) = check(&ch.kind, pattern.as_ref(), value) {
        p.add("invalid-value", path, format!("default {value} {e}"));
    }
}

fn check_offering(p: &mut Problems, o: &Offering, offerings: &BTreeMap<&str, &Offering>) {
    let path = format!("offerings[{}]", o.code);
    if !code_ok(&o.code) {
        p.add(
            "invalid-definition",
            &path,
            "an offering code is 1-64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
        );
    }
    if o.name.trim().is_empty() {
        p.add(
            "invalid-definition",
            format!("{path}.name"),
            "name must not be blank",
        );
    }
    if !window_ok(o.effective_from, o.effective_to) {
        p.add(
            "invalid-definition",
            format!("{path}.effective_to"),
            "effective_to must be after effective_from",
        );
    }
    match o.kind {
        OfferingKind::Simple if !o.characteristics.is_empty() || !o.components.is_empty() => {
            p.add(
                "invalid-definition",
                &path,
                "a simple offering has no characteristics and no components",
            );
        }
        OfferingKind::Bundle if o.components.is_empty() => {
            p.add(
                "invalid-definition",
                &path,
                "a bundle needs at least one component",
            );
        }
        _ => {}
    }
    p.duplicates(
        &format!("{path}.characteristics"),
        o.characteristics.iter().map(|c| c.code.as_str()),
    );
    p.duplicates(
        &format!("{path}.components"),
        o.components.iter().map(|c| c.offering.as_str()),
    );
    for ch in &o.characteristics {
        let cpath = format!("{path}.characteristics[{}]", ch.code);
        match &ch.kind {
            CharacteristicKind::Enum { values } => {
                if values.is_empty() {
                    p.add(
                        "invalid-definition",
                        &cpath,
                        "an enumerated characteristic needs values",
                    );
                }
                p.duplicates(
                    &format!("{cpath}.values"),
                    values.iter().map(String::as_str),
                );
            }
            CharacteristicKind::Number { min, max, step } => {
                if let (Some(a), Some(b)) = (min, max) {
                    if a > b {
                        p.add(
                            "invalid-definition",
                            &cpath,
                            format!("min {a} is above max {b}"),
                        );
                    }
                }
                if step.is_some_and(|s| s <= Decimal::ZERO) {
                    p.add("invalid-definition", &cpath, "step must be positive");
                }
            }
            CharacteristicKind::Text {
                pattern: Some(src), ..
            } => {
                if let Err(e) = compile_pattern(src) {
                    p.add(
                        "invalid-expression",
                        format!("{cpath}.pattern"),
                        format!("pattern does not compile: {e}"),
                    );
                }
            }
            CharacteristicKind::Text { .. } | CharacteristicKind::Boolean => {}
        }
        if let Some(d) = &ch.default {
            check_default(p, &format!("{cpath}.default"), ch, d);
        }
    }
    for c in &o.components {
        let cpath = format!("{path}.components[{}]", c.offering);
        if !offerings.contains_key(c.offering.as_str()) {
            p.add(
                "dangling-reference",
                &cpath,
                format!("component offering \"{}\" does not exist", c.offering),
            );
        }
        if c.max == 0 || c.min > c.max {
            p.add(
                "invalid-definition",
                &cpath,
                format!("cardinality {}..{} is empty", c.min, c.max),
            );
        }
    }
}

fn check_rule(p: &mut Problems, r: &Rule, offerings: &BTreeMap<&str, &Offering>) {
    let path = format!("rules[{}]", r.code);
    if r.message.trim().is_empty() {
        p.add(
            "invalid-definition",
            format!("{path}.message"),
            "a rule needs a message",
        );
    }
    let Some(offering) = offerings.get(r.offering.as_str()) else {
        p.add(
            "dangling-reference",
            format!("{path}.offering"),
            format!("offering \"{}\" does not exist", r.offering),
        );
        return;
    };
    let chars: BTreeMap<&str, &Characteristic> = offering
        .characteristics
        .iter()
        .map(|c| (c.code.as_str(), c))
        .collect();
    for (field, src) in [("when", &r.when), ("then", &r.then)] {
        let Some(src) = src else { continue };
        match Expr::parse(src) {
            Ok(e) => {
                for ident in e.identifiers() {
                    if !chars.contains_key(ident.as_str()) {
                        p.add(
                            "dangling-reference",
                            format!("{path}.{field}"),
                            format!("\"{ident}\" is not a characteristic of {}", r.offering),
                        );
                    }
                }
            }
            Err(e) => p.add(
                "invalid-expression",
                format!("{path}.{field}"),
                format!("'{src}' does not parse {e}"),
            ),
        }
    }
    if let Some(component) = &r.component {
        if !offering.components.iter().any(|c| &c.offering == component) {
            p.add(
                "dangling-reference",
                format!("{path}.component"),
                format!("\"{component}\" is not a component of {}", r.offering),
            );
        }
    }
    let shape_ok = match r.kind {
        RuleKind::Requires | RuleKind::Excludes => {
            (r.component.is_some() || r.then.is_some()) && r.set.is_none()
        }
        RuleKind::Constraint => r.then.is_some() && r.component.is_none() && r.set.is_none(),
        RuleKind::Default => r.set.is_some() && r.then.is_none() && r.component.is_none(),
    };
    if !shape_ok {
        let need = match r.kind {
            RuleKind::Requires | RuleKind::Excludes => "a component and/or a then expression",
            RuleKind::Constraint => "a then expression only",
            RuleKind::Default => "a set (characteristic and value) only",
        };
        p.add(
            "invalid-definition",
            &path,
            format!("a {:?} rule takes {need}", r.kind).to_lowercase(),
        );
    }
    if let Some(set) = &r.set {
        match chars.get(set.characteristic.as_str()) {
            Some(ch) => check_default(p, &format!("{path}.set.value"), ch, &set.value),
            None => p.add(
                "dangling-reference",
                format!("{path}.set.characteristic"),
                format!(
                    "\"{}\" is not a characteristic of {}",
                    set.characteristic, r.offering
                ),
            ),
        }
    }
}

/// Default rules may not feed each other in a circle: `a` defaulted from `b` while `b` is
/// defaulted from `a` has no order.
fn check_rule_cycles(p: &mut Problems, doc: &CatalogDocument) {
    let mut per_offering: BTreeMap<&str, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for r in doc.rules.iter().filter(|r| r.kind == RuleKind::Default) {
        let (Some(set), Some(Ok(when))) = (&r.set, r.when.as_deref().map(Expr::parse)) else {
            continue;
        };
        let graph = per_offering.entry(r.offering.as_str()).or_default();
        for read in when.identifiers() {
            graph
                .entry(read.clone())
                .or_default()
                .insert(set.characteristic.clone());
        }
    }
    for (offering, graph) in per_offering {
        if let Some(cycle) = find_cycle(&graph) {
            p.add(
                "rule-cycle",
                format!("offerings[{offering}]"),
                format!(
                    "default rules set characteristics in a circle: {}",
                    cycle.join(" -> ")
                ),
            );
        }
    }
}

fn check_component_cycles(p: &mut Problems, doc: &CatalogDocument) {
    let graph: BTreeMap<String, BTreeSet<String>> = doc
        .offerings
        .iter()
        .map(|o| {
            (
                o.code.clone(),
                o.components.iter().map(|c| c.offering.clone()).collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        p.add(
            "component-cycle",
            format!("offerings[{}]", cycle[0]),
            format!("offerings contain each other: {}", cycle.join(" -> ")),
        );
    }
}

fn check_price_list(
    p: &mut Problems,
    l: &PriceList,
    doc: &CatalogDocument,
    offerings: &BTreeMap<&str, &Offering>,
) {
    let path = format!("price_lists[{}]", l.code);
    if Currency::parse(&l.currency).is_none() {
        p.add(
            "invalid-value",
            format!("{path}.currency"),
            format!("\"{}\" is not an ISO 4217 currency", l.currency),
        );
    }
    if !window_ok(l.effective_from, l.effective_to) {
        p.add(
            "invalid-definition",
            format!("{path}.effective_to"),
            "effective_to must be after effective_from",
        );
    }
    p.duplicates(
        &format!("{path}.entries"),
        l.entries.iter().map(|e| e.offering.as_str()),
    );
    for e in &l.entries {
        let epath = format!("{path}.entries[{}]", e.offering);
        let Some(offering) = offerings.get(e.offering.as_str()) else {
            p.add(
                "dangling-reference",
                &epath,
                format!("offering \"{}\" does not exist", e.offering),
            );
            continue;
        };
        let amounts = std::iter::once((e.one_time, e.recurring))
            .chain(e.tiers.iter().map(|t| (t.one_time, t.recurring)))
            .chain(e.surcharges.iter().map(|s| (s.one_time, s.recurring)))
            .chain(e.in_bundle.iter().map(|b| (b.one_time, b.recurring)));
        for (a, b) in amounts {
            if a.is_sign_negative() || b.is_sign_negative() {
                p.add("invalid-value", &epath, "amounts must not be negative");
                break;
            }
        }
        let mut last = 0;
        for t in &e.tiers {
            if t.min_quantity <= last {
                p.add(
                    "invalid-definition",
                    format!("{epath}.tiers"),
                    "tiers need ascending min_quantity values of at least 1",
                );
                break;
            }
            last = t.min_quantity;
        }
        for s in &e.surcharges {
            match offering
                .characteristics
                .iter()
                .find(|c| c.code == s.characteristic)
            {
                None => p.add(
                    "dangling-reference",
                    format!("{epath}.surcharges[{}]", s.characteristic),
                    format!(
                        "\"{}\" is not a characteristic of {}",
                        s.characteristic, e.offering
                    ),
                ),
                Some(ch) => {
                    let raw = match &ch.kind {
                        CharacteristicKind::Boolean => serde_json::Value::Bool(s.value == "true"),
                        _ => serde_json::Value::String(s.value.clone()),
                    };
                    let pattern: Option<Pattern> = match &ch.kind {
                        CharacteristicKind::Text {
                            pattern: Some(src), ..
                        } => compile_pattern(src).ok(),
                        _ => None,
                    };
                    if check(&ch.kind, pattern.as_ref(), &raw).is_err()
                        || (matches!(ch.kind, CharacteristicKind::Boolean)
                            && s.value != "true"
                            && s.value != "false")
                    {
                        p.add(
                            "invalid-value",
                            format!("{epath}.surcharges[{}]", s.characteristic),
                            format!("\"{}\" is not a value of {}", s.value, s.characteristic),
                        );
                    }
                }
            }
        }
        for b in &e.in_bundle {
            let contains = offerings
                .get(b.bundle.as_str())
                .is_some_and(|bundle| bundle.components.iter().any(|c| c.offering == e.offering));
            if !contains {
                p.add(
                    "dangling-reference",
                    format!("{epath}.in_bundle[{}]", b.bundle),
                    format!("\"{}\" is not a bundle containing {}", b.bundle, e.offering),
                );
            }
        }
    }
    if l.complete {
        let priced: BTreeSet<&str> = l.entries.iter().map(|e| e.offering.as_str()).collect();
        for o in doc.offerings.iter().filter(|o| o.sellable) {
            let eligible = matches_any(&o.markets, &l.market)
                && matches_any(&o.channels, &l.channel)
                && matches_any(&o.segments, &l.segment)
                && windows_overlap(
                    (o.effective_from, o.effective_to),
                    (l.effective_from, l.effective_to),
                );
            if eligible && !priced.contains(o.code.as_str()) {
                p.add(
                    "missing-price",
                    format!("{path}.entries"),
                    format!(
                        "sellable offering {} has no price in this complete list",
                        o.code
                    ),
                );
            }
        }
    }
}

fn check_promotions(
    p: &mut Problems,
    doc: &CatalogDocument,
    offerings: &BTreeMap<&str, &Offering>,
) {
    for pr in &doc.promotions {
        let path = format!("promotions[{}]", pr.code);
        for o in &pr.eligibility.offerings {
            if !offerings.contains_key(o.as_str()) {
                p.add(
                    "dangling-reference",
                    format!("{path}.eligibility.offerings"),
                    format!("offering \"{o}\" does not exist"),
                );
            }
        }
        if !window_ok(pr.eligibility.from, pr.eligibility.to) {
            p.add(
                "invalid-definition",
                format!("{path}.eligibility.to"),
                "to must be after from",
            );
        }
        let v = pr.effect.value;
        let ok = match pr.effect.kind {
            EffectKind::Percent => v > Decimal::ZERO && v <= Decimal::ONE_HUNDRED,
            EffectKind::Amount | EffectKind::Override => !v.is_sign_negative(),
        };
        if !ok {
            p.add(
                "invalid-value",
                format!("{path}.effect.value"),
                format!("{v} is not a valid {:?} value", pr.effect.kind).to_lowercase(),
            );
        }
    }
    // Within a stacking group, the order must be decidable: no mixing of stackable and
    // non-stackable, and no two non-stackable promotions of equal priority that can meet on a line.
    let mut groups: BTreeMap<&str, Vec<&Promotion>> = BTreeMap::new();
    for pr in &doc.promotions {
        groups
            .entry(pr.stacking_group.as_str())
            .or_default()
            .push(pr);
    }
    for (group, members) in groups {
        if members.iter().any(|m| m.stackable) && members.iter().any(|m| !m.stackable) {
            p.add(
                "promotion-order",
                format!("stacking_groups[{group}]"),
                "a stacking group mixes stackable and non-stackable promotions",
            );
        }
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                let meet = (a.eligibility.offerings.is_empty()
                    || b.eligibility.offerings.is_empty()
                    || a.eligibility
                        .offerings
                        .iter()
                        .any(|o| b.eligibility.offerings.contains(o)))
                    && windows_overlap(
                        (a.eligibility.from, a.eligibility.to),
                        (b.eligibility.from, b.eligibility.to),
                    );
                if !a.stackable && !b.stackable && a.priority == b.priority && meet {
                    p.add("promotion-order", format!("promotions[{}]", b.code), format!("{} and {} share stacking group {group} and priority {}: which applies is undefined", a.code, b.code, a.priority));
                }
            }
        }
    }
}

/// A task's own fields: its code (it is part of plan keys and `item/task` references), job type
/// and system.
fn check_task(p: &mut Problems, path: &str, task: &TaskTemplate) {
    if !code_ok(&task.code) {
        p.add(
            "invalid-definition",
            path,
            "a task code is 1-64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
        );
    }
    if task.job_type.trim().is_empty() {
        p.add("invalid-definition", path, "job_type must not be blank");
    }
    if let Some(system) = &task.system {
        if !SYSTEMS.contains(&system.as_str()) {
            p.add(
                "invalid-value",
                format!("{path}.system"),
                format!(
                    "\"{system}\" is not a fulfillment system ({})",
                    SYSTEMS.join(", ")
                ),
            );
        }
    }
}

/// One `after_all` entry of the task at `path`: `item/task` naming a task some fulfillment item
/// of the catalog has (`named`: item code → its task codes), or `*` for an order task.
fn check_after_all(
    p: &mut Problems,
    path: &str,
    raw: &str,
    named: &BTreeMap<&str, BTreeSet<&str>>,
    order_task: bool,
) {
    let path = format!("{path}.after_all");
    match TaskReference::parse(raw) {
        Some(TaskReference::Every) if order_task => {}
        Some(TaskReference::Every) => p.add(
            "invalid-definition",
            path,
            "only an order task may follow every task (\"*\")",
        ),
        Some(TaskReference::Task { item, task }) => {
            if !named.get(item).is_some_and(|tasks| tasks.contains(task)) {
                p.add(
                    "dangling-reference",
                    path,
                    format!("after_all names unknown task \"{raw}\": no fulfillment item \"{item}\" has a task \"{task}\""),
                );
            }
        }
        None => p.add(
            "invalid-definition",
            path,
            format!(
                "after_all entry \"{raw}\" is not \"item/task\"{}",
                if order_task { " or \"*\"" } else { "" }
            ),
        ),
    }
}

/// The graph of every task one order can hold, over the whole catalog: an order may hold any
/// offerings, so a cycle here is a cycle in some order's plan. Nodes are `OFFERING/item/task`
/// for item tasks and `order/task` for order tasks (an edge points at what must finish first);
/// with each node's element path.
fn whole_task_graph<'d>(
    doc: &'d CatalogDocument,
) -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let node = |offering: &str, item: &str, task: &str| format!("{offering}/{item}/{task}");
    let mut by_reference: BTreeMap<(&'d str, &'d str), Vec<String>> = BTreeMap::new();
    let mut every_item_task = BTreeSet::new();
    let mut paths = BTreeMap::new();
    for t in &doc.technical {
        for item in &t.items {
            for task in &item.tasks {
                let id = node(&t.offering, &item.code, &task.code);
                by_reference
                    .entry((item.code.as_str(), task.code.as_str()))
                    .or_default()
                    .push(id.clone());
                every_item_task.insert(id.clone());
                paths.insert(
                    id,
                    format!(
                        "technical[{}].items[{}].tasks[{}]",
                        t.offering, item.code, task.code
                    ),
                );
            }
        }
    }
    // `*` is an order task's only (an item task naming it is refused on its own).
    let after_all = |task: &'d TaskTemplate, order_task: bool| -> BTreeSet<String> {
        let mut to = BTreeSet::new();
        for raw in &task.after_all {
            match TaskReference::parse(raw) {
                Some(TaskReference::Every) if order_task => {
                    to.extend(every_item_task.iter().cloned())
                }
                Some(TaskReference::Every) => {}
                Some(TaskReference::Task { item, task }) => to.extend(
                    by_reference
                        .get(&(item, task))
                        .into_iter()
                        .flatten()
                        .cloned(),
                ),
                None => {}
            }
        }
        to
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &doc.technical {
        for item in &t.items {
            for task in &item.tasks {
                let mut to = after_all(task, false);
                to.extend(
                    task.depends_on
                        .iter()
                        .map(|d| node(&t.offering, &item.code, d)),
                );
                graph
                    .entry(node(&t.offering, &item.code, &task.code))
                    .or_default()
                    .extend(to);
            }
        }
    }
    for task in &doc.order_tasks {
        let id = format!("order/{}", task.code);
        paths.insert(id.clone(), format!("order_tasks[{}]", task.code));
        let mut to = after_all(task, true);
        to.extend(task.depends_on.iter().map(|d| format!("order/{d}")));
        graph.entry(id).or_default().extend(to);
    }
    (graph, paths)
}

fn check_technical(p: &mut Problems, doc: &CatalogDocument, offerings: &BTreeMap<&str, &Offering>) {
    p.duplicates(
        "technical",
        doc.technical.iter().map(|t| t.offering.as_str()),
    );
    let mut named: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for item in doc.technical.iter().flat_map(|t| &t.items) {
        named
            .entry(item.code.as_str())
            .or_default()
            .extend(item.tasks.iter().map(|t| t.code.as_str()));
    }
    let mut cycle_in_an_item = false;
    for t in &doc.technical {
        let path = format!("technical[{}]", t.offering);
        if !offerings.contains_key(t.offering.as_str()) {
            p.add(
                "dangling-reference",
                &path,
                format!("offering \"{}\" does not exist", t.offering),
            );
        }
        p.duplicates(
            &format!("{path}.items"),
            t.items.iter().map(|i| i.code.as_str()),
        );
        for item in &t.items {
            let ipath = format!("{path}.items[{}]", item.code);
            if !code_ok(&item.code) {
                p.add(
                    "invalid-definition",
                    &ipath,
                    "an item code is 1-64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
                );
            }
            p.duplicates(
                &format!("{ipath}.tasks"),
                item.tasks.iter().map(|t| t.code.as_str()),
            );
            let codes: BTreeSet<&str> = item.tasks.iter().map(|t| t.code.as_str()).collect();
            let mut graph = BTreeMap::new();
            for task in &item.tasks {
                let tpath = format!("{ipath}.tasks[{}]", task.code);
                check_task(p, &tpath, task);
                for d in &task.depends_on {
                    if !codes.contains(d.as_str()) {
                        p.add(
                            "dangling-reference",
                            &tpath,
                            format!("depends on unknown task \"{d}\""),
                        );
                    }
                }
                for raw in &task.after_all {
                    check_after_all(p, &tpath, raw, &named, false);
                }
                graph.insert(
                    task.code.clone(),
                    task.depends_on.iter().cloned().collect::<BTreeSet<_>>(),
                );
            }
            if let Some(cycle) = find_cycle(&graph) {
                cycle_in_an_item = true;
                p.add(
                    "task-cycle",
                    &ipath,
                    format!("tasks depend on each other: {}", cycle.join(" -> ")),
                );
            }
        }
    }
    p.duplicates(
        "order_tasks",
        doc.order_tasks.iter().map(|t| t.code.as_str()),
    );
    let order_codes: BTreeSet<&str> = doc.order_tasks.iter().map(|t| t.code.as_str()).collect();
    for task in &doc.order_tasks {
        let tpath = format!("order_tasks[{}]", task.code);
        check_task(p, &tpath, task);
        for d in &task.depends_on {
            if !order_codes.contains(d.as_str()) {
                p.add(
                    "dangling-reference",
                    &tpath,
                    format!("depends on unknown order task \"{d}\""),
                );
            }
        }
        for raw in &task.after_all {
            check_after_all(p, &tpath, raw, &named, true);
        }
    }
    // Across items and order tasks; a cycle within one item is reported above, once.
    if !cycle_in_an_item {
        let (graph, paths) = whole_task_graph(doc);
        if let Some(cycle) = find_cycle(&graph) {
            let at = paths.get(&cycle[0]).cloned().unwrap_or_default();
            p.add(
                "task-cycle",
                at,
                format!(
                    "tasks of an order would wait for each other: {}",
                    cycle.join(" -> ")
                ),
            );
        }
    }
}

/// Every task of `doc` (item and order tasks) whose job type is not in `handled`, the job types
/// some deployed process (or the fulfillment process to come: the caller decides) handles, as
/// `unhandled-job-type` problems at the task's `job_type`. Pure: the caller reads `handled`.
pub fn check_job_types(doc: &CatalogDocument, handled: &BTreeSet<String>) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    let tasks = doc
        .technical
        .iter()
        .flat_map(|t| {
            t.items.iter().flat_map(move |item| {
                item.tasks.iter().map(move |task| {
                    (
                        format!(
                            "technical[{}].items[{}].tasks[{}]",
                            t.offering, item.code, task.code
                        ),
                        task,
                    )
                })
            })
        })
        .chain(
            doc.order_tasks
                .iter()
                .map(|task| (format!("order_tasks[{}]", task.code), task)),
        );
    for (path, task) in tasks {
        if !task.job_type.trim().is_empty() && !handled.contains(&task.job_type) {
            p.add(
                "unhandled-job-type",
                format!("{path}.job_type"),
                format!(
                    "no deployed process handles job type \"{}\" (handled: {})",
                    task.job_type,
                    handled
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    p.0
}

/// Every problem that stops `doc` from being published; empty when it may be.
pub fn validate(doc: &CatalogDocument) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    p.duplicates("offerings", doc.offerings.iter().map(|o| o.code.as_str()));
    p.duplicates("rules", doc.rules.iter().map(|r| r.code.as_str()));
    p.duplicates(
        "price_lists",
        doc.price_lists.iter().map(|l| l.code.as_str()),
    );
    p.duplicates("promotions", doc.promotions.iter().map(|x| x.code.as_str()));
    p.duplicates("tax_rates", doc.tax_rates.iter().map(|t| t.market.as_str()));
    let offerings: BTreeMap<&str, &Offering> =
        doc.offerings.iter().map(|o| (o.code.as_str(), o)).collect();
    for o in &doc.offerings {
        check_offering(&mut p, o, &offerings);
    }
    check_component_cycles(&mut p, doc);
    for r in &doc.rules {
        check_rule(&mut p, r, &offerings);
    }
    check_rule_cycles(&mut p, doc);
    for l in &doc.price_lists {
        check_price_list(&mut p, l, doc, &offerings);
    }
    check_promotions(&mut p, doc, &offerings);
    for t in &doc.tax_rates {
        if t.rate.is_sign_negative() || t.rate >= Decimal::ONE {
            p.add(
                "invalid-value",
                format!("tax_rates[{}]", t.market),
                "a tax rate is a fraction from 0 up to (not including) 1",
            );
        }
    }
    check_technical(&mut p, doc, &offerings);
    p.0
}
