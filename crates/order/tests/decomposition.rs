#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Decomposition's properties over generated catalogs and orders: the plan is a DAG in
//! topological order, deterministic (whatever order the lines come in), every dependency key
//! exists, every offering with a mapping gets all its tasks, `depends_on`, `after_all` and `*`
//! hold, order tasks appear once per order, and lines without a mapping get no tasks.
//!
//! Catalogs are acyclic by construction: a task may only wait for tasks of a lower rank, the rank
//! of `(item code, task code)` in a fixed order, and item codes are shared between offerings so
//! that `after_all` reaches across lines and offerings.

use std::collections::{BTreeMap, BTreeSet};

use cpq_catalog::document::*;
use cpq_catalog::{compile, CompiledCatalog};
use cpq_order::model::plan::{decompose, FulfillmentPlan, PlanItem, FULFILLMENT_JOB_TYPES};
use proptest::prelude::*;
use serde_json::{json, Value};

const ITEM_CODES: [&str; 4] = ["access", "router", "licence", "sim"];
const TASKS_PER_ITEM: usize = 4;

fn rank(item: usize, task: usize) -> usize {
    item * TASKS_PER_ITEM + task
}

/// A generated task: which earlier tasks of its item it waits for, which `(item, task)` pairs
/// (of lower rank) it follows everywhere, its system and job type.
#[derive(Debug, Clone)]
struct TaskSpec {
    depends: Vec<bool>,
    after: Vec<(usize, usize)>,
    system: usize,
    job: usize,
}

#[derive(Debug, Clone)]
struct OfferingSpec {
    /// Item pool indexes (distinct) with their task count.
    items: Vec<(usize, Vec<TaskSpec>)>,
    /// Components: offerings of higher index, with default inclusion.
    components: Vec<(usize, bool)>,
}

#[derive(Debug, Clone)]
struct OrderTaskSpec {
    depends: Vec<bool>,
    every: bool,
    after: Vec<(usize, usize)>,
    system: usize,
}

fn task_spec(max_tasks: usize) -> impl Strategy<Value = TaskSpec> {
    (
        prop::collection::vec(any::<bool>(), max_tasks),
        prop::collection::vec((0..ITEM_CODES.len(), 0..TASKS_PER_ITEM), 0..3),
        0..SYSTEMS.len(),
        0..FULFILLMENT_JOB_TYPES.len(),
    )
        .prop_map(|(depends, after, system, job)| TaskSpec {
            depends,
            after,
            system,
            job,
        })
}

fn offering_spec() -> impl Strategy<Value = OfferingSpec> {
    (
        prop::collection::btree_map(
            0..ITEM_CODES.len(),
            prop::collection::vec(task_spec(TASKS_PER_ITEM), 1..=TASKS_PER_ITEM),
            0..3,
        ),
        prop::collection::vec((1usize..4, any::<bool>()), 0..3),
    )
        .prop_map(|(items, components)| OfferingSpec {
            items: items.into_iter().collect(),
            components,
        })
}

fn order_task_spec() -> impl Strategy<Value = OrderTaskSpec> {
    (
        prop::collection::vec(any::<bool>(), 3),
        any::<bool>(),
        prop::collection::vec((0..ITEM_CODES.len(), 0..TASKS_PER_ITEM), 0..2),
        0..SYSTEMS.len(),
    )
        .prop_map(|(depends, every, after, system)| OrderTaskSpec {
            depends,
            every,
            after,
            system,
        })
}

fn code(i: usize) -> String {
    format!("O{i}")
}

/// The catalog document of `offerings` and `order_tasks`, keeping only references that exist
/// and respect the rank order.
fn document(offerings: &[OfferingSpec], order_tasks: &[OrderTaskSpec]) -> CatalogDocument {
    let n = offerings.len();
    let exists: BTreeSet<(usize, usize)> = offerings
        .iter()
        .flat_map(|o| {
            o.items
                .iter()
                .flat_map(|(item, tasks)| (0..tasks.len()).map(move |t| (*item, t)))
        })
        .collect();
    let reference = |(item, task): (usize, usize)| format!("{}/t{task}", ITEM_CODES[item]);
    let mut doc = CatalogDocument::default();
    for (i, o) in offerings.iter().enumerate() {
        let mut components: BTreeMap<usize, bool> = BTreeMap::new();
        for (step, default) in &o.components {
            if i + step < n {
                components.insert(i + step, *default);
            }
        }
        doc.offerings.push(
            serde_json::from_value(json!({
                "code": code(i), "name": format!("Offering {i}"), "kind": "configurable",
                "components": components.iter().map(|(c, d)| json!({ "offering": code(*c), "min": 0, "max": 3, "default_included": d })).collect::<Vec<_>>(),
            }))
            .unwrap(),
        );
        if o.items.is_empty() {
            continue;
        }
        let items = o
            .items
            .iter()
            .map(|(item, tasks)| FulfillmentItem {
                code: ITEM_CODES[*item].to_owned(),
                spec: format!("service:{}", ITEM_CODES[*item]),
                tasks: tasks
                    .iter()
                    .enumerate()
                    .map(|(t, spec)| TaskTemplate {
                        code: format!("t{t}"),
                        job_type: FULFILLMENT_JOB_TYPES[spec.job].to_owned(),
                        system: Some(SYSTEMS[spec.system].to_owned()),
                        depends_on: (0..t)
                            .filter(|&d| spec.depends[d])
                            .map(|d| format!("t{d}"))
                            .collect(),
                        after_all: spec
                            .after
                            .iter()
                            .filter(|r| exists.contains(r) && rank(r.0, r.1) < rank(*item, t))
                            .map(|r| reference(*r))
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        doc.technical.push(TechnicalMapping {
            offering: code(i),
            items,
        });
    }
    for (k, spec) in order_tasks.iter().enumerate() {
        let mut after_all: Vec<String> = spec
            .after
            .iter()
            .filter(|r| exists.contains(r))
            .map(|r| reference(*r))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if spec.every {
            after_all.push("*".into());
        }
        doc.order_tasks.push(TaskTemplate {
            code: format!("o{k}"),
            job_type: "send-notification".into(),
            system: Some(SYSTEMS[spec.system].to_owned()),
            depends_on: (0..k)
                .filter(|&d| spec.depends[d])
                .map(|d| format!("o{d}"))
                .collect(),
            after_all,
        });
    }
    doc
}

/// A line: the offering, and for each of its components, the configured quantity (or left out).
type LineSpec = (usize, Vec<Option<u32>>);

fn configuration(catalog: &CompiledCatalog, offering: &str, spec: &[Option<u32>]) -> Value {
    let components: Vec<Value> = catalog.offerings[offering]
        .components
        .keys()
        .zip(spec.iter().chain(std::iter::repeat(&None)))
        .filter_map(|(c, q)| q.map(|q| json!({ "offering": c, "quantity": q })))
        .collect();
    json!({ "offering": offering, "characteristics": {}, "components": components })
}

/// The offering whose mapping made an item task: the last component in its key, else the
/// line's own.
fn offering_of<'a>(key: &'a str, lines: &'a BTreeMap<i32, String>, line_no: i32) -> &'a str {
    let segments: Vec<&str> = key.split('/').collect();
    if segments.len() == 3 {
        &lines[&line_no]
    } else {
        let c = segments[segments.len() - 3];
        c.split('#').next().unwrap()
    }
}

fn template<'a>(
    catalog: &'a CompiledCatalog,
    offering: &str,
    item: &str,
    task: &str,
) -> &'a TaskTemplate {
    catalog.technical[offering]
        .iter()
        .find(|i| i.code == item)
        .and_then(|i| i.tasks.iter().find(|t| t.code == task))
        .unwrap()
}

fn check(plan: &FulfillmentPlan, catalog: &CompiledCatalog, lines: &BTreeMap<i32, String>) {
    let position: BTreeMap<&str, i32> = plan
        .tasks
        .iter()
        .map(|t| (t.key.as_str(), t.position))
        .collect();
    assert_eq!(position.len(), plan.tasks.len(), "keys are unique");
    for (p, t) in plan.tasks.iter().enumerate() {
        assert_eq!(t.position as usize, p, "positions count up in plan order");
        for d in &t.depends_on {
            let at = position
                .get(d.as_str())
                .unwrap_or_else(|| panic!("{} waits for unknown {d}", t.key));
            assert!(
                *at < t.position,
                "{} at {} waits for {d} at {at}",
                t.key,
                t.position
            );
        }
    }
    let waits = |key: &str| -> BTreeSet<&str> {
        plan.tasks
            .iter()
            .find(|t| t.key == key)
            .unwrap()
            .depends_on
            .iter()
            .map(String::as_str)
            .collect()
    };
    let item_tasks: Vec<_> = plan.tasks.iter().filter(|t| t.line_no.is_some()).collect();
    for t in &item_tasks {
        let line = t.line_no.unwrap();
        let item = t.item_code.as_deref().unwrap();
        let offering = offering_of(&t.key, lines, line);
        let tmpl = template(catalog, offering, item, &t.task_code);
        let prefix = t.key.rsplit_once('/').unwrap().0;
        let mine = waits(&t.key);
        for d in &tmpl.depends_on {
            assert!(
                mine.contains(format!("{prefix}/{d}").as_str()),
                "{} waits for its {d}",
                t.key
            );
        }
        for r in &tmpl.after_all {
            let (i, k) = r.split_once('/').unwrap();
            for other in item_tasks
                .iter()
                .filter(|o| o.item_code.as_deref() == Some(i) && o.task_code == k)
            {
                assert!(
                    mine.contains(other.key.as_str()),
                    "{} follows every {r}: {}",
                    t.key,
                    other.key
                );
            }
        }
        // Every task of the item instance is there.
        for sibling in &catalog.technical[offering]
            .iter()
            .find(|i| i.code == item)
            .unwrap()
            .tasks
        {
            assert!(position.contains_key(format!("{prefix}/{}", sibling.code).as_str()));
        }
    }
    let order_tasks: Vec<_> = plan.tasks.iter().filter(|t| t.line_no.is_none()).collect();
    assert_eq!(
        order_tasks.len(),
        catalog.order_tasks.len(),
        "order tasks once per order"
    );
    for tmpl in &catalog.order_tasks {
        let key = format!("order/{}", tmpl.code);
        let mine = waits(&key);
        for d in &tmpl.depends_on {
            assert!(mine.contains(format!("order/{d}").as_str()));
        }
        if tmpl.after_all.iter().any(|r| r == "*") {
            assert!(
                item_tasks.iter().all(|t| mine.contains(t.key.as_str())),
                "{key} follows every item task"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_are_deterministic_dags_that_keep_every_constraint(
        offerings in prop::collection::vec(offering_spec(), 1..6),
        order_tasks in prop::collection::vec(order_task_spec(), 0..3),
        lines in prop::collection::vec((0usize..6, prop::collection::vec(prop::option::of(0u32..3), 0..3)), 0..8),
    ) {
        let doc = document(&offerings, &order_tasks);
        let catalog = compile(&doc).unwrap_or_else(|p| panic!("{p:#?}"));
        let lines: Vec<LineSpec> = lines.into_iter().map(|(o, c)| (o % offerings.len(), c)).collect();
        let configs: Vec<(i32, String, Value)> = lines
            .iter()
            .enumerate()
            .map(|(n, (o, spec))| (n as i32 + 1, code(*o), configuration(&catalog, &code(*o), spec)))
            .collect();
        let items: Vec<PlanItem<'_>> = configs
            .iter()
            .map(|(line_no, offering, c)| PlanItem { line_no: *line_no, offering_code: offering, configuration: c })
            .collect();
        let plan = decompose(&items, &catalog).unwrap();
        let reversed: Vec<PlanItem<'_>> = items.iter().rev().copied().collect();
        let again = decompose(&reversed, &catalog).unwrap();
        prop_assert_eq!(serde_json::to_string(&plan).unwrap(), serde_json::to_string(&again).unwrap());
        prop_assert_eq!(plan.hash().unwrap(), again.hash().unwrap());

        let by_line: BTreeMap<i32, String> = configs.iter().map(|(n, o, _)| (*n, o.clone())).collect();
        check(&plan, &catalog, &by_line);

        for (line_no, offering, _) in &configs {
            let tasks: Vec<&str> = plan.tasks.iter().filter(|t| t.line_no == Some(*line_no)).map(|t| t.key.as_str()).collect();
            match catalog.technical.get(offering) {
                // Every item of the line's own mapping, every task.
                Some(items) => {
                    for item in items {
                        for task in &item.tasks {
                            let key = format!("L{line_no}/{}/{}", item.code, task.code);
                            prop_assert!(tasks.contains(&key.as_str()), "{} missing from {:?}", key, tasks);
                        }
                    }
                }
                // No mapping and nothing below it: no tasks.
                None if catalog.offerings[offering].components.is_empty() => prop_assert!(tasks.is_empty(), "{:?}", tasks),
                None => {}
            }
        }
    }
}

#[test]
fn a_line_whose_offering_has_no_mapping_gets_no_tasks_and_the_order_still_its_order_tasks() {
    let doc: CatalogDocument =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    let catalog = compile(&doc).unwrap();
    let config = json!({ "offering": "MANAGED-SERVICE", "characteristics": {} });
    let plan = decompose(
        &[PlanItem {
            line_no: 1,
            offering_code: "MANAGED-SERVICE",
            configuration: &config,
        }],
        &catalog,
    )
    .unwrap();
    let keys: Vec<&str> = plan.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["order/record-order", "order/notify-customer"]);
    assert_eq!(plan.ready(), 1);
    assert_eq!(plan.systems(), ["crm", "notification"]);
}

#[test]
fn every_job_type_of_the_demo_catalog_is_one_the_fulfillment_process_will_handle() {
    let doc: CatalogDocument =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    let handled: BTreeSet<String> = FULFILLMENT_JOB_TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(
        cpq_catalog::validate::check_job_types(&doc, &handled),
        vec![]
    );
}

/// Catalog publish accepts [`FULFILLMENT_JOB_TYPES`] before the fulfillment process is deployed:
/// they must be exactly the job types of the platform's process that the technical catalog may
/// name (every service task type but its internal `fulfillment-*` jobs).
#[test]
fn the_job_types_publish_accepts_are_those_of_the_platforms_fulfillment_process() {
    let xml = include_str!("../../../processes/order-fulfillment-v2.bpmn");
    let process = cpq_workflow::bpmn::read(xml).unwrap().processes.remove(0);
    let declared: BTreeSet<String> = process
        .job_types()
        .into_iter()
        .filter(|t| !t.starts_with("fulfillment-"))
        .collect();
    let accepted: BTreeSet<String> = FULFILLMENT_JOB_TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(accepted, declared);
}
