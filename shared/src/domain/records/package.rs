//! The package record: a cleaning package as booked (visits, validity, payment, seed 004) and
//! where each visit stands. Records only: what events do to a package is `subjects::package`.
//!
//! Counting, settled here (R6):
//! - `used` = visits completed; `counted` = visits cancelled or changed late and counted as
//!   used (R6.2, R6.3); `remaining` = visits − used − counted. A visit cancelled free (R6.1)
//!   is still owed to the customer, so it stays in `remaining` until it is rebooked and used.
//! - Validity (R5.1): from `start_date` through `start_date` + 1 month − 1 day; Day 1 after
//!   expiry is `start_date` + 1 month by chrono's calendar-month arithmetic, which clamps to the
//!   end of a shorter month (booked 2026-01-31 → Day 1 is 2026-02-28).

use crate::domain::calendar::Calendar;
use crate::domain::events::{PackageBooked, PaymentMethod};
use crate::domain::money::Money;
use crate::domain::records::case::{Customer, TimelineEntry, TimelineKind};
use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// Where one visit of the package stands.
    pub enum VisitState {
        /// Booked, not yet done.
        Scheduled = "scheduled",
        /// Done (`package_visit.completed`).
        Completed = "completed",
        /// Cancelled or changed too late: counted as used (R6.2, R6.3).
        CountedUsed = "counted_used",
        /// Cancelled ≥ 24 h ahead: free, not counted, still owed (R6.1).
        CancelledFree = "cancelled_free",
        /// Not used by the end of grace (R5.4).
        Forfeited = "forfeited",
    }
}

crate::named_enum! {
    /// The rule that counted a visit as used without its being done.
    pub enum CountedBy {
        /// Changed < 24 h ahead, not the same day.
        Late = "R6.2",
        /// Changed on its own day.
        SameDay = "R6.3",
    }
}

crate::named_enum! {
    pub enum PackageStatus {
        Active = "active",
        /// Cancelled by the customer (`package.cancelled`) or for non-payment (R4.4).
        Cancelled = "cancelled",
        /// Deactivated at the end of grace (R5.4).
        Deactivated = "deactivated",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub visit_id: String,
    pub window_start: DateTime<Utc>,
    pub state: VisitState,
    /// The rule that counted it, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_by: Option<CountedBy>,
    /// R9.2 (v3) cancelled (`package_visit.cancelled`, or with its package).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// R9.2 (v3) each accepted cancellation or reschedule of it, by when it happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<VisitChange>,
}

/// R9.2 (v3) one accepted change of a visit: a copy of it is known by when it happened and what
/// it asked (a new start, or `None` for a cancellation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitChange {
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<Utc>>,
}

/// The package record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub package_id: String,
    pub customer: Customer,
    pub area: String,
    /// Total price in minor units.
    pub price: Money,
    pub visits: Vec<Visit>,
    pub start_date: NaiveDate,
    pub payment_method: PaymentMethod,
    pub paid: bool,
    #[serde(default)]
    pub paid_at: Option<DateTime<Utc>>,
    pub status: PackageStatus,
    #[serde(default)]
    pub booked_at: Option<DateTime<Utc>>,
    /// What happened to the record itself (R6 has no case to write on).
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// R9.2 (v3) the digest of the `package.booked` that created it (`events::digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<String>,
}

impl Package {
    /// The package as `package.booked` reports it, booked at `now`.
    pub fn booked(booking: &PackageBooked, now: DateTime<Utc>) -> Package {
        let b = booking.clone();
        let visits = b.visits.into_iter().map(|v| Visit {
            visit_id: v.visit_id,
            window_start: v.window_start,
            state: VisitState::Scheduled,
            counted_by: None,
            cancelled: false,
            changes: Vec::new(),
        });
        Package {
            package_id: b.package_id,
            customer: b.customer,
            area: b.area,
            price: b.price,
            visits: visits.collect(),
            start_date: b.start_date,
            payment_method: b.payment_method,
            paid: b.paid,
            paid_at: b.paid.then_some(now),
            status: PackageStatus::Active,
            booked_at: Some(now),
            timeline: Vec::new(),
            booking: Some(crate::domain::events::digest(booking)),
        }
    }

    pub fn visit(&self, visit_id: &str) -> Option<&Visit> {
        self.visits.iter().find(|v| v.visit_id == visit_id)
    }
    pub fn visit_mut(&mut self, visit_id: &str) -> Option<&mut Visit> {
        self.visits.iter_mut().find(|v| v.visit_id == visit_id)
    }
    fn count(&self, state: VisitState) -> u32 {
        self.visits.iter().filter(|v| v.state == state).count() as u32
    }
    pub fn total(&self) -> u32 {
        self.visits.len() as u32
    }
    /// Visits completed.
    pub fn used(&self) -> u32 {
        self.count(VisitState::Completed)
    }
    /// Visits counted as used without being done (R6.2, R6.3).
    pub fn counted(&self) -> u32 {
        self.count(VisitState::CountedUsed)
    }
    /// Visits the customer may still use (R5.2 X, R6.4); none once deactivated.
    pub fn remaining(&self) -> u32 {
        self.count(VisitState::Scheduled) + self.count(VisitState::CancelledFree)
    }
    pub fn is_active(&self) -> bool {
        self.status == PackageStatus::Active
    }
    /// The first visit as booked (R4.4).
    pub fn first_visit(&self) -> Option<&Visit> {
        self.visits.iter().min_by_key(|v| v.window_start)
    }
    /// R5.1 the last valid day: one calendar month minus a day.
    pub fn valid_until(&self, validity_months: u32) -> NaiveDate {
        self.expiry_day1(validity_months) - Duration::days(1)
    }
    /// R5.1 Day 1 after expiry = `start_date` + the validity in calendar months (clamped to month end).
    pub fn expiry_day1(&self, validity_months: u32) -> NaiveDate {
        expiry_day1(self.start_date, validity_months)
    }
    pub fn note(&mut self, at: DateTime<Utc>, kind: TimelineKind, detail: impl Into<String>) {
        self.timeline.push(TimelineEntry::new(at, kind, detail));
    }
    /// The local day of a visit.
    pub fn visit_day(cal: &Calendar, visit: &Visit) -> NaiveDate {
        cal.local_date(visit.window_start)
    }
}

/// R5.1 Day 1 after expiry for a package starting on `start_date`.
pub fn expiry_day1(start_date: NaiveDate, validity_months: u32) -> NaiveDate {
    start_date.checked_add_months(Months::new(validity_months)).expect("date in range")
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use crate::domain::records::case::Language;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn package(start: &str, states: &[VisitState]) -> Package {
        Package {
            package_id: "P1".into(),
            customer: Customer { id: "C".into(), name: "M".into(), phone: "+201001234567".into(), language: Language::Ar },
            area: "Cairo".into(),
            price: Money::new(100_000, "EGP"),
            visits: states
                .iter()
                .enumerate()
                .map(|(i, s)| Visit {
                    visit_id: format!("V{i}"),
                    window_start: Utc::now(),
                    state: *s,
                    counted_by: None,
                    cancelled: false,
                    changes: Vec::new(),
                })
                .collect(),
            start_date: d(start),
            payment_method: PaymentMethod::Card,
            paid: true,
            paid_at: None,
            status: PackageStatus::Active,
            booked_at: None,
            timeline: Vec::new(),
            booking: None,
        }
    }

    #[test]
    fn r5_1_validity_is_a_calendar_month_minus_a_day() {
        let p = package("2026-03-09", &[VisitState::Scheduled]);
        assert_eq!(p.valid_until(1), d("2026-04-08"));
        assert_eq!(p.expiry_day1(1), d("2026-04-09"));
        // The 31st: chrono clamps to the end of the shorter month.
        assert_eq!(expiry_day1(d("2026-01-31"), 1), d("2026-02-28"));
        assert_eq!(expiry_day1(d("2028-01-31"), 1), d("2028-02-29"));
        assert_eq!(expiry_day1(d("2026-03-31"), 1), d("2026-04-30"));
        assert_eq!(expiry_day1(d("2026-12-15"), 1), d("2027-01-15"));
    }

    #[test]
    fn r6_used_counted_and_remaining() {
        use VisitState::*;
        let p = package("2026-03-09", &[Completed, CountedUsed, CancelledFree, Scheduled, Forfeited]);
        assert_eq!((p.total(), p.used(), p.counted(), p.remaining()), (5, 1, 1, 2));
    }
}
