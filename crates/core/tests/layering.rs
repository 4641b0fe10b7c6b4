#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Dependencies point down only. Reads the workspace's manifests (`cargo metadata --no-deps
//! --offline`, which takes no build lock) and the pure model modules, and fails on:
//!
//! 1. a domain crate or `cpq-application` that depends on an entry point (`cpq-api`,
//!    `cpq-admin`, `cpq-worker`, `cpq-events`, `cpq-load`, `cpq-sim`), directly or through other workspace
//!    crates. Dev-dependencies count: a library's tests must not compile an entry point either
//!    (that is what made every crate's tests compile the API). A dev-dependency on `cpq-testkit`
//!    is fine, and rule 2 keeps testkit itself free of entry points;
//! 2. `cpq-testkit` depending on `cpq-api` (or any entry point): the API's harness lives with the
//!    API's tests;
//! 3. any crate listing `cpq-testkit` outside `[dev-dependencies]` (so `cpq-load`'s binaries do not
//!    link test support);
//! 4. a pure crate (`cpq-core`, `cpq-configuration`, `cpq-pricing`) that links `sqlx`, `tokio` or
//!    `cpq-db` through its normal dependencies, with features resolved as cargo does for that crate
//!    alone (so `cpq-catalog` without its `store` feature is pure), then through the registry
//!    crates it reaches (`cargo metadata --offline`, the resolved graph);
//! 5. a pure model module (`crates/*/src/model.rs`, `crates/*/src/model/**/*.rs`) naming `sqlx`;
//! 6. any crate depending on `cpq-sim` (normal, build or dev): the simulated external systems are
//!    reached over HTTP only, as real ones would be, so the platform shares no code with them.
//!
//! Every message names the crate, the dependency (with the path that reaches it) and the rule.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const DOMAIN: &[&str] = &[
    "cpq-core",
    "cpq-config",
    "cpq-db",
    "cpq-audit",
    "cpq-auth",
    "cpq-telemetry",
    "cpq-catalog",
    "cpq-configuration",
    "cpq-pricing",
    "cpq-customer",
    "cpq-quote",
    "cpq-order",
    "cpq-workflow",
    "cpq-application",
];
const ENTRY_POINTS: &[&str] = &[
    "cpq-api",
    "cpq-admin",
    "cpq-worker",
    "cpq-events",
    "cpq-load",
    "cpq-sim",
];
const PURE: &[&str] = &["cpq-core", "cpq-configuration", "cpq-pricing"];
const IMPURE: &[&str] = &["sqlx", "tokio", "cpq-db"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The host's target triple (`rustc -vV`).
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// `cargo metadata`, offline, for the host platform only: the dependencies of other platforms
/// (`android_system_properties`, ...) are never downloaded by a build here, and without the
/// filter cargo would need them on a fresh machine.
fn metadata(no_deps: bool) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args([
        "metadata",
        "--format-version",
        "1",
        "--offline",
        "--filter-platform",
        &host_triple(),
    ]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    let out = cmd.output().expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[derive(Debug, Clone)]
struct Dep {
    /// The package's name (not a `rename`).
    name: String,
    /// What the manifest calls it (the `rename`, else the name): what features refer to.
    key: String,
    /// "normal", "dev" or "build".
    kind: String,
    optional: bool,
    default_features: bool,
    features: Vec<String>,
}

struct Package {
    deps: Vec<Dep>,
    features: BTreeMap<String, Vec<String>>,
}

/// The workspace members and what their manifests declare.
fn members(meta: &Value) -> BTreeMap<String, Package> {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let name = d["name"].as_str().unwrap().to_owned();
                    Dep {
                        key: d["rename"].as_str().unwrap_or(&name).to_owned(),
                        name,
                        kind: d["kind"].as_str().unwrap_or("normal").to_owned(),
                        optional: d["optional"].as_bool().unwrap_or(false),
                        default_features: d["uses_default_features"].as_bool().unwrap_or(true),
                        features: d["features"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| f.as_str().unwrap().to_owned())
                            .collect(),
                    }
                })
                .collect();
            let features = p["features"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let entries = v
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e.as_str().unwrap().to_owned())
                        .collect();
                    (k.clone(), entries)
                })
                .collect();
            (
                p["name"].as_str().unwrap().to_owned(),
                Package { deps, features },
            )
        })
        .collect()
}

/// `from -> .. -> to` from the parent links of a breadth-first walk.
fn path(parent: &BTreeMap<String, String>, from: &str, to: &str) -> String {
    let mut chain = vec![to.to_owned()];
    let mut at = to;
    while at != from {
        at = &parent[at];
        chain.push(at.to_owned());
    }
    chain.reverse();
    chain.join(" -> ")
}

/// Every workspace crate `start` reaches: its own dependencies of `first_kinds`, then normal and
/// build dependencies of those, transitively (every declared dependency, optional or not).
/// Returns the parent links, for [`path`].
fn reach(
    members: &BTreeMap<String, Package>,
    start: &str,
    first_kinds: &[&str],
) -> BTreeMap<String, String> {
    let mut parent = BTreeMap::new();
    let mut queue = VecDeque::from([start.to_owned()]);
    while let Some(at) = queue.pop_front() {
        let kinds: &[&str] = if at == start {
            first_kinds
        } else {
            &["normal", "build"]
        };
        for d in &members[&at].deps {
            if kinds.contains(&d.kind.as_str())
                && members.contains_key(&d.name)
                && d.name != start
                && !parent.contains_key(&d.name)
            {
                parent.insert(d.name.clone(), at.clone());
                queue.push_back(d.name.clone());
            }
        }
    }
    parent
}

/// The normal dependencies `start` links when built alone, features resolved as cargo resolves
/// them (defaults, `dep:`, `crate/feature`, `crate?/feature`): for each package reached, workspace
/// member or registry crate, the package that first reached it.
fn linked(members: &BTreeMap<String, Package>, start: &str) -> BTreeMap<String, String> {
    // Features enabled per workspace member; optional dependencies enabled per member.
    let mut enabled: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([(start.to_owned(), vec!["default".to_owned()])]);
    while let Some((at, requested)) = queue.pop_front() {
        let package = &members[&at];
        let on = enabled.entry(at.clone()).or_default();
        let before = on.len();
        let mut work: Vec<String> = requested;
        // Features passed on to dependencies (by manifest key), and optional deps switched on.
        let mut passed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut optional_on: BTreeSet<String> = on
            .iter()
            .filter_map(|f| f.strip_prefix("dep:").map(str::to_owned))
            .collect();
        while let Some(f) = work.pop() {
            if !on.insert(f.clone()) && !f.contains('/') {
                continue;
            }
            if let Some(dep) = f.strip_prefix("dep:") {
                optional_on.insert(dep.to_owned());
            } else if let Some((dep, feature)) = f.split_once('/') {
                let weak = dep.ends_with('?');
                let dep = dep.trim_end_matches('?');
                if !weak {
                    optional_on.insert(dep.to_owned());
                }
                passed
                    .entry(dep.to_owned())
                    .or_default()
                    .push(feature.to_owned());
            } else if let Some(entries) = package.features.get(&f) {
                work.extend(entries.iter().cloned());
            } else if package.deps.iter().any(|d| d.optional && d.key == f) {
                // An optional dependency's implicit feature.
                optional_on.insert(f.clone());
            }
        }
        for dep in &optional_on {
            on.insert(format!("dep:{dep}"));
        }
        let grew = on.len() > before || at == start;
        if !grew && passed.is_empty() {
            continue;
        }
        for d in &package.deps {
            if d.kind != "normal" || (d.optional && !optional_on.contains(&d.key)) {
                continue;
            }
            if !parent.contains_key(&d.name) && d.name != start {
                parent.insert(d.name.clone(), at.clone());
            }
            if members.contains_key(&d.name) {
                let mut features = d.features.clone();
                if d.default_features {
                    features.push("default".to_owned());
                }
                features.extend(passed.get(&d.key).cloned().unwrap_or_default());
                let known = enabled.get(&d.name);
                if known.is_none_or(|k| features.iter().any(|f| !k.contains(f))) {
                    queue.push_back((d.name.clone(), features));
                }
            }
        }
    }
    parent
}

#[test]
fn dependencies_point_down_only() {
    let meta = metadata(true);
    let members = members(&meta);
    let mut broken = Vec::new();

    for krate in DOMAIN {
        assert!(
            members.contains_key(*krate),
            "{krate} is not a workspace member: update DOMAIN"
        );
        let parent = reach(&members, krate, &["normal", "build", "dev"]);
        for entry in ENTRY_POINTS {
            if parent.contains_key(*entry) {
                broken.push(format!(
                    "{krate} depends on {entry} ({}): a domain crate or the application layer must \
                     not depend on an entry point (api, admin, worker, events, load, sim), not even for its tests",
                    path(&parent, krate, entry)
                ));
            }
        }
    }

    let parent = reach(&members, "cpq-testkit", &["normal", "build", "dev"]);
    for entry in ENTRY_POINTS {
        if parent.contains_key(*entry) {
            broken.push(format!(
                "cpq-testkit depends on {entry} ({}): test support must not depend on an entry point; \
                 the API's harness lives in crates/api/tests/support",
                path(&parent, "cpq-testkit", entry)
            ));
        }
    }

    for (name, package) in &members {
        for d in &package.deps {
            if d.name == "cpq-testkit" && d.kind != "dev" {
                broken.push(format!(
                    "{name} depends on cpq-testkit as a {} dependency: test support is for \
                     [dev-dependencies] only (cpq-load's binaries must not link it)",
                    d.kind
                ));
            }
        }
    }

    for (name, package) in &members {
        if package.deps.iter().any(|d| d.name == "cpq-sim") {
            broken.push(format!(
                "{name} depends on cpq-sim: the simulated external systems are reached over HTTP \
                 only, as real ones would be"
            ));
        }
    }

    for krate in PURE {
        let parent = linked(&members, krate);
        for impure in IMPURE {
            if parent.contains_key(*impure) {
                broken.push(format!(
                    "{krate} links {impure} ({}): the pure crates (core, configuration, pricing) \
                     must not link sqlx, tokio or cpq-db through their normal dependencies",
                    path(&parent, krate, impure)
                ));
            }
        }
    }

    assert!(
        broken.is_empty(),
        "dependencies must point down only:\n  - {}",
        broken.join("\n  - ")
    );
}

/// Rule 4 beyond the workspace: the registry crates a pure crate links must not pull sqlx or
/// tokio either. Uses the resolved graph, whose features are unified over the workspace, so it
/// may only over-report.
#[test]
fn pure_crates_link_no_sqlx_or_tokio_through_registry_crates() {
    let members_meta = metadata(true);
    let members = members(&members_meta);
    let meta = metadata(false);
    let ids: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Registry package name -> its normal dependencies' names (resolved).
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let name = &ids[node["id"].as_str().unwrap()];
        let deps = graph.entry(name.clone()).or_default();
        for d in node["deps"].as_array().unwrap() {
            let normal = d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                deps.insert(ids[d["pkg"].as_str().unwrap()].clone());
            }
        }
    }
    let mut broken = Vec::new();
    for krate in PURE {
        let mut parent = linked(&members, krate);
        let mut queue: VecDeque<String> = parent
            .keys()
            .filter(|n| !members.contains_key(*n))
            .cloned()
            .collect();
        while let Some(at) = queue.pop_front() {
            for d in graph.get(&at).into_iter().flatten() {
                if !parent.contains_key(d) && d != krate {
                    parent.insert(d.clone(), at.clone());
                    queue.push_back(d.clone());
                }
            }
        }
        for impure in ["sqlx", "tokio"] {
            if parent.contains_key(impure) {
                broken.push(format!(
                    "{krate} links {impure} ({}): the pure crates (core, configuration, pricing) \
                     must not link sqlx or tokio, not even through a registry crate",
                    path(&parent, krate, impure)
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn pure_model_modules_do_not_import_sqlx() {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.join("model.rs").is_file() {
            files.push(src.join("model.rs"));
        }
        if src.join("model").is_dir() {
            rust_files(&src.join("model"), &mut files);
        }
    }
    assert!(
        !files.is_empty(),
        "no model modules found under crates/*/src"
    );
    let mut broken = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("sqlx") {
                broken.push(format!(
                    "{}:{} names sqlx: a pure model module must not import sqlx (types, rules and \
                     state machines only; SQL belongs in the crate's store)",
                    file.strip_prefix(&root).unwrap().display(),
                    i + 1
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
