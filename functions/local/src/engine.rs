//! The engine as followup-local assembles it: every port is the one SQLite file. The HTTP routes
//! (`server`) and the console's pages (`console`) both take it from here.

use followup::adapters::local::{LocalClock, LocalPorts, SqliteStore};
use followup::domain::policy::Policy;
use followup::engine::Engine;
use std::sync::Arc;

pub type LocalEngine = Engine<LocalPorts>;

/// Every port is the one SQLite file, so each commit also performs its effects (timers, outboxes).
pub fn engine(store: SqliteStore, clock: LocalClock, policy: Policy, secret: String) -> LocalEngine {
    let store = store.performing_effects();
    Engine {
        timers: store.clone(),
        sms: store.clone(),
        commands: store.clone(),
        store,
        clock,
        policy: Arc::new(policy),
        secret,
        locks: Default::default(),
    }
}
