//! The pure parts of calling an external system: the retry back-off (exponential, capped, full
//! jitter), the retry budget, and the circuit breaker's state machine. No clock and no
//! randomness here: callers pass the time (milliseconds on a monotonic clock of their choosing)
//! and the random draw, so that every rule is a function the property tests below exercise.

/// The back-off ceiling before the `failure`-th retry (1 for the first): `base * 2^(failure-1)`,
/// at most `cap`. Non-decreasing in `failure`.
pub fn backoff_ceiling_ms(base_ms: u64, cap_ms: u64, failure: u32) -> u64 {
    let doublings = failure.saturating_sub(1).min(63);
    base_ms.saturating_mul(1u64 << doublings).min(cap_ms)
}

/// Full jitter: a delay drawn uniformly from `[0, ceiling]` by `draw` in `[0, 1)` (values outside
/// are clamped). For a fixed draw it is non-decreasing in `failure`, so the expected delay grows
/// with the attempts until the cap.
pub fn backoff_ms(base_ms: u64, cap_ms: u64, failure: u32, draw: f64) -> u64 {
    let ceiling = backoff_ceiling_ms(base_ms, cap_ms, failure);
    let draw = if draw.is_finite() {
        draw.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // (ceiling + 1) * draw lies in [0, ceiling + 1); the min guards draw = 1.0.
    let picked = ((ceiling as f64 + 1.0) * draw).floor() as u64;
    picked.min(ceiling)
}

/// The retries a job keeps after a transient failure: its own retries (the BPMN's `retries`, as
/// Zeebe counts them: every try, the first included), capped by the job type's `max_retries`,
/// less this failure; 0 raises an incident.
pub fn retries_after_failure(job_retries: i32, max_retries: Option<u32>) -> i32 {
    let budget = match max_retries {
        Some(max) => job_retries.min(i32::try_from(max).unwrap_or(i32::MAX)),
        None => job_retries,
    };
    budget.saturating_sub(1).max(0)
}

/// What the metric `worker_circuit_breaker_state` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    /// The gauge's value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half-open",
            BreakerState::Open => "open",
        }
    }
}

/// Whether a call may be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: call.
    Call,
    /// Half-open: this call is the one probe; its result closes or re-opens the breaker.
    Probe,
    /// Open, or half-open with the probe in flight: do not call; try again in `retry_in_ms`.
    Refuse { retry_in_ms: u64 },
}

/// What a call said about the system's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The system answered as a system does (a result, an acceptance, a business rejection, a
    /// refusal of the request, "in progress").
    Healthy,
    /// A transient failure: 5xx, timeout, connection refused, a garbage answer.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed { failures: u32 },
    Open { until_ms: u64 },
    HalfOpen { probing: bool },
}

/// A circuit breaker: closed until `threshold` consecutive transient failures, then open for
/// `open_ms` (every call refused), then half-open: one probe call; its success closes the
/// breaker, its failure opens it again for `open_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    threshold: u32,
    open_ms: u64,
    phase: Phase,
}

impl Breaker {
    pub fn new(threshold: u32, open_ms: u64) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            open_ms,
            phase: Phase::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Decides whether a call may go out at `now_ms`; an open breaker whose time is up turns
    /// half-open and admits this call as its probe.
    pub fn admit(&mut self, now_ms: u64) -> Admission {
        match self.phase {
            Phase::Closed { .. } => Admission::Call,
            Phase::Open { until_ms } if now_ms < until_ms => Admission::Refuse {
                retry_in_ms: until_ms - now_ms,
            },
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                self.phase = Phase::HalfOpen { probing: true };
                Admission::Probe
            }
            // The probe's call ends within its timeout; waiting one open period is plenty.
            Phase::HalfOpen { probing: true } => Admission::Refuse {
                retry_in_ms: self.open_ms,
            },
        }
    }

    /// Records what a call (admitted earlier) said, at `now_ms`.
    pub fn record(&mut self, signal: Signal, now_ms: u64) {
        self.phase = match (self.phase, signal) {
            // A success admitted before the breaker opened (a slow call answering after the
            // failures that opened it) proves nothing about now: only the half-open probe closes
            // an open breaker.
            (open @ Phase::Open { .. }, Signal::Healthy) => open,
            (_, Signal::Healthy) => Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, Signal::Failed) => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    self.open_at(now_ms)
                } else {
                    Phase::Closed { failures }
                }
            }
            (Phase::HalfOpen { .. }, Signal::Failed) => self.open_at(now_ms),
            // A call admitted before the breaker opened: the open period stands.
            (open @ Phase::Open { .. }, Signal::Failed) => open,
        };
    }

    /// The probe admitted was not made after all (the attempt could not be recorded): the next
    /// call may probe.
    pub fn probe_abandoned(&mut self) {
        if self.phase == (Phase::HalfOpen { probing: true }) {
            self.phase = Phase::HalfOpen { probing: false };
        }
    }

    fn open_at(&self, now_ms: u64) -> Phase {
        Phase::Open {
            until_ms: now_ms.saturating_add(self.open_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn backoff_stays_within_zero_and_the_cap(
            base in 0u64..10_000_000, cap in 0u64..700_000_000, failure in 0u32..200, draw in any::<f64>()
        ) {
            let b = backoff_ms(base, cap, failure, draw);
            prop_assert!(b <= cap);
            prop_assert!(b <= backoff_ceiling_ms(base, cap, failure));
        }

        #[test]
        fn backoff_grows_with_the_attempts_for_every_draw(
            base in 1u64..100_000, cap in 1u64..700_000_000, failure in 1u32..100, draw in 0.0f64..1.0
        ) {
            // Coupled on one draw, each delay is at least the one before, so the expectation
            // (the mean over draws) grows too, until the cap.
            prop_assert!(backoff_ms(base, cap, failure, draw) <= backoff_ms(base, cap, failure + 1, draw));
            let (now, next) = (backoff_ceiling_ms(base, cap, failure), backoff_ceiling_ms(base, cap, failure + 1));
            prop_assert!(now <= next);
            if now < cap && base > 0 {
                prop_assert!(next > now, "the ceiling doubles until the cap: {now} -> {next}");
            }
        }

        #[test]
        fn the_retry_budget_never_grows_and_never_goes_negative(
            retries in -5i32..1000, max in proptest::option::of(1u32..100)
        ) {
            let left = retries_after_failure(retries, max);
            prop_assert!(left >= 0);
            prop_assert!(left < retries.max(1));
            if let Some(m) = max {
                prop_assert!(left < i32::try_from(m).unwrap());
            }
        }

        /// Any sequence of admissions and results keeps the breaker's rules: it opens only after
        /// `threshold` consecutive failures, refuses while open, probes once when half-open.
        #[test]
        fn breaker_transitions_follow_the_rules(
            threshold in 1u32..6, open_ms in 1u64..1000,
            steps in proptest::collection::vec((0u64..400, any::<bool>(), any::<bool>()), 1..200)
        ) {
            let mut b = Breaker::new(threshold, open_ms);
            let mut now = 0u64;
            let mut consecutive = 0u32;
            for (dt, call_now, healthy) in steps {
                now += dt;
                let before = b.clone();
                if call_now {
                    let admitted = b.admit(now);
                    match (before.phase, admitted) {
                        (Phase::Closed { .. }, a) => prop_assert_eq!(a, Admission::Call),
                        (Phase::Open { until_ms }, Admission::Refuse { retry_in_ms }) => {
                            prop_assert!(now < until_ms);
                            prop_assert_eq!(retry_in_ms, until_ms - now);
                        }
                        (Phase::Open { until_ms }, Admission::Probe) => {
                            prop_assert!(now >= until_ms);
                            prop_assert_eq!(b.state(), BreakerState::HalfOpen);
                        }
                        (Phase::HalfOpen { probing: true }, a) => {
                            prop_assert_eq!(a, Admission::Refuse { retry_in_ms: open_ms })
                        }
                        (Phase::HalfOpen { probing: false }, a) => prop_assert_eq!(a, Admission::Probe),
                        (p, a) => prop_assert!(false, "{:?} admitted {:?}", p, a),
                    }
                    if matches!(admitted, Admission::Refuse { .. }) {
                        continue;
                    }
                    let was = b.state();
                    b.record(if healthy { Signal::Healthy } else { Signal::Failed }, now);
                    if healthy {
                        consecutive = 0;
                        prop_assert_eq!(b.state(), BreakerState::Closed);
                    } else {
                        consecutive += 1;
                        match was {
                            BreakerState::Closed => prop_assert_eq!(
                                b.state() == BreakerState::Open,
                                consecutive >= threshold
                            ),
                            BreakerState::HalfOpen => {
                                prop_assert_eq!(b.state(), BreakerState::Open);
                                prop_assert_eq!(b.admit(now), Admission::Refuse { retry_in_ms: open_ms });
                            }
                            BreakerState::Open => prop_assert!(false, "a refused call was recorded"),
                        }
                    }
                    if b.state() != BreakerState::Closed {
                        consecutive = 0;
                    }
                }
            }
        }
    }

    #[test]
    fn a_breaker_opens_probes_and_closes_or_reopens() {
        let mut b = Breaker::new(2, 1000);
        assert_eq!(b.admit(0), Admission::Call);
        b.record(Signal::Failed, 0);
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(Signal::Healthy, 1);
        b.record(Signal::Failed, 2);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "failures must be consecutive"
        );
        b.record(Signal::Failed, 10);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(510), Admission::Refuse { retry_in_ms: 500 });
        assert_eq!(b.admit(1010), Admission::Probe);
        assert_eq!(b.admit(1011), Admission::Refuse { retry_in_ms: 1000 });
        b.record(Signal::Failed, 1100);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(2099), Admission::Refuse { retry_in_ms: 1 });
        assert_eq!(b.admit(2100), Admission::Probe);
        b.probe_abandoned();
        assert_eq!(
            b.admit(2101),
            Admission::Probe,
            "an abandoned probe frees the slot"
        );
        b.record(Signal::Healthy, 2102);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(2103), Admission::Call);
    }

    #[test]
    fn backoff_examples() {
        assert_eq!(backoff_ceiling_ms(100, 1000, 1), 100);
        assert_eq!(backoff_ceiling_ms(100, 1000, 3), 400);
        assert_eq!(backoff_ceiling_ms(100, 1000, 5), 1000);
        assert_eq!(backoff_ceiling_ms(100, 1000, 200), 1000);
        assert_eq!(backoff_ms(100, 1000, 3, 0.0), 0);
        assert_eq!(backoff_ms(100, 1000, 3, 0.999_999), 400);
        assert_eq!(backoff_ms(100, 1000, 3, 1.0), 400);
        assert_eq!(retries_after_failure(3, None), 2);
        assert_eq!(retries_after_failure(3, Some(2)), 1);
        assert_eq!(retries_after_failure(1, Some(5)), 0);
    }

    #[test]
    fn a_slow_success_from_before_the_opening_leaves_the_breaker_open() {
        let mut b = Breaker::new(1, 1_000);
        assert_eq!(b.admit(0), Admission::Call); // slow call, answers late
        assert_eq!(b.admit(10), Admission::Call); // fails at once
        b.record(Signal::Failed, 20);
        assert_eq!(b.state(), BreakerState::Open);
        b.record(Signal::Healthy, 500);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(600), Admission::Refuse { retry_in_ms: 420 });
        assert_eq!(b.admit(1_020), Admission::Probe);
        b.record(Signal::Healthy, 1_100);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
