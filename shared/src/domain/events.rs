//! The inputs a decision reacts to: the webhook events of SPEC §5 and fired timers, already validated.
//!
//! Each event type is a struct of its own, grouped by what it is about (an appointment, a
//! package, a case), so a subject's code matches only its own events. `events!` below lists
//! every type once: its wire name, its route, its group and its struct; the enums, the wire
//! names and the routes' lists all come from that list. Each type also names the fact it
//! reports (`Fact`, R9.2 v3).

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

impl Resolution {
    /// Its `kind` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Resolution::Rebooked { .. } => "rebooked",
            Resolution::Declined { .. } => "declined",
            Resolution::FollowUpLater { .. } => "follow_up_later",
            Resolution::WillPay => "will_pay",
        }
    }
}

/// The webhook endpoint an event type is posted to (SPEC §5 routes; `wire` gives the paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Appointments,
    Cancellations,
    Calls,
    Packages,
}

/// `appointment.booked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentBooked {
    pub appointment_id: String,
    pub order_id: String,
    pub customer: Customer,
    pub area: String,
    pub service: String,
    pub price: Money,
    #[serde(deserialize_with = "rfc3339")]
    pub window_start: DateTime<Utc>,
    #[serde(deserialize_with = "rfc3339")]
    pub window_end: DateTime<Utc>,
    pub visit_number: u32,
    pub technician_id: Option<String>,
    pub discount_percent: u32,
}

/// `appointment.assigned`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentAssigned {
    pub appointment_id: String,
    pub technician_id: String,
}

/// `appointment.reschedule_requested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescheduleRequested {
    pub appointment_id: String,
    pub reason: String,
    pub stf_link: String,
}

/// `appointment.rescheduled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentRescheduled {
    pub appointment_id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub window_start: DateTime<Utc>,
    #[serde(deserialize_with = "rfc3339")]
    pub window_end: DateTime<Utc>,
    pub requested_by: String,
}

/// `appointment.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentCompleted {
    pub appointment_id: String,
    pub outcome: CompletionOutcome,
    pub needs_material: bool,
    pub material_days: Option<u32>,
    pub painting: Option<Painting>,
}

/// `appointment.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentCancelled {
    pub appointment_id: String,
    pub cancelled_by: CancelledBy,
    pub reason: String,
    pub wants_follow_up: bool,
    pub availability: Option<Availability>,
}

/// `package.booked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageBooked {
    pub package_id: String,
    pub customer: Customer,
    pub area: String,
    pub price: Money,
    pub visits: Vec<PackageVisit>,
    pub start_date: NaiveDate,
    pub payment_method: PaymentMethod,
    pub paid: bool,
}

/// `package.paid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackagePaid {
    pub package_id: String,
}

/// `package.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageCancelled {
    pub package_id: String,
    pub reason: String,
}

/// `package_visit.cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitCancelled {
    pub package_id: String,
    pub visit_id: String,
}

/// `package_visit.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitCompleted {
    pub package_id: String,
    pub visit_id: String,
}

/// `package_visit.rescheduled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitRescheduled {
    pub package_id: String,
    pub visit_id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub window_start: DateTime<Utc>,
}

/// `case.reopen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReopen {
    pub case_id: String,
}

/// `call.completed`.
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

/// Declares the event types once: `"wire name" @ Route => Variant(Struct)` in groups, and
/// generates the grouped enums, `EventBody`, the wire names, each route's types, and the
/// externally tagged (`{"<type>": data}`) serde form through which the wire parser follows the
/// JSON path into the data and names a failing field.
macro_rules! events {
    ($($(#[$gm:meta])* $group:ident($genum:ident) { $($name:literal @ $route:ident => $variant:ident($ty:ident)),+ $(,)? })+) => {
        $(
            $(#[$gm])*
            #[derive(Debug, Clone, PartialEq)]
            pub enum $genum { $($variant($ty)),+ }
        )+

        /// An event's type and data.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventBody { $($group($genum)),+ }

        impl EventBody {
            /// Every event type's wire name.
            pub const KINDS: &'static [&'static str] = &[$($($name),+),+];

            /// The envelope `type` of this event.
            pub fn kind(&self) -> &'static str {
                match self { $($(EventBody::$group($genum::$variant(_)) => $name,)+)+ }
            }
        }

        impl Route {
            /// The event types this route takes, in the order the list above gives them.
            pub fn event_types(self) -> &'static [&'static str] {
                const ALL: &[(Route, &str)] = &[$($((Route::$route, $name)),+),+];
                const fn count(route: Route) -> usize {
                    let mut n = 0;
                    let mut i = 0;
                    while i < ALL.len() {
                        if ALL[i].0 as u8 == route as u8 {
                            n += 1;
                        }
                        i += 1;
                    }
                    n
                }
                macro_rules! of {
                    ($r:ident) => {{
                        const N: usize = count(Route::$r);
                        const LIST: [&str; N] = {
                            let mut out = [""; N];
                            let (mut i, mut n) = (0, 0);
                            while i < ALL.len() {
                                if ALL[i].0 as u8 == Route::$r as u8 {
                                    out[n] = ALL[i].1;
                                    n += 1;
                                }
                                i += 1;
                            }
                            out
                        };
                        &LIST
                    }};
                }
                match self {
                    Route::Appointments => of!(Appointments),
                    Route::Cancellations => of!(Cancellations),
                    Route::Calls => of!(Calls),
                    Route::Packages => of!(Packages),
                }
            }
        }

        $($(impl From<$ty> for EventBody {
            fn from(data: $ty) -> EventBody {
                EventBody::$group($genum::$variant(data))
            }
        })+)+

        impl Serialize for EventBody {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                match self { $($(EventBody::$group($genum::$variant(data)) => map.serialize_entry($name, data)?,)+)+ }
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for EventBody {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Tagged;
                impl<'de> serde::de::Visitor<'de> for Tagged {
                    type Value = EventBody;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object naming one event type")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<EventBody, A::Error> {
                        let kind: String = map.next_key()?.ok_or_else(|| serde::de::Error::custom("no event type"))?;
                        match kind.as_str() {
                            $($($name => Ok(EventBody::$group($genum::$variant(map.next_value()?))),)+)+
                            other => Err(serde::de::Error::unknown_variant(other, EventBody::KINDS)),
                        }
                    }
                }
                d.deserialize_map(Tagged)
            }
        }
    };
}

events! {
    /// What happens to one appointment of an order.
    Appointment(AppointmentEvent) {
        "appointment.booked" @ Appointments => Booked(AppointmentBooked),
        "appointment.assigned" @ Appointments => Assigned(AppointmentAssigned),
        "appointment.reschedule_requested" @ Appointments => RescheduleRequested(RescheduleRequested),
        "appointment.rescheduled" @ Appointments => Rescheduled(AppointmentRescheduled),
        "appointment.completed" @ Appointments => Completed(AppointmentCompleted),
        "appointment.cancelled" @ Cancellations => Cancelled(AppointmentCancelled),
    }
    /// What happens to a package or one of its visits.
    Package(PackageEvent) {
        "package_visit.cancelled" @ Cancellations => VisitCancelled(VisitCancelled),
        "package.cancelled" @ Cancellations => Cancelled(PackageCancelled),
        "package.booked" @ Packages => Booked(PackageBooked),
        "package.paid" @ Packages => Paid(PackagePaid),
        "package_visit.completed" @ Packages => VisitCompleted(VisitCompleted),
        "package_visit.rescheduled" @ Packages => VisitRescheduled(VisitRescheduled),
    }
    /// What is reported about one case.
    Case(CaseEvent) {
        "case.reopen" @ Cancellations => Reopen(CaseReopen),
        "call.completed" @ Calls => Call(CallCompleted),
    }
}

impl AppointmentEvent {
    pub fn appointment_id(&self) -> &str {
        match self {
            AppointmentEvent::Booked(e) => &e.appointment_id,
            AppointmentEvent::Assigned(e) => &e.appointment_id,
            AppointmentEvent::RescheduleRequested(e) => &e.appointment_id,
            AppointmentEvent::Rescheduled(e) => &e.appointment_id,
            AppointmentEvent::Completed(e) => &e.appointment_id,
            AppointmentEvent::Cancelled(e) => &e.appointment_id,
        }
    }
}

impl PackageEvent {
    pub fn package_id(&self) -> &str {
        match self {
            PackageEvent::Booked(e) => &e.package_id,
            PackageEvent::Paid(e) => &e.package_id,
            PackageEvent::Cancelled(e) => &e.package_id,
            PackageEvent::VisitCancelled(e) => &e.package_id,
            PackageEvent::VisitCompleted(e) => &e.package_id,
            PackageEvent::VisitRescheduled(e) => &e.package_id,
        }
    }
}

impl CaseEvent {
    pub fn case_id(&self) -> &str {
        match self {
            CaseEvent::Reopen(e) => &e.case_id,
            CaseEvent::Call(e) => &e.case_id,
        }
    }
}

/// R9.2 (v3) the fact an event reports, by which a copy of it re-sent under a new delivery id
/// (or the dashboard's report of a change the engine commanded) is known as an echo. Each event
/// type says here what it reports; `subjects::echo` asks the records whether they already hold it.
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
pub fn digest<T: Serialize>(data: &T) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(data).expect("an event's data always serialises");
    hex::encode(Sha256::digest(bytes))
}

impl EventBody {
    /// R9.2 (v3) the fact this event reports.
    pub fn fact(&self) -> Fact<'_> {
        match self {
            EventBody::Appointment(e) => match e {
                AppointmentEvent::Booked(b) => Fact::AppointmentBooked { appointment_id: &b.appointment_id, digest: digest(b) },
                AppointmentEvent::Assigned(a) => Fact::Assigned { appointment_id: &a.appointment_id, technician_id: &a.technician_id },
                AppointmentEvent::RescheduleRequested(r) => Fact::RescheduleRequested { appointment_id: &r.appointment_id },
                AppointmentEvent::Rescheduled(r) => {
                    Fact::Rescheduled { appointment_id: &r.appointment_id, window: (r.window_start, r.window_end) }
                }
                AppointmentEvent::Completed(c) => Fact::AppointmentCompleted { appointment_id: &c.appointment_id },
                AppointmentEvent::Cancelled(c) => Fact::AppointmentCancelled { appointment_id: &c.appointment_id },
            },
            EventBody::Package(e) => match e {
                PackageEvent::Booked(b) => Fact::PackageBooked { package_id: &b.package_id, digest: digest(b) },
                PackageEvent::Paid(p) => Fact::PackagePaid { package_id: &p.package_id },
                PackageEvent::Cancelled(c) => Fact::PackageCancelled { package_id: &c.package_id },
                PackageEvent::VisitCancelled(v) => Fact::VisitCancelled { package_id: &v.package_id, visit_id: &v.visit_id },
                PackageEvent::VisitCompleted(v) => Fact::VisitCompleted { package_id: &v.package_id, visit_id: &v.visit_id },
                PackageEvent::VisitRescheduled(v) => {
                    Fact::VisitRescheduled { package_id: &v.package_id, visit_id: &v.visit_id, window_start: v.window_start }
                }
            },
            EventBody::Case(CaseEvent::Reopen(r)) => Fact::Reopened { case_id: &r.case_id },
            EventBody::Case(CaseEvent::Call(c)) => Fact::Call { case_id: &c.case_id, call_id: &c.call_id },
        }
    }

    /// The reason the event gives, for the timeline.
    pub fn reason(&self) -> Option<&str> {
        match self {
            EventBody::Appointment(AppointmentEvent::Cancelled(c)) => Some(&c.reason),
            EventBody::Appointment(AppointmentEvent::RescheduleRequested(r)) => Some(&r.reason),
            EventBody::Package(PackageEvent::Cancelled(c)) => Some(&c.reason),
            _ => None,
        }
    }
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

#[cfg(test)]
mod tests;
