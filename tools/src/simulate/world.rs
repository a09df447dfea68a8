//! The world a month runs in: the real engine on a fresh SQLite store, its ports metered as AWS
//! would bill them, and a virtual clock that gives each input its own instant.

use super::meter::Metered;
use super::options::Options;
use anyhow::Context;
use chrono::{DateTime, NaiveTime, Utc};
use followup::adapters::local::SqliteStore;
use followup::domain::calendar::Calendar;
use followup::domain::policy::Policy;
use followup::engine::Engine;
use followup::ports::{Clock, Ports};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The webhook secret of the simulated senders (never leaves the process).
pub(super) const SECRET: &str = "simulate-secret";

pub(super) type SimEngine = Engine<SimPorts>;

/// The simulated engine's ports: SQLite metered as AWS would bill it, on the per-input clock.
pub(super) enum SimPorts {}

impl Ports for SimPorts {
    type Store = Metered;
    type Timers = Metered;
    type Sms = Metered;
    type Commands = Metered;
    type Clock = SimClock;
}

tokio::task_local! {
    /// The instant the input being decided on this task happens at.
    pub(super) static NOW: DateTime<Utc>;
}

/// A virtual clock per input: each task reads the instant of its own input, so inputs of
/// different streams can be decided side by side, each at its own time.
#[derive(Debug, Clone)]
pub struct SimClock {
    /// Outside an input (never, in practice): the latest instant the driver reached.
    fallback: Arc<Mutex<DateTime<Utc>>>,
}

impl SimClock {
    /// Moves the instant read outside an input.
    pub(super) fn set_fallback(&self, at: DateTime<Utc>) {
        *self.fallback.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        NOW.try_with(|t| *t).unwrap_or_else(|_| *self.fallback.lock().unwrap_or_else(PoisonError::into_inner))
    }
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
    /// Last, so the store is closed before its temporary directory goes.
    _cleanup: Cleanup,
}

impl World {
    /// The engine deciding by `policy` over a fresh store in `--data-dir` (else a temporary one),
    /// its clock at the month's first local midnight. Each call builds a world of its own, so two
    /// policies can run the same month side by side.
    pub(super) fn build(opts: &Options, policy: Policy) -> anyhow::Result<World> {
        let (dir, cleanup) = match &opts.data_dir {
            Some(d) => {
                anyhow::ensure!(!d.join("followup.db").exists(), "{} already holds a store; give a new --data-dir", d.display());
                (d.clone(), Cleanup(None))
            }
            None => {
                let d = temp_data_dir();
                (d.clone(), Cleanup(Some(d)))
            }
        };
        let store = SqliteStore::open(&dir).with_context(|| format!("opening data dir {}", dir.display()))?;
        let meter = Metered::new(store);
        let cal = policy.calendar.clone();
        let start = cal.at(opts.start, NaiveTime::MIN);
        let clock = SimClock { fallback: Arc::new(Mutex::new(start)) };
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
        Ok(World { engine, meter, clock, cal, start, _cleanup: cleanup })
    }
}

/// The policy of `FOLLOWUP_CONFIG`, else SPEC's.
pub(super) fn policy_from_env() -> anyhow::Result<Policy> {
    Ok(match std::env::var("FOLLOWUP_CONFIG") {
        Ok(path) if !path.is_empty() => Policy::load(&path)?,
        _ => Policy::default(),
    })
}

/// A fresh directory for the store: tmpfs when the machine has one.
fn temp_data_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    base.join(format!("followup-simulate-{}-{nanos}", std::process::id()))
}

/// Removes the temporary store however the run ends.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
