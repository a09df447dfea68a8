//! The case: one run of one playbook for one subject — ticket view, attempts, pending timers, timeline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// The customer's language: the SMS templates are in Arabic and English.
    pub enum Language {
        Ar = "ar",
        En = "en",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// E.164; masked whenever it is logged.
    pub phone: String,
    pub language: Language,
}

crate::named_enum! {
    /// Where a ticket stands (seed 001).
    pub enum TicketStatus {
        Open = "open",
        Pending = "pending",
        WaitingOnCustomer = "waiting_on_customer",
        WaitingOnThirdParty = "waiting_on_third_party",
        Resolved = "resolved",
        Closed = "closed",
    }
}

crate::named_enum! {
    pub enum Priority {
        Low = "low",
        Medium = "medium",
        High = "high",
        Urgent = "urgent",
    }
}

crate::named_enum! {
    /// The team that holds a ticket.
    pub enum Group {
        CustomerCare = "customer_care",
        CustomerSuccess = "customer_success",
        EngineeringOperation = "engineering_operation",
        Ops = "ops",
    }
}

crate::named_enum! {
    /// What kind of ticket a playbook opens: its `type`, which also names its category and
    /// sub-category (seed 001's ticket view).
    pub enum TicketKind {
        /// R0 an unassigned appointment watched.
        Watch = "watch",
        /// R1 a reschedule outreach.
        Outreach = "outreach",
        /// R2 the follow-up of a cancelled first visit.
        FollowUp = "follow_up",
        /// R3 the follow-up that books the second visit.
        SecondVisit = "second_visit",
        /// R4 an unpaid package.
        NotPaid = "not_paid",
        /// R5 an expired package.
        PackageExpired = "package_expired",
    }
}

impl TicketKind {
    pub fn category(self) -> &'static str {
        match self {
            TicketKind::Watch | TicketKind::Outreach => "appointment",
            TicketKind::FollowUp | TicketKind::SecondVisit => "follow_up",
            TicketKind::NotPaid | TicketKind::PackageExpired => "package",
        }
    }
    pub fn sub_category(self) -> &'static str {
        match self {
            TicketKind::Watch => "technician_assignment",
            TicketKind::Outreach => "reschedule",
            TicketKind::FollowUp | TicketKind::SecondVisit => "customer_care",
            TicketKind::NotPaid => "payment",
            TicketKind::PackageExpired => "expired",
        }
    }
}

/// The help-desk ticket as seed 001 shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Its type, with its category and sub-category.
    #[serde(rename = "type")]
    pub kind: TicketKind,
    pub status: TicketStatus,
    pub priority: Priority,
    pub area: String,
    pub group: Group,
    pub resolution_due: Option<DateTime<Utc>>,
    /// Required to close (seed 004: every ticket is closed with a result).
    pub result: Option<TicketResult>,
    /// Tags such as `not_paid` (seed 004).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Ticket {
    /// A new ticket, open (seed 001: every ticket that needs a customer contact is sent with status open).
    pub fn open(kind: TicketKind, priority: Priority, group: Group, area: &str) -> Ticket {
        Ticket {
            kind,
            status: TicketStatus::Open,
            priority,
            area: area.into(),
            group,
            resolution_due: None,
            result: None,
            tags: Vec::new(),
        }
    }

    pub fn due(mut self, at: DateTime<Utc>) -> Ticket {
        self.resolution_due = Some(at);
        self
    }

    pub fn tagged(mut self, tag: &str) -> Ticket {
        self.tags.push(tag.into());
        self
    }

    /// Still needs someone's work: neither resolved, closed, nor closed as a duplicate.
    pub fn is_open(&self) -> bool {
        !matches!(self.status, TicketStatus::Resolved | TicketStatus::Closed | TicketStatus::WaitingOnThirdParty)
    }
}

crate::named_enum! {
    /// What a call attempt came to.
    pub enum CallOutcome {
        Answered = "answered",
        NoAnswer = "no_answer",
        Busy = "busy",
        Voicemail = "voicemail",
        /// R9.1 never reported by the time the next step fell due: counts as not reached. Only the
        /// engine records it; a `call.completed` cannot carry it.
        Unreported = "unreported",
    }
}

impl CallOutcome {
    pub fn reached(self) -> bool {
        self == CallOutcome::Answered
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub outcome: CallOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

crate::named_enum! {
    /// The playbooks of SPEC §3 by their contract names (each one's home is `playbooks/`).
    pub enum PlaybookName {
        AppointmentWatch = "appointment_watch",
        RescheduleOutreach = "reschedule_outreach",
        CancellationFollowUp = "cancellation_follow_up",
        SecondVisitFollowUp = "second_visit_follow_up",
        PackagePayment = "package_payment",
        PackageExpiry = "package_expiry",
    }
}

crate::named_enum! {
    /// Why a timer exists; with the case step it makes a timer's identity.
    pub enum TimerKind {
        /// A call task falls due (R2.5, R1.3, R3.4, R4.4, R4.5, R5.2, R5.3).
        CallAttempt = "call_attempt",
        /// R2.9 / R3.9 close an unresolved ticket.
        AutoClose = "auto_close",
        /// R0.1 T-3h status update.
        StatusUpdate = "status_update",
        /// R0.2 T-1h cancel of an unassigned appointment.
        AutoCancel = "auto_cancel",
        /// R1.4 cancel an unresolved outreach at T-1h.
        OutreachCancel = "outreach_cancel",
        /// R3.1 open the second-visit case one hour after completion.
        OpenSecondVisit = "open_second_visit",
        /// R3.2 first call outcome SLA.
        FirstCallSla = "first_call_sla",
        /// R3.3 cost told SLA.
        CostSla = "cost_sla",
        /// R4.4 21:00 payment deadline on the day before the first visit.
        PaymentDeadline = "payment_deadline",
        /// R5.2 Day 1 after expiry.
        ExpiryDay1 = "expiry_day1",
        /// R5.4 end of grace.
        ExpiryDeactivate = "expiry_deactivate",
        /// R9.1 the last attempt of a sequence waits for its report until the end of its working day.
        ReportDue = "report_due",
        /// SPEC §4 (v2) a promotional SMS held outside its allowed hours goes out.
        HeldSms = "held_sms",
    }
}

/// A timer the case is waiting on, with the step it was placed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTimer {
    pub kind: TimerKind,
    pub due_at: DateTime<Utc>,
    pub step: u32,
}

crate::named_enum! {
    /// What a timeline entry records.
    pub enum TimelineKind {
        /// An input as it arrived.
        Event = "event",
        /// What a rule decided, citing it.
        Decision = "decision",
        /// A reported call outcome.
        Call = "call",
        /// A timer of the case fired.
        Timer = "timer",
        TimerPlaced = "timer_placed",
        TimerCancelled = "timer_cancelled",
        Command = "command",
        Sms = "sms",
        /// A template could not be rendered (a playbook bug, shown rather than failing the webhook).
        SmsFailed = "sms_failed",
        /// SPEC §4 (v2) an SMS not sent: a suppressed number or the daily cap.
        SmsSuppressed = "sms_suppressed",
        /// SPEC §4 (v2) a promotional SMS waiting for the next allowed time.
        SmsHeld = "sms_held",
        /// What changed on the ticket.
        Ticket = "ticket",
        /// R7 an accepted change of the appointment's window.
        Reschedule = "reschedule",
    }
}

crate::named_enum! {
    /// Why a ticket was resolved or closed (seed 004: every ticket is closed with a result).
    pub enum TicketResult {
        Rebooked = "rebooked",
        Declined = "declined",
        Unreachable = "unreachable",
        /// R2.2 superseded by a newer case for the same order.
        Duplicate = "duplicate",
        /// R0.3 a technician was assigned in time.
        Assigned = "assigned",
        Cancelled = "cancelled",
        Completed = "completed",
        /// R0.2 cancelled at T-1h as unassigned.
        AutoCancelled = "auto_cancelled",
        /// Another case of the appointment cancelled it.
        AppointmentCancelled = "appointment_cancelled",
        /// The appointment was no longer booked when the step came.
        AppointmentClosed = "appointment_closed",
        /// R3.8 the visit was replaced by a new one.
        VisitReplaced = "visit_replaced",
        /// The appointment was rescheduled by other means (the link, the dashboard).
        Rescheduled = "rescheduled",
        NotPaid = "not_paid",
        /// R4.6.
        Paid = "paid",
        /// R5.4 grace over while the case was open.
        Deactivated = "deactivated",
        /// The customer cancelled the package.
        PackageCancelled = "package_cancelled",
        /// R4.5 (v2) reached on the final call after the package was cancelled for non-payment.
        ReachedAfterCancellation = "reached_after_cancellation",
        /// R3.5 (v2) rebooked, but no later visit of the order was booked in time.
        NotBooked = "not_booked",
        /// R9.3 the appointment's start came while the ticket was left to ops.
        Expired = "expired",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    pub detail: String,
    /// R9.7 (v3) on the line of an input: when it happened, as its sender said (`at` is when it arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
}

impl TimelineEntry {
    pub fn new(at: DateTime<Utc>, kind: TimelineKind, detail: impl Into<String>) -> TimelineEntry {
        TimelineEntry { at, kind, detail: detail.into(), occurred_at: None }
    }
}

/// What every case has, whatever its playbook: ids, customer, ticket, attempts, timers,
/// timeline, version. The playbook's own state is kept beside it (`playbooks::Case`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseCore {
    pub case_id: String,
    pub appointment_id: Option<String>,
    pub order_id: Option<String>,
    pub package_id: Option<String>,
    pub customer: Customer,
    pub ticket: Ticket,
    pub attempts: Vec<Attempt>,
    pub timers: Vec<PendingTimer>,
    pub timeline: Vec<TimelineEntry>,
    pub opened_at: DateTime<Utc>,
    /// Bumped on every change of this case.
    pub version: u64,
    /// Bumped for every timer placed; a firing timer names the step it was placed for.
    pub step: u32,
    /// R9.2 (v3) when each accepted `case.reopen` of it happened (`occurred_at`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopened: Vec<DateTime<Utc>>,
}

impl CaseCore {
    /// A case as a playbook opens it: nothing attempted, no timers, an empty timeline.
    pub fn open(case_id: String, customer: Customer, ticket: Ticket, opened_at: DateTime<Utc>) -> CaseCore {
        CaseCore {
            case_id,
            appointment_id: None,
            order_id: None,
            package_id: None,
            customer,
            ticket,
            attempts: Vec::new(),
            timers: Vec::new(),
            timeline: Vec::new(),
            opened_at,
            version: 0,
            step: 0,
            reopened: Vec::new(),
        }
    }

    /// About this appointment of this order.
    pub fn about_appointment(mut self, appointment_id: &str, order_id: &str) -> CaseCore {
        self.appointment_id = Some(appointment_id.into());
        self.order_id = Some(order_id.into());
        self
    }

    /// About this package.
    pub fn about_package(mut self, package_id: &str) -> CaseCore {
        self.package_id = Some(package_id.into());
        self
    }

    /// The subject ids a command about this case names.
    pub fn subject(&self) -> SubjectIds {
        SubjectIds { appointment_id: self.appointment_id.clone(), order_id: self.order_id.clone(), package_id: self.package_id.clone() }
    }

    pub fn note(&mut self, at: DateTime<Utc>, kind: TimelineKind, detail: impl Into<String>) {
        self.timeline.push(TimelineEntry::new(at, kind, detail));
    }

    pub fn pending(&self, kind: TimerKind) -> Option<&PendingTimer> {
        self.timers.iter().find(|t| t.kind == kind)
    }

    /// R9.1 records an attempt whose report never came as not reached.
    pub fn unreported(&mut self, attempt: u32, at: DateTime<Utc>, by: &str) {
        self.attempts.push(Attempt { at, outcome: CallOutcome::Unreported, call_id: None, agent_id: None });
        self.note(at, TimelineKind::Decision, format!("R9.1 attempt {attempt} unreported {by}: counts as not reached"));
    }

    /// R9.1 (v3) a step after `occurred` already counted an attempt unreported: a report of a
    /// call that happened then is late (one at the very instant of the step is the next attempt's).
    pub fn lapsed_since(&self, occurred: DateTime<Utc>) -> bool {
        self.attempts.iter().any(|a| a.outcome == CallOutcome::Unreported && a.at > occurred)
    }

    /// Records a reported call (`call_id` by `agent_id`) as an attempt, at the time it happened.
    pub fn record(&mut self, call_id: &str, agent_id: &str, outcome: CallOutcome, at: DateTime<Utc>) {
        self.attempts.push(Attempt { at, outcome, call_id: Some(call_id.into()), agent_id: Some(agent_id.into()) });
    }
}

/// The subject ids (`appointment_id`, `order_id`, `package_id`) a command names, those that apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubjectIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
}

impl SubjectIds {
    pub fn package(package_id: &str) -> SubjectIds {
        SubjectIds { package_id: Some(package_id.into()), ..SubjectIds::default() }
    }
    pub fn appointment(appointment_id: &str, order_id: &str) -> SubjectIds {
        SubjectIds { appointment_id: Some(appointment_id.into()), order_id: Some(order_id.into()), package_id: None }
    }
}

/// `+201001234567` → `+2010*****567`, for logs and the timeline.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let (head, tail) = (4, 3);
    chars[..head].iter().chain(std::iter::repeat_n(&'*', chars.len() - head - tail)).chain(&chars[chars.len() - tail..]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("+201001234567"), "+201******567");
        assert_eq!(mask_phone("+12345"), "******");
    }
}
