//! R9.1 a sequence of call attempts that never waits on a report.
//!
//! Each attempt's call task goes out on its own schedule. The attempt whose task went out
//! waits for its report (`awaiting`); a report counts for it, or, when none is awaited (an
//! agent or the customer called before the task was due), for the next attempt, whose pending
//! task it spends. When the next step falls due with the report still missing, the attempt
//! lapses: it is recorded with outcome `unreported` and counts as not reached.

use crate::domain::records::case::CaseCore;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    /// Number of the next call attempt.
    pub next: u32,
    /// The attempt whose call task went out and whose report has not come.
    pub awaiting: Option<u32>,
    /// Attempts not reached, reported or lapsed.
    pub not_reached: u32,
}

/// Which attempt a report counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The attempt whose task went out.
    Awaited(u32),
    /// A call before the next task was due: it is that attempt, and spends its pending task.
    Early(u32),
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts { next: 1, awaiting: None, not_reached: 0 }
    }
}

impl Attempts {
    /// The call task of the next attempt goes out; returns its number.
    pub fn task(&mut self) -> u32 {
        let n = self.next;
        self.awaiting = Some(n);
        self.next += 1;
        n
    }

    /// A report arrived.
    pub fn report(&mut self) -> Report {
        match self.awaiting.take() {
            Some(n) => Report::Awaited(n),
            None => {
                self.next += 1;
                Report::Early(self.next - 1)
            }
        }
    }

    /// The awaited attempt's report did not come before `by` (the next step): it is recorded on
    /// the case as `unreported` and counts as not reached. Returns the attempt that lapsed.
    pub fn lapse(&mut self, case: &mut CaseCore, at: DateTime<Utc>, by: &str) -> Option<u32> {
        let n = self.awaiting.take()?;
        self.not_reached += 1;
        case.unreported(n, at, by);
        Some(n)
    }
}
