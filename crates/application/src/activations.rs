//! Each tenant's catalog activation schedule, held in memory so that finding the version in force
//! costs no database round trip.
//!
//! Activations are only ever added, and every committed one notifies PostgreSQL channel
//! `catalog_activation` with its tenant (a trigger, migration 18). Every instance listens and
//! drops that tenant's schedule when told, so an activation made anywhere is seen at once. A held
//! schedule is trusted only while the listener is connected; when the connection drops, every
//! schedule is dropped and reads go to PostgreSQL until it is back. A schedule is also reloaded
//! after [`MAX_AGE`], which bounds staleness in the one case the listener cannot see: a
//! connection that died without yet being noticed. Metrics:
//! `catalog_cache_requests_total{layer="activation"}`, `catalog_activation_listener_connected`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cpq_core::TenantId;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use uuid::Uuid;

/// The channel the activation trigger notifies.
pub const CHANNEL: &str = "catalog_activation";
/// The longest a schedule is used without being read again.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// A tenant's activations, `(effective_from, version)` in ascending order of `effective_from`.
pub type Entries = Vec<(DateTime<Utc>, Uuid)>;

/// The version in force at `at`: the one with the latest `effective_from` not after `at`.
pub fn in_force(entries: &[(DateTime<Utc>, Uuid)], at: DateTime<Utc>) -> Option<Uuid> {
    let n = entries.partition_point(|(from, _)| *from <= at);
    n.checked_sub(1).map(|i| entries[i].1)
}

struct Schedule {
    loaded_at: Instant,
    entries: Entries,
}

#[derive(Default)]
pub struct Schedules {
    by_tenant: Mutex<HashMap<TenantId, Arc<Schedule>>>,
    /// Bumped by every drop; a load that began before a bump does not keep its result.
    epoch: AtomicU64,
    /// True while the listener is connected and listening.
    listening: AtomicBool,
}

impl Schedules {
    /// `Some(version in force)` when the tenant's schedule is held and may be trusted.
    pub fn in_force(&self, tenant: &TenantId, at: DateTime<Utc>) -> Option<Option<Uuid>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let held = self.by_tenant.lock().ok()?.get(tenant).cloned()?;
        (held.loaded_at.elapsed() < MAX_AGE).then(|| in_force(&held.entries, at))
    }

    /// Where a load starts: pass it to [`Schedules::keep`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps a schedule read from PostgreSQL, unless something was dropped since `epoch` (the
    /// read may predate an activation).
    pub fn keep(&self, tenant: &TenantId, epoch: u64, entries: Entries) {
        if let Ok(mut map) = self.by_tenant.lock() {
            if self.epoch.load(Ordering::Acquire) == epoch {
                map.insert(
                    tenant.clone(),
                    Arc::new(Schedule {
                        loaded_at: Instant::now(),
                        entries,
                    }),
                );
            }
        }
    }

    pub fn forget(&self, tenant: &TenantId) {
        if let Ok(mut map) = self.by_tenant.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            map.remove(tenant);
        }
    }

    pub fn forget_all(&self) {
        if let Ok(mut map) = self.by_tenant.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            map.clear();
        }
    }

    fn set_listening(&self, on: bool) {
        if !on {
            self.forget_all();
        }
        self.listening.store(on, Ordering::Release);
        metrics::gauge!("catalog_activation_listener_connected").set(if on { 1.0 } else { 0.0 });
    }

    /// Listens on [`CHANNEL`] until the pool closes, dropping the schedule of every tenant named
    /// in a notification, and everything whenever the connection was lost.
    pub fn listen(self: Arc<Self>, db: PgPool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.listen_once(&db).await {
                    Ok(()) => return,
                    Err(e) => {
                        self.set_listening(false);
                        tracing::warn!(error = %e, "catalog activation listener down; reading activations from PostgreSQL until it is back");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }

    /// Ok when the pool closed; Err when the connection failed.
    async fn listen_once(&self, db: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = match PgListener::connect_with(db).await {
            Err(sqlx::Error::PoolClosed) => return Ok(()),
            other => other?,
        };
        listener.listen(CHANNEL).await?;
        self.forget_all();
        self.set_listening(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match TenantId::parse(n.payload()) {
                    Ok(t) => self.forget(&t),
                    Err(_) => self.forget_all(),
                },
                // The connection was lost and is back: what was notified meanwhile is unknown.
                Ok(None) => self.forget_all(),
                Err(sqlx::Error::PoolClosed) => {
                    self.set_listening(false);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
    }

    proptest! {
        /// The version in force is the one a linear scan finds: latest effective_from not after
        /// the instant, none before the first.
        #[test]
        fn in_force_is_the_latest_activation_not_after_the_instant(
            mut froms in proptest::collection::btree_set(0i64..1_000, 0..20),
            probe in -10i64..1_010,
        ) {
            let entries: Entries = std::mem::take(&mut froms)
                .into_iter()
                .map(|s| (at(s), Uuid::from_u128(s as u128)))
                .collect();
            let expected = entries.iter().rev().find(|(f, _)| *f <= at(probe)).map(|(_, v)| *v);
            prop_assert_eq!(in_force(&entries, at(probe)), expected);
        }
    }

    #[test]
    fn a_schedule_is_trusted_only_while_listening_and_a_load_older_than_a_drop_is_not_kept() {
        let s = Schedules::default();
        let t = TenantId::parse("acme").unwrap();
        let v = Uuid::from_u128(1);
        s.keep(&t, s.epoch(), vec![(at(0), v)]);
        assert_eq!(s.in_force(&t, at(5)), None, "not listening");
        s.listening.store(true, Ordering::Release);
        s.keep(&t, s.epoch(), vec![(at(0), v)]);
        assert_eq!(s.in_force(&t, at(5)), Some(Some(v)));
        assert_eq!(s.in_force(&t, at(-5)), Some(None));
        let before = s.epoch();
        s.forget(&t);
        s.keep(&t, before, vec![(at(0), v)]);
        assert_eq!(
            s.in_force(&t, at(5)),
            None,
            "a load begun before the drop is not kept"
        );
    }
}
