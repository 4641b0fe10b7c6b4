//! Delivering the callbacks of the asynchronous systems: a loop leases the due ones, POSTs each
//! body (signed, `X-Cpq-Signature`) to its callback URL, marks it delivered on a 2xx and otherwise
//! makes it due again after a back-off. At least once: a delivery whose 2xx is lost is sent
//! again, and the receiver dedupes by `callback_id`.
//!
//! On stop, the loop finishes the deliveries at hand and returns; a callback leased and not
//! finished becomes due again when its lease runs out. A database error is logged and the loop
//! goes on at its next poll.

use std::time::Duration;

use tokio::sync::watch;

use crate::signature::{self, SIGNATURE_HEADER, SYSTEM_HEADER};
use crate::state::Shared;
use crate::store::{self, DueCallback};
use crate::system::System;

const BATCH: i64 = 32;
const POLL: Duration = Duration::from_millis(200);
/// A leased callback is due again after this long if its delivery never finished.
const LEASE: Duration = Duration::from_secs(30);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The delay before attempt `attempts + 1` after `attempts` failed ones: `base` doubled per
/// failed attempt, at most 30 s.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Runs until `stop` turns true.
pub async fn deliver_loop(sim: Shared, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let due = match store::callback_lease_due(&sim.pool, BATCH, LEASE.as_secs_f64()).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "leasing due callbacks failed; trying again");
                Vec::new()
            }
        };
        let full = due.len() as i64 == BATCH;
        futures::future::join_all(due.into_iter().map(|cb| deliver(&sim, cb))).await;
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = sim.callback_stored.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

async fn deliver(sim: &Shared, cb: DueCallback) {
    let secret = System::parse(&cb.system)
        .map(|s| sim.secret(s))
        .unwrap_or_default();
    let sent = sim
        .http
        .post(&cb.callback_url)
        .timeout(DELIVERY_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            signature::sign(&secret, cb.body.as_bytes()),
        )
        .header(SYSTEM_HEADER, &cb.system)
        .header("x-cpq-callback-id", cb.callback_id.to_string())
        .body(cb.body.clone())
        .send()
        .await;
    let attempts = cb.attempts.max(1) as u32;
    let (result, stored) = match sent {
        Ok(r) if r.status().is_success() => (
            "delivered",
            store::callback_mark_delivered(&sim.pool, cb.callback_id, r.status().as_u16()).await,
        ),
        Ok(r) => (
            "retry",
            store::callback_retry_later(
                &sim.pool,
                cb.callback_id,
                backoff(sim.callback_retry_base, attempts).as_secs_f64(),
                Some(r.status().as_u16()),
                &format!("the receiver answered {}", r.status()),
            )
            .await,
        ),
        Err(e) => (
            "retry",
            store::callback_retry_later(
                &sim.pool,
                cb.callback_id,
                backoff(sim.callback_retry_base, attempts).as_secs_f64(),
                None,
                &e.to_string(),
            )
            .await,
        ),
    };
    metrics::counter!("sim_callbacks_total", "system" => cb.system.clone(), "result" => result)
        .increment(1);
    if result == "delivered" {
        tracing::debug!(callback_id = %cb.callback_id, system = cb.system, attempts, "callback delivered");
    } else {
        tracing::info!(callback_id = %cb.callback_id, system = cb.system, attempts, "callback not accepted; sending it again later");
    }
    if let Err(e) = stored {
        // The lease runs out and the callback is due again: delivered twice at worst, which the
        // receiver's dedupe absorbs.
        tracing::warn!(error = %e, callback_id = %cb.callback_id, "recording a delivery failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_from_the_base() {
        let base = Duration::from_millis(250);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 3), base * 4);
        assert_eq!(backoff(base, 0), base);
    }

    proptest! {
        #[test]
        fn backoff_grows_and_is_capped(base_ms in 1u64..60_000, attempts in 1u32..10_000) {
            let base = Duration::from_millis(base_ms);
            let b = backoff(base, attempts);
            prop_assert!(b <= MAX_BACKOFF);
            prop_assert!(b >= base.min(MAX_BACKOFF));
            prop_assert!(backoff(base, attempts + 1) >= b);
        }
    }
}
