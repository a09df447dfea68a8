//! Clocks for the local runtime: the wall clock, or a virtual one that moves only when told to.

use crate::ports::{Clock, SystemClock};
use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A shared instant that scenario tests move through `POST /local/clock`; clones see the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        VirtualClock { now: Arc::new(Mutex::new(start)) }
    }

    /// Moves the clock to `t`. Time never goes back: a timer fired at a later
    /// instant would otherwise fall due again, and decisions would see time reversed.
    pub fn set(&self, t: DateTime<Utc>) -> Result<(), String> {
        let mut now = self.lock();
        if t < *now {
            return Err(format!("the clock only moves forward: it is {} and {} is earlier", now.to_rfc3339(), t.to_rfc3339()));
        }
        *now = t;
        Ok(())
    }

    /// Moves the clock forward by `by` and answers the new instant.
    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, String> {
        if by < Duration::zero() {
            return Err(format!("the clock only moves forward: cannot advance by {by}"));
        }
        let mut now = self.lock();
        let next = now.checked_add_signed(by).ok_or_else(|| format!("advancing {} by {by} leaves the calendar", now.to_rfc3339()))?;
        *now = next;
        Ok(next)
    }

    fn lock(&self) -> MutexGuard<'_, DateTime<Utc>> {
        // An instant has no invariant a panicking holder could have broken half-way.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// The clock `followup-local` runs on, chosen at start-up by `FOLLOWUP_VIRTUAL_CLOCK`.
#[derive(Debug, Clone)]
pub enum LocalClock {
    System(SystemClock),
    Virtual(VirtualClock),
}

impl LocalClock {
    /// The virtual clock, if time moves only through `/local/clock`.
    pub fn virtual_clock(&self) -> Option<&VirtualClock> {
        match self {
            LocalClock::System(_) => None,
            LocalClock::Virtual(v) => Some(v),
        }
    }
}

impl Clock for LocalClock {
    fn now(&self) -> DateTime<Utc> {
        match self {
            LocalClock::System(c) => c.now(),
            LocalClock::Virtual(c) => c.now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn virtual_time_moves_only_forward_and_is_shared_by_clones() {
        let clock = VirtualClock::new(at(9));
        let seen_by_server = LocalClock::Virtual(clock.clone());

        assert_eq!(clock.advance(Duration::hours(1)), Ok(at(10)));
        assert_eq!(seen_by_server.now(), at(10));
        assert!(clock.set(at(8)).is_err());
        assert!(clock.advance(Duration::seconds(-1)).is_err());
        assert_eq!(seen_by_server.now(), at(10));
        assert_eq!(clock.set(at(10)), Ok(()));
        assert_eq!(clock.set(at(12)), Ok(()));
        assert_eq!(seen_by_server.now(), at(12));
        assert!(seen_by_server.virtual_clock().is_some());
    }

    #[test]
    fn the_system_clock_is_not_virtual() {
        let clock = LocalClock::System(SystemClock);
        assert!(clock.virtual_clock().is_none());
        assert!((clock.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
