//! The world a month runs in: the real engine on a fresh store (in memory, or SQLite), its ports
//! metered as AWS would bill them, and a virtual clock that gives each input its own instant.

use super::clock::SimClock;
use super::meter::{Metered, Sizing};
use super::options::Options;
use super::store::SimStore;
use anyhow::Context;
use chrono::{DateTime, NaiveTime, Utc};
use followup::adapters::local::SqliteStore;
use followup::adapters::memory::MemoryStore;
use followup::domain::calendar::Calendar;
use followup::domain::policy::Policy;
use followup::engine::Engine;
use followup::ports::Ports;
use std::sync::Arc;

/// The webhook secret of the simulated senders (never leaves the process).
pub(super) const SECRET: &str = "simulate-secret";

pub(super) type SimEngine = Engine<SimPorts>;

/// The simulated engine's ports: the store metered as AWS would bill it, on the per-input clock.
pub(super) enum SimPorts {}

impl Ports for SimPorts {
    type Store = Metered;
    type Timers = Metered;
    type Sms = Metered;
    type Commands = Metered;
    type Clock = SimClock;
}

/// The engine of one run and what the run reads beside it.
pub(super) struct World {
    pub engine: Arc<SimEngine>,
    /// The ports' tally (the engine's ports are clones of it).
    pub meter: Metered,
    pub clock: SimClock,
    pub cal: Calendar,
    /// Local midnight of the month's first day.
    pub start: DateTime<Utc>,
}

impl World {
    /// The engine deciding by `policy` over a fresh store: SQLite in `--data-dir` when given, else
    /// in memory; its clock at the month's first local midnight. Each call builds a world of its
    /// own, so two policies can run the same month side by side.
    pub(super) fn build(opts: &Options, policy: Policy, sizing: &Sizing) -> anyhow::Result<World> {
        let store = match &opts.data_dir {
            Some(d) => {
                anyhow::ensure!(!d.join("followup.db").exists(), "{} already holds a store; give a new --data-dir", d.display());
                SimStore::Sqlite(SqliteStore::open(d).with_context(|| format!("opening data dir {}", d.display()))?)
            }
            None => SimStore::Memory(MemoryStore::new()),
        };
        let meter = Metered::new(store, sizing);
        let cal = policy.calendar.clone();
        let start = cal.at(opts.start, NaiveTime::MIN);
        let clock = SimClock::starting_at(start);
        let engine = Arc::new(SimEngine {
            store: meter.clone(),
            timers: meter.clone(),
            sms: meter.clone(),
            commands: meter.clone(),
            clock: clock.clone(),
            policy: Arc::new(policy),
            secret: SECRET.into(),
            locks: Default::default(),
        });
        Ok(World { engine, meter, clock, cal, start })
    }
}
