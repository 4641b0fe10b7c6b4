//! The behaviour of one simulated system (its knobs), their defaults, and the checks a change
//! must pass (from the systems file at start-up or `PUT /admin/systems/{system}` at run time).
//! Pure.

use cpq_core::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::system::System;

/// How much slower `slow` is than `up`.
pub const SLOW_FACTOR: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answers with the configured latency and failure rates.
    Up,
    /// As `up`, with every latency multiplied by [`SLOW_FACTOR`].
    Slow,
    /// Answers 503 to every request, storing and executing nothing.
    Down,
}

impl Mode {
    /// For the `sim_system_mode` gauge.
    pub fn gauge(self) -> f64 {
        match self {
            Mode::Up => 0.0,
            Mode::Slow => 1.0,
            Mode::Down => 2.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knobs {
    pub mode: Mode,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    /// Share of executions answered 500 without executing (nothing stored).
    pub transient_failure_rate: f64,
    /// Share of executions that execute and store their answer, then answer only after
    /// `timeout_delay_ms` (past the caller's timeout).
    pub timeout_rate: f64,
    pub timeout_delay_ms: u64,
    /// Share of executions rejected with a business error (422, stored; for an asynchronous
    /// system: accepted, then a failed callback).
    pub permanent_failure_rate: f64,
    pub callback_delay_ms: u64,
    /// Share of callbacks never sent.
    pub callback_drop_rate: f64,
    /// Answers 202 and delivers the outcome later by callback.
    pub asynchronous: bool,
}

impl Knobs {
    /// The defaults: up, a few tens of milliseconds, no injected failures; provisioning is
    /// asynchronous.
    pub fn default_for(system: System) -> Knobs {
        Knobs {
            mode: Mode::Up,
            latency_p50_ms: 20,
            latency_p95_ms: 80,
            transient_failure_rate: 0.0,
            timeout_rate: 0.0,
            timeout_delay_ms: 30_000,
            permanent_failure_rate: 0.0,
            callback_delay_ms: 500,
            callback_drop_rate: 0.0,
            asynchronous: system == System::Provisioning,
        }
    }

    /// `self` with the fields present in `change` replaced (fields left out keep their value),
    /// or every problem with `change` at once. Unknown fields are refused.
    pub fn changed(&self, change: &Map<String, Value>) -> Result<Knobs, Vec<FieldError>> {
        let mut k = self.clone();
        let mut errors = Vec::new();
        for (name, value) in change {
            match name.as_str() {
                "mode" => set(&mut k.mode, name, value, &mut errors),
                "latency_p50_ms" => set(&mut k.latency_p50_ms, name, value, &mut errors),
                "latency_p95_ms" => set(&mut k.latency_p95_ms, name, value, &mut errors),
                "transient_failure_rate" => {
                    set(&mut k.transient_failure_rate, name, value, &mut errors)
                }
                "timeout_rate" => set(&mut k.timeout_rate, name, value, &mut errors),
                "timeout_delay_ms" => set(&mut k.timeout_delay_ms, name, value, &mut errors),
                "permanent_failure_rate" => {
                    set(&mut k.permanent_failure_rate, name, value, &mut errors)
                }
                "callback_delay_ms" => set(&mut k.callback_delay_ms, name, value, &mut errors),
                "callback_drop_rate" => set(&mut k.callback_drop_rate, name, value, &mut errors),
                "asynchronous" => set(&mut k.asynchronous, name, value, &mut errors),
                _ => {
                    errors.push(FieldError::new(
                        name.as_str(),
                        "unknown-field",
                        format!("{name} is not a knob; see GET /admin/systems/{{system}}"),
                    ));
                }
            }
        }
        // A field that did not parse kept its valid value: what is left to find is in the rest.
        errors.extend(k.problems());
        if errors.is_empty() {
            Ok(k)
        } else {
            Err(errors)
        }
    }

    /// What is wrong with these knobs as a whole.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (name, rate) in [
            ("transient_failure_rate", self.transient_failure_rate),
            ("timeout_rate", self.timeout_rate),
            ("permanent_failure_rate", self.permanent_failure_rate),
            ("callback_drop_rate", self.callback_drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                errors.push(FieldError::new(
                    name,
                    "out-of-range",
                    format!("{name} is a share between 0 and 1, not {rate}"),
                ));
            }
        }
        let failing = self.transient_failure_rate + self.timeout_rate + self.permanent_failure_rate;
        if errors.is_empty() && failing > 1.0 {
            errors.push(FieldError::new(
                "transient_failure_rate",
                "out-of-range",
                format!(
                    "transient_failure_rate + timeout_rate + permanent_failure_rate is {failing}, \
                     more than 1"
                ),
            ));
        }
        if self.latency_p95_ms < self.latency_p50_ms {
            errors.push(FieldError::new(
                "latency_p95_ms",
                "out-of-range",
                format!(
                    "latency_p95_ms ({}) is below latency_p50_ms ({})",
                    self.latency_p95_ms, self.latency_p50_ms
                ),
            ));
        }
        for (name, ms) in [
            ("latency_p50_ms", self.latency_p50_ms),
            ("latency_p95_ms", self.latency_p95_ms),
            ("timeout_delay_ms", self.timeout_delay_ms),
            ("callback_delay_ms", self.callback_delay_ms),
        ] {
            if ms > MAX_MS {
                errors.push(FieldError::new(
                    name,
                    "out-of-range",
                    format!("{name} is at most {MAX_MS} (one hour), not {ms}"),
                ));
            }
        }
        errors
    }
}

/// No knob waits longer than an hour.
const MAX_MS: u64 = 3_600_000;

fn set<T: serde::de::DeserializeOwned>(
    slot: &mut T,
    name: &str,
    value: &Value,
    errors: &mut Vec<FieldError>,
) {
    match T::deserialize(value) {
        Ok(v) => *slot = v,
        Err(e) => errors.push(FieldError::new(name, "invalid", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn defaults_are_valid_and_only_provisioning_is_asynchronous() {
        for s in System::ALL {
            let k = Knobs::default_for(s);
            assert!(k.problems().is_empty(), "{s}: {:?}", k.problems());
            assert_eq!(k.asynchronous, s == System::Provisioning);
        }
    }

    #[test]
    fn a_change_keeps_the_fields_it_leaves_out() {
        let k = Knobs::default_for(System::Billing);
        let changed = k
            .changed(&change(json!({"mode": "down", "timeout_rate": 0.25})))
            .unwrap();
        assert_eq!(changed.mode, Mode::Down);
        assert_eq!(changed.timeout_rate, 0.25);
        assert_eq!(changed.latency_p50_ms, k.latency_p50_ms);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let k = Knobs::default_for(System::Crm);
        let errors = k
            .changed(&change(
                json!({"mode": "sideways", "colour": "red", "latency_p50_ms": -1}),
            ))
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"mode"), "{errors:?}");
        assert!(fields.contains(&"colour"), "{errors:?}");
        assert!(fields.contains(&"latency_p50_ms"), "{errors:?}");
    }

    #[test]
    fn rates_and_percentiles_are_checked() {
        let k = Knobs::default_for(System::Crm);
        let e = k
            .changed(&change(json!({"callback_drop_rate": 1.5})))
            .unwrap_err();
        assert_eq!(e[0].field, "callback_drop_rate");
        let e = k
            .changed(&change(
                json!({"transient_failure_rate": 0.6, "permanent_failure_rate": 0.6}),
            ))
            .unwrap_err();
        assert_eq!(e[0].code, "out-of-range");
        let e = k
            .changed(&change(
                json!({"latency_p50_ms": 500, "latency_p95_ms": 100}),
            ))
            .unwrap_err();
        assert_eq!(e[0].field, "latency_p95_ms");
    }
}
