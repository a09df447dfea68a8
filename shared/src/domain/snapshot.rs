//! A snapshot: one order or one package with its cases and subject timers, versioned as one unit of consistency.

use super::case::PendingTimer;
use super::effects::Sms;
use super::order::Order;
use super::package::Package;
use super::playbooks::Case;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which snapshot: one order (appointments and their cases) or one package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SubjectKey {
    Order(String),
    Package(String),
}

impl fmt::Display for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectKey::Order(id) => write!(f, "order:{id}"),
            SubjectKey::Package(id) => write!(f, "package:{id}"),
        }
    }
}

impl From<SubjectKey> for String {
    fn from(k: SubjectKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for SubjectKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SubjectKey::parse(&s).ok_or_else(|| format!("{s:?} is not a subject key"))
    }
}

impl SubjectKey {
    pub fn parse(s: &str) -> Option<SubjectKey> {
        if let Some(id) = s.strip_prefix("order:") {
            Some(SubjectKey::Order(id.to_string()))
        } else {
            s.strip_prefix("package:").map(|id| SubjectKey::Package(id.to_string()))
        }
    }

    /// Case ids say which snapshot holds them: `o<n>-<order_id>` or `p<n>-<package_id>`,
    /// so a call outcome or a case view finds its snapshot without a lookup.
    pub fn case_id(&self, seq: u32) -> String {
        match self {
            SubjectKey::Order(id) => format!("o{seq}-{id}"),
            SubjectKey::Package(id) => format!("p{seq}-{id}"),
        }
    }

    pub fn of_case(case_id: &str) -> Option<SubjectKey> {
        let (head, id) = case_id.split_once('-')?;
        // The tag is one character, whatever its width (a hostile id may start with any).
        let (tag, seq) = head.split_at(head.chars().next().map_or(0, char::len_utf8));
        if id.is_empty() || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match tag {
            "o" => Some(SubjectKey::Order(id.to_string())),
            "p" => Some(SubjectKey::Package(id.to_string())),
            _ => None,
        }
    }
}

/// A timer that belongs to the snapshot's subject rather than to a case
/// (e.g. a case that opens later, R3.1; a package's expiry tick, R5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectTimer {
    pub subject_id: String,
    #[serde(flatten)]
    pub timer: PendingTimer,
}

/// An order or a package: what the cases of a snapshot are about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Order(Order),
    Package(Package),
}

/// Everything one order or one package holds: the subject record, its cases and its subject
/// timers, committed as one conditional write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub key: SubjectKey,
    /// Optimistic-concurrency version: bumped once per committed decision.
    pub version: u64,
    /// Sequence behind case ids: `o1-…`, `o2-…` in opening order.
    pub seq: u32,
    /// Sequence behind subject timer steps.
    pub timer_seq: u32,
    pub subject: Subject,
    pub cases: Vec<Case>,
    pub timers: Vec<SubjectTimer>,
    /// SPEC §4 (v2) promotional SMS waiting for their allowed time, each with its subject timer's step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldSms>,
}

/// A rendered SMS held until its `held_sms` subject timer (step `step`) fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldSms {
    pub step: u32,
    pub sms: Sms,
}

impl Snapshot {
    /// An order with nothing booked yet.
    pub fn order(order_id: &str) -> Self {
        Snapshot::of(
            SubjectKey::Order(order_id.into()),
            Subject::Order(Order { order_id: order_id.into(), appointments: Vec::new(), timeline: Vec::new() }),
        )
    }
    /// A package as booked.
    pub fn package(package: Package) -> Self {
        Snapshot::of(SubjectKey::Package(package.package_id.clone()), Subject::Package(package))
    }
    fn of(key: SubjectKey, subject: Subject) -> Self {
        Snapshot { key, version: 0, seq: 0, timer_seq: 0, subject, cases: Vec::new(), timers: Vec::new(), held: Vec::new() }
    }
    pub fn as_order(&self) -> Option<&Order> {
        match &self.subject {
            Subject::Order(o) => Some(o),
            Subject::Package(_) => None,
        }
    }
    pub fn as_package(&self) -> Option<&Package> {
        match &self.subject {
            Subject::Package(p) => Some(p),
            Subject::Order(_) => None,
        }
    }
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.core.case_id == id)
    }
    pub fn case_index(&self, id: &str) -> Option<usize> {
        self.cases.iter().position(|c| c.core.case_id == id)
    }
    /// The earliest pending timer of the snapshot (its cases' and its subject's): what the store
    /// indexes it under, so the timer sweep finds every snapshot with an overdue timer.
    pub fn next_due(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let cases = self.cases.iter().flat_map(|c| c.timers.iter().map(|t| t.due_at));
        cases.chain(self.timers.iter().map(|t| t.timer.due_at)).min()
    }

    pub fn next_case_id(&mut self) -> String {
        self.seq += 1;
        self.key.case_id(self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_name_their_stream() {
        let k = SubjectKey::Order("ORD-7-x".into());
        assert_eq!(k.case_id(3), "o3-ORD-7-x");
        assert_eq!(SubjectKey::of_case("o3-ORD-7-x"), Some(k));
        assert_eq!(SubjectKey::of_case("p12-PK"), Some(SubjectKey::Package("PK".into())));
        for bad in ["", "o-x", "ox-1", "q1-x", "o1-", "nothing", "¡-x", "é1-O-5", "😀-1"] {
            assert_eq!(SubjectKey::of_case(bad), None, "{bad}");
        }
        assert_eq!(SubjectKey::parse("package:P:1"), Some(SubjectKey::Package("P:1".into())));
    }
}
