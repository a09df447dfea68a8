//! The order subject: its appointments, what each appointment event does to them, which cases it
//! opens or tells, the reschedule policy (R7.1–R7.3, seed 002) with the late change of R3.8, and
//! the intents of the appointment playbooks, carried out here once.
//!
//! Decisions the SPEC leaves open, settled here:
//! - The 202 names the case the event concerns: the watch case when `appointment.booked` opens
//!   one at once (inside the last 3 h, R0.1), the watch case an assignment ends, the outreach case
//!   of a reschedule request (R1.1), the follow-up a cancellation opens (R2.1), and for a
//!   reschedule an open case of the appointment (watch or outreach) when there is one.
//!   `appointment.completed` names none: its case opens an hour after the completion happened
//!   (R3.1), and names it only when that hour had already passed on arrival (R9.7).
//! - R7.1 "< 24 h before the original start" is measured from the moment the engine learns of the
//!   change to the window start before it. The fee applies whoever asked (`requested_by` is
//!   recorded); it is written on the appointment's `reschedule_log` and on the timeline of every
//!   open case of the appointment. `fee_amount` 0 records "inform only". No command charges it.
//! - R7.2 counts every accepted window change of one appointment (events and R1.5 rebookings);
//!   the change past `max_reschedules` is refused with 422 citing R7.2 and nothing is stored.
//!   An `appointment.rescheduled` to the window the appointment already has (the dashboard
//!   echoing an update the engine ordered, R1.5) is recorded and changes nothing: no count, no SMS.
//! - R7.3 RESCHEDULE_CONFIRMATION carries the new local date (`YYYY-MM-DD`) and time (`HH:MM`) of
//!   the business calendar, in the customer's language; it is sent on the case that made the
//!   change, else on the appointment's open watch case, else as a subject SMS (`case_id` null).
//! - R3.8 applies to any visit (the SPEC says "a visit time change"): a change arriving within
//!   `late_change_minutes` (inclusive) of the current start emits `cancel_appointment` (by ops,
//!   reason `late_time_change`) and `create_visit` (with `replaces_appointment_id`) instead of
//!   moving the record; the old appointment is marked cancelled (the dashboard books the new
//!   visit, which is watched afresh), every open case of the order is closed with result
//!   `visit_replaced`, no cancellation follow-up opens, and R7.1–R7.3 still apply.
//! - Every cancellation of an appointment, from the dashboard or asked by a playbook (R0.2, R1.4,
//!   R1.6), goes through `cancel`: the appointment's open watch and outreach cases close with
//!   result `cancelled`, R2.3 decides the coupon and R2.1 whether a follow-up opens.
//! - Assignment and completion end the appointment's open watch and outreach cases; completion
//!   with outcome inspection / incomplete / painting places the subject timer that opens
//!   `second_visit_follow_up` (R3.1).

use crate::domain::commands::{CancelAppointment, CommandBody, CreateVisit, Window};
use crate::domain::ctx::Ctx;
use crate::domain::events::{
    AppointmentAssigned, AppointmentBooked, AppointmentCancelled, AppointmentCompleted, AppointmentEvent, AppointmentRescheduled,
    CancelledBy, CompletionOutcome, RescheduleRequested,
};
use crate::domain::ids::{SubjectId, TimerSubject};
use crate::domain::playbooks::appointment_watch::{self, AppointmentWatch};
use crate::domain::playbooks::cancellation_follow_up::{self, CancellationFollowUp, Opening as FollowUpOpening};
use crate::domain::playbooks::reschedule_outreach::{Request, RescheduleOutreach};
use crate::domain::playbooks::second_visit_follow_up::SecondVisitFollowUp;
use crate::domain::playbooks::{Case, PlaybookName, SubjectEvent};
use crate::domain::records::case::{TicketResult, TimelineEntry, TimelineKind, TimerKind};
use crate::domain::records::order::{Appointment, AppointmentStatus, Cancellation, Completion, Order, Reschedule};
use crate::domain::refusal::{ErrorCode, Refusal, Rule};
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::subjects::snapshot::{Snapshot, SubjectTimer};
use chrono::{DateTime, Duration, Utc};

/// What an event decision produced: the next snapshot and the case the 202 names.
pub type Outcome = (Snapshot, Option<String>);

/// An SMS about the appointment rather than a case (`case_id` null); a template it cannot render
/// is written on the order's timeline.
fn subject_sms(snapshot: &mut Snapshot, appointment: &Appointment, template: TemplateId, vars: &SmsVars, ctx: &mut Ctx) {
    if let Err(e) = ctx.subject_sms(&appointment.customer, template, vars) {
        order_mut(snapshot).timeline.push(TimelineEntry::new(ctx.now, TimelineKind::SmsFailed, e.to_string()));
    }
}

/// The order of an order snapshot: `on_event` took only an order snapshot, and only order
/// playbooks leave the intents carried out here.
pub(crate) fn order_mut(snapshot: &mut Snapshot) -> &mut Order {
    snapshot.as_order_mut().expect("an appointment input locates an order snapshot")
}

fn order(snapshot: &Snapshot) -> &Order {
    snapshot.as_order().expect("an appointment input always locates an order snapshot")
}

pub(crate) fn unknown_appointment(appointment_id: &str) -> Refusal {
    Refusal::not_found(ErrorCode::UnknownAppointment, format!("no appointment {appointment_id:?}"), "data.appointment_id")
}

/// The appointment, still booked.
fn booked_appointment<'s>(snapshot: &'s mut Snapshot, appointment_id: &str) -> Result<&'s mut Appointment, Refusal> {
    let appointment = order_mut(snapshot).appointment_mut(appointment_id).ok_or_else(|| unknown_appointment(appointment_id))?;
    if !appointment.is_booked() {
        return Err(Refusal::conflict(
            ErrorCode::AppointmentClosed,
            format!("appointment {appointment_id:?} is already {}", appointment.status),
            Some("data.appointment_id"),
        ));
    }
    Ok(appointment)
}

/// What an appointment event does to its order.
pub fn on_event(snapshot: Option<&Snapshot>, event: &AppointmentEvent, ctx: &mut Ctx) -> Result<Outcome, Refusal> {
    let mut snapshot = match (snapshot, event) {
        (Some(s), _) if s.as_order().is_some() => s.clone(),
        (None, AppointmentEvent::Booked(booking)) => Snapshot::order(&booking.order_id),
        _ => return Err(unknown_appointment(event.appointment_id())),
    };
    let s = &mut snapshot;
    let case_id = match event {
        AppointmentEvent::Booked(booking) => booked(s, booking, ctx)?,
        AppointmentEvent::Cancelled(AppointmentCancelled { appointment_id, cancelled_by, reason, wants_follow_up, availability }) => {
            let cancellation =
                Cancellation { by: *cancelled_by, reason: reason.clone(), wants_follow_up: *wants_follow_up, availability: *availability };
            cancel(s, appointment_id, &cancellation, None, ctx)?
        }
        AppointmentEvent::Assigned(AppointmentAssigned { appointment_id, technician_id }) => {
            booked_appointment(s, appointment_id)?.technician_id = Some(technician_id.clone());
            // R0.3 an assignment in time ends the watch.
            unwatch(s, appointment_id, ctx);
            let watch = open_case(s, appointment_id, PlaybookName::AppointmentWatch);
            s.tell(|c| is_open_about(c, appointment_id), &SubjectEvent::Assigned, ctx);
            watch
        }
        AppointmentEvent::RescheduleRequested(RescheduleRequested { appointment_id, reason, stf_link }) => {
            booked_appointment(s, appointment_id)?.requests.push(ctx.occurred);
            // A second request while the outreach is open keeps that case (it takes the new link).
            if let Some(open) = open_case(s, appointment_id, PlaybookName::RescheduleOutreach) {
                let again = SubjectEvent::RequestedAgain { reason: reason.clone(), stf_link: stf_link.clone() };
                s.tell(|c| c.case_id == open, &again, ctx);
                return Ok((snapshot, Some(open)));
            }
            let request = Request { appointment_id: appointment_id.clone(), reason: reason.clone(), stf_link: stf_link.clone() };
            Some(s.open::<RescheduleOutreach>(&request, ctx))
        }
        AppointmentEvent::Rescheduled(AppointmentRescheduled { appointment_id, window_start, window_end, requested_by }) => {
            reschedule(s, appointment_id, (*window_start, *window_end), requested_by, None, ctx)?;
            s.cases.iter().find(|c| is_open_about(c, appointment_id)).map(|c| c.case_id.clone())
        }
        AppointmentEvent::Completed(AppointmentCompleted { appointment_id, outcome, needs_material, material_days, painting }) => {
            let appointment = booked_appointment(s, appointment_id)?;
            appointment.status = AppointmentStatus::Completed;
            appointment.completion = Some(Completion {
                at: ctx.occurred,
                outcome: *outcome,
                needs_material: *needs_material,
                material_days: *material_days,
                painting: painting.clone(),
            });
            ended(s, appointment_id, TicketResult::Completed, ctx);
            // R3.1 operations hand the ticket over one hour after completion (R9.7: after it
            // happened; an hour already past when it arrives opens the case at once).
            let follows = matches!(outcome, CompletionOutcome::Inspection | CompletionOutcome::Incomplete | CompletionOutcome::Painting);
            let due = ctx.occurred + Duration::minutes(ctx.policy.second_visit.open_after_minutes as i64);
            match (follows, due <= ctx.now) {
                (true, true) => open_second_visit(s, appointment_id, ctx),
                (true, false) => {
                    ctx.place_subject(&mut s.timers, TimerSubject::Appointment(appointment_id.clone()), TimerKind::OpenSecondVisit, due);
                    None
                }
                (false, _) => None,
            }
        }
    };
    Ok((snapshot, case_id))
}

/// `appointment.booked`: the appointment joins its order, and is watched (R0.1). Returns the
/// watch case when one opens at once.
fn booked(snapshot: &mut Snapshot, booking: &AppointmentBooked, ctx: &mut Ctx) -> Result<Option<String>, Refusal> {
    let appointment_id = &booking.appointment_id;
    let order = order_mut(snapshot);
    if order.appointment(appointment_id).is_some() {
        return Err(Refusal::conflict(
            ErrorCode::AlreadyBooked,
            format!("appointment {appointment_id:?} is already booked; send appointment.rescheduled or appointment.assigned to change it"),
            Some("data.appointment_id"),
        ));
    }
    order.appointments.push(Appointment::booked(booking, ctx.now));
    ctx.index.push(SubjectId::Appointment(appointment_id.clone()));
    // R3.5 (v2) a rebooked second visit is done once a later visit of the order is booked.
    let event = SubjectEvent::VisitBooked { appointment_id: appointment_id.clone() };
    snapshot.tell(|c| c.ticket.is_open(), &event, ctx);
    // R0.1 every booked appointment without a technician is watched.
    Ok(watch(snapshot, appointment_id, ctx))
}

/// A timer placed on an appointment rather than a case.
pub fn on_subject_timer(snapshot: &mut Snapshot, timer: &SubjectTimer, ctx: &mut Ctx) -> Option<String> {
    let TimerSubject::Appointment(appointment_id) = timer.subject_id.clone() else { return None };
    match timer.timer.kind {
        // R0.1 T-3h: the watch case opens if the appointment is still unassigned.
        TimerKind::StatusUpdate => {
            let a = order(snapshot).appointment(&appointment_id)?;
            if !a.is_booked() || a.technician_id.is_some() || open_case(snapshot, &appointment_id, PlaybookName::AppointmentWatch).is_some()
            {
                return None;
            }
            Some(snapshot.open::<AppointmentWatch>(&appointment_id, ctx))
        }
        TimerKind::OpenSecondVisit => open_second_visit(snapshot, &appointment_id, ctx),
        _ => None,
    }
}

fn is_open_about(case: &Case, appointment_id: &str) -> bool {
    case.appointment_id.as_deref() == Some(appointment_id) && case.ticket.is_open()
}

/// R3.1 the second-visit follow-up of a completed appointment opens.
fn open_second_visit(snapshot: &mut Snapshot, appointment_id: &str, ctx: &mut Ctx) -> Option<String> {
    let completed = order(snapshot).appointment(appointment_id).is_some_and(|a| a.completion.is_some());
    completed.then(|| snapshot.open::<SecondVisitFollowUp>(&appointment_id.to_string(), ctx))
}

/// The open case of this playbook about the appointment, if any.
pub(crate) fn open_case(snapshot: &Snapshot, appointment_id: &str, playbook: PlaybookName) -> Option<String> {
    snapshot.cases.iter().find(|c| c.playbook() == playbook && is_open_about(c, appointment_id)).map(|c| c.case_id.clone())
}

/// R0.1 watches an unassigned appointment whose window is still ahead: a subject timer at T-3h,
/// or the case at once when T-3h has passed. Returns the watch case when one is open.
fn watch(snapshot: &mut Snapshot, appointment_id: &str, ctx: &mut Ctx) -> Option<String> {
    unwatch(snapshot, appointment_id, ctx);
    let a = order(snapshot).appointment(appointment_id)?;
    if !a.is_booked() || a.technician_id.is_some() || a.window_start <= ctx.now {
        return None;
    }
    if let Some(id) = open_case(snapshot, appointment_id, PlaybookName::AppointmentWatch) {
        return Some(id);
    }
    let status_at = appointment_watch::status_moment(a.window_start, ctx.policy);
    if ctx.now < status_at {
        ctx.place_subject(&mut snapshot.timers, TimerSubject::Appointment(appointment_id.to_string()), TimerKind::StatusUpdate, status_at);
        return None;
    }
    Some(snapshot.open::<AppointmentWatch>(&appointment_id.to_string(), ctx))
}

/// Stops watching (R0.3): the pending T-3h subject timer is cancelled.
fn unwatch(snapshot: &mut Snapshot, appointment_id: &str, ctx: &mut Ctx) {
    ctx.cancel_subject(&mut snapshot.timers, &TimerSubject::Appointment(appointment_id.to_string()), &[TimerKind::StatusUpdate]);
}

/// The appointment was cancelled or completed: its watch stops and its open cases are told.
fn ended(snapshot: &mut Snapshot, appointment_id: &str, result: TicketResult, ctx: &mut Ctx) {
    unwatch(snapshot, appointment_id, ctx);
    snapshot.tell(|c| is_open_about(c, appointment_id), &SubjectEvent::AppointmentEnded(result), ctx);
}

/// Cancels a booked appointment, from the dashboard or asked by the case `origin` (which then
/// carries the `cancel_appointment` command): its open cases close, R2.3 decides the coupon and
/// R2.1 whether a cancellation follow-up opens. Returns the follow-up when one opens.
pub(crate) fn cancel(
    snapshot: &mut Snapshot,
    appointment_id: &str,
    how: &Cancellation,
    origin: Option<&str>,
    ctx: &mut Ctx,
) -> Result<Option<String>, Refusal> {
    let appointment = booked_appointment(snapshot, appointment_id)?;
    appointment.status = AppointmentStatus::Cancelled;
    let appointment = appointment.clone();
    if let Some(case) = origin.and_then(|id| snapshot.cases.iter_mut().find(|c| c.case_id == id)) {
        let body = CommandBody::CancelAppointment(CancelAppointment {
            appointment_id: appointment.appointment_id.clone(),
            order_id: appointment.order_id.clone(),
            by: how.by,
            reason: how.reason.to_string(),
            window_start: None,
        });
        ctx.command(&mut case.core, body);
    }
    ended(snapshot, appointment_id, TicketResult::Cancelled, ctx);

    // R2.3 (v2) every customer or ops cancellation of an appointment without a discount earns
    // one coupon, whether or not a follow-up opens; the index keeps its code to this order.
    let coupon = (cancellation_follow_up::earns_coupon(&appointment, how.by) && appointment.coupon.is_none())
        .then(|| cancellation_follow_up::coupon(&appointment, how.availability, ctx));
    if let Some(c) = &coupon {
        ctx.index.push(SubjectId::Coupon(c.code.clone()));
        order_mut(snapshot).appointment_mut(appointment_id).expect("cancelled above").coupon = Some(c.clone());
    }

    // R2.1 the follow-up opens and makes the offer on its case.
    if cancellation_follow_up::qualifies(&appointment, how.by, how.wants_follow_up) {
        let opening = FollowUpOpening { appointment: appointment.clone(), cancellation: how.clone(), coupon: coupon.clone() };
        let id = snapshot.open::<CancellationFollowUp>(&opening, ctx);
        // R2.2 the order's other open follow-up is a duplicate ticket.
        let older = |c: &Case| c.case_id != id && c.playbook() == PlaybookName::CancellationFollowUp && c.ticket.is_open();
        snapshot.tell(older, &SubjectEvent::Superseded { by: id.clone() }, ctx);
        if let Some(case) = origin.and_then(|o| snapshot.cases.iter_mut().find(|c| c.case_id == o)) {
            ctx.decided(&mut case.core, format!("R2.1 cancellation follow-up {id} opened"));
        }
        return Ok(Some(id));
    }
    // Otherwise the offer comes from the case that cancelled it, or from the order itself.
    if let Some(coupon) = &coupon {
        match origin.and_then(|o| snapshot.cases.iter_mut().find(|c| c.case_id == o)) {
            Some(case) => cancellation_follow_up::offer(&mut case.core, coupon, &appointment, ctx),
            None => {
                let (issue, vars) = cancellation_follow_up::offer_of(coupon, &appointment);
                ctx.subject_command(issue);
                subject_sms(snapshot, &appointment, TemplateId::DiscountOffer, &vars, ctx);
            }
        }
    }
    Ok(None)
}

/// How a window change was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The appointment already had this window: nothing to do.
    Same,
    /// The record moved to the new window (R7).
    Moved,
    /// R3.8 the visit was cancelled and a new one created.
    Replaced,
}

/// R1.5 a case rebooked the appointment: the change goes through the reschedule policy, and the
/// dashboard is told to update the appointment unless R3.8 replaced the visit.
pub(crate) fn move_appointment(
    snapshot: &mut Snapshot,
    appointment_id: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    requested_by: &str,
    origin: &str,
    ctx: &mut Ctx,
) -> Result<(), Refusal> {
    let change = reschedule(snapshot, appointment_id, window, requested_by, Some(origin), ctx)?;
    if change != Change::Replaced {
        if let Some(case) = snapshot.cases.iter_mut().find(|c| c.case_id == origin) {
            let cal = ctx.cal();
            let body = CommandBody::UpdateAppointment(Window {
                subject: case.subject(),
                window_start: cal.rfc3339(window.0),
                window_end: cal.rfc3339(window.1),
            });
            ctx.command(&mut case.core, body);
        }
    }
    Ok(())
}

/// R7.1–R7.3 (and R3.8) for a window change of one appointment: from `appointment.rescheduled`,
/// or from the rebooking of case `via` (R1.5).
fn reschedule(
    snapshot: &mut Snapshot,
    appointment_id: &str,
    (window_start, window_end): (DateTime<Utc>, DateTime<Utc>),
    requested_by: &str,
    via: Option<&str>,
    ctx: &mut Ctx,
) -> Result<Change, Refusal> {
    let rp = &ctx.policy.reschedule;
    let (max, fee_within, fee_amount) = (rp.max_reschedules, rp.fee_within_hours, rp.fee_amount);
    let late_minutes = ctx.policy.second_visit.late_change_minutes;
    let appointment = booked_appointment(snapshot, appointment_id)?;
    if appointment.window_start == window_start && appointment.window_end == window_end {
        let now = ctx.now;
        for case in snapshot.cases.iter_mut().filter(|c| is_open_about(c, appointment_id)) {
            case.note(now, TimelineKind::Decision, "appointment.rescheduled to the current window: nothing to change");
        }
        return Ok(Change::Same);
    }
    // R7.2 at most `max_reschedules` per appointment.
    if appointment.reschedules >= max {
        return Err(Refusal::rule(
            Rule::R7_2,
            format!(
                "appointment {appointment_id:?} has already been rescheduled {} times; at most {max} are allowed",
                appointment.reschedules
            ),
            Some("data.appointment_id"),
        ));
    }
    let original = appointment.window_start;
    let until_start = original - ctx.now;
    // R7.1 a change inside the fee period is charged (0 = inform only).
    let fee = (until_start < Duration::hours(fee_within as i64)).then(|| appointment.price.with_amount(fee_amount));
    let late = until_start <= Duration::minutes(late_minutes as i64);
    appointment.reschedules += 1;
    appointment.reschedule_log.push(Reschedule {
        at: ctx.now,
        from_start: original,
        to_start: window_start,
        requested_by: requested_by.to_string(),
        fee: fee.clone(),
        occurred_at: via.is_none().then_some(ctx.occurred),
    });
    appointment.window_start = window_start;
    appointment.window_end = window_end;
    let count = appointment.reschedules;
    let appointment = appointment.clone();

    let cal = ctx.cal();
    let mut text = format!("R7 reschedule {count} of {max} by {requested_by}: {} → {}", cal.rfc3339(original), cal.rfc3339(window_start));
    match &fee {
        Some(f) if f.amount > 0 => text.push_str(&format!("; R7.1 within {fee_within} h of the start: fee {} {}", f.amount, f.currency)),
        Some(_) => text.push_str(&format!("; R7.1 within {fee_within} h of the start: fee applies, inform only")),
        None => {}
    }
    let now = ctx.now;
    for case in snapshot.cases.iter_mut().filter(|c| is_open_about(c, appointment_id) || Some(c.case_id.as_str()) == via) {
        case.note(now, TimelineKind::Reschedule, text.clone());
    }

    let change = if late {
        replace_visit(snapshot, &appointment, original, via, ctx);
        Change::Replaced
    } else {
        snapshot.tell(|c| is_open_about(c, appointment_id), &SubjectEvent::Moved { window_start }, ctx);
        watch(snapshot, appointment_id, ctx);
        Change::Moved
    };

    // R7.3 confirm the new date and time in the customer's language.
    let local = ctx.cal().local(window_start);
    let vars =
        SmsVars { date: Some(local.format("%Y-%m-%d").to_string()), time: Some(local.format("%H:%M").to_string()), ..SmsVars::default() };
    let on_case = via.map(str::to_string).or_else(|| open_case(snapshot, appointment_id, PlaybookName::AppointmentWatch));
    match on_case.and_then(|id| snapshot.cases.iter_mut().find(|c| c.case_id == id)) {
        Some(case) => ctx.sms(&mut case.core, TemplateId::RescheduleConfirmation, &vars),
        None => subject_sms(snapshot, &appointment, TemplateId::RescheduleConfirmation, &vars, ctx),
    }
    Ok(change)
}

/// R3.8 a change within `late_change_minutes` of the start: cancel the visit, create a new one,
/// close the order's pending cases.
fn replace_visit(snapshot: &mut Snapshot, appointment: &Appointment, original: DateTime<Utc>, via: Option<&str>, ctx: &mut Ctx) {
    let cal = ctx.cal();
    let cancel = CommandBody::CancelAppointment(CancelAppointment {
        appointment_id: appointment.appointment_id.clone(),
        order_id: appointment.order_id.clone(),
        by: CancelledBy::Ops,
        reason: "late_time_change".into(),
        window_start: Some(cal.rfc3339(original)),
    });
    let create = CommandBody::CreateVisit(CreateVisit {
        subject: crate::domain::records::case::SubjectIds { order_id: Some(appointment.order_id.clone()), ..Default::default() },
        window_start: cal.rfc3339(appointment.window_start),
        window_end: cal.rfc3339(appointment.window_end),
        coupon_code: None,
        needs_material: None,
        replaces_appointment_id: Some(appointment.appointment_id.clone()),
        visit_number: Some(appointment.visit_number),
    });
    match via.and_then(|id| snapshot.cases.iter_mut().find(|c| c.case_id == id)) {
        Some(case) => {
            ctx.command(&mut case.core, cancel);
            ctx.command(&mut case.core, create);
        }
        None => {
            ctx.subject_command(cancel);
            ctx.subject_command(create);
        }
    }
    if let Some(a) = order_mut(snapshot).appointment_mut(&appointment.appointment_id) {
        a.status = AppointmentStatus::Cancelled;
    }
    unwatch(snapshot, &appointment.appointment_id, ctx);
    let event = SubjectEvent::VisitReplaced { appointment_id: appointment.appointment_id.clone() };
    snapshot.tell(|c| c.ticket.is_open() && Some(c.case_id.as_str()) != via, &event, ctx);
}

#[cfg(test)]
mod tests;
