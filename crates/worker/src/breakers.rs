//! The process's circuit breakers, one per external system, shared by every job type that calls
//! the system. Wraps the pure [`Breaker`] with a monotonic clock, a lock, and the metric
//! `worker_circuit_breaker_state{system}` (0 closed, 1 half-open, 2 open), set on every change.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use cpq_config::{ExternalSystem, JobTypeConfig};

use crate::resilience::{Admission, Breaker, BreakerState, Signal};

pub struct Breakers {
    epoch: Instant,
    by_system: HashMap<ExternalSystem, Mutex<Breaker>>,
}

impl Breakers {
    /// One breaker per system the job types call (configuration checked that job types of one
    /// system agree on its settings); each starts closed.
    pub fn new(job_types: &[JobTypeConfig]) -> Breakers {
        let mut by_system = HashMap::new();
        for s in job_types.iter().filter_map(|j| j.system.as_ref()) {
            by_system.entry(s.system).or_insert_with(|| {
                show(s.system, BreakerState::Closed);
                Mutex::new(Breaker::new(s.breaker_failure_threshold, s.breaker_open_ms))
            });
        }
        Breakers {
            epoch: Instant::now(),
            by_system,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `f` on the system's breaker and publishes a change of state.
    fn with<T>(&self, system: ExternalSystem, f: impl FnOnce(&mut Breaker, u64) -> T) -> Option<T> {
        let cell = self.by_system.get(&system)?;
        let now = self.now_ms();
        // A poisoned lock only means a panic elsewhere mid-update; the breaker's state is a
        // plain value and still usable.
        let mut breaker = cell.lock().unwrap_or_else(|p| p.into_inner());
        let before = breaker.state();
        let out = f(&mut breaker, now);
        let after = breaker.state();
        drop(breaker);
        if before != after {
            show(system, after);
            tracing::warn!(
                system = system.as_str(),
                from = before.as_str(),
                to = after.as_str(),
                "circuit breaker changed state"
            );
        }
        Some(out)
    }

    /// Whether a call to `system` may go out now (a system without a breaker: always).
    pub fn admit(&self, system: ExternalSystem) -> Admission {
        self.with(system, |b, now| b.admit(now))
            .unwrap_or(Admission::Call)
    }

    pub fn record(&self, system: ExternalSystem, signal: Signal) {
        self.with(system, |b, now| b.record(signal, now));
    }

    pub fn probe_abandoned(&self, system: ExternalSystem) {
        self.with(system, |b, _| b.probe_abandoned());
    }
}

fn show(system: ExternalSystem, state: BreakerState) {
    metrics::gauge!("worker_circuit_breaker_state", "system" => system.as_str()).set(state.gauge());
}
