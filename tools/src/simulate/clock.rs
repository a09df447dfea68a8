//! The month's virtual time: the instant of the input being decided, task by task, and the
//! engine's clock that reads it.

use chrono::{DateTime, Utc};
use followup::ports::Clock;
use std::sync::{Arc, Mutex, PoisonError};

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
    /// A clock whose instant outside an input starts at `start`.
    pub(super) fn starting_at(start: DateTime<Utc>) -> SimClock {
        SimClock { fallback: Arc::new(Mutex::new(start)) }
    }

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
