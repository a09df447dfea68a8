//! cancellation_follow_up (R2.1–R2.10): the follow-up of a cancelled first visit (seed 001, offers of seed 000).
//!
//! Decisions the SPEC leaves open, settled here:
//! - "The cancellation day" is the local day of the cancellation's `occurred_at` (R9.7 v3); an
//!   engine's own cancellation (R0.2, R1.4) happens when its timer fires, R1.6's when the call did.
//!   A first attempt whose time passed before the cancellation arrived is taken on arrival.
//! - The attempts, not reached, declined, the 7-day close and the 30-day re-open are the shared
//!   follow-up round (`round.rs`), started on the first working day after the cancellation day.
//! - The coupon (R2.3) belongs to the cancelled appointment; it is valid for `coupon_valid_days`,
//!   or until the appointment-request date when that is later (R2.4). Its code is derived from the
//!   appointment id.

use super::round::{self, FollowUp, Round, Rules, State};
use super::{Playbook, PlaybookName, SubjectEvent};
use crate::domain::commands::{CallCustomer, CommandBody, CreateAppointmentRequest, CreateVisit, IssueCoupon, Reason};
use crate::domain::ctx::Ctx;
use crate::domain::events::{Availability, CallCompleted, CancelledBy};
use crate::domain::policy::Policy;
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketKind, TicketResult, TicketStatus, TimelineKind, TimerKind};
use crate::domain::records::order::{Appointment, Cancellation, Coupon, Order};
use crate::domain::refusal::{Refusal, Rule};
use crate::domain::sms::{SmsVars, TemplateId};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub struct CancellationFollowUp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub round: Round,
    pub cancelled_by: CancelledBy,
    pub cancellation_day: NaiveDate,
}

/// R2.1 a first visit cancelled by a no-show, by ops, or by a customer who wants a follow-up.
pub fn qualifies(appointment: &Appointment, by: CancelledBy, wants_follow_up: bool) -> bool {
    appointment.visit_number == 1
        && match by {
            CancelledBy::NoShow | CancelledBy::Ops => true,
            CancelledBy::Customer => wants_follow_up,
        }
}

/// R2.3 a customer or ops cancellation of an appointment without a discount earns a coupon; no_show does not.
pub fn earns_coupon(appointment: &Appointment, by: CancelledBy) -> bool {
    matches!(by, CancelledBy::Customer | CancelledBy::Ops) && appointment.discount_percent == 0
}

/// R2.3 the coupon, valid until R2.4's appointment request when that is later.
pub fn coupon(appointment: &Appointment, availability: Option<Availability>, ctx: &Ctx) -> Coupon {
    let p = &ctx.policy.cancellation_follow_up;
    // R9.7 the cancellation day is when it happened.
    let day = ctx.cal().local_date(ctx.occurred);
    let until = day + Duration::days(p.coupon_valid_days as i64);
    Coupon {
        code: coupon_code(&appointment.appointment_id),
        discount: p.discount,
        valid_until: request_day(availability, day, ctx.policy).map_or(until, |r| r.max(until)),
    }
}

/// R2.4 an unsure customer's appointment request day.
fn request_day(availability: Option<Availability>, day: NaiveDate, policy: &Policy) -> Option<NaiveDate> {
    (availability == Some(Availability::Unsure))
        .then(|| day + Duration::days(policy.cancellation_follow_up.unsure_request_after_days as i64))
}

/// R2.3 what a coupon offer sends: `issue_coupon`, which registers the coupon with the
/// dashboard, and the variables of the DISCOUNT_OFFER that offers it to the customer.
pub fn offer_of(coupon: &Coupon, appointment: &Appointment) -> (CommandBody, SmsVars) {
    let issue = CommandBody::IssueCoupon(IssueCoupon {
        code: coupon.code.clone(),
        percent: coupon.discount,
        valid_until: coupon.valid_until,
        order_id: appointment.order_id.clone(),
        customer_id: appointment.customer.id.clone(),
        appointment_id: appointment.appointment_id.clone(),
    });
    let vars = SmsVars {
        coupon_code: Some(coupon.code.clone()),
        discount: Some(coupon.discount.to_string()),
        valid_until: Some(coupon.valid_until.to_string()),
        ..SmsVars::default()
    };
    (issue, vars)
}

/// R2.3 the offer made on the case (the order makes it itself when no case does).
pub fn offer(case: &mut CaseCore, coupon: &Coupon, appointment: &Appointment, ctx: &mut Ctx) {
    let (issue, vars) = offer_of(coupon, appointment);
    ctx.decided(case, format!("R2.3 coupon {} ({}%) valid until {}", coupon.code, coupon.discount, coupon.valid_until));
    ctx.command(case, issue);
    ctx.sms(case, TemplateId::DiscountOffer, &vars);
}

/// The coupon code of an appointment: 12 characters of its SHA-256 in an unambiguous alphabet
/// (60 bits), so it cannot be guessed from the appointment id. Pure, so a retried decision makes
/// the same code; the commit indexes it (`coupon:<code>`), so the store refuses to give one code
/// to two orders even in the improbable case two appointments hash alike.
pub(crate) fn coupon_code(appointment_id: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let digest = Sha256::digest(format!("coupon:{appointment_id}").as_bytes());
    let code: String = digest.iter().take(12).map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect();
    format!("FU-{code}")
}

fn coupon_of<'o>(case: &CaseCore, order: &'o Order) -> Option<&'o Coupon> {
    case.appointment_id.as_deref().and_then(|a| order.appointment(a)).and_then(|a| a.coupon.as_ref())
}

/// What opens a follow-up: the cancelled appointment, how it was cancelled, and the coupon R2.3
/// gave it (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    pub appointment: Appointment,
    pub cancellation: Cancellation,
    pub coupon: Option<Coupon>,
}

impl Playbook for CancellationFollowUp {
    const NAME: PlaybookName = PlaybookName::CancellationFollowUp;
    type Flow = Flow;
    type Subject = Order;
    type Opening = Opening;

    /// R2.1 opens the case for a qualifying cancellation (the order checked `qualifies`; R2.2's
    /// duplicates are the order's to close); R2.3 / R2.4 make the offers.
    fn open(case_id: String, order: &Order, opening: &Opening, ctx: &mut Ctx) -> (CaseCore, Flow) {
        let Opening { appointment, cancellation: how, coupon } = opening;
        let now = ctx.now;
        // R9.7 the cancellation day (R2.4, R2.5) is the day it happened, not the day it arrived.
        let day = ctx.cal().local_date(ctx.occurred);
        let close_at = now + Duration::days(ctx.policy.cancellation_follow_up.close_after_days as i64);
        // R2.1 the ticket view of seed 001 when a first visit is cancelled.
        let ticket = Ticket::open(TicketKind::FollowUp, Priority::Low, Group::CustomerCare, &appointment.area).due(close_at);
        let mut flow = Flow { round: Round::new(day), cancelled_by: how.by, cancellation_day: day };
        let mut case = CaseCore::open(case_id, appointment.customer.clone(), ticket, now)
            .about_appointment(&appointment.appointment_id, &appointment.order_id);
        case.note(now, TimelineKind::Event, format!("appointment.cancelled by {}: {}", how.by, how.reason));
        ctx.decided(&mut case, format!("R2.1 follow-up opened for first visit {}", appointment.appointment_id));
        if let Some(coupon) = coupon {
            offer(&mut case, coupon, appointment, ctx);
        }
        // R2.4 an unsure customer gets an appointment request at least four weeks out.
        if let Some(not_before) = request_day(how.availability, day, ctx.policy) {
            let body = CommandBody::CreateAppointmentRequest(CreateAppointmentRequest {
                subject: case.subject(),
                not_before,
                reason: "customer unsure of availability".into(),
                coupon_code: coupon.as_ref().map(|c| c.code.clone()),
            });
            ctx.command(&mut case, body);
        }
        Self::start(&mut case, &mut flow, close_at, order, ctx);
        (case, flow)
    }

    fn state(flow: &Flow) -> &'static str {
        flow.round.state.as_str()
    }
    fn resolves(case: &CaseCore, flow: &Flow, call: &CallCompleted) -> bool {
        round::resolves(case, &flow.round, call)
    }
    fn on_call(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, order: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
        round::on_call::<Self>(case, flow, call, order, ctx)
    }
    fn on_timer(case: &mut CaseCore, flow: &mut Flow, kind: TimerKind, order: &Order, ctx: &mut Ctx) {
        round::on_timer::<Self>(case, flow, kind, order, ctx)
    }
    fn on_reopen(case: &mut CaseCore, flow: &mut Flow, order: &Order, ctx: &mut Ctx) -> Result<(), Refusal> {
        round::on_reopen::<Self>(case, flow, order, ctx)
    }
    fn on_subject(case: &mut CaseCore, flow: &mut Flow, event: &SubjectEvent, _: &Order, ctx: &mut Ctx) {
        match event {
            SubjectEvent::VisitReplaced { appointment_id } => {
                round::close(case, &mut flow.round, State::Closed, TicketStatus::Closed, TicketResult::VisitReplaced, ctx);
                ctx.decided(case, format!("R3.8 visit {appointment_id} replaced by a new one: pending case closed"));
            }
            // R2.2 the order's newer follow-up carries on; this one is a duplicate ticket.
            SubjectEvent::Superseded { by } if case.ticket.is_open() => {
                round::close(case, &mut flow.round, State::Duplicate, TicketStatus::WaitingOnThirdParty, TicketResult::Duplicate, ctx);
                ctx.decided(case, format!("R2.2 duplicate of {by}"));
            }
            _ => {}
        }
    }
}

impl FollowUp for CancellationFollowUp {
    fn round(flow: &mut Flow) -> &mut Round {
        &mut flow.round
    }
    fn rules(policy: &Policy) -> Rules {
        let p = &policy.cancellation_follow_up;
        Rules {
            attempts: p.attempts,
            attempt_time: p.attempt_time,
            first_day: 1,
            close_after_days: p.close_after_days,
            reopen_after_days: p.reopen_after_days,
            exhausted_priority: Some(Priority::Medium),
            exhausted_rule: Rule::R2_6,
            declined_rule: Rule::R2_8,
            close_rule: Rule::R2_9,
        }
    }
    /// R2.5 the first attempt; R2.9 the close if still unresolved.
    fn start(case: &mut CaseCore, flow: &mut Flow, close_at: DateTime<Utc>, order: &Order, ctx: &mut Ctx) {
        round::first_attempt::<Self>(case, flow, order, ctx);
        ctx.place(case, TimerKind::AutoClose, close_at);
    }
    fn call_task(case: &mut CaseCore, _: &mut Flow, n: u32, order: &Order, ctx: &mut Ctx) {
        let reason = format!("Follow up the cancelled first visit (attempt {n} of {})", ctx.policy.cancellation_follow_up.attempts.max(n));
        let task =
            CallCustomer { attempt: Some(n), coupon_code: coupon_of(case, order).map(|c| c.code.clone()), ..CallCustomer::default() };
        ctx.call_task(case, reason, task);
    }
    /// R2.7 a new visit on the agreed window; resolved.
    fn rebooked(case: &mut CaseCore, flow: &mut Flow, (start, end): (DateTime<Utc>, DateTime<Utc>), order: &Order, ctx: &mut Ctx) {
        let body = CommandBody::CreateVisit(CreateVisit {
            subject: case.subject(),
            window_start: ctx.cal().rfc3339(start),
            window_end: ctx.cal().rfc3339(end),
            coupon_code: coupon_of(case, order).map(|c| c.code.clone()),
            needs_material: None,
            replaces_appointment_id: None,
            visit_number: None,
        });
        ctx.command(case, body);
        round::resolve(case, &mut flow.round, TicketResult::Rebooked, Some(Priority::Medium), ctx);
        ctx.decided(case, "R2.7 rebooked: new visit created, ticket resolved");
    }
    fn give_up(reason: Reason) -> CommandBody {
        CommandBody::CancelOrder(reason)
    }
}

#[cfg(test)]
mod tests;
