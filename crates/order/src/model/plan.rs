//! Decomposition: an order's items, through the technical catalog of the catalog version the
//! order was priced with, become its fulfillment plan: tasks with a job type, a target system,
//! the order item they serve and the tasks they wait for. Pure: no I/O, no clock; the same items
//! and catalog give the same plan, byte for byte.
//!
//! What becomes a task:
//! - each offering of a line's configuration tree (the line's offering, its configured
//!   components, recursively, and the bundle components included by default that the
//!   configuration leaves out, as configuration adds them) that has a technical mapping gives one
//!   instance of each of its fulfillment items, whatever the quantity (the quantity travels
//!   with the line; a component configured with quantity 0 is not there);
//! - each of an instance's tasks is one plan task, keyed `L{line}/{item}/{task}` for the line's
//!   own offering and `L{line}/{COMPONENT}/.../{item}/{task}` below it (`#2`, `#3` on a repeated
//!   component offering among siblings);
//! - each order task of the catalog is one plan task per order, keyed `order/{task}`, even for
//!   an order none of whose items has a mapping.
//!
//! Dependencies: `depends_on` within the same item instance (order tasks: other order tasks);
//! `after_all: ["access-line/provision-access"]` on every task of that item and task code in the
//! whole order (none there: no constraint); `*` (order tasks only) on every item task. The plan
//! is in topological order (`position`), ties broken by the order tasks were made in: line
//! number, configuration tree, the catalog's item and task order, then order tasks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use chrono::{DateTime, Utc};
use cpq_catalog::document::{FulfillmentItem, TaskReference, TaskTemplate};
use cpq_catalog::CompiledCatalog;
use cpq_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The job types of the platform's fulfillment process (`processes/order-fulfillment-v2.bpmn`)
/// that a technical catalog may name: catalog publish accepts these besides the job types every
/// deployed `order-fulfillment` version declares, so that a catalog can be published before the
/// process is deployed (a fresh environment seeds its catalog first). A test checks that they are
/// exactly the process's. One per kind of work on each system.
pub const FULFILLMENT_JOB_TYPES: &[&str] = &[
    // inventory
    "reserve-inventory",
    "ship-equipment",
    // provisioning (asynchronous: the system calls back)
    "provision-service",
    // billing
    "activate-billing",
    // crm
    "update-crm",
    // notification
    "send-notification",
];

/// The key prefix of order tasks.
pub const ORDER_SCOPE: &str = "order";

/// A task's status as stored; a new plan's tasks are [`TaskStatus::Ready`] when they wait for
/// nothing, else [`TaskStatus::Pending`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    Pending,
    Ready,
    Running,
    WaitingCallback,
    Completed,
    Failed,
    Skipped,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Pending,
        TaskStatus::Ready,
        TaskStatus::Running,
        TaskStatus::WaitingCallback,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Skipped,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Ready => "ready",
            TaskStatus::Running => "running",
            TaskStatus::WaitingCallback => "waiting-callback",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One task of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTask {
    /// Stable within the order: `L1/access-line/reserve-port`, `order/notify-customer`.
    pub key: String,
    /// Its place in the plan's topological order, from 0.
    pub position: i32,
    /// The order line it serves; none for an order task.
    pub line_no: Option<i32>,
    /// The fulfillment item's code and spec; none for an order task.
    pub item_code: Option<String>,
    pub spec: Option<String>,
    pub task_code: String,
    pub job_type: String,
    /// None when the catalog names no system for the task.
    pub system: Option<String>,
    /// Keys of the tasks that must finish first, in plan order.
    pub depends_on: Vec<String>,
}

impl PlannedTask {
    /// The status the task is stored with.
    pub fn initial_status(&self) -> TaskStatus {
        if self.depends_on.is_empty() {
            TaskStatus::Ready
        } else {
            TaskStatus::Pending
        }
    }
}

/// An order's tasks in topological order: every task after every task it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentPlan {
    pub tasks: Vec<PlannedTask>,
}

/// The message name that releases a task whose dependencies are all done, and the message name
/// of a fallout case's repair; both are correlated on the task's [`ready_key`].
pub const TASK_READY_MESSAGE: &str = "fulfillment-task-ready";
pub const FALLOUT_RESOLVED_MESSAGE: &str = "fallout-resolved";

/// The correlation key of a plan task's messages: `<order id>/<task key>`, unique in a tenant.
pub fn ready_key(order_id: Uuid, task_key: &str) -> String {
    format!("{order_id}/{task_key}")
}

/// A task as the fulfillment process reads it: one element of its `plan_tasks` variable.
pub fn process_task(order_id: Uuid, task: &PlannedTask) -> Value {
    serde_json::json!({
        "key": task.key,
        "job_type": task.job_type,
        "system": task.system,
        "depends_on": task.depends_on,
        "ready_key": ready_key(order_id, &task.key),
    })
}

impl FulfillmentPlan {
    /// The process's `plan_tasks` variable: every task in plan order ([`process_task`]).
    pub fn process_tasks(&self, order_id: Uuid) -> Value {
        Value::Array(
            self.tasks
                .iter()
                .map(|t| process_task(order_id, t))
                .collect(),
        )
    }

    /// SHA-256 (hex) of the plan's canonical JSON: equal plans, equal hashes.
    pub fn hash(&self) -> Result<String, Error> {
        let value = serde_json::to_value(self).map_err(Error::internal)?;
        Ok(cpq_core::digest(&value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// How many tasks may start at once (they wait for nothing).
    pub fn ready(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.initial_status() == TaskStatus::Ready)
            .count()
    }

    /// The systems the plan acts on, sorted, once each.
    pub fn systems(&self) -> Vec<String> {
        let systems: BTreeSet<&str> = self
            .tasks
            .iter()
            .filter_map(|t| t.system.as_deref())
            .collect();
        systems.into_iter().map(str::to_owned).collect()
    }
}

/// A stored task of an order's plan, with how far it got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FulfillmentTask {
    pub key: String,
    pub position: i32,
    pub line_no: Option<i32>,
    pub item_code: Option<String>,
    pub spec: Option<String>,
    pub task_code: String,
    pub job_type: String,
    pub system: Option<String>,
    pub depends_on: Vec<String>,
    pub status: TaskStatus,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The last failure as the worker reported it.
    pub last_error: Option<Value>,
}

/// An order's plan as stored: every task, in plan order (none for an order converted before
/// decomposition existed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderPlan {
    pub order_id: Uuid,
    pub tasks: Vec<FulfillmentTask>,
}

/// One order item as decomposition reads it.
#[derive(Debug, Clone, Copy)]
pub struct PlanItem<'a> {
    pub line_no: i32,
    pub offering_code: &'a str,
    /// The line's configuration as stored (`offering`, `quantity`, `components`; the rest is
    /// not read).
    pub configuration: &'a Value,
}

/// The configuration tree, as far as decomposition reads it.
#[derive(Debug, Default, Deserialize)]
struct Node {
    #[serde(default)]
    offering: String,
    #[serde(default = "one")]
    quantity: u32,
    #[serde(default)]
    components: Vec<Node>,
}

fn one() -> u32 {
    1
}

/// Where a task's `depends_on` codes are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// The n-th item instance of the order.
    Item(usize),
    Order,
}

/// A task before its dependencies are resolved and its position known.
struct Draft<'c> {
    key: String,
    scope: Scope,
    line_no: Option<i32>,
    item: Option<&'c FulfillmentItem>,
    task: &'c TaskTemplate,
}

/// Makes the drafts of the offerings of one line, depth first.
struct Walker<'c> {
    catalog: &'c CompiledCatalog,
    drafts: Vec<Draft<'c>>,
    instances: usize,
}

impl<'c> Walker<'c> {
    fn offering(&mut self, line_no: i32, prefix: &str, offering: &str) {
        let catalog = self.catalog;
        let Some(items) = catalog.technical.get(offering) else {
            return;
        };
        for item in items {
            let scope = Scope::Item(self.instances);
            self.instances += 1;
            for task in &item.tasks {
                self.drafts.push(Draft {
                    key: format!("{prefix}/{}/{}", item.code, task.code),
                    scope,
                    line_no: Some(line_no),
                    item: Some(item),
                    task,
                });
            }
        }
    }

    /// `node` (of `offering`) and everything below it; `above` are the offerings on the way
    /// down (a component cycle, refused at publish, would stop here rather than recurse).
    fn tree(
        &mut self,
        line_no: i32,
        prefix: &str,
        offering: &str,
        node: &Node,
        above: &mut Vec<String>,
    ) {
        self.offering(line_no, prefix, offering);
        above.push(offering.to_owned());
        let mut children: Vec<(&str, Option<&Node>)> = node
            .components
            .iter()
            .filter(|c| c.quantity > 0)
            .map(|c| (c.offering.as_str(), Some(c)))
            .collect();
        // Included by default when the configuration leaves them out (as configuration does).
        let catalog = self.catalog;
        if let Some(o) = catalog.offerings.get(offering) {
            for c in o.components.values().filter(|c| c.default_included) {
                if !node.components.iter().any(|n| n.offering == c.offering) {
                    children.push((c.offering.as_str(), None));
                }
            }
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let empty = Node::default();
        for (child, configured) in children {
            let n = seen.entry(child).or_insert(0);
            *n += 1;
            if above.iter().any(|a| a == child) {
                continue;
            }
            let path = if *n == 1 {
                format!("{prefix}/{child}")
            } else {
                format!("{prefix}/{child}#{n}")
            };
            self.tree(line_no, &path, child, configured.unwrap_or(&empty), above);
        }
        above.pop();
    }
}

fn cycle_error(drafts: &[Draft<'_>], left: impl Iterator<Item = usize>) -> Error {
    let keys: Vec<&str> = left.map(|i| drafts[i].key.as_str()).take(8).collect();
    Error::internal(format!(
        "the technical catalog makes tasks wait for each other: {}",
        keys.join(", ")
    ))
}

/// For each draft, the drafts it waits for.
fn dependencies(drafts: &[Draft<'_>]) -> Result<Vec<BTreeSet<usize>>, Error> {
    let mut by_scope: BTreeMap<(Scope, &str), usize> = BTreeMap::new();
    let mut by_reference: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    let mut item_tasks = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        by_scope.insert((d.scope, d.task.code.as_str()), i);
        if let Some(item) = d.item {
            by_reference
                .entry((item.code.as_str(), d.task.code.as_str()))
                .or_default()
                .push(i);
            item_tasks.push(i);
        }
    }
    drafts
        .iter()
        .map(|d| {
            let mut deps = BTreeSet::new();
            for code in &d.task.depends_on {
                let dep = by_scope.get(&(d.scope, code.as_str())).ok_or_else(|| {
                    Error::internal(format!("task {} depends on unknown task {code}", d.key))
                })?;
                deps.insert(*dep);
            }
            for raw in &d.task.after_all {
                match TaskReference::parse(raw) {
                    Some(TaskReference::Every) => deps.extend(item_tasks.iter().copied()),
                    Some(TaskReference::Task { item, task }) => deps.extend(
                        by_reference
                            .get(&(item, task))
                            .into_iter()
                            .flatten()
                            .copied(),
                    ),
                    None => {
                        return Err(Error::internal(format!(
                            "task {} has an unreadable after_all entry {raw}",
                            d.key
                        )))
                    }
                }
            }
            Ok(deps)
        })
        .collect()
}

/// The drafts in topological order, ties broken by the order they were made in.
fn topological(drafts: &[Draft<'_>], deps: &[BTreeSet<usize>]) -> Result<Vec<usize>, Error> {
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); drafts.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependants[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..drafts.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(drafts.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &next in &dependants[i] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    if order.len() != drafts.len() {
        return Err(cycle_error(
            drafts,
            (0..drafts.len()).filter(|&i| waiting[i] > 0),
        ));
    }
    Ok(order)
}

/// The fulfillment plan of an order with `items` (in any order: lines are taken by number),
/// through `catalog`'s technical catalog. Fails (an internal error: publish refuses such
/// catalogs) on a configuration that is not a configuration, a duplicate line, or a catalog
/// whose dependencies are unknown or circular.
pub fn decompose(
    items: &[PlanItem<'_>],
    catalog: &CompiledCatalog,
) -> Result<FulfillmentPlan, Error> {
    let mut lines: Vec<&PlanItem<'_>> = items.iter().collect();
    lines.sort_by_key(|i| i.line_no);
    if let Some(w) = lines.windows(2).find(|w| w[0].line_no == w[1].line_no) {
        return Err(Error::internal(format!(
            "order line {} twice",
            w[0].line_no
        )));
    }
    let mut walker = Walker {
        catalog,
        drafts: Vec::new(),
        instances: 0,
    };
    for item in lines {
        let node = Node::deserialize(item.configuration).map_err(|e| {
            Error::internal(format!("configuration of order line {}: {e}", item.line_no))
        })?;
        let prefix = format!("L{}", item.line_no);
        walker.tree(
            item.line_no,
            &prefix,
            item.offering_code,
            &node,
            &mut Vec::new(),
        );
    }
    let mut drafts = walker.drafts;
    for task in &catalog.order_tasks {
        drafts.push(Draft {
            key: format!("{ORDER_SCOPE}/{}", task.code),
            scope: Scope::Order,
            line_no: None,
            item: None,
            task,
        });
    }
    let deps = dependencies(&drafts)?;
    let order = topological(&drafts, &deps)?;
    let mut position = vec![0usize; drafts.len()];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p;
    }
    let tasks = order
        .iter()
        .enumerate()
        .map(|(p, &i)| {
            let d = &drafts[i];
            let mut waits: Vec<usize> = deps[i].iter().copied().collect();
            waits.sort_by_key(|&w| position[w]);
            Ok(PlannedTask {
                key: d.key.clone(),
                position: i32::try_from(p).map_err(Error::internal)?,
                line_no: d.line_no,
                item_code: d.item.map(|it| it.code.clone()),
                spec: d.item.map(|it| it.spec.clone()),
                task_code: d.task.code.clone(),
                job_type: d.task.job_type.clone(),
                system: d.task.system.clone(),
                depends_on: waits.into_iter().map(|w| drafts[w].key.clone()).collect(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let distinct: BTreeSet<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    if distinct.len() != tasks.len() {
        return Err(Error::internal("two plan tasks share a key"));
    }
    Ok(FulfillmentPlan { tasks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo() -> CompiledCatalog {
        let doc: cpq_catalog::CatalogDocument =
            serde_json::from_str(include_str!("../../../../catalogs/demo-telecom.json")).unwrap();
        cpq_catalog::compile(&doc).unwrap()
    }

    fn keys(plan: &FulfillmentPlan) -> Vec<&str> {
        plan.tasks.iter().map(|t| t.key.as_str()).collect()
    }

    #[test]
    fn the_demo_order_waits_for_access_lines_before_billing_and_notifies_last() {
        let catalog = demo();
        let internet = json!({ "offering": "BIZ-INTERNET" });
        let bundle = json!({ "offering": "SDWAN-BUNDLE", "components": [{ "offering": "SDWAN-LICENSE", "quantity": 2 }] });
        let items = [
            PlanItem {
                line_no: 2,
                offering_code: "SDWAN-BUNDLE",
                configuration: &bundle,
            },
            PlanItem {
                line_no: 1,
                offering_code: "BIZ-INTERNET",
                configuration: &internet,
            },
        ];
        let plan = decompose(&items, &catalog).unwrap();
        let task = |key: &str| {
            plan.tasks
                .iter()
                .find(|t| t.key == key)
                .unwrap_or_else(|| panic!("{key} in {:?}", keys(&plan)))
        };
        assert_eq!(
            task("L1/access-line/reserve-port").depends_on,
            Vec::<String>::new()
        );
        assert_eq!(
            task("L1/access-line/reserve-port").initial_status(),
            TaskStatus::Ready
        );
        // The router is a default component of the bundle, left out of the configuration.
        assert_eq!(
            task("L2/SDWAN-ROUTER/router/ship-router").depends_on,
            ["L2/SDWAN-ROUTER/router/reserve-router"]
        );
        let licence_billing = task("L2/SDWAN-LICENSE/licence/start-billing");
        assert!(
            licence_billing
                .depends_on
                .contains(&"L1/access-line/provision-access".to_owned()),
            "{licence_billing:?}"
        );
        let notify = task("order/notify-customer");
        assert_eq!(notify.line_no, None);
        assert_eq!(notify.depends_on.len(), plan.tasks.len() - 1);
        assert_eq!(plan.tasks.last().unwrap().key, "order/notify-customer");
        let again = decompose(&[items[1], items[0]], &catalog).unwrap();
        assert_eq!(again, plan);
        assert_eq!(again.hash().unwrap(), plan.hash().unwrap());
    }

    #[test]
    fn repeated_components_get_numbered_keys_and_quantity_zero_is_absent() {
        let catalog = demo();
        let bundle = json!({ "offering": "SDWAN-BUNDLE", "components": [
            { "offering": "SDWAN-LICENSE" }, { "offering": "SDWAN-LICENSE" }, { "offering": "SDWAN-ROUTER", "quantity": 0 }] });
        let plan = decompose(
            &[PlanItem {
                line_no: 3,
                offering_code: "SDWAN-BUNDLE",
                configuration: &bundle,
            }],
            &catalog,
        )
        .unwrap();
        let k = keys(&plan);
        assert!(
            k.contains(&"L3/SDWAN-LICENSE/licence/provision-licence"),
            "{k:?}"
        );
        assert!(
            k.contains(&"L3/SDWAN-LICENSE#2/licence/provision-licence"),
            "{k:?}"
        );
        assert!(!k.iter().any(|k| k.contains("SDWAN-ROUTER")), "{k:?}");
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert_eq!(TaskStatus::parse("done"), None);
    }
}
