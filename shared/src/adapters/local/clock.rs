//! Clocks for the local runtime: the wall clock, or a virtual one that moves only when told to.

use crate::ports::{Clock, SystemClock};
use chrono::{DateTime, Duration, Utc};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A shared instant that scenario tests move through `POST /local/clock`; clones see the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    /// Where the position is kept, so a restart on the same data dir resumes where time was.
    file: Option<Arc<PathBuf>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        VirtualClock { now: Arc::new(Mutex::new(start)), file: None }
    }

    /// A clock whose position survives restarts in `file`: it starts at the later of
    /// `start` and the saved position, since the stored cases already lived until then.
    pub fn persisted(start: DateTime<Utc>, file: PathBuf) -> std::io::Result<Self> {
        let saved = match std::fs::read_to_string(&file) {
            Ok(text) => DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let clock = VirtualClock { now: Arc::new(Mutex::new(saved.map_or(start, |s| s.max(start)))), file: Some(Arc::new(file)) };
        clock.save(clock.now())?;
        Ok(clock)
    }

    fn save(&self, t: DateTime<Utc>) -> std::io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, t.to_rfc3339())?;
        std::fs::rename(&tmp, file.as_ref())
    }

    /// Moves the clock to `t`. Time never goes back: a timer fired at a later
    /// instant would otherwise fall due again, and decisions would see time reversed.
    pub fn set(&self, t: DateTime<Utc>) -> Result<(), String> {
        let mut now = self.lock();
        if t < *now {
            return Err(format!("the clock only moves forward: it is {} and {} is earlier", now.to_rfc3339(), t.to_rfc3339()));
        }
        *now = t;
        self.save(t).map_err(|e| format!("cannot save the virtual clock: {e}"))
    }

    /// Moves the clock forward by `by` and answers the new instant.
    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, String> {
        if by < Duration::zero() {
            return Err(format!("the clock only moves forward: cannot advance by {by}"));
        }
        let mut now = self.lock();
        let next = now.checked_add_signed(by).ok_or_else(|| format!("advancing {} by {by} leaves the calendar", now.to_rfc3339()))?;
        *now = next;
        self.save(next).map_err(|e| format!("cannot save the virtual clock: {e}"))?;
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
    fn a_persisted_clock_resumes_at_the_later_of_start_and_saved() {
        let dir = std::env::temp_dir().join(format!("followup-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("virtual-clock");
        let _ = std::fs::remove_file(&file);
        let c = VirtualClock::persisted(at(9), file.clone()).unwrap();
        c.set(at(15)).unwrap();
        assert_eq!(VirtualClock::persisted(at(9), file.clone()).unwrap().now(), at(15));
        assert_eq!(VirtualClock::persisted(at(18), file.clone()).unwrap().now(), at(18));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_system_clock_is_not_virtual() {
        let clock = LocalClock::System(SystemClock);
        assert!(clock.virtual_clock().is_none());
        assert!((clock.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
