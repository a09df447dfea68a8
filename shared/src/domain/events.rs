//! The inputs a decision reacts to: the webhook events of SPEC §5 and fired timers, already validated.

use crate::domain::money::Money;
use crate::domain::records::case::{CallOutcome, Customer};
use crate::domain::timers::TimerRef;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// An RFC 3339 time as the contract writes it (`2026-03-05T14:00:00+02:00`), or `None`. chrono
/// also takes a space for the `T` (RFC 3339 §5.6 allows one "for readability"); the `date-time`
/// of `docs/openapi.json` does not, and the parser takes what the document says.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = s.as_bytes().get(10).is_some_and(|b| matches!(b, b'T' | b't'));
    t.then(|| DateTime::parse_from_rfc3339(s).ok()).flatten().map(|t| t.with_timezone(&Utc))
}

fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_time(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time such as 2026-03-05T14:00:00+02:00")))
}

crate::named_enum! {
    /// Who cancelled an appointment.
    pub enum CancelledBy {
        Customer = "customer",
        Ops = "ops",
        NoShow = "no_show",
    }
}

crate::named_enum! {
    pub enum Availability {
        Known = "known",
        Unsure = "unsure",
    }
}

crate::named_enum! {
    pub enum CompletionOutcome {
        Done = "done",
        Inspection = "inspection",
        Incomplete = "incomplete",
        Painting = "painting",
    }
}

crate::named_enum! {
    pub enum PaymentMethod {
        Card = "card",
        Cash = "cash",
    }
}

crate::named_enum! {
    /// R8.1 the interaction taxonomy of seed 003; its order is the importance order of R8.2.
    pub enum Topic {
        BookingWidget = "booking.widget",
        BookingEscalation = "booking.escalation",
        BookingRemoteAssist = "booking.remote_assist",
        AppointmentCancellation = "appointment.cancellation",
        AppointmentReschedule = "appointment.reschedule",
        AppointmentBookableLead = "appointment.bookable_lead",
        AppointmentNoAvailability = "appointment.no_availability",
        AppointmentNoService = "appointment.no_service",
        InquiryMembership = "inquiry.membership",
        InquiryPricingFinancing = "inquiry.pricing_financing",
        InquiryBilling = "inquiry.billing",
        InquiryGeneral = "inquiry.general",
        InquiryComplaint = "inquiry.complaint",
        InquiryRecruiting = "inquiry.recruiting",
        OtherAbandoned = "other.abandoned",
        OtherTest = "other.test",
        OtherSpam = "other.spam",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Painting {
    pub days: u32,
    pub total_price: Money,
    pub material_price: Money,
    pub tax_invoice: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageVisit {
    pub visit_id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub window_start: DateTime<Utc>,
}

/// What the agent settled on an answered call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resolution {
    Rebooked {
        #[serde(deserialize_with = "rfc3339")]
        window_start: DateTime<Utc>,
        #[serde(deserialize_with = "rfc3339")]
        window_end: DateTime<Utc>,
    },
    Declined {
        reason: String,
        complaint: bool,
        follow_up: bool,
    },
    FollowUpLater {
        #[serde(deserialize_with = "rfc3339")]
        at: DateTime<Utc>,
    },
    WillPay,
}

/// An event's type and data. Externally tagged (`{"<type>": data}`) so a parser can
/// follow the JSON path into the data and name the failing field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventBody {
    #[serde(rename = "appointment.booked")]
    AppointmentBooked {
        appointment_id: String,
        order_id: String,
        customer: Customer,
        area: String,
        service: String,
        price: Money,
        #[serde(deserialize_with = "rfc3339")]
        window_start: DateTime<Utc>,
        #[serde(deserialize_with = "rfc3339")]
        window_end: DateTime<Utc>,
        visit_number: u32,
        technician_id: Option<String>,
        discount_percent: u32,
    },
    #[serde(rename = "appointment.assigned")]
    AppointmentAssigned { appointment_id: String, technician_id: String },
    #[serde(rename = "appointment.reschedule_requested")]
    AppointmentRescheduleRequested { appointment_id: String, reason: String, stf_link: String },
    #[serde(rename = "appointment.rescheduled")]
    AppointmentRescheduled {
        appointment_id: String,
        #[serde(deserialize_with = "rfc3339")]
        window_start: DateTime<Utc>,
        #[serde(deserialize_with = "rfc3339")]
        window_end: DateTime<Utc>,
        requested_by: String,
    },
    #[serde(rename = "appointment.completed")]
    AppointmentCompleted {
        appointment_id: String,
        outcome: CompletionOutcome,
        needs_material: bool,
        material_days: Option<u32>,
        painting: Option<Painting>,
    },
    #[serde(rename = "appointment.cancelled")]
    AppointmentCancelled {
        appointment_id: String,
        cancelled_by: CancelledBy,
        reason: String,
        wants_follow_up: bool,
        availability: Option<Availability>,
    },
    #[serde(rename = "package_visit.cancelled")]
    PackageVisitCancelled { package_id: String, visit_id: String },
    #[serde(rename = "package.cancelled")]
    PackageCancelled { package_id: String, reason: String },
    #[serde(rename = "case.reopen")]
    CaseReopen { case_id: String },
    #[serde(rename = "package.booked")]
    PackageBooked {
        package_id: String,
        customer: Customer,
        area: String,
        price: Money,
        visits: Vec<PackageVisit>,
        start_date: NaiveDate,
        payment_method: PaymentMethod,
        paid: bool,
    },
    #[serde(rename = "package.paid")]
    PackagePaid { package_id: String },
    #[serde(rename = "package_visit.completed")]
    PackageVisitCompleted { package_id: String, visit_id: String },
    #[serde(rename = "package_visit.rescheduled")]
    PackageVisitRescheduled {
        package_id: String,
        visit_id: String,
        #[serde(deserialize_with = "rfc3339")]
        window_start: DateTime<Utc>,
    },
    #[serde(rename = "call.completed")]
    CallCompleted(CallCompleted),
}

/// R9.2 (v3) the fact an event reports, by which a copy of it re-sent under a new delivery id
/// (or the dashboard's report of a change the engine commanded) is known as an echo. Each event
/// type says here what it reports; `domain::echo` asks the records whether they already hold it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact<'e> {
    /// A booking exactly as sent (its digest): held when the subject was booked with the same
    /// body; a booking of the same id that differs contradicts what is held.
    AppointmentBooked {
        appointment_id: &'e str,
        digest: String,
    },
    PackageBooked {
        package_id: &'e str,
        digest: String,
    },
    /// The appointment has this technician.
    Assigned {
        appointment_id: &'e str,
        technician_id: &'e str,
    },
    /// A reschedule request, known by when it happened.
    RescheduleRequested {
        appointment_id: &'e str,
    },
    /// The appointment is in this window, or moved to it by this event before.
    Rescheduled {
        appointment_id: &'e str,
        window: (DateTime<Utc>, DateTime<Utc>),
    },
    AppointmentCompleted {
        appointment_id: &'e str,
    },
    AppointmentCancelled {
        appointment_id: &'e str,
    },
    PackagePaid {
        package_id: &'e str,
    },
    PackageCancelled {
        package_id: &'e str,
    },
    VisitCancelled {
        package_id: &'e str,
        visit_id: &'e str,
    },
    VisitCompleted {
        package_id: &'e str,
        visit_id: &'e str,
    },
    VisitRescheduled {
        package_id: &'e str,
        visit_id: &'e str,
        window_start: DateTime<Utc>,
    },
    /// A re-open of the case, known by when it happened.
    Reopened {
        case_id: &'e str,
    },
    /// One call attempt: the same `call_id` on the case is the same attempt.
    Call {
        case_id: &'e str,
        call_id: &'e str,
    },
}

/// The digest a booking is held by: SHA-256 of its data as parsed (so an omitted currency and
/// the policy's default are the same booking).
pub fn digest(body: &EventBody) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(body).expect("an event body always serialises");
    hex::encode(Sha256::digest(bytes))
}

impl EventBody {
    /// R9.2 (v3) the fact this event reports.
    pub fn fact(&self) -> Fact<'_> {
        match self {
            EventBody::AppointmentBooked { appointment_id, .. } => Fact::AppointmentBooked { appointment_id, digest: digest(self) },
            EventBody::AppointmentAssigned { appointment_id, technician_id } => Fact::Assigned { appointment_id, technician_id },
            EventBody::AppointmentRescheduleRequested { appointment_id, .. } => Fact::RescheduleRequested { appointment_id },
            EventBody::AppointmentRescheduled { appointment_id, window_start, window_end, .. } => {
                Fact::Rescheduled { appointment_id, window: (*window_start, *window_end) }
            }
            EventBody::AppointmentCompleted { appointment_id, .. } => Fact::AppointmentCompleted { appointment_id },
            EventBody::AppointmentCancelled { appointment_id, .. } => Fact::AppointmentCancelled { appointment_id },
            EventBody::PackageVisitCancelled { package_id, visit_id } => Fact::VisitCancelled { package_id, visit_id },
            EventBody::PackageCancelled { package_id, .. } => Fact::PackageCancelled { package_id },
            EventBody::CaseReopen { case_id } => Fact::Reopened { case_id },
            EventBody::PackageBooked { package_id, .. } => Fact::PackageBooked { package_id, digest: digest(self) },
            EventBody::PackagePaid { package_id } => Fact::PackagePaid { package_id },
            EventBody::PackageVisitCompleted { package_id, visit_id } => Fact::VisitCompleted { package_id, visit_id },
            EventBody::PackageVisitRescheduled { package_id, visit_id, window_start } => {
                Fact::VisitRescheduled { package_id, visit_id, window_start: *window_start }
            }
            EventBody::CallCompleted(c) => Fact::Call { case_id: &c.case_id, call_id: &c.call_id },
        }
    }

    /// The reason the event gives, for the timeline.
    pub fn reason(&self) -> Option<&str> {
        match self {
            EventBody::AppointmentCancelled { reason, .. }
            | EventBody::AppointmentRescheduleRequested { reason, .. }
            | EventBody::PackageCancelled { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The envelope `type` of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::AppointmentBooked { .. } => "appointment.booked",
            EventBody::AppointmentAssigned { .. } => "appointment.assigned",
            EventBody::AppointmentRescheduleRequested { .. } => "appointment.reschedule_requested",
            EventBody::AppointmentRescheduled { .. } => "appointment.rescheduled",
            EventBody::AppointmentCompleted { .. } => "appointment.completed",
            EventBody::AppointmentCancelled { .. } => "appointment.cancelled",
            EventBody::PackageVisitCancelled { .. } => "package_visit.cancelled",
            EventBody::PackageCancelled { .. } => "package.cancelled",
            EventBody::CaseReopen { .. } => "case.reopen",
            EventBody::PackageBooked { .. } => "package.booked",
            EventBody::PackagePaid { .. } => "package.paid",
            EventBody::PackageVisitCompleted { .. } => "package_visit.completed",
            EventBody::PackageVisitRescheduled { .. } => "package_visit.rescheduled",
            EventBody::CallCompleted(_) => "call.completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallCompleted {
    pub case_id: String,
    pub call_id: String,
    pub agent_id: String,
    pub outcome: CallOutcome,
    pub resolution: Option<Resolution>,
    #[serde(default)]
    pub topics: Vec<Topic>,
    pub requested_follow_up: Option<bool>,
    pub cost_told: Option<bool>,
    pub notes: Option<String>,
}

/// A validated webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: EventBody,
}

// One input is built per request and moved, never stored in bulk: boxing the event buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    Event(Event),
    Timer(TimerRef),
}
