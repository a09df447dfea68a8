//! Identities: which snapshot (`SubjectKey`), which case (its id names its snapshot), and the
//! subject-index entries a snapshot answers for (`SubjectId`), each with one `Display` and one
//! parse, so no code builds or reads them by string prefix.

use chrono::NaiveDate;
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

/// An entry of the subject index: a key by which one snapshot is found, or kept unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectId {
    /// `appointment:<id>`: the order an appointment belongs to.
    Appointment(String),
    /// `expiry:<day>:<package_id>`: a package with an expiry tick that day (R5 daily sweep).
    Expiry(NaiveDate, String),
    /// `coupon:<code>`: the order a coupon code belongs to (R2.3: codes are unique).
    Coupon(String),
}

impl SubjectId {
    /// The index prefix of every package with an expiry tick on `day` (`expiry:<day>:`).
    pub fn expiry_prefix(day: NaiveDate) -> String {
        format!("expiry:{day}:")
    }

    pub fn parse(s: &str) -> Option<SubjectId> {
        let (kind, rest) = s.split_once(':')?;
        match kind {
            "appointment" => Some(SubjectId::Appointment(rest.to_string())),
            "coupon" => Some(SubjectId::Coupon(rest.to_string())),
            "expiry" => {
                let (day, id) = rest.split_once(':')?;
                Some(SubjectId::Expiry(day.parse().ok()?, id.to_string()))
            }
            _ => None,
        }
    }
}

/// What a subject timer is about: an appointment of the order, the package, or a held SMS.
/// Stored as its `Display` text (`appointment:<id>`, `package:<id>`, `sms`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum TimerSubject {
    Appointment(String),
    Package(String),
    /// SPEC §4 (v2) a promotional SMS held for its hours.
    HeldSms,
}

impl fmt::Display for TimerSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerSubject::Appointment(id) => write!(f, "appointment:{id}"),
            TimerSubject::Package(id) => write!(f, "package:{id}"),
            TimerSubject::HeldSms => f.write_str("sms"),
        }
    }
}

impl From<TimerSubject> for String {
    fn from(s: TimerSubject) -> String {
        s.to_string()
    }
}

impl From<String> for TimerSubject {
    /// Any other text is a package id, as package timers were once stored without a prefix.
    fn from(s: String) -> TimerSubject {
        if let Some(id) = s.strip_prefix("appointment:") {
            TimerSubject::Appointment(id.to_string())
        } else if s == "sms" {
            TimerSubject::HeldSms
        } else {
            TimerSubject::Package(s.strip_prefix("package:").unwrap_or(&s).to_string())
        }
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectId::Appointment(id) => write!(f, "appointment:{id}"),
            SubjectId::Expiry(day, id) => write!(f, "expiry:{day}:{id}"),
            SubjectId::Coupon(code) => write!(f, "coupon:{code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids_print_and_parse_as_one() {
        let day = NaiveDate::from_ymd_opt(2026, 4, 9).unwrap();
        for id in [SubjectId::Appointment("A:1".into()), SubjectId::Expiry(day, "P:1".into()), SubjectId::Coupon("FU-X".into())] {
            assert_eq!(SubjectId::parse(&id.to_string()), Some(id.clone()), "{id}");
        }
        assert!(SubjectId::expiry_prefix(day) < SubjectId::Expiry(day, "P".into()).to_string());
        assert_eq!(SubjectId::parse("order:O1"), None);
    }

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
