//! The simulator's shared state: the database pool, each system's current knobs (changed at run
//! time), the queues of forced outcomes, the seeded random generator and the callback secrets.
//! Locks here are held for a few instructions, never across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use cpq_config::Secret;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::Systems;
use crate::decide::Draws;
use crate::force::Force;
use crate::knobs::Knobs;
use crate::system::System;

pub type Shared = Arc<Sim>;

pub struct Sim {
    pub pool: PgPool,
    pub http: reqwest::Client,
    initial: BTreeMap<System, Knobs>,
    knobs: RwLock<BTreeMap<System, Knobs>>,
    secrets: BTreeMap<System, Secret<String>>,
    forced: Mutex<HashMap<System, VecDeque<Force>>>,
    seed: u64,
    rng: Mutex<StdRng>,
    /// Wakes the callback loop when a callback is stored with no delay.
    pub callback_stored: Notify,
    pub callback_retry_base: Duration,
}

impl Sim {
    pub fn new(
        pool: PgPool,
        http: reqwest::Client,
        systems: Systems,
        seed: u64,
        callback_retry_base: Duration,
    ) -> Sim {
        let sim = Sim {
            pool,
            http,
            knobs: RwLock::new(systems.knobs.clone()),
            initial: systems.knobs,
            secrets: systems.secrets,
            forced: Mutex::default(),
            seed,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            callback_stored: Notify::new(),
            callback_retry_base,
        };
        for (s, k) in sim.all_knobs() {
            gauge_mode(s, &k);
        }
        sim
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn knobs(&self, system: System) -> Knobs {
        let all = self.knobs.read().unwrap_or_else(PoisonError::into_inner);
        all.get(&system)
            .cloned()
            .unwrap_or_else(|| Knobs::default_for(system))
    }

    pub fn all_knobs(&self) -> BTreeMap<System, Knobs> {
        self.knobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_knobs(&self, system: System, knobs: Knobs) {
        gauge_mode(system, &knobs);
        self.knobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(system, knobs);
    }

    pub fn secret(&self, system: System) -> Vec<u8> {
        self.secrets
            .get(&system)
            .map(|s| s.expose().as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Queues `count` forced outcomes for the next executions on `system`.
    pub fn force(&self, system: System, force: Force, count: usize) -> usize {
        let mut forced = self.forced.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = forced.entry(system).or_default();
        queue.extend(std::iter::repeat_n(force, count));
        queue.len()
    }

    pub fn next_forced(&self, system: System) -> Option<Force> {
        self.forced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&system)
            .and_then(VecDeque::pop_front)
    }

    pub fn forced_queue(&self, system: System) -> Vec<String> {
        self.forced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&system)
            .map(|q| q.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    pub fn draws(&self) -> Draws {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        Draws {
            outcome: rng.random(),
            latency: (rng.random(), rng.random()),
            drop: rng.random(),
            code: rng.random(),
        }
    }

    /// Back to the start: the initial knobs, no forced outcomes, the generator reseeded (the
    /// tables are cleared by the caller).
    pub fn reset(&self) {
        for (s, k) in &self.initial {
            self.set_knobs(*s, k.clone());
        }
        self.forced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self.rng.lock().unwrap_or_else(PoisonError::into_inner) = StdRng::seed_from_u64(self.seed);
    }
}

fn gauge_mode(system: System, knobs: &Knobs) {
    metrics::gauge!("sim_system_mode", "system" => system.as_str()).set(knobs.mode.gauge());
}
