//! The order record: its appointments as the dashboard booked them and what happened to each
//! (reschedules, completion, coupon, the booking's digest). Records only: what events do to an
//! order is `subjects::order`.

use crate::domain::calendar::Calendar;
use crate::domain::events::{AppointmentBooked, Availability, CancelledBy, CompletionOutcome, Painting};
use crate::domain::money::{Money, Percent};
use crate::domain::records::case::{Customer, TimelineEntry};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// An order: its appointments, each as the dashboard booked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub appointments: Vec<Appointment>,
    /// What happened to the order itself that no case records (R9.2 echoes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
}

impl Order {
    pub fn appointment(&self, id: &str) -> Option<&Appointment> {
        self.appointments.iter().find(|a| a.appointment_id == id)
    }
    pub fn appointment_mut(&mut self, id: &str) -> Option<&mut Appointment> {
        self.appointments.iter_mut().find(|a| a.appointment_id == id)
    }
}

crate::named_enum! {
    pub enum AppointmentStatus {
        Booked = "booked",
        Cancelled = "cancelled",
        Completed = "completed",
    }
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
    /// R2.3 the coupon its cancellation earned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<Coupon>,
    /// R9.2 (v3) the digest of the `appointment.booked` that created it (`events::digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<String>,
    /// R9.2 (v3) when each accepted reschedule request happened (`occurred_at`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<DateTime<Utc>>,
}

impl Appointment {
    /// The appointment as `appointment.booked` reports it, booked at `now`.
    pub fn booked(booking: &AppointmentBooked, now: DateTime<Utc>) -> Appointment {
        let b = booking.clone();
        Appointment {
            appointment_id: b.appointment_id,
            order_id: b.order_id,
            customer: b.customer,
            area: b.area,
            service: b.service,
            price: b.price,
            window_start: b.window_start,
            window_end: b.window_end,
            visit_number: b.visit_number,
            technician_id: b.technician_id,
            discount_percent: b.discount_percent,
            status: AppointmentStatus::Booked,
            reschedules: 0,
            booked_at: Some(now),
            reschedule_log: Vec::new(),
            completion: None,
            coupon: None,
            booking: Some(crate::domain::events::digest(booking)),
            requests: Vec::new(),
        }
    }

    /// The appointment day in the business calendar's local date.
    pub fn day(&self, cal: &Calendar) -> NaiveDate {
        cal.local_date(self.window_start)
    }
    pub fn is_booked(&self) -> bool {
        self.status == AppointmentStatus::Booked
    }
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
    /// R9.2 (v3) when the `appointment.rescheduled` behind it happened; `None` for a rebooking
    /// of the engine's own (R1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// The outcome of a completed visit (R3.1, R3.5, R3.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub at: DateTime<Utc>,
    pub outcome: CompletionOutcome,
    pub needs_material: bool,
    pub material_days: Option<u32>,
    pub painting: Option<Painting>,
}

/// R2.3 a discount coupon earned by a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub code: String,
    pub discount: Percent,
    pub valid_until: NaiveDate,
}

/// How an appointment was cancelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancellation {
    pub by: CancelledBy,
    pub reason: String,
    pub wants_follow_up: bool,
    pub availability: Option<Availability>,
}
