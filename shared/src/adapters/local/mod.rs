//! Embedded local adapters: one SQLite file for the store, timers and outboxes, and the local clocks.

mod clock;
mod sqlite;

pub use clock::{LocalClock, VirtualClock};
pub use sqlite::SqliteStore;
