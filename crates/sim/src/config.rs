//! The simulator's start-up configuration: command-line options (with environment fallbacks,
//! read by the binary) and the optional systems file, which sets each system's initial knobs and
//! its callback secret.
//!
//! ```toml
//! [systems.provisioning]
//! secret = "..."            # HMAC key of its callbacks; default sim-secret-provisioning
//! asynchronous = true
//! latency_p50_ms = 40
//! latency_p95_ms = 400
//! callback_delay_ms = 2000
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cpq_config::Secret;
use serde_json::Value;

use crate::knobs::Knobs;
use crate::system::System;

/// What `cpq-sim` runs with.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub database_url: Secret<String>,
    /// The seed of every random choice; `None`: one from the clock, logged so a run can be
    /// repeated.
    pub seed: Option<u64>,
    pub systems: Systems,
    /// First delay before a failed callback is sent again; doubled per attempt, at most 30 s.
    pub callback_retry_base: Duration,
    pub shutdown_grace: Duration,
}

/// Each system's initial knobs and callback secret.
#[derive(Debug, Clone)]
pub struct Systems {
    pub knobs: BTreeMap<System, Knobs>,
    pub secrets: BTreeMap<System, Secret<String>>,
}

impl Default for Systems {
    /// Every system up with the default knobs, secrets `sim-secret-<system>` (local use only).
    fn default() -> Systems {
        Systems {
            knobs: System::ALL
                .into_iter()
                .map(|s| (s, Knobs::default_for(s)))
                .collect(),
            secrets: System::ALL
                .into_iter()
                .map(|s| (s, Secret::new(format!("sim-secret-{s}"))))
                .collect(),
        }
    }
}

impl Systems {
    /// The defaults changed by the file at `path`, or every problem in it.
    pub fn load(path: &Path) -> Result<Systems, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Systems::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Systems, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut systems = Systems::default();
        let mut problems = Vec::new();
        for (key, value) in table {
            if key != "systems" {
                problems.push(format!(
                    "unknown section [{key}]; expected [systems.<system>]"
                ));
                continue;
            }
            let toml::Value::Table(per_system) = value else {
                problems.push("systems must be a table of [systems.<system>]".to_owned());
                continue;
            };
            for (name, section) in per_system {
                let Some(system) = System::parse(&name) else {
                    problems.push(format!(
                        "[systems.{name}]: unknown system; expected inventory, provisioning, \
                         billing, crm or notification"
                    ));
                    continue;
                };
                let json = serde_json::to_value(&section).map_err(|e| e.to_string())?;
                let Value::Object(mut fields) = json else {
                    problems.push(format!("[systems.{name}] must be a table"));
                    continue;
                };
                match fields.remove("secret") {
                    Some(Value::String(s)) if !s.is_empty() => {
                        systems.secrets.insert(system, Secret::new(s));
                    }
                    Some(_) => {
                        problems.push(format!("[systems.{name}] secret: a non-empty string"))
                    }
                    None => {}
                }
                match systems.knobs[&system].changed(&fields) {
                    Ok(k) => {
                        systems.knobs.insert(system, k);
                    }
                    Err(errors) => problems.extend(
                        errors
                            .into_iter()
                            .map(|e| format!("[systems.{name}] {}: {}", e.field, e.detail)),
                    ),
                }
            }
        }
        if problems.is_empty() {
            Ok(systems)
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::Mode;

    #[test]
    fn a_file_changes_only_what_it_names() {
        let s = Systems::parse(
            r#"
            [systems.billing]
            secret = "b-secret"
            asynchronous = true
            latency_p50_ms = 5
            latency_p95_ms = 50
            mode = "slow"
            transient_failure_rate = 0.05
            "#,
        )
        .unwrap();
        let b = &s.knobs[&System::Billing];
        assert!(b.asynchronous);
        assert_eq!((b.latency_p50_ms, b.latency_p95_ms), (5, 50));
        assert_eq!(b.mode, Mode::Slow);
        assert_eq!(b.transient_failure_rate, 0.05);
        assert_eq!(s.secrets[&System::Billing].expose(), "b-secret");
        assert_eq!(s.secrets[&System::Crm].expose(), "sim-secret-crm");
        assert_eq!(s.knobs[&System::Crm], Knobs::default_for(System::Crm));
    }

    #[test]
    fn every_problem_is_reported() {
        let e = Systems::parse(
            r#"
            [systems.erp]
            mode = "up"
            [systems.crm]
            colour = "red"
            callback_drop_rate = 2.0
            [other]
            "#,
        )
        .unwrap_err();
        for needle in ["systems.erp", "colour", "callback_drop_rate", "[other]"] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
    }

    /// The example shipped with the crate parses.
    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systems.example.toml");
        let s = Systems::load(&path).unwrap();
        assert!(s.knobs[&System::Provisioning].asynchronous);
    }
}
