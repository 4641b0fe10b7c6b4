//! Simulated latency: a log-normal distribution fitted to a median (p50) and a 95th percentile
//! (p95), the shape service latencies usually have (a floor-ish body, a long right tail). Pure:
//! the caller supplies the uniform draws, so a seeded generator gives the same latencies.

use std::time::Duration;

/// z of the 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

/// No sample exceeds this many times the p95: the log-normal's tail is unbounded, and a simulated
/// system that answers in an hour tests nothing useful.
pub const TAIL_CAP_OF_P95: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormal {
    mu: f64,
    sigma: f64,
    cap_ms: f64,
}

impl LogNormal {
    /// Fitted so that its median is `p50_ms` and its 95th percentile `p95_ms` (`p95_ms` below
    /// `p50_ms` is taken as equal to it: a constant latency). A zero p50 means no latency.
    pub fn fit(p50_ms: u64, p95_ms: u64) -> LogNormal {
        if p50_ms == 0 {
            return LogNormal {
                mu: f64::NEG_INFINITY,
                sigma: 0.0,
                cap_ms: 0.0,
            };
        }
        let p50 = p50_ms as f64;
        let p95 = (p95_ms as f64).max(p50);
        LogNormal {
            mu: p50.ln(),
            sigma: (p95.ln() - p50.ln()) / Z95,
            cap_ms: p95 * TAIL_CAP_OF_P95,
        }
    }

    /// The latency for two independent uniform draws in [0, 1).
    pub fn sample(&self, u1: f64, u2: f64) -> Duration {
        if self.cap_ms == 0.0 {
            return Duration::ZERO;
        }
        let ms = (self.mu + self.sigma * standard_normal(u1, u2)).exp();
        Duration::from_secs_f64(ms.clamp(0.0, self.cap_ms) / 1000.0)
    }

    /// The largest latency [`LogNormal::sample`] returns.
    pub fn cap(&self) -> Duration {
        Duration::from_secs_f64(self.cap_ms / 1000.0)
    }
}

/// A standard normal variate from two uniform draws in [0, 1) (Box–Muller).
pub fn standard_normal(u1: f64, u2: f64) -> f64 {
    // 1 - u1 is in (0, 1]: its logarithm is finite.
    let r = (-2.0 * (1.0 - u1.clamp(0.0, 1.0 - f64::EPSILON)).ln()).sqrt();
    r * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    proptest! {
        #[test]
        fn samples_stay_within_zero_and_the_cap(
            p50 in 0u64..5_000,
            extra in 0u64..20_000,
            u1 in 0.0f64..1.0,
            u2 in 0.0f64..1.0,
        ) {
            let d = LogNormal::fit(p50, p50 + extra);
            let s = d.sample(u1, u2);
            prop_assert!(s <= d.cap());
            if p50 == 0 {
                prop_assert_eq!(s, Duration::ZERO);
            }
        }

        #[test]
        fn standard_normal_is_finite_for_every_draw(u1 in 0.0f64..1.0, u2 in 0.0f64..1.0) {
            prop_assert!(standard_normal(u1, u2).is_finite());
        }
    }

    #[test]
    fn a_constant_latency_when_p95_is_not_above_p50() {
        let d = LogNormal::fit(40, 40);
        for (u1, u2) in [(0.0, 0.0), (0.3, 0.9), (0.999, 0.5)] {
            let ms = d.sample(u1, u2).as_secs_f64() * 1000.0;
            assert!((ms - 40.0).abs() < 1e-6, "{ms}");
        }
        assert_eq!(LogNormal::fit(40, 10), d);
    }

    /// The fitted distribution's empirical median and 95th percentile are those asked for
    /// (seeded: the same draws every run).
    #[test]
    fn empirical_percentiles_match_the_fit() {
        let d = LogNormal::fit(100, 400);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut ms: Vec<f64> = (0..20_000)
            .map(|_| d.sample(rng.random(), rng.random()).as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let p50 = ms[ms.len() / 2];
        let p95 = ms[ms.len() * 95 / 100];
        assert!((90.0..110.0).contains(&p50), "p50 {p50}");
        assert!((360.0..440.0).contains(&p95), "p95 {p95}");
    }
}
