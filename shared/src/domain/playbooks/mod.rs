//! Playbooks: the pure `decide` that routes an input to the subject and cases it concerns.
//!
//! `decide(stream, input, now, policy)` returns the next stream and the effects
//! to perform, or a `Refusal` that the wire layer turns into a 4xx. It reads no
//! clock and does no I/O; the shell commits its result in one write.

/// `fn flow(&mut Case) -> &mut Flow` for the playbook module it is used in, whose flow is
/// `Flow::$variant` (imported there as `AnyFlow`): the router sends only that playbook's cases.
macro_rules! flow_of {
    ($variant:ident) => {
        fn flow(case: &mut Case) -> &mut Flow {
            match &mut case.flow {
                AnyFlow::$variant(f) => f,
                other => unreachable!("a {} case was routed to {}", other.playbook(), module_path!()),
            }
        }
    };
}

pub mod appointment_watch;
pub mod appointments;
pub mod cancellation_follow_up;
pub mod interactions;
pub mod package_expiry;
pub mod package_payment;
pub mod packages;
pub mod reschedule_outreach;
pub mod second_visit_follow_up;

use super::calendar::Calendar;
use super::case::{Case, Customer, PendingTimer, Ticket, TimerKind};
use super::effects::{Command, CommandType, Effect, Sms, TimerRef, TimerSpec};
use super::events::{CallCompleted, Event, EventBody, Input, Resolution};
use super::policy::Policy;
use super::sms::{self, SmsVars, TemplateId};
use super::stream::{Appointment, AppointmentStatus, Stream, StreamKey, SubjectTimer};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A playbook's own state and data, tagged with the playbook's contract name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "playbook", rename_all = "snake_case")]
pub enum Flow {
    AppointmentWatch(appointment_watch::Flow),
    RescheduleOutreach(reschedule_outreach::Flow),
    CancellationFollowUp(cancellation_follow_up::Flow),
    SecondVisitFollowUp(second_visit_follow_up::Flow),
    PackagePayment(package_payment::Flow),
    PackageExpiry(package_expiry::Flow),
}

impl Flow {
    pub fn playbook(&self) -> &'static str {
        match self {
            Flow::AppointmentWatch(_) => "appointment_watch",
            Flow::RescheduleOutreach(_) => "reschedule_outreach",
            Flow::CancellationFollowUp(_) => "cancellation_follow_up",
            Flow::SecondVisitFollowUp(_) => "second_visit_follow_up",
            Flow::PackagePayment(_) => "package_payment",
            Flow::PackageExpiry(_) => "package_expiry",
        }
    }
    pub fn state(&self) -> &'static str {
        match self {
            Flow::AppointmentWatch(f) => f.state.as_str(),
            Flow::RescheduleOutreach(f) => f.state.as_str(),
            Flow::CancellationFollowUp(f) => f.state.as_str(),
            Flow::SecondVisitFollowUp(f) => f.state.as_str(),
            Flow::PackagePayment(f) => f.state.as_str(),
            Flow::PackageExpiry(f) => f.state.as_str(),
        }
    }
}

/// The outcome of a decision: the next stream, the effects, and the case the 202 names.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub stream: Stream,
    pub effects: Vec<Effect>,
    pub case_id: Option<String>,
    /// Subject ids (`appointment:<id>`) this stream newly answers for.
    pub index: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// 400: the input is malformed for this purpose.
    Invalid,
    /// 404: unknown subject or case.
    NotFound,
    /// 422: a rule refuses it.
    Rule,
}

/// Why an input is refused; nothing is stored and nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<&'static str>,
}

impl Refusal {
    pub fn not_found(code: &'static str, message: impl Into<String>, field: &str) -> Self {
        Refusal { kind: RefusalKind::NotFound, code, message: message.into(), field: Some(field.into()), rule: None }
    }
    pub fn rule(rule: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        Refusal { kind: RefusalKind::Rule, code: "rule_violation", message: message.into(), field: field.map(Into::into), rule: Some(rule) }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        Refusal { kind: RefusalKind::Rule, code, message: message.into(), field: field.map(Into::into), rule: None }
    }
    pub fn invalid(code: &'static str, message: impl Into<String>, field: &str) -> Self {
        Refusal { kind: RefusalKind::Invalid, code, message: message.into(), field: Some(field.into()), rule: None }
    }
}

/// Where an input's stream is found before it can be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The stream is named by the input itself.
    Stream(StreamKey),
    /// The stream is found through the subject index (`appointment:<id>`).
    Subject(String),
}

impl Input {
    pub fn target(&self) -> Result<Target, Refusal> {
        let case_stream = |case_id: &str| {
            StreamKey::of_case(case_id)
                .map(Target::Stream)
                .ok_or_else(|| Refusal::not_found("unknown_case", format!("no case {case_id:?}"), "data.case_id"))
        };
        let event = match self {
            Input::Timer(t) => return Ok(Target::Stream(t.stream.clone())),
            Input::Event(e) => e,
        };
        Ok(match &event.body {
            EventBody::AppointmentBooked { order_id, .. } => Target::Stream(StreamKey::Order(order_id.clone())),
            EventBody::AppointmentAssigned { appointment_id, .. }
            | EventBody::AppointmentRescheduleRequested { appointment_id, .. }
            | EventBody::AppointmentRescheduled { appointment_id, .. }
            | EventBody::AppointmentCompleted { appointment_id, .. }
            | EventBody::AppointmentCancelled { appointment_id, .. } => Target::Subject(appointment_subject(appointment_id)),
            EventBody::CaseReopen { case_id } => case_stream(case_id)?,
            EventBody::CallCompleted(c) => case_stream(&c.case_id)?,
            EventBody::PackageVisitCancelled { package_id, .. }
            | EventBody::PackageCancelled { package_id, .. }
            | EventBody::PackageBooked { package_id, .. }
            | EventBody::PackagePaid { package_id }
            | EventBody::PackageVisitCompleted { package_id, .. }
            | EventBody::PackageVisitRescheduled { package_id, .. } => Target::Stream(StreamKey::Package(package_id.clone())),
        })
    }
}

pub fn appointment_subject(appointment_id: &str) -> String {
    format!("appointment:{appointment_id}")
}

/// Decides what an input does to a stream (`None`: the stream does not exist yet).
pub fn decide(stream: Option<&Stream>, input: &Input, now: DateTime<Utc>, policy: &Policy) -> Result<Decision, Refusal> {
    let original = stream;
    let key = match (stream, input.target()?) {
        (Some(s), _) => s.key.clone(),
        (None, Target::Stream(key)) => key,
        (None, Target::Subject(_)) => return Err(unknown_subject(input)),
    };
    let mut ctx = Ctx { now, stream: key, policy, effects: Vec::new() };
    let (mut stream, index, case_id) = match input {
        Input::Timer(timer) => {
            let mut stream =
                stream.cloned().ok_or_else(|| Refusal::not_found("unknown_stream", format!("no {}", timer.stream), "stream"))?;
            let case_id = on_timer(&mut stream, timer, &mut ctx)?;
            (stream, Vec::new(), case_id)
        }
        Input::Event(event) => on_event(stream, event, &mut ctx)?,
    };
    stream.version += 1;
    // A case's own version counts the decisions that changed it.
    for case in &mut stream.cases {
        match original.and_then(|o| o.case(&case.case_id)) {
            Some(old) if old == case => {}
            Some(old) => case.version = old.version + 1,
            None => case.version = 1,
        }
    }
    Ok(Decision { stream, effects: ctx.effects, case_id, index })
}

/// A resolution kind that the case's playbook has no step for is refused before anything
/// changes: `will_pay` belongs to the payment chase (R4.2), `rebooked` to the appointment
/// playbooks. A watch case records any outcome, having no call steps of its own.
fn check_resolution(flow: &Flow, call: &CallCompleted) -> Result<(), Refusal> {
    let message = match (flow, &call.resolution) {
        (Flow::PackagePayment(_), Some(Resolution::Rebooked { .. })) => {
            "a rebooked resolution does not apply to package_payment cases; use will_pay"
        }
        (Flow::AppointmentWatch(_) | Flow::PackagePayment(_), _) => return Ok(()),
        (_, Some(Resolution::WillPay)) => "a will_pay resolution applies to package_payment cases only",
        _ => return Ok(()),
    };
    Err(Refusal::conflict("resolution_not_applicable", message, Some("data.resolution.kind")))
}

/// What an event decision produced: the next stream, new subject index entries, and the case the 202 names.
pub type Outcome = (Stream, Vec<String>, Option<String>);

fn on_event(stream: Option<&Stream>, event: &Event, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    match &event.body {
        EventBody::CallCompleted(call) => {
            let mut stream = stream.cloned().ok_or_else(|| unknown_case(&call.case_id))?;
            let idx = stream.case_index(&call.case_id).ok_or_else(|| unknown_case(&call.case_id))?;
            check_resolution(&stream.cases[idx].flow, call)?;
            stream.cases[idx].note(ctx.now, "call", describe_call(call));
            match &stream.cases[idx].flow {
                Flow::AppointmentWatch(_) => appointment_watch::on_call(&mut stream, idx, call, ctx)?,
                Flow::RescheduleOutreach(_) => reschedule_outreach::on_call(&mut stream, idx, call, ctx)?,
                Flow::CancellationFollowUp(_) => cancellation_follow_up::on_call(&mut stream, idx, call, ctx)?,
                Flow::SecondVisitFollowUp(_) => second_visit_follow_up::on_call(&mut stream, idx, call, ctx)?,
                Flow::PackagePayment(_) => package_payment::on_call(&mut stream, idx, call, ctx)?,
                Flow::PackageExpiry(_) => package_expiry::on_call(&mut stream, idx, call, ctx)?,
            }
            // R8.3 every classified interaction is summarised, whatever the playbook.
            interactions::on_call(&mut stream, idx, call, ctx);
            Ok((stream, Vec::new(), Some(call.case_id.clone())))
        }
        EventBody::CaseReopen { case_id } => {
            let mut stream = stream.cloned().ok_or_else(|| unknown_case(case_id))?;
            let idx = stream.case_index(case_id).ok_or_else(|| unknown_case(case_id))?;
            match &stream.cases[idx].flow {
                Flow::CancellationFollowUp(_) => cancellation_follow_up::on_reopen(&mut stream, idx, ctx)?,
                Flow::SecondVisitFollowUp(_) => second_visit_follow_up::on_reopen(&mut stream, idx, ctx)?,
                other => {
                    return Err(Refusal::rule(
                        "R2.10",
                        format!("a {} case cannot be re-opened; only follow-up tickets can (R2.10, R3.9)", other.playbook()),
                        Some("data.case_id"),
                    ))
                }
            }
            Ok((stream, Vec::new(), Some(case_id.clone())))
        }
        EventBody::AppointmentBooked { .. }
        | EventBody::AppointmentAssigned { .. }
        | EventBody::AppointmentRescheduleRequested { .. }
        | EventBody::AppointmentRescheduled { .. }
        | EventBody::AppointmentCompleted { .. }
        | EventBody::AppointmentCancelled { .. } => appointments::on_event(stream, event, ctx),
        EventBody::PackageBooked { .. }
        | EventBody::PackagePaid { .. }
        | EventBody::PackageCancelled { .. }
        | EventBody::PackageVisitCancelled { .. }
        | EventBody::PackageVisitCompleted { .. }
        | EventBody::PackageVisitRescheduled { .. } => packages::on_event(stream, event, ctx),
    }
}

fn on_timer(stream: &mut Stream, timer: &TimerRef, ctx: &mut Ctx) -> Result<Option<String>, Refusal> {
    let Some(case_id) = &timer.case_id else {
        // A subject timer: stale unless the stream still waits on this step.
        let Some(pos) = stream.timers.iter().position(|t| t.timer.kind == timer.kind && t.timer.step == timer.step) else {
            return Ok(None);
        };
        let fired = stream.timers.remove(pos);
        return Ok(match timer.kind {
            TimerKind::ExpiryDay1 | TimerKind::ExpiryDeactivate => packages::on_subject_timer(stream, &fired, ctx),
            _ => appointments::on_subject_timer(stream, &fired, ctx),
        });
    };
    let Some(idx) = stream.case_index(case_id) else {
        return Ok(None);
    };
    let case = &mut stream.cases[idx];
    // A timer for a step the case has left is a no-op (R0.3: late stale timers do nothing).
    let Some(pos) = case.timers.iter().position(|t| t.kind == timer.kind && t.step == timer.step) else {
        return Ok(Some(case_id.clone()));
    };
    case.timers.remove(pos);
    case.note(ctx.now, "timer", format!("{} fired", timer.kind));
    match &case.flow {
        Flow::AppointmentWatch(_) => appointment_watch::on_timer(stream, idx, timer.kind, ctx),
        Flow::RescheduleOutreach(_) => reschedule_outreach::on_timer(stream, idx, timer.kind, ctx),
        Flow::CancellationFollowUp(_) => cancellation_follow_up::on_timer(stream, idx, timer.kind, ctx),
        Flow::SecondVisitFollowUp(_) => second_visit_follow_up::on_timer(stream, idx, timer.kind, ctx),
        Flow::PackagePayment(_) => package_payment::on_timer(stream, idx, timer.kind, ctx),
        Flow::PackageExpiry(_) => package_expiry::on_timer(stream, idx, timer.kind, ctx),
    }
    Ok(Some(case_id.clone()))
}

pub(crate) fn open_appointment<'s>(stream: &'s mut Stream, appointment_id: &str) -> Result<&'s mut Appointment, Refusal> {
    let appointment = stream
        .appointment_mut(appointment_id)
        .ok_or_else(|| Refusal::not_found("unknown_appointment", format!("no appointment {appointment_id:?}"), "data.appointment_id"))?;
    if appointment.status != AppointmentStatus::Booked {
        return Err(Refusal::conflict(
            "appointment_closed",
            format!("appointment {appointment_id:?} is already {}", wire_name(&appointment.status)),
            Some("data.appointment_id"),
        ));
    }
    Ok(appointment)
}

pub(crate) fn unknown_case(case_id: &str) -> Refusal {
    Refusal::not_found("unknown_case", format!("no case {case_id:?}"), "data.case_id")
}

/// The 404 for an input whose stream does not exist.
pub(crate) fn unknown_subject(input: &Input) -> Refusal {
    match input {
        Input::Event(Event { body: EventBody::CallCompleted(c), .. }) => unknown_case(&c.case_id),
        Input::Event(Event { body: EventBody::CaseReopen { case_id }, .. }) => unknown_case(case_id),
        _ => match input.target() {
            Ok(Target::Stream(StreamKey::Package(id))) => {
                Refusal::not_found("unknown_package", format!("no package {id:?}"), "data.package_id")
            }
            Ok(Target::Subject(subject)) => Refusal::not_found(
                "unknown_appointment",
                format!("no appointment {:?}", subject.trim_start_matches("appointment:")),
                "data.appointment_id",
            ),
            Ok(Target::Stream(key)) => Refusal::not_found("unknown_subject", format!("no {key}"), "data"),
            Err(r) => r,
        },
    }
}

fn describe_call(call: &CallCompleted) -> String {
    let mut s = format!("call {} by agent {}: {}", call.call_id, call.agent_id, wire_name(&call.outcome));
    if let Some(r) = &call.resolution {
        s.push_str(&format!(", resolution {}", wire_name(r)));
    }
    if let Some(n) = &call.notes {
        s.push_str(&format!(" — {n}"));
    }
    s
}

/// What one decision accumulates: its effects, with every effect also written on the case timeline.
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub stream: StreamKey,
    pub policy: &'a Policy,
    pub effects: Vec<Effect>,
}

impl Ctx<'_> {
    pub fn cal(&self) -> &Calendar {
        &self.policy.calendar
    }

    /// Places a timer for the case's next step.
    pub fn place(&mut self, case: &mut Case, kind: TimerKind, due_at: DateTime<Utc>) {
        case.step += 1;
        let pending = PendingTimer { kind, due_at, step: case.step };
        let timer = TimerRef { stream: self.stream.clone(), case_id: Some(case.case_id.clone()), kind, step: case.step };
        case.note(self.now, "timer_placed", format!("{kind} due {}", self.cal().rfc3339(due_at)));
        case.timers.push(pending);
        self.effects.push(Effect::PlaceTimer(TimerSpec { timer, due_at, playbook: Some(case.playbook().to_string()) }));
    }

    /// Cancels the case's pending timers of these kinds (all of them when `kinds` is empty).
    pub fn cancel(&mut self, case: &mut Case, kinds: &[TimerKind]) {
        let (gone, kept): (Vec<_>, Vec<_>) = case.timers.drain(..).partition(|t| kinds.is_empty() || kinds.contains(&t.kind));
        case.timers = kept;
        for t in gone {
            case.note(self.now, "timer_cancelled", format!("{} due {}", t.kind, self.cal().rfc3339(t.due_at)));
            self.effects.push(Effect::CancelTimer(TimerRef {
                stream: self.stream.clone(),
                case_id: Some(case.case_id.clone()),
                kind: t.kind,
                step: t.step,
            }));
        }
    }

    /// Places a timer on the stream's subject (no case yet, or none at all).
    pub fn place_subject(&mut self, stream: &mut Stream, subject_id: &str, kind: TimerKind, due_at: DateTime<Utc>) {
        stream.timer_seq += 1;
        let step = stream.timer_seq;
        stream.timers.push(SubjectTimer { subject_id: subject_id.to_string(), timer: PendingTimer { kind, due_at, step } });
        self.effects.push(Effect::PlaceTimer(TimerSpec {
            timer: TimerRef { stream: self.stream.clone(), case_id: None, kind, step },
            due_at,
            playbook: None,
        }));
    }

    /// Cancels the subject's pending timers of these kinds (all of them when `kinds` is empty).
    pub fn cancel_subject(&mut self, stream: &mut Stream, subject_id: &str, kinds: &[TimerKind]) {
        let (gone, kept): (Vec<_>, Vec<_>) =
            stream.timers.drain(..).partition(|t| t.subject_id == subject_id && (kinds.is_empty() || kinds.contains(&t.timer.kind)));
        stream.timers = kept;
        for t in gone {
            self.effects.push(Effect::CancelTimer(TimerRef {
                stream: self.stream.clone(),
                case_id: None,
                kind: t.timer.kind,
                step: t.timer.step,
            }));
        }
    }

    /// A command that acts on a subject rather than a case (`case_id` null, R6).
    pub fn subject_command(&mut self, kind: CommandType, data: Map<String, Value>) {
        self.effects.push(Effect::Emit(Command { kind, case_id: None, at: self.now, data }));
    }

    pub fn command(&mut self, case: &mut Case, kind: CommandType, data: Map<String, Value>) {
        case.note(self.now, "command", format!("{kind} {}", Value::Object(data.clone())));
        self.effects.push(Effect::Emit(Command { kind, case_id: Some(case.case_id.clone()), at: self.now, data }));
    }

    /// The call task of SPEC §2: tells an agent or a dialer to call now.
    pub fn call_task(&mut self, case: &mut Case, reason: &str, due: DateTime<Utc>, mut extra: Map<String, Value>) {
        let mut data = Map::new();
        data.insert("phone".into(), case.customer.phone.clone().into());
        data.insert("reason".into(), reason.into());
        data.insert("due".into(), self.cal().rfc3339(due).into());
        data.insert("customer_name".into(), case.customer.name.clone().into());
        data.append(&mut case.subject_data());
        data.append(&mut extra);
        self.command(case, CommandType::CallCustomer, data);
    }

    pub fn sms(&mut self, case: &mut Case, template: TemplateId, vars: &SmsVars) {
        let customer = case.customer.clone();
        match self.render(&customer, template, vars, Some(case.case_id.clone())) {
            Ok(sms) => {
                case.note(self.now, "sms", format!("{template} to {} ({} segments)", super::case::mask_phone(&sms.to), sms.segments));
                self.effects.push(Effect::SendSms(sms));
            }
            // A template missing a variable is a bug in a playbook; it is written on the
            // timeline so the case shows it, rather than failing the customer's webhook.
            Err(e) => case.note(self.now, "sms_failed", e.to_string()),
        }
    }

    /// An SMS about a subject rather than a case (`case_id` null, R6 / R7.3).
    pub fn subject_sms(&mut self, customer: &Customer, template: TemplateId, vars: &SmsVars) -> Result<(), sms::RenderError> {
        let sms = self.render(customer, template, vars, None)?;
        self.effects.push(Effect::SendSms(sms));
        Ok(())
    }

    fn render(&self, customer: &Customer, template: TemplateId, vars: &SmsVars, case_id: Option<String>) -> Result<Sms, sms::RenderError> {
        let (language, body) = sms::render(template, customer.language, vars, &self.policy.sms.hotline)?;
        Ok(Sms { to: customer.phone.clone(), template, language, segments: sms::segments(&body), body, case_id, at: self.now })
    }

    /// Changes the ticket and writes what changed on the timeline.
    pub fn ticket(&mut self, case: &mut Case, change: impl FnOnce(&mut Ticket)) {
        let before = case.ticket.clone();
        change(&mut case.ticket);
        let after = &case.ticket;
        let mut diffs = Vec::new();
        if before.status != after.status {
            diffs.push(format!("status {} → {}", wire_name(&before.status), wire_name(&after.status)));
        }
        if before.priority != after.priority {
            diffs.push(format!("priority {} → {}", wire_name(&before.priority), wire_name(&after.priority)));
        }
        if before.group != after.group {
            diffs.push(format!("group {} → {}", wire_name(&before.group), wire_name(&after.group)));
        }
        if before.result != after.result {
            diffs.push(format!("result {}", after.result.as_deref().unwrap_or("none")));
        }
        if before.resolution_due != after.resolution_due {
            diffs.push(format!("resolution_due {}", after.resolution_due.map(|d| self.cal().rfc3339(d)).unwrap_or_else(|| "none".into())));
        }
        if !diffs.is_empty() {
            case.note(self.now, "ticket", diffs.join(", "));
        }
    }
}

/// The wire name of a serde enum value (`waiting_on_customer`), for timeline text.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => o.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! The inputs every playbook's unit tests are built from.
    use crate::domain::case::CallOutcome;
    use crate::domain::events::{CallCompleted, Event, EventBody, Input, Resolution};
    use chrono::{DateTime, Utc};

    pub fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// An event delivered at Monday 2026-03-02 10:00 Cairo.
    pub fn event(body: EventBody) -> Input {
        Input::Event(Event { id: "e".into(), occurred_at: t("2026-03-02T10:00:00+02:00"), body })
    }

    /// A call outcome on `case_id`, with no topics or notes.
    pub fn completed(case_id: &str, outcome: CallOutcome, resolution: Option<Resolution>) -> CallCompleted {
        CallCompleted {
            case_id: case_id.into(),
            call_id: "K".into(),
            agent_id: "G".into(),
            outcome,
            resolution,
            topics: Vec::new(),
            requested_follow_up: None,
            cost_told: None,
            notes: None,
        }
    }

    /// `call.completed` for `case_id`.
    pub fn call(case_id: &str, outcome: CallOutcome, resolution: Option<Resolution>) -> Input {
        event(EventBody::CallCompleted(completed(case_id, outcome, resolution)))
    }
}
