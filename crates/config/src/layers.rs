//! Reading and merging the layers: defaults, the environment's file, then `CPQ_*` variables.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::defaults::DEFAULTS;
use crate::model::{Config, Environment};
use crate::validate::{validate, RawConfig};

/// Variables that configure the platform start with this; `__` separates nesting levels:
/// `CPQ_HTTP__BIND=0.0.0.0:8080` sets `[http] bind`. Only names of that form
/// (`CPQ_<SECTION>__<KEY>`) are configuration: other `CPQ_*` variables, such as the
/// `CPQ_API_PORT=tcp://...` that Kubernetes injects for a Service named `cpq-api`, are ignored.
pub const ENV_PREFIX: &str = "CPQ_";
/// Selects the environment (and so the file `config/<env>.toml`).
pub const ENV_SELECTOR: &str = "CPQ_ENV";
/// Overrides the directory holding `<env>.toml` (default `config`).
pub const CONFIG_DIR_VAR: &str = "CPQ_CONFIG_DIR";

/// Where configuration comes from. Built from the process by [`Sources::from_process`]; tests
/// build it by hand so that they never touch the process environment.
#[derive(Debug, Clone)]
pub struct Sources {
    pub environment: Option<String>,
    pub config_dir: PathBuf,
    /// More TOML files, merged in order after the environment's file (e.g. a worker group's).
    pub extra_files: Vec<PathBuf>,
    pub vars: Vec<(String, String)>,
}

impl Sources {
    /// `CPQ_ENV` and `CPQ_CONFIG_DIR` from the process (or the given overrides, from flags), and
    /// every `CPQ_*` variable as the last layer.
    pub fn from_process(environment: Option<String>, config_dir: Option<PathBuf>) -> Sources {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Sources {
            environment: environment.or_else(|| lookup(ENV_SELECTOR)),
            config_dir: config_dir
                .or_else(|| lookup(CONFIG_DIR_VAR).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("config")),
            extra_files: Vec::new(),
            vars,
        }
    }
}

/// Every problem found, so that one failed start shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads, merges and validates the configuration for `sources`.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();

    let environment = match sources.environment.as_deref() {
        None => {
            problems.push(format!(
                "environment: missing required value: set {ENV_SELECTOR} (or --env) to one of {}",
                environment_names()
            ));
            None
        }
        Some(name) => match Environment::parse(name) {
            Some(e) => Some(e),
            None => {
                problems.push(format!(
                    "environment: unknown environment \"{name}\"; expected one of {}",
                    environment_names()
                ));
                None
            }
        },
    };

    let mut merged = match toml::from_str::<toml::Table>(DEFAULTS) {
        Ok(t) => t,
        Err(e) => {
            return Err(ConfigError {
                problems: vec![format!("built-in defaults do not parse (a bug): {e}")],
            })
        }
    };

    if let Some(env) = environment {
        let path = sources.config_dir.join(format!("{}.toml", env.as_str()));
        match std::fs::read_to_string(&path) {
            Ok(text) => match toml::from_str::<toml::Table>(&text) {
                Ok(table) => merge(&mut merged, table),
                Err(e) => problems.push(format!("{}: not valid TOML: {e}", path.display())),
            },
            Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
        }
    }

    for path in &sources.extra_files {
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<toml::Table>(&text) {
                Ok(table) => merge(&mut merged, table),
                Err(e) => problems.push(format!("{}: not valid TOML: {e}", path.display())),
            },
            Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
        }
    }

    merge(&mut merged, variables_layer(&sources.vars));

    // Unknown keys are collected (every one of them) rather than refused by serde at the first.
    let mut unknown = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(key_path(&path));
    let ignored = serde_ignored::Deserializer::new(toml::Value::Table(merged), &mut note_unknown);
    let raw: Option<RawConfig> = match serde_path_to_error::deserialize(ignored) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let path = e.path().to_string();
            problems.push(format!("{path}: {}", e.into_inner()));
            None
        }
    };
    for key in unknown {
        problems.push(format!("{key}: unknown key"));
    }

    match (environment, raw) {
        (Some(env), Some(raw)) => {
            let base = config_base(&sources.config_dir);
            match validate(env, raw, &base) {
                Ok(config) if problems.is_empty() => Ok(config),
                Ok(_) => Err(ConfigError { problems }),
                Err(mut more) => {
                    problems.append(&mut more);
                    Err(ConfigError { problems })
                }
            }
        }
        _ => Err(ConfigError { problems }),
    }
}

fn environment_names() -> String {
    Environment::ALL
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An unknown key's path as the file spells it (`kafka.consumer_assignment`,
/// `worker.job_types[0].handlr`): the optional sections' `Some` and newtype wrappers, which
/// `serde_ignored` shows as `?`, are left out.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

/// Relative paths in a config file are relative to the directory holding it.
fn config_base(config_dir: &Path) -> PathBuf {
    config_dir.to_path_buf()
}

/// `CPQ_SECTION__KEY=value` pairs as a table. Values stay strings; the typed layer parses them.
fn variables_layer(vars: &[(String, String)]) -> toml::Table {
    let mut root = toml::Table::new();
    for (name, value) in vars {
        if name == ENV_SELECTOR || name == CONFIG_DIR_VAR {
            continue;
        }
        let Some(path) = variable_path(name) else {
            continue;
        };
        insert_path(&mut root, &path, toml::Value::String(value.clone()));
    }
    root
}

/// `CPQ_<SECTION>__<KEY>[__<KEY>..]` as the lower-case path `[section, key, ..]`; `None` for
/// every other name (no prefix, no `__`, or an empty part).
fn variable_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
    (path.len() >= 2 && path.iter().all(|p| !p.is_empty())).then_some(path)
}

fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => {
                merge(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
