//! Timers as data: which timer (`TimerRef`), when and into which function (`TimerSpec`), and the
//! timers a subject keeps rather than a case (`SubjectTimers`).

use crate::domain::ids::{SubjectKey, TimerSubject};
use crate::domain::records::case::{PendingTimer, PlaybookName, TimerKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which timer: the stream, the case (none for subject timers), why, and the step it was placed for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimerRef {
    pub stream: SubjectKey,
    pub case_id: Option<String>,
    pub kind: TimerKind,
    pub step: u32,
}

impl TimerRef {
    /// Deterministic and Scheduler-safe (`[0-9A-Za-z_.-]`, ≤ 64 chars): placing the
    /// same case step twice names the same timer, so a retried create is a no-op.
    pub fn name(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.stream.to_string());
        h.update([0]);
        h.update(self.case_id.as_deref().unwrap_or(""));
        h.update([0]);
        h.update(self.step.to_be_bytes());
        h.update(self.kind.as_str());
        format!("{}-{}", self.kind, &hex::encode(h.finalize())[..24])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerSpec {
    #[serde(flatten)]
    pub timer: TimerRef,
    pub due_at: DateTime<Utc>,
    /// The playbook of the case it belongs to (none for a subject timer): on AWS the
    /// timer fires into the function that owns that playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<PlaybookName>,
}

/// A timer that belongs to the snapshot's subject rather than to a case
/// (e.g. a case that opens later, R3.1; a package's expiry tick, R5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectTimer {
    pub subject_id: TimerSubject,
    #[serde(flatten)]
    pub timer: PendingTimer,
}

/// The timers of a snapshot's subject, with the sequence behind their steps; it reads as the
/// list of timers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubjectTimers {
    /// Sequence behind subject timer steps.
    pub timer_seq: u32,
    pub timers: Vec<SubjectTimer>,
}

impl std::ops::Deref for SubjectTimers {
    type Target = Vec<SubjectTimer>;
    fn deref(&self) -> &Vec<SubjectTimer> {
        &self.timers
    }
}

impl std::ops::DerefMut for SubjectTimers {
    fn deref_mut(&mut self) -> &mut Vec<SubjectTimer> {
        &mut self.timers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_names_are_deterministic_and_distinct_per_step() {
        let a =
            TimerRef {
                stream: SubjectKey::Order("O 1/ü".into()), case_id: Some("o1-O 1/ü".into()), kind: TimerKind::CallAttempt, step: 1
            };
        let b = TimerRef { step: 2, ..a.clone() };
        assert_eq!(a.name(), a.clone().name());
        assert_ne!(a.name(), b.name());
        assert!(a.name().len() <= 64);
        assert!(a.name().chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }
}
