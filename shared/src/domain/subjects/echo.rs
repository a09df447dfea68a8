//! R9.2 echoes: an event that reports what the records already hold changes and sends nothing.
//!
//! Each event type names the fact it reports (`events::Fact`); this module asks the order or
//! the package whether it already holds that fact. A fact held is an echo: the event is
//! accepted (202 with `"echo": true`), written on the subject's timeline and on the cases it
//! concerns, and nothing else happens. A booking that differs from the one held contradicts it
//! and stays a 422. Anything else is new and goes to its subject.
//!
//! Decisions the SPEC leaves open, settled here:
//! - A booking is held by the digest of its data as first accepted (`events::digest`), so a
//!   copy sent later, after the appointment was moved or assigned, is still that booking.
//! - A request, a window change or a re-open can honestly happen twice, so a copy of one is
//!   known by its `occurred_at` (a re-send keeps it; a new request happens later). A window
//!   change to the window the appointment or visit already has is an echo whenever it happened
//!   (the dashboard reporting the engine's own `update_appointment`, R1.5).
//! - `appointment.assigned` to the technician already assigned is an echo.
//! - `package_visit.cancelled` of a visit already cancelled, or of a package cancelled (the
//!   dashboard reporting `cancel_package_visits`, R4.4), is an echo; `package.cancelled` of a
//!   package already cancelled or deactivated (R5.4) is one too.
//! - The 202 of an echo names the case the fact concerns: the reported call's or re-opened
//!   case; for an appointment its cancellation follow-up, else its newest case; for a package
//!   its newest case; `null` when there is none.

use crate::domain::events::{Event, Fact};
use crate::domain::playbooks::{Case, PlaybookName};
use crate::domain::records::case::{TicketStatus, TimelineEntry, TimelineKind};
use crate::domain::records::order::{AppointmentStatus, Order};
use crate::domain::records::package::{Package, PackageStatus, VisitChange};
use crate::domain::refusal::{ErrorCode, Refusal, Rule};
use crate::domain::subjects::snapshot::{Snapshot, Subject};
use chrono::{DateTime, Utc};

/// What the records say of an event's fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// Not held yet: the event goes to its subject.
    New,
    /// Already held: `why` goes on the timeline.
    Echo { why: String },
    /// The event contradicts what is held.
    Contradicts(Refusal),
}

/// Whether `snapshot` already holds the fact `event` reports.
pub fn held(snapshot: &Snapshot, event: &Event) -> Held {
    let echo = |why: String| Held::Echo { why };
    let at = event.occurred_at;
    match (&snapshot.subject, event.body.fact()) {
        (_, Fact::Call { case_id, call_id }) => {
            match snapshot.case(case_id).and_then(|c| c.attempts.iter().find(|a| a.call_id.as_deref() == Some(call_id))) {
                Some(first) => echo(format!("call {call_id} was already reported ({}); the first report counts", first.outcome)),
                None => Held::New,
            }
        }
        (_, Fact::Reopened { case_id }) => match snapshot.case(case_id) {
            Some(c) if c.reopened.contains(&at) => echo(format!("case.reopen of {case_id} that happened at {at} was already taken")),
            _ => Held::New,
        },
        (Subject::Order(order), fact) => order_holds(order, fact, at),
        (Subject::Package(pkg), fact) => package_holds(pkg, fact, at),
    }
}

fn order_holds(order: &Order, fact: Fact, at: DateTime<Utc>) -> Held {
    let echo = |why: String| Held::Echo { why };
    let appointment_id = match &fact {
        Fact::AppointmentBooked { appointment_id, .. }
        | Fact::Assigned { appointment_id, .. }
        | Fact::RescheduleRequested { appointment_id }
        | Fact::Rescheduled { appointment_id, .. }
        | Fact::AppointmentCompleted { appointment_id }
        | Fact::AppointmentCancelled { appointment_id } => *appointment_id,
        _ => return Held::New,
    };
    let Some(a) = order.appointment(appointment_id) else { return Held::New };
    match fact {
        Fact::AppointmentBooked { digest, .. } if a.booking.as_deref() == Some(digest.as_str()) => {
            echo(format!("appointment.booked of {appointment_id} again, as booked"))
        }
        Fact::AppointmentBooked { .. } => Held::Contradicts(Refusal::conflict_rule(
            ErrorCode::AlreadyBooked,
            Rule::R9_2,
            format!(
                "appointment {appointment_id:?} is already booked with other details; send appointment.rescheduled or appointment.assigned to change it"
            ),
            Some("data.appointment_id"),
        )),
        Fact::Assigned { technician_id, .. } if a.technician_id.as_deref() == Some(technician_id) => {
            echo(format!("appointment {appointment_id} already has technician {technician_id}"))
        }
        Fact::RescheduleRequested { .. } if a.requests.contains(&at) => {
            echo(format!("the reschedule request of {appointment_id} that happened at {at} was already taken"))
        }
        Fact::Rescheduled { window, .. }
            if (a.window_start, a.window_end) == window
                || a.reschedule_log.iter().any(|r| r.occurred_at == Some(at) && r.to_start == window.0) =>
        {
            echo(format!("appointment {appointment_id} is already in that window, or was moved to it by this report"))
        }
        Fact::AppointmentCompleted { .. } if a.status == AppointmentStatus::Completed => {
            echo(format!("appointment {appointment_id} is already completed"))
        }
        Fact::AppointmentCancelled { .. } if a.status == AppointmentStatus::Cancelled => {
            echo(format!("appointment {appointment_id} is already cancelled"))
        }
        _ => Held::New,
    }
}

fn package_holds(pkg: &Package, fact: Fact, at: DateTime<Utc>) -> Held {
    let echo = |why: String| Held::Echo { why };
    let id = &pkg.package_id;
    match fact {
        Fact::PackageBooked { digest, .. } if pkg.booking.as_deref() == Some(digest.as_str()) => {
            echo(format!("package.booked of {id} again, as booked"))
        }
        Fact::PackageBooked { .. } => Held::Contradicts(Refusal::conflict_rule(
            ErrorCode::AlreadyBooked,
            Rule::R9_2,
            format!("package {id:?} is already booked with other details; send package_visit.rescheduled or package.paid to change it"),
            Some("data.package_id"),
        )),
        Fact::PackagePaid { .. } if pkg.paid => echo(format!("package {id} is already paid")),
        Fact::PackageCancelled { .. } if pkg.status != PackageStatus::Active => echo(format!("package {id} is already {}", pkg.status)),
        Fact::VisitCancelled { visit_id, .. } => match pkg.visit(visit_id) {
            Some(v) if v.cancelled || v.changes.contains(&VisitChange { occurred_at: at, window_start: None }) => {
                echo(format!("visit {visit_id} is already cancelled"))
            }
            Some(_) if pkg.status == PackageStatus::Cancelled => echo(format!("visit {visit_id} was cancelled with package {id}")),
            _ => Held::New,
        },
        Fact::VisitCompleted { visit_id, .. } => match pkg.visit(visit_id) {
            Some(v) if v.state == crate::domain::records::package::VisitState::Completed => {
                echo(format!("visit {visit_id} is already completed"))
            }
            _ => Held::New,
        },
        Fact::VisitRescheduled { visit_id, window_start, .. } => match pkg.visit(visit_id) {
            Some(v)
                if (!v.cancelled && v.window_start == window_start)
                    || v.changes.contains(&VisitChange { occurred_at: at, window_start: Some(window_start) }) =>
            {
                echo(format!("visit {visit_id} is already at that time, or was moved by this report"))
            }
            _ => Held::New,
        },
        _ => Held::New,
    }
}

/// Writes an echo on the subject's timeline and on the cases it concerns; returns the case the
/// 202 names (see the module header).
pub fn record(snapshot: &mut Snapshot, event: &Event, why: &str, now: DateTime<Utc>) -> Option<String> {
    let reason = event.body.reason().map(|r| format!(" ({r})")).unwrap_or_default();
    let text = format!("R9.2 echo: {}{reason}: {why}; nothing changes", event.body.kind());
    let mut line = TimelineEntry::new(now, TimelineKind::Event, text);
    line.occurred_at = Some(event.occurred_at);
    let fact = event.body.fact();
    let about = |c: &Case| match &fact {
        Fact::Call { case_id, .. } | Fact::Reopened { case_id } => c.case_id == *case_id,
        Fact::AppointmentBooked { appointment_id, .. }
        | Fact::Assigned { appointment_id, .. }
        | Fact::RescheduleRequested { appointment_id }
        | Fact::Rescheduled { appointment_id, .. }
        | Fact::AppointmentCompleted { appointment_id }
        | Fact::AppointmentCancelled { appointment_id } => c.appointment_id.as_deref() == Some(*appointment_id),
        _ => true,
    };
    let mut named: Option<(bool, String)> = None;
    for case in snapshot.cases.iter_mut().filter(|c| about(c)) {
        case.timeline.push(line.clone());
        // The cancellation follow-up first (it is what a cancellation opened), else the newest.
        let follow_up = case.playbook() == PlaybookName::CancellationFollowUp && case.ticket.status != TicketStatus::WaitingOnThirdParty;
        if named.as_ref().is_none_or(|(f, _)| follow_up || !f) {
            named = Some((follow_up, case.case_id.clone()));
        }
    }
    match &mut snapshot.subject {
        Subject::Order(o) => o.timeline.push(line),
        Subject::Package(p) => p.timeline.push(line),
    }
    named.map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    //! R9.2 (v3): the same fact under a new delivery id is an echo; a contradiction stays a 422.
    use crate::domain::testkit::*;

    #[test]
    fn a_booking_sent_again_is_an_echo_and_one_with_another_window_contradicts_it() {
        let mut w = World::new();
        let at = "2026-03-02T10:00:00+02:00";
        w.when(booked("A1", "2026-03-10T10:00:00+02:00", None), at).unwrap();
        w.when(rescheduled("A1", "2026-03-11T10:00:00+02:00"), at).unwrap();
        let before = w.order().appointments.len();
        w.when(booked("A1", "2026-03-10T10:00:00+02:00", None), "2026-03-02T11:00:00+02:00").unwrap();
        assert!(w.echo, "the original booking, re-sent after a reschedule");
        assert!(w.effects.is_empty(), "an echo sends nothing");
        assert_eq!(w.order().appointments.len(), before);
        assert_eq!(w.appointment("A1").window_start, t("2026-03-11T10:00:00+02:00"), "the reschedule stands");
        let e = w.when(booked("A1", "2026-03-12T10:00:00+02:00", None), at).unwrap_err();
        assert_eq!((e.kind, e.rule), (RefusalKind::Rule, Some(Rule::R9_2)));
    }

    #[test]
    fn the_same_call_id_again_is_the_same_attempt() {
        let mut w = World::new();
        w.when(booked("A1", "2026-03-10T10:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00").unwrap();
        let id = w.when(cancelled("A1", CancelledBy::Customer, true), "2026-03-02T10:00:00+02:00").unwrap().unwrap();
        assert_eq!(w.fire_next(&id).0, TimerKind::CallAttempt);
        let first = completed_call(&id, CallOutcome::NoAnswer, None);
        w.when(calls(first.clone()), "2026-03-03T09:10:00+02:00").unwrap();
        assert!(!w.echo);
        // The phone system re-sends it after a timeout, then once more with another outcome.
        for outcome in [CallOutcome::NoAnswer, CallOutcome::Busy] {
            let copy = w
                .when_late(calls(CallCompleted { outcome, ..first.clone() }), "2026-03-03T09:10:00+02:00", "2026-03-03T09:20:00+02:00")
                .unwrap();
            assert_eq!((copy.as_deref(), w.echo), (Some(id.as_str()), true));
            assert!(w.effects.is_empty(), "no second attempt, no summary");
        }
        assert_eq!(w.case(&id).attempts.len(), 1, "R2.6 needs two attempts, not one call twice");
        assert_eq!(w.case(&id).ticket.status, TicketStatus::Pending);
    }

    #[test]
    fn a_state_already_reached_is_an_echo() {
        let mut w = World::new();
        let at = "2026-03-02T10:00:00+02:00";
        w.when(booked("A1", "2026-03-05T10:00:00+02:00", Some("T1")), at).unwrap();
        w.when(assigned("A1"), at).unwrap();
        assert!(w.echo, "the same technician");
        w.when(completed("A1", CompletionOutcome::Done), "2026-03-05T13:00:00+02:00").unwrap();
        assert!(!w.echo);
        w.when(completed("A1", CompletionOutcome::Done), "2026-03-05T14:00:00+02:00").unwrap();
        assert!(w.echo && w.effects.is_empty());
        w.when(assigned("A1"), "2026-03-05T14:00:00+02:00").unwrap();
        assert!(w.echo, "a late copy of the assignment of a completed visit");
    }
}
