//! Embedded local adapters: one SQLite file for the store, timers and outboxes, and the local clocks.

mod clock;
mod sqlite;

pub use clock::{LocalClock, VirtualClock};
pub use sqlite::{AcceptedInput, SqliteStore};

use crate::ports::{Clock, Ports};
use std::marker::PhantomData;

/// The engine's ports in the local runtime: the one SQLite file is the store, the timers and both
/// outboxes; the clock is the local one (or, for a benchmark, any other).
pub struct LocalPorts<K = LocalClock>(PhantomData<fn() -> K>);

impl<K: Clock> Ports for LocalPorts<K> {
    type Store = SqliteStore;
    type Timers = SqliteStore;
    type Sms = SqliteStore;
    type Commands = SqliteStore;
    type Clock = K;
}
