//! The pure `decide`: routes an input to the subject and the case it concerns.
//!
//! `decide(snapshot, input, now, policy)` returns the next snapshot and the effects to perform,
//! or a `Refusal` that the wire layer turns into a 4xx. It reads no clock and does no I/O; the
//! shell commits its result in one write. Subject events go to `order` / `package`; a call, a
//! re-open or a case's timer goes to the case's playbook (`Case::visit`); the intents a playbook
//! leaves are carried out by its subject before the decision is complete.

use crate::domain::ctx::{Ctx, Intent, Pending, SmsCount, SmsLedger};
use crate::domain::effects::{Effect, TimerRef};
use crate::domain::events::{AppointmentEvent, CallCompleted, CaseEvent, CaseReopen, Event, EventBody, Input};
use crate::domain::ids::{SubjectId, TimerSubject};
use crate::domain::playbooks::{interactions, Playbook, Visitor};
use crate::domain::policy::Policy;
use crate::domain::records::case::{CaseCore, TimelineEntry, TimelineKind, TimerKind};
use crate::domain::records::order::Cancellation;
use crate::domain::refusal::{ErrorCode, Refusal};
use crate::domain::subjects::echo::{self, Held};
use crate::domain::subjects::snapshot::{HeldSms, Snapshot, SubjectKey};
use crate::domain::subjects::{order, package};
use chrono::{DateTime, Utc};

/// The outcome of a decision: the next snapshot, the effects, and the case the 202 names.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub snapshot: Snapshot,
    pub effects: Vec<Effect>,
    pub case_id: Option<String>,
    /// Subject ids (`appointment:<id>`, `expiry:<day>:<id>`, `coupon:<code>`) this snapshot newly answers for.
    pub index: Vec<String>,
    /// R9.2 the input reported a fact already held: accepted, written on the timeline, nothing else.
    pub echo: bool,
    /// SPEC §4 (v3) the per-number daily counts this decision writes with its commit.
    pub sms_counts: Vec<SmsCount>,
    /// SPEC §4 (v3) numbers whose daily count the decision needed and the ledger did not hold:
    /// the shell reads them and decides again.
    pub sms_unknown: Vec<String>,
}

/// Where an input's snapshot is found before it can be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The snapshot is named by the input itself.
    Key(SubjectKey),
    /// The snapshot is found through the subject index, by the appointment's id.
    Appointment(String),
}

impl Input {
    pub fn target(&self) -> Result<Target, Refusal> {
        let case_key = |case_id: &str| SubjectKey::of_case(case_id).map(Target::Key).ok_or_else(|| Refusal::unknown_case(case_id));
        let event = match self {
            Input::Timer(t) => return Ok(Target::Key(t.stream.clone())),
            Input::Event(e) => e,
        };
        Ok(match &event.body {
            EventBody::Appointment(AppointmentEvent::Booked(b)) => Target::Key(SubjectKey::Order(b.order_id.clone())),
            EventBody::Appointment(e) => Target::Appointment(e.appointment_id().to_string()),
            EventBody::Package(e) => Target::Key(SubjectKey::Package(e.package_id().to_string())),
            EventBody::Case(e) => case_key(e.case_id())?,
        })
    }
}

/// Decides what an input does to a snapshot (`None`: the snapshot does not exist yet), with the
/// daily SMS counts the store holds for the numbers it sends to (`ledger`, SPEC §4 v3).
pub fn decide(
    snapshot: Option<&Snapshot>,
    input: &Input,
    now: DateTime<Utc>,
    policy: &Policy,
    ledger: &SmsLedger,
) -> Result<Decision, Refusal> {
    let original = snapshot;
    let key = match (snapshot, input.target()?) {
        (Some(s), _) => s.key.clone(),
        (None, Target::Key(key)) => key,
        (None, Target::Appointment(_)) => return Err(unknown_input(input)),
    };
    let mut ctx = Ctx::new(now, key, policy, ledger);
    let mut echoed = false;
    let (mut snapshot, case_id) = match input {
        Input::Timer(timer) => {
            let mut snapshot = snapshot.cloned().ok_or_else(|| unknown_input(input))?;
            let case_id = on_timer(&mut snapshot, timer, &mut ctx);
            carry_out(&mut snapshot, &mut ctx)?;
            (snapshot, case_id)
        }
        Input::Event(event) => {
            ctx.occurred = event.occurred_at;
            match snapshot.map(|s| (s, echo::held(s, event))) {
                Some((_, Held::Contradicts(refusal))) => return Err(refusal),
                Some((held, Held::Echo { why })) => {
                    echoed = true;
                    let mut snapshot = held.clone();
                    let case_id = echo::record(&mut snapshot, event, &why, now);
                    (snapshot, case_id)
                }
                _ => {
                    let (mut next, case_id) = on_event(snapshot, event, &mut ctx)?;
                    carry_out(&mut next, &mut ctx)?;
                    stamp(original, &mut next, event);
                    (next, case_id)
                }
            }
        }
    };
    hold_sms(&mut snapshot, &mut ctx);
    snapshot.version += 1;
    for effect in &mut ctx.effects {
        // A case timer fires into the function that owns the case's playbook.
        if let Effect::PlaceTimer(spec) = effect {
            spec.playbook = spec.timer.case_id.as_deref().and_then(|id| snapshot.case(id)).map(|c| c.playbook());
        }
    }
    // A case's own version counts the decisions that changed it.
    for case in &mut snapshot.cases {
        match original.and_then(|o| o.case(&case.case_id)) {
            Some(old) if old == case => {}
            Some(old) => case.core.version = old.version + 1,
            None => case.core.version = 1,
        }
    }
    let (sms_counts, sms_unknown) = (ctx.sms_counts(), ctx.sms_unknown.iter().cloned().collect());
    let index = ctx.index.iter().map(SubjectId::to_string).collect();
    Ok(Decision { snapshot, effects: ctx.effects, case_id, index, echo: echoed, sms_counts, sms_unknown })
}

/// R9.7 (v3) every input's line on the timelines it reached carries its `occurred_at`; a case
/// the event changed without a line of its own gets one naming it.
fn stamp(original: Option<&Snapshot>, next: &mut Snapshot, event: &Event) {
    let mark = |lines: &mut Vec<TimelineEntry>, from: usize, name: bool| {
        let mut marked = false;
        for line in lines.iter_mut().skip(from).filter(|l| matches!(l.kind, TimelineKind::Event | TimelineKind::Call)) {
            line.occurred_at.get_or_insert(event.occurred_at);
            marked = true;
        }
        if name && !marked && lines.len() > from {
            let at = lines[from].at;
            let mut line = TimelineEntry::new(at, TimelineKind::Event, event.body.kind());
            line.occurred_at = Some(event.occurred_at);
            lines.insert(from, line);
        }
    };
    for case in &mut next.cases {
        let from = original.and_then(|o| o.case(&case.case_id)).map_or(0, |c| c.timeline.len());
        mark(&mut case.core.timeline, from, true);
    }
    let from = |s: &Snapshot| match &s.subject {
        crate::domain::records::Subject::Order(o) => o.timeline.len(),
        crate::domain::records::Subject::Package(p) => p.timeline.len(),
    };
    let before = original.map_or(0, from);
    match &mut next.subject {
        crate::domain::records::Subject::Order(o) => mark(&mut o.timeline, before, false),
        crate::domain::records::Subject::Package(p) => mark(&mut p.timeline, before, false),
    }
}

fn on_event(snapshot: Option<&Snapshot>, event: &Event, ctx: &mut Ctx) -> Result<order::Outcome, Refusal> {
    match &event.body {
        EventBody::Case(CaseEvent::Call(call)) => {
            let mut snapshot = snapshot.cloned().ok_or_else(|| Refusal::unknown_case(&call.case_id))?;
            on_call(&mut snapshot, call, ctx)?;
            Ok((snapshot, Some(call.case_id.clone())))
        }
        EventBody::Case(CaseEvent::Reopen(CaseReopen { case_id })) => {
            let mut snapshot = snapshot.cloned().ok_or_else(|| Refusal::unknown_case(case_id))?;
            let idx = snapshot.case_index(case_id).ok_or_else(|| Refusal::unknown_case(case_id))?;
            let Snapshot { subject, cases, .. } = &mut snapshot;
            cases[idx].visit(subject, OnReopen { ctx })?;
            // R9.2 (v3) a copy of this re-open is known by when it happened.
            cases[idx].core.reopened.push(ctx.occurred);
            Ok((snapshot, Some(case_id.clone())))
        }
        EventBody::Appointment(e) => order::on_event(snapshot, e, ctx),
        EventBody::Package(e) => package::on_event(snapshot, e, ctx),
    }
}

/// `call.completed`: recorded on the case, decided by its playbook, summarised (R8.3, R9.5).
/// R9.1 (v3) a late report (its call happened before a step that already counted its attempt
/// unreported, or it reached a case already resolved or closed) acts only when it resolves the
/// case; one that resolves nothing is recorded and sends nothing, not even the summary.
fn on_call(snapshot: &mut Snapshot, call: &CallCompleted, ctx: &mut Ctx) -> Result<(), Refusal> {
    let idx = snapshot.case_index(&call.case_id).ok_or_else(|| Refusal::unknown_case(&call.case_id))?;
    let Snapshot { subject, cases, .. } = snapshot;
    let case = &mut cases[idx];
    case.core.note(ctx.now, TimelineKind::Call, describe_call(call));
    let late = case.core.lapsed_since(ctx.occurred) || !case.ticket.is_open();
    case.core.record(&call.call_id, &call.agent_id, call.outcome, ctx.occurred);
    if case.visit(subject, OnCall { call, late, ctx })? {
        interactions::summarise(&mut case.core, call, ctx);
    }
    Ok(())
}

struct OnCall<'i, 'c, 'p> {
    call: &'i CallCompleted,
    late: bool,
    ctx: &'c mut Ctx<'p>,
}

impl Visitor for OnCall<'_, '_, '_> {
    /// Whether the call acted (and is summarised).
    type Out = Result<bool, Refusal>;
    fn visit<P: Playbook>(self, case: &mut CaseCore, flow: &mut P::Flow, subject: &P::Subject) -> Self::Out {
        // A resolution kind the playbook has no step for is refused before anything changes.
        if let Some(message) = self.call.resolution.as_ref().and_then(P::refuses) {
            return Err(Refusal::conflict(ErrorCode::ResolutionNotApplicable, message, Some("data.resolution.kind")));
        }
        if self.late && !P::resolves(case, flow, self.call) {
            P::late_report(case, flow, self.call, self.ctx);
            self.ctx.decided(case, "R9.1 a late report: recorded; it resolves nothing, so nothing is sent");
            return Ok(false);
        }
        P::on_call(case, flow, self.call, subject, self.ctx)?;
        Ok(true)
    }
}

struct OnReopen<'c, 'p> {
    ctx: &'c mut Ctx<'p>,
}

impl Visitor for OnReopen<'_, '_> {
    type Out = Result<(), Refusal>;
    fn visit<P: Playbook>(self, case: &mut CaseCore, flow: &mut P::Flow, subject: &P::Subject) -> Self::Out {
        P::on_reopen(case, flow, subject, self.ctx)
    }
}

struct OnTimer<'c, 'p> {
    kind: TimerKind,
    ctx: &'c mut Ctx<'p>,
}

impl Visitor for OnTimer<'_, '_> {
    type Out = ();
    fn visit<P: Playbook>(self, case: &mut CaseCore, flow: &mut P::Flow, subject: &P::Subject) {
        P::on_timer(case, flow, self.kind, subject, self.ctx)
    }
}

/// A fired timer: a subject timer goes to its subject, a case timer to the case's playbook. A
/// timer for a step that has been left is a no-op (R0.3: late stale timers do nothing).
fn on_timer(snapshot: &mut Snapshot, timer: &TimerRef, ctx: &mut Ctx) -> Option<String> {
    let Some(case_id) = &timer.case_id else {
        let pos = snapshot.timers.iter().position(|t| t.timer.kind == timer.kind && t.timer.step == timer.step)?;
        let fired = snapshot.timers.remove(pos);
        if fired.timer.kind == TimerKind::HeldSms {
            return release_sms(snapshot, fired.timer.step, ctx);
        }
        return match snapshot.key {
            SubjectKey::Order(_) => order::on_subject_timer(snapshot, &fired, ctx),
            SubjectKey::Package(_) => package::on_subject_timer(snapshot, &fired, ctx),
        };
    };
    let idx = snapshot.case_index(case_id)?;
    let Snapshot { subject, cases, .. } = snapshot;
    let case = &mut cases[idx];
    let Some(pos) = case.timers.iter().position(|t| t.kind == timer.kind && t.step == timer.step) else {
        return Some(case_id.clone());
    };
    case.core.timers.remove(pos);
    case.core.note(ctx.now, TimelineKind::Timer, format!("{} fired", timer.kind));
    case.visit(subject, OnTimer { kind: timer.kind, ctx });
    Some(case_id.clone())
}

/// SPEC §4 (v2) promotional SMS held for their allowed time wait on the snapshot, each with a
/// subject timer; what the protection did to an SMS about no case goes on the subject's timeline.
fn hold_sms(snapshot: &mut Snapshot, ctx: &mut Ctx) {
    for (sms, until) in std::mem::take(&mut ctx.held) {
        ctx.place_subject(&mut snapshot.timers, TimerSubject::HeldSms, TimerKind::HeldSms, until);
        snapshot.held.push(HeldSms { step: snapshot.timers.timer_seq, sms });
    }
    snapshot.subject.timeline_mut().append(&mut ctx.subject_lines);
}

/// A held SMS's time came: it goes out now, unless the protection stops it after all.
fn release_sms(snapshot: &mut Snapshot, step: u32, ctx: &mut Ctx) -> Option<String> {
    let pos = snapshot.held.iter().position(|h| h.step == step)?;
    let HeldSms { sms, .. } = snapshot.held.remove(pos);
    let case_id = sms.case_id.clone();
    let case = case_id.as_deref().and_then(|id| snapshot.cases.iter_mut().find(|c| c.case_id == id)).map(|c| &mut c.core);
    ctx.send(sms, case);
    case_id
}

/// Carries out the intents the playbooks left, each once, its effects at the place it was asked
/// for; carrying one out may tell cases that leave intents of their own.
fn carry_out(snapshot: &mut Snapshot, ctx: &mut Ctx) -> Result<(), Refusal> {
    while !ctx.intents.is_empty() {
        let intents: Vec<Pending> = std::mem::take(&mut ctx.intents);
        let mut shift = 0;
        for Pending { case_id, intent, at_effect } in intents {
            let tail = ctx.effects.split_off((at_effect + shift).min(ctx.effects.len()));
            let before = ctx.effects.len();
            match intent {
                Intent::CancelAppointment { appointment_id, by, reason, wants_follow_up } => {
                    let how = Cancellation { by, reason, wants_follow_up, availability: None };
                    order::cancel(snapshot, &appointment_id, &how, Some(&case_id), ctx)?;
                }
                Intent::MoveAppointment { appointment_id, window_start, window_end, requested_by } => {
                    order::move_appointment(snapshot, &appointment_id, (window_start, window_end), &requested_by, &case_id, ctx)?;
                }
                Intent::CancelPackage { reason } => package::cancel_by_engine(snapshot, reason, &case_id, ctx),
            }
            shift += ctx.effects.len() - before;
            ctx.effects.extend(tail);
        }
    }
    Ok(())
}

/// The 404 for an input whose snapshot does not exist.
fn unknown_input(input: &Input) -> Refusal {
    match input {
        Input::Event(e) => match &e.body {
            EventBody::Appointment(a) => order::unknown_appointment(a.appointment_id()),
            EventBody::Package(p) => package::unknown_package(p.package_id()),
            EventBody::Case(c) => Refusal::unknown_case(c.case_id()),
        },
        Input::Timer(t) => Refusal::not_found(ErrorCode::UnknownSubject, format!("no {}", t.stream), "data"),
    }
}

fn describe_call(call: &CallCompleted) -> String {
    let mut s = format!("call {} by agent {}: {}", call.call_id, call.agent_id, call.outcome);
    if let Some(r) = &call.resolution {
        s.push_str(&format!(", resolution {}", r.kind()));
    }
    if let Some(n) = &call.notes {
        s.push_str(&format!(" — {n}"));
    }
    s
}
