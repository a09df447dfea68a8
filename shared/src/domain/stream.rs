//! A stream: everything one order or one package holds — subject records and cases — versioned as one unit.

use super::case::{Case, Customer, PendingTimer};
use super::money::Money;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The unit of consistency: one order (appointments and their cases) or one package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum StreamKey {
    Order(String),
    Package(String),
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamKey::Order(id) => write!(f, "order:{id}"),
            StreamKey::Package(id) => write!(f, "package:{id}"),
        }
    }
}

impl From<StreamKey> for String {
    fn from(k: StreamKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for StreamKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        StreamKey::parse(&s).ok_or_else(|| format!("{s:?} is not a stream key"))
    }
}

impl StreamKey {
    pub fn parse(s: &str) -> Option<StreamKey> {
        if let Some(id) = s.strip_prefix("order:") {
            Some(StreamKey::Order(id.to_string()))
        } else {
            s.strip_prefix("package:").map(|id| StreamKey::Package(id.to_string()))
        }
    }

    /// Case ids say which stream holds them: `o<n>-<order_id>` or `p<n>-<package_id>`,
    /// so a call outcome or a case view finds its stream without a lookup.
    pub fn case_id(&self, seq: u32) -> String {
        match self {
            StreamKey::Order(id) => format!("o{seq}-{id}"),
            StreamKey::Package(id) => format!("p{seq}-{id}"),
        }
    }

    pub fn of_case(case_id: &str) -> Option<StreamKey> {
        let (head, id) = case_id.split_once('-')?;
        let (tag, seq) = head.split_at(1.min(head.len()));
        if id.is_empty() || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match tag {
            "o" => Some(StreamKey::Order(id.to_string())),
            "p" => Some(StreamKey::Package(id.to_string())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
    Completed,
}

/// An appointment as the dashboard booked it, kept for the playbooks that follow it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appointment {
    pub appointment_id: String,
    pub order_id: String,
    pub customer: Customer,
    pub area: String,
    pub service: String,
    pub price: Money,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub visit_number: u32,
    pub technician_id: Option<String>,
    pub discount_percent: u32,
    pub status: AppointmentStatus,
    #[serde(default)]
    pub reschedules: u32,
    #[serde(default)]
    pub booked_at: Option<DateTime<Utc>>,
    /// R7.1 every reschedule, with the fee that applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reschedule_log: Vec<Reschedule>,
    /// What `appointment.completed` reported, kept for the case that opens later (R3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
}

/// One accepted change of an appointment's window (R7.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reschedule {
    pub at: DateTime<Utc>,
    pub from_start: DateTime<Utc>,
    pub to_start: DateTime<Utc>,
    pub requested_by: String,
    /// `Some` when the change came inside the fee period (amount 0 = inform only).
    pub fee: Option<Money>,
}

/// The outcome of a completed visit (R3.1, R3.5, R3.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub at: DateTime<Utc>,
    pub outcome: super::events::CompletionOutcome,
    pub needs_material: bool,
    pub material_days: Option<u32>,
    pub painting: Option<super::events::Painting>,
}

impl Appointment {
    /// The appointment day in the business calendar's local date.
    pub fn day(&self, cal: &super::calendar::Calendar) -> NaiveDate {
        cal.local_date(self.window_start)
    }
}

/// A timer that belongs to the stream's subject rather than to a case
/// (e.g. a case that opens later, R3.1; a package's expiry tick, R5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectTimer {
    pub subject_id: String,
    #[serde(flatten)]
    pub timer: PendingTimer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub key: StreamKey,
    /// Optimistic-concurrency version: bumped once per committed decision.
    pub version: u64,
    /// Sequence behind case ids: `o1-…`, `o2-…` in opening order.
    pub seq: u32,
    /// Sequence behind subject timer steps.
    #[serde(default)]
    pub timer_seq: u32,
    #[serde(default)]
    pub appointments: Vec<Appointment>,
    /// The package of a package stream.
    #[serde(default)]
    pub package: Option<super::package::Package>,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[serde(default)]
    pub timers: Vec<SubjectTimer>,
}

impl Stream {
    pub fn new(key: StreamKey) -> Self {
        Stream { key, version: 0, seq: 0, timer_seq: 0, appointments: Vec::new(), package: None, cases: Vec::new(), timers: Vec::new() }
    }
    pub fn appointment(&self, id: &str) -> Option<&Appointment> {
        self.appointments.iter().find(|a| a.appointment_id == id)
    }
    pub fn appointment_mut(&mut self, id: &str) -> Option<&mut Appointment> {
        self.appointments.iter_mut().find(|a| a.appointment_id == id)
    }
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.case_id == id)
    }
    pub fn case_index(&self, id: &str) -> Option<usize> {
        self.cases.iter().position(|c| c.case_id == id)
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
        let k = StreamKey::Order("ORD-7-x".into());
        assert_eq!(k.case_id(3), "o3-ORD-7-x");
        assert_eq!(StreamKey::of_case("o3-ORD-7-x"), Some(k));
        assert_eq!(StreamKey::of_case("p12-PK"), Some(StreamKey::Package("PK".into())));
        for bad in ["", "o-x", "ox-1", "q1-x", "o1-", "nothing"] {
            assert_eq!(StreamKey::of_case(bad), None, "{bad}");
        }
        assert_eq!(StreamKey::parse("package:P:1"), Some(StreamKey::Package("P:1".into())));
    }
}
