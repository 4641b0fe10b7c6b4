//! What one execution of a request does: its outcome, its latency, whether its callback is
//! dropped. Pure: the knobs, any forced outcome and the random draws in, a [`Plan`] out.

use std::time::Duration;

use crate::force::Force;
use crate::knobs::{Knobs, Mode, SLOW_FACTOR};
use crate::latency::LogNormal;
use crate::system::System;

/// Uniform draws in [0, 1), one per random choice.
#[derive(Debug, Clone, Copy)]
pub struct Draws {
    pub outcome: f64,
    pub latency: (f64, f64),
    pub drop: f64,
    pub code: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Synchronous: 200 with the result; asynchronous: 202, then a succeeded callback.
    Succeed,
    /// 500 without executing; no answer stored.
    Transient,
    /// Executes as [`Outcome::Succeed`] and stores the answer, but answers late.
    Timeout,
    /// 422 with this business code, stored.
    Reject(String),
    /// Asynchronous only: 202, then a failed callback with this business code.
    FailLater(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    pub latency: Duration,
    pub drop_callback: bool,
}

/// The force a payload marker still applies after `transient_failures` earlier attempts of the
/// key: `transient:N` stops failing after N of them.
pub fn payload_force(marker: &Force, transient_failures: u32) -> Force {
    match marker {
        Force::Transient(Some(n)) if transient_failures >= *n => Force::Success,
        other => other.clone(),
    }
}

/// The plan for one execution on `system` with `knobs`: `forced` (from the payload or the
/// system's queue) wins over the rates.
pub fn plan(system: System, knobs: &Knobs, forced: Option<&Force>, draws: Draws) -> Plan {
    let mut latency = LogNormal::fit(knobs.latency_p50_ms, knobs.latency_p95_ms)
        .sample(draws.latency.0, draws.latency.1);
    if knobs.mode == Mode::Slow {
        latency *= SLOW_FACTOR;
    }
    let later_or_now = |code: String| {
        if knobs.asynchronous {
            Outcome::FailLater(code)
        } else {
            Outcome::Reject(code)
        }
    };
    let (outcome, drop_callback) = match forced {
        Some(Force::Success) => (Outcome::Succeed, false),
        Some(Force::Transient(_)) => (Outcome::Transient, false),
        Some(Force::Timeout) => (Outcome::Timeout, false),
        Some(Force::Permanent(code)) => (Outcome::Reject(code.clone()), false),
        Some(Force::CallbackFailed(code)) => (later_or_now(code.clone()), false),
        Some(Force::CallbackDrop) => (Outcome::Succeed, knobs.asynchronous),
        None => {
            let t = knobs.transient_failure_rate;
            let to = t + knobs.timeout_rate;
            let p = to + knobs.permanent_failure_rate;
            let u = draws.outcome;
            let outcome = if u < t {
                Outcome::Transient
            } else if u < to {
                Outcome::Timeout
            } else if u < p {
                let codes = system.business_codes();
                let i = ((draws.code * codes.len() as f64) as usize).min(codes.len() - 1);
                later_or_now(codes[i].to_owned())
            } else {
                Outcome::Succeed
            };
            let drop = knobs.asynchronous
                && outcome != Outcome::Transient
                && draws.drop < knobs.callback_drop_rate;
            (outcome, drop)
        }
    };
    Plan {
        outcome,
        latency,
        drop_callback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn draws(outcome: f64) -> Draws {
        Draws {
            outcome,
            latency: (0.5, 0.5),
            drop: 0.5,
            code: 0.0,
        }
    }

    fn knobs(system: System) -> Knobs {
        let mut k = Knobs::default_for(system);
        k.transient_failure_rate = 0.1;
        k.timeout_rate = 0.1;
        k.permanent_failure_rate = 0.1;
        k
    }

    #[test]
    fn the_rates_partition_the_unit_interval() {
        let k = knobs(System::Billing);
        let at = |u| plan(System::Billing, &k, None, draws(u)).outcome;
        assert_eq!(at(0.05), Outcome::Transient);
        assert_eq!(at(0.15), Outcome::Timeout);
        assert_eq!(at(0.25), Outcome::Reject("CREDIT_CHECK_FAILED".into()));
        assert_eq!(at(0.35), Outcome::Succeed);
    }

    #[test]
    fn an_asynchronous_system_reports_business_failures_by_callback() {
        let k = knobs(System::Provisioning);
        let p = plan(System::Provisioning, &k, None, draws(0.25));
        assert_eq!(p.outcome, Outcome::FailLater("INVALID_ADDRESS".into()));
        let forced = Force::Permanent("NO_CAPACITY".into());
        let p = plan(System::Provisioning, &k, Some(&forced), draws(0.9));
        assert_eq!(p.outcome, Outcome::Reject("NO_CAPACITY".into()));
    }

    #[test]
    fn forcing_wins_over_the_rates() {
        let mut k = Knobs::default_for(System::Provisioning);
        k.transient_failure_rate = 1.0;
        k.callback_drop_rate = 1.0;
        assert_eq!(
            plan(System::Provisioning, &k, Some(&Force::Success), draws(0.0)),
            Plan {
                outcome: Outcome::Succeed,
                latency: plan(System::Provisioning, &k, None, draws(0.0)).latency,
                drop_callback: false
            }
        );
        assert!(
            plan(
                System::Provisioning,
                &k,
                Some(&Force::CallbackDrop),
                draws(0.0)
            )
            .drop_callback
        );
        let sync = Knobs::default_for(System::Crm);
        assert!(!plan(System::Crm, &sync, Some(&Force::CallbackDrop), draws(0.0)).drop_callback);
        assert_eq!(
            plan(
                System::Crm,
                &sync,
                Some(&Force::CallbackFailed("X".into())),
                draws(0.9)
            )
            .outcome,
            Outcome::Reject("X".into())
        );
    }

    #[test]
    fn transient_n_stops_after_n_failures() {
        let f = Force::Transient(Some(2));
        assert_eq!(payload_force(&f, 0), f);
        assert_eq!(payload_force(&f, 1), f);
        assert_eq!(payload_force(&f, 2), Force::Success);
        assert_eq!(
            payload_force(&Force::Transient(None), 99),
            Force::Transient(None)
        );
    }

    #[test]
    fn slow_multiplies_the_latency() {
        let mut k = Knobs::default_for(System::Inventory);
        let up = plan(System::Inventory, &k, None, draws(0.9)).latency;
        k.mode = Mode::Slow;
        let slow = plan(System::Inventory, &k, None, draws(0.9)).latency;
        assert_eq!(slow, up * SLOW_FACTOR);
    }

    proptest! {
        #[test]
        fn zero_rates_always_succeed_and_never_drop(
            outcome in 0.0f64..1.0, drop in 0.0f64..1.0, code in 0.0f64..1.0,
            l1 in 0.0f64..1.0, l2 in 0.0f64..1.0,
        ) {
            for s in System::ALL {
                let k = Knobs::default_for(s);
                let p = plan(s, &k, None, Draws { outcome, latency: (l1, l2), drop, code });
                prop_assert_eq!(p.outcome, Outcome::Succeed);
                prop_assert!(!p.drop_callback);
            }
        }

        #[test]
        fn a_random_business_code_is_one_of_the_systems(code in 0.0f64..1.0) {
            for s in System::ALL {
                let mut k = Knobs::default_for(s);
                k.permanent_failure_rate = 1.0;
                let p = plan(s, &k, None, Draws { outcome: 0.5, latency: (0.1, 0.1), drop: 0.9, code });
                let c = match p.outcome {
                    Outcome::Reject(c) | Outcome::FailLater(c) => c,
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert!(s.business_codes().contains(&c.as_str()));
            }
        }
    }
}
