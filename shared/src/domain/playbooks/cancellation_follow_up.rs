//! cancellation_follow_up (R2.1–R2.10): the follow-up of a cancelled first visit (seed 001, offers of seed 000).
//!
//! Decisions the SPEC leaves open, settled here:
//! - Timing is by the engine's clock when it learns of the cancellation ("the cancellation day").
//! - Attempt n of a round falls at `attempt_time` on the later of the n-th working day after the
//!   round's first day and the next working day after the last outcome, so an early call
//!   (agent or customer) still leaves the second attempt on its own day.
//! - An answered call without a resolution, and a decline that asks for a follow-up, get the
//!   next attempt on the next working day; they do not count as "not reached".
//! - The coupon is valid for `coupon_valid_days`, or until the appointment-request date when that is later (R2.4).
//! - Outcomes reported on a resolved or closed case are written on the timeline and change nothing.

use super::{Ctx, Flow as AnyFlow, Refusal};
use crate::domain::case::{Case, Group, Priority, Ticket, TicketStatus, TimerKind};
use crate::domain::effects::CommandType;
use crate::domain::events::{Availability, CallCompleted, CancelledBy, Event, EventBody, Resolution};
use crate::domain::money::Percent;
use crate::domain::sms::{SmsVars, TemplateId};
use crate::domain::stream::{Appointment, Stream};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use sha2::{Digest, Sha256};

crate::named_enum! {
    pub enum State {
        /// Call attempts under way (R2.5).
        Following = "following",
        /// Both attempts not reached; the order is cancelled (R2.6).
        WaitingOnCustomer = "waiting_on_customer",
        /// Rebooked or declined (R2.7, R2.8).
        Resolved = "resolved",
        /// Closed unresolved after 7 days (R2.9).
        Closed = "closed",
        /// Superseded by a newer case for the same order (R2.2).
        Duplicate = "duplicate",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub code: String,
    pub discount: Percent,
    pub valid_until: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
    pub cancelled_by: CancelledBy,
    pub cancellation_day: NaiveDate,
    /// First day of the current round of attempts: the cancellation day, or the re-open day (R2.10).
    pub round_start: NaiveDate,
    /// Not-reached outcomes in the current round.
    pub not_reached: u32,
    /// Number of the next call attempt in the current round.
    pub next_attempt: u32,
    pub coupon: Option<Coupon>,
    /// The ticket has been `waiting_on_customer` at some point (R2.10).
    pub waited_on_customer: bool,
}

flow_of!(CancellationFollowUp);

/// R2.1 opens a case for a qualifying first-visit cancellation; R2.2 closes the
/// order's other open case as a duplicate; R2.3 / R2.4 make the offers.
pub fn on_cancelled(stream: &mut Stream, appointment: &Appointment, event: &Event, ctx: &mut Ctx) -> Option<String> {
    let EventBody::AppointmentCancelled { cancelled_by, reason, wants_follow_up, availability, .. } = &event.body else {
        return None;
    };
    let qualifies = appointment.visit_number == 1
        && match cancelled_by {
            CancelledBy::NoShow | CancelledBy::Ops => true,
            CancelledBy::Customer => *wants_follow_up,
        };
    if !qualifies {
        return None;
    }
    Some(open(stream, appointment, *cancelled_by, reason, *availability, ctx))
}

/// Opens the case; also used by the T-1h auto-cancel of an unassigned appointment (R0.2).
pub fn open(
    stream: &mut Stream,
    appointment: &Appointment,
    cancelled_by: CancelledBy,
    reason: &str,
    availability: Option<Availability>,
    ctx: &mut Ctx,
) -> String {
    let p = &ctx.policy.cancellation_follow_up;
    let now = ctx.now;
    let day = ctx.cal().local_date(now);
    let case_id = stream.next_case_id();

    // R2.2 the order's other open case of this playbook is a duplicate ticket.
    for other in stream.cases.iter_mut().filter(|c| matches!(c.flow, AnyFlow::CancellationFollowUp(_)) && c.ticket.is_open()) {
        ctx.ticket(other, |t| {
            t.status = TicketStatus::WaitingOnThirdParty;
            t.result = Some("duplicate".into());
        });
        ctx.cancel(other, &[]);
        flow(other).state = State::Duplicate;
        other.note(now, "decision", format!("R2.2 duplicate of {case_id}"));
    }

    let close_at = now + Duration::days(p.close_after_days as i64);
    // R2.1 the ticket view of seed 001 when a first visit is cancelled.
    let ticket =
        Ticket::open("follow_up", "customer_care", "follow_up", Priority::Low, Group::CustomerCare, &appointment.area).due(close_at);
    let initial = AnyFlow::CancellationFollowUp(Flow {
        state: State::Following,
        cancelled_by,
        cancellation_day: day,
        round_start: day,
        not_reached: 0,
        next_attempt: 1,
        coupon: None,
        waited_on_customer: false,
    });
    let mut case = Case::open(case_id.clone(), appointment.customer.clone(), ticket, now, initial)
        .about_appointment(&appointment.appointment_id, &appointment.order_id);
    case.note(now, "event", format!("appointment.cancelled by {cancelled_by}: {reason}"));
    case.note(now, "decision", format!("R2.1 follow-up opened for first visit {}", appointment.appointment_id));

    // R2.3 a customer or ops cancellation without an existing discount earns a coupon; no_show does not.
    let request_day = (availability == Some(Availability::Unsure)).then(|| day + Duration::days(p.unsure_request_after_days as i64));
    if matches!(cancelled_by, CancelledBy::Customer | CancelledBy::Ops) && appointment.discount_percent == 0 {
        let default_until = day + Duration::days(p.coupon_valid_days as i64);
        let coupon = Coupon {
            code: coupon_code(&case_id),
            discount: p.discount,
            valid_until: request_day.map_or(default_until, |r| r.max(default_until)),
        };
        case.note(now, "decision", format!("R2.3 coupon {} ({}%) valid until {}", coupon.code, coupon.discount, coupon.valid_until));
        let vars = SmsVars {
            coupon_code: Some(coupon.code.clone()),
            discount: Some(coupon.discount.to_string()),
            valid_until: Some(coupon.valid_until.to_string()),
            ..SmsVars::default()
        };
        ctx.sms(&mut case, TemplateId::DiscountOffer, &vars);
        flow(&mut case).coupon = Some(coupon);
    }

    // R2.4 an unsure customer gets an appointment request at least four weeks out.
    if let Some(request_day) = request_day {
        let mut data = case.subject_data();
        data.insert("not_before".into(), request_day.to_string().into());
        data.insert("reason".into(), "customer unsure of availability".into());
        if let Some(c) = &flow(&mut case).coupon {
            data.insert("coupon_code".into(), c.code.clone().into());
        }
        ctx.command(&mut case, CommandType::CreateAppointmentRequest, data);
    }

    // R2.5 first attempt; R2.9 close if still unresolved.
    let first = attempt_due(flow(&mut case), None, ctx);
    ctx.place(&mut case, TimerKind::CallAttempt, first);
    ctx.place(&mut case, TimerKind::AutoClose, close_at);
    stream.cases.push(case);
    case_id
}

/// R2.5 attempt n of a round: `attempt_time` on the later of the n-th working day after the
/// round start and the next working day after `last_outcome`.
fn attempt_due(f: &Flow, last_outcome: Option<DateTime<Utc>>, ctx: &Ctx) -> DateTime<Utc> {
    let cal = ctx.cal();
    let scheduled = cal.nth_working_day_after(f.round_start, f.next_attempt);
    let day = match last_outcome {
        Some(at) => scheduled.max(cal.next_working_day(cal.local_date(at))),
        None => scheduled,
    };
    cal.at(day, ctx.policy.cancellation_follow_up.attempt_time)
}

pub fn on_timer(stream: &mut Stream, idx: usize, kind: TimerKind, ctx: &mut Ctx) {
    let case = &mut stream.cases[idx];
    let f = flow(case).clone();
    match kind {
        TimerKind::CallAttempt if f.state == State::Following => {
            let reason = format!(
                "Follow up the cancelled first visit (attempt {} of {})",
                f.next_attempt,
                ctx.policy.cancellation_follow_up.attempts.max(f.next_attempt)
            );
            let mut extra = Map::new();
            extra.insert("attempt".into(), f.next_attempt.into());
            if let Some(c) = &f.coupon {
                extra.insert("coupon_code".into(), c.code.clone().into());
            }
            let due = ctx.now;
            ctx.call_task(case, &reason, due, extra);
        }
        // R2.9 a ticket not resolved 7 days after it opened is closed.
        TimerKind::AutoClose if case.ticket.is_open() => {
            ctx.cancel(case, &[]);
            ctx.ticket(case, |t| {
                t.status = TicketStatus::Closed;
                t.result = Some("unreachable".into());
            });
            flow(case).state = State::Closed;
            case.note(ctx.now, "decision", "R2.9 closed unresolved after the follow-up period");
        }
        _ => {}
    }
}

pub fn on_call(stream: &mut Stream, idx: usize, call: &CallCompleted, ctx: &mut Ctx) -> Result<(), Refusal> {
    let case = &mut stream.cases[idx];
    case.attempts.push(crate::domain::case::Attempt {
        at: ctx.now,
        outcome: call.outcome,
        call_id: Some(call.call_id.clone()),
        agent_id: Some(call.agent_id.clone()),
    });
    let state = flow(case).state;
    if matches!(state, State::Resolved | State::Closed | State::Duplicate) {
        case.note(ctx.now, "decision", format!("outcome recorded; the case is already {state}"));
        return Ok(());
    }
    // The outcome counts as the current attempt: its pending task is spent.
    ctx.cancel(case, &[TimerKind::CallAttempt]);
    // R2.5 the first reported outcome moves the ticket to pending.
    if case.ticket.status == TicketStatus::Open {
        ctx.ticket(case, |t| t.status = TicketStatus::Pending);
    }
    let f = flow(case);
    f.next_attempt += 1;

    if !call.outcome.reached() {
        if f.state == State::WaitingOnCustomer {
            // R2.6 already acted: the order is cancelled and the ticket waits on the customer.
            case.note(ctx.now, "decision", "not reached again; still waiting on the customer");
            return Ok(());
        }
        f.not_reached += 1;
        if f.not_reached >= ctx.policy.cancellation_follow_up.attempts {
            // R2.6 both attempts not reached.
            f.state = State::WaitingOnCustomer;
            f.waited_on_customer = true;
            let mut data = case.subject_data();
            data.insert("reason".into(), "customer_unreached".into());
            ctx.command(case, CommandType::CancelOrder, data);
            ctx.ticket(case, |t| {
                t.status = TicketStatus::WaitingOnCustomer;
                t.priority = Priority::Medium;
            });
            case.note(ctx.now, "decision", "R2.6 not reached twice: order cancelled, waiting on customer");
        } else if f.state == State::Following {
            next_attempt(case, ctx);
        }
        return Ok(());
    }

    match &call.resolution {
        Some(Resolution::Rebooked { window_start, window_end }) => {
            // R2.7 a new visit on the agreed window; resolved.
            let mut data = case.subject_data();
            data.insert("window_start".into(), ctx.cal().rfc3339(*window_start).into());
            data.insert("window_end".into(), ctx.cal().rfc3339(*window_end).into());
            if let Some(c) = &flow(case).coupon {
                data.insert("coupon_code".into(), c.code.clone().into());
            }
            ctx.command(case, CommandType::CreateVisit, data);
            resolve(case, "rebooked", Priority::Medium, ctx);
            case.note(ctx.now, "decision", "R2.7 rebooked: new visit created, ticket resolved");
        }
        Some(Resolution::Declined { reason, complaint, follow_up }) => {
            // R2.8 a complaint first, then cancel or keep following as the customer asks.
            if *complaint {
                let mut data = case.subject_data();
                data.insert("reason".into(), reason.clone().into());
                ctx.command(case, CommandType::OpenComplaint, data);
            }
            if *follow_up {
                case.note(ctx.now, "decision", "R2.8 declined for now; the customer asked to be followed");
                next_attempt(case, ctx);
            } else {
                let mut data = case.subject_data();
                data.insert("reason".into(), reason.clone().into());
                ctx.command(case, CommandType::CancelOrder, data);
                resolve(case, "declined", case.ticket.priority, ctx);
                case.note(ctx.now, "decision", "R2.8 declined without follow-up: order cancelled, ticket resolved");
            }
        }
        Some(Resolution::FollowUpLater { at }) => {
            // R2.8 the next attempt at the requested time (within working hours).
            let due = ctx.cal().working_moment((*at).max(ctx.now));
            case.note(ctx.now, "decision", format!("R2.8 follow up later at {}", ctx.cal().rfc3339(due)));
            ctx.cancel(case, &[TimerKind::CallAttempt]);
            ctx.place(case, TimerKind::CallAttempt, due);
        }
        Some(Resolution::WillPay) | None => {
            case.note(ctx.now, "decision", "answered without a resolution; next attempt scheduled");
            next_attempt(case, ctx);
        }
    }
    Ok(())
}

fn next_attempt(case: &mut Case, ctx: &mut Ctx) {
    if case.pending(TimerKind::CallAttempt).is_some() {
        return;
    }
    let due = attempt_due(flow(case), Some(ctx.now), ctx);
    if flow(case).state == State::WaitingOnCustomer {
        flow(case).state = State::Following;
    }
    ctx.place(case, TimerKind::CallAttempt, due);
}

fn resolve(case: &mut Case, result: &str, priority: Priority, ctx: &mut Ctx) {
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::Resolved;
        t.priority = priority;
        t.result = Some(result.into());
    });
    flow(case).state = State::Resolved;
}

/// R2.10 re-open from `reopen_after_days` after the appointment day, only for a
/// case that waited on the customer; the attempts start over from today.
pub fn on_reopen(stream: &mut Stream, idx: usize, ctx: &mut Ctx) -> Result<(), Refusal> {
    let appointment_day =
        stream.cases[idx].appointment_id.as_deref().and_then(|a| stream.appointment(a)).map(|a| a.day(&ctx.policy.calendar));
    let case = &mut stream.cases[idx];
    let p = &ctx.policy.cancellation_follow_up;
    let f = flow(case).clone();
    if !f.waited_on_customer {
        return Err(Refusal::rule("R2.10", "only a case whose ticket went waiting_on_customer can be re-opened", Some("data.case_id")));
    }
    if case.ticket.is_open() && f.state == State::Following {
        return Err(Refusal::rule("R2.10", "the case is already open", Some("data.case_id")));
    }
    let today = ctx.cal().local_date(ctx.now);
    let from = appointment_day.unwrap_or(f.cancellation_day) + Duration::days(p.reopen_after_days as i64);
    if today < from {
        return Err(Refusal::rule(
            "R2.10",
            format!("the case can be re-opened from {from}, {} days after the appointment day", p.reopen_after_days),
            Some("data.case_id"),
        ));
    }
    let close_at = ctx.now + Duration::days(p.close_after_days as i64);
    ctx.cancel(case, &[]);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::Open;
        t.result = None;
        t.resolution_due = Some(close_at);
    });
    let f = flow(case);
    f.state = State::Following;
    f.round_start = today;
    f.not_reached = 0;
    f.next_attempt = 1;
    case.note(ctx.now, "decision", "R2.10 re-opened: attempts start over");
    let first = attempt_due(flow(case), None, ctx);
    ctx.place(case, TimerKind::CallAttempt, first);
    ctx.place(case, TimerKind::AutoClose, close_at);
    Ok(())
}

/// A unique, unguessable-enough coupon code derived from the case id (pure: no randomness).
pub(crate) fn coupon_code(case_id: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let digest = Sha256::digest(format!("coupon:{case_id}").as_bytes());
    let code: String = digest.iter().take(8).map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect();
    format!("FU-{code}")
}

#[cfg(test)]
mod tests {
    //! Given a stream in some state, when an input arrives at some time, then these effects.
    use super::*;
    use crate::domain::case::{CallOutcome, Customer, Language};
    use crate::domain::effects::{Effect, TimerRef};
    use crate::domain::events::Input;
    use crate::domain::money::Money;
    use crate::domain::playbooks::decide;
    use crate::domain::playbooks::testkit::{call, event, t};
    use crate::domain::playbooks::RefusalKind;
    use crate::domain::policy::Policy;
    use crate::domain::stream::{AppointmentStatus, StreamKey};

    /// Order O1 with first visit A1 on Tuesday 2026-03-03 10:00.
    fn stream(discount_percent: u32, visit_number: u32) -> Stream {
        let mut s = Stream::new(StreamKey::Order("O1".into()));
        s.appointments.push(Appointment {
            appointment_id: "A1".into(),
            order_id: "O1".into(),
            customer: Customer { id: "C1".into(), name: "Mona".into(), phone: "+201001234567".into(), language: Language::En },
            area: "Alex".into(),
            service: "cleaning".into(),
            price: Money::new(45_000, "EGP"),
            window_start: t("2026-03-03T10:00:00+02:00"),
            window_end: t("2026-03-03T12:00:00+02:00"),
            visit_number,
            technician_id: None,
            discount_percent,
            status: AppointmentStatus::Booked,
            reschedules: 0,
            booked_at: None,
            reschedule_log: Vec::new(),
            completion: None,
        });
        s.version = 1;
        s
    }

    fn cancel(by: CancelledBy, wants_follow_up: bool, availability: Option<Availability>) -> Input {
        event(EventBody::AppointmentCancelled {
            appointment_id: "A1".into(),
            cancelled_by: by,
            reason: "moving".into(),
            wants_follow_up,
            availability,
        })
    }

    struct World {
        stream: Stream,
        effects: Vec<Effect>,
        policy: Policy,
    }

    impl World {
        fn given(stream: Stream) -> Self {
            World { stream, effects: Vec::new(), policy: Policy::default() }
        }
        fn when(&mut self, input: Input, now: &str) -> Result<Option<String>, Refusal> {
            let d = decide(Some(&self.stream), &input, t(now), &self.policy)?;
            self.stream = d.stream;
            self.effects = d.effects;
            Ok(d.case_id)
        }
        /// Fires the case's earliest pending timer at its due time.
        fn fire_next(&mut self, case_id: &str) -> TimerKind {
            let case = self.stream.case(case_id).unwrap();
            let next = case.timers.iter().min_by_key(|t| t.due_at).unwrap().clone();
            let timer = TimerRef { stream: self.stream.key.clone(), case_id: Some(case_id.into()), kind: next.kind, step: next.step };
            let now = self.policy.calendar.rfc3339(next.due_at);
            self.when(Input::Timer(timer), &now).unwrap();
            next.kind
        }
        fn case(&self, id: &str) -> &Case {
            self.stream.case(id).unwrap()
        }
        fn commands(&self) -> Vec<CommandType> {
            self.effects.iter().filter_map(|e| if let Effect::Emit(c) = e { Some(c.kind) } else { None }).collect()
        }
        fn sms(&self) -> Vec<TemplateId> {
            self.effects.iter().filter_map(|e| if let Effect::SendSms(s) = e { Some(s.template) } else { None }).collect()
        }
        fn due(&self, id: &str, kind: TimerKind) -> Option<DateTime<Utc>> {
            self.case(id).pending(kind).map(|t| t.due_at)
        }
    }

    const MON: &str = "2026-03-02T10:00:00+02:00";

    fn opened(by: CancelledBy) -> (World, String) {
        let mut w = World::given(stream(0, 1));
        let id = w.when(cancel(by, true, None), MON).unwrap().unwrap();
        (w, id)
    }

    #[test]
    fn r2_1_opens_for_no_show_ops_and_customers_who_want_follow_up() {
        for (by, wants, opens) in [
            (CancelledBy::NoShow, false, true),
            (CancelledBy::Ops, false, true),
            (CancelledBy::Customer, true, true),
            (CancelledBy::Customer, false, false),
        ] {
            let mut w = World::given(stream(0, 1));
            assert_eq!(w.when(cancel(by, wants, None), MON).unwrap().is_some(), opens, "{by} wants={wants}");
            assert_eq!(w.stream.appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
        }
        let mut w = World::given(stream(0, 2));
        assert_eq!(w.when(cancel(CancelledBy::Ops, true, None), MON).unwrap(), None, "R2.1 first visits only");
    }

    #[test]
    fn r2_1_ticket_view_and_reason_on_the_timeline() {
        let (w, id) = opened(CancelledBy::Customer);
        let c = w.case(&id);
        assert_eq!(
            (c.ticket.category.as_str(), c.ticket.sub_category.as_str(), c.ticket.kind.as_str()),
            ("follow_up", "customer_care", "follow_up")
        );
        assert_eq!((c.ticket.status, c.ticket.priority, c.ticket.group), (TicketStatus::Open, Priority::Low, Group::CustomerCare));
        assert_eq!(c.ticket.area, "Alex");
        assert!(c.timeline.iter().any(|e| e.detail.contains("moving")));
        assert_eq!(c.version, 1);
    }

    #[test]
    fn r2_2_the_older_open_case_of_the_order_is_closed_as_duplicate() {
        let (mut w, first) = opened(CancelledBy::Customer);
        let mut second_appt = w.stream.appointments[0].clone();
        second_appt.appointment_id = "A2".into();
        second_appt.status = AppointmentStatus::Booked;
        w.stream.appointments.push(second_appt);
        let input = event(EventBody::AppointmentCancelled {
            appointment_id: "A2".into(),
            cancelled_by: CancelledBy::Ops,
            reason: "no technician".into(),
            wants_follow_up: false,
            availability: None,
        });
        let second = w.when(input, "2026-03-02T12:00:00+02:00").unwrap().unwrap();
        assert_ne!(first, second);
        let old = w.case(&first);
        assert_eq!(old.ticket.status, TicketStatus::WaitingOnThirdParty);
        assert!(old.timers.is_empty());
        assert_eq!(old.version, 2);
        assert!(w.effects.iter().any(|e| matches!(e, Effect::CancelTimer(t) if t.case_id.as_deref() == Some(first.as_str()))));
    }

    #[test]
    fn r2_3_coupon_for_customer_or_ops_without_discount_only() {
        for (by, discount, coupon) in [
            (CancelledBy::Customer, 0, true),
            (CancelledBy::Ops, 0, true),
            (CancelledBy::NoShow, 0, false),
            (CancelledBy::Customer, 10, false),
        ] {
            let mut w = World::given(stream(discount, 1));
            let id = w.when(cancel(by, true, None), MON).unwrap().unwrap();
            assert_eq!(w.sms() == vec![TemplateId::DiscountOffer], coupon, "{by} discount={discount}");
            let AnyFlow::CancellationFollowUp(f) = &w.case(&id).flow else { unreachable!() };
            assert_eq!(f.coupon.is_some(), coupon);
            if let Some(c) = &f.coupon {
                assert_eq!(c.discount, Percent::whole(15));
                assert!(c.code.starts_with("FU-") && c.code.len() == 11);
                assert_eq!(c.valid_until.to_string(), "2026-04-01");
            }
        }
    }

    #[test]
    fn r2_3_coupon_codes_are_unique_per_case() {
        let codes: std::collections::BTreeSet<String> = (1..500).map(|i| coupon_code(&format!("o{i}-O{i}"))).collect();
        assert_eq!(codes.len(), 499);
    }

    #[test]
    fn r2_4_unsure_availability_requests_an_appointment_four_weeks_out() {
        let mut w = World::given(stream(0, 1));
        let id = w.when(cancel(CancelledBy::Customer, true, Some(Availability::Unsure)), MON).unwrap().unwrap();
        let request = w.effects.iter().find_map(|e| match e {
            Effect::Emit(c) if c.kind == CommandType::CreateAppointmentRequest => Some(c.clone()),
            _ => None,
        });
        let request = request.expect("R2.4 request");
        assert_eq!(request.data["not_before"], "2026-03-30");
        let AnyFlow::CancellationFollowUp(f) = &w.case(&id).flow else { unreachable!() };
        assert_eq!(f.coupon.as_ref().unwrap().valid_until.to_string(), "2026-04-01", "the longer of 30 days and the request date");

        let mut p = Policy::default();
        p.cancellation_follow_up.coupon_valid_days = 7;
        let mut w = World { policy: p, ..World::given(stream(0, 1)) };
        let id = w.when(cancel(CancelledBy::Customer, true, Some(Availability::Unsure)), MON).unwrap().unwrap();
        let AnyFlow::CancellationFollowUp(f) = &w.case(&id).flow else { unreachable!() };
        assert_eq!(f.coupon.as_ref().unwrap().valid_until.to_string(), "2026-03-30", "valid until the request date");
    }

    #[test]
    fn r2_5_two_attempts_on_the_next_two_working_days_and_first_outcome_pends() {
        let (mut w, id) = opened(CancelledBy::Customer);
        assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")));
        assert_eq!(w.fire_next(&id), TimerKind::CallAttempt);
        assert_eq!(w.commands(), vec![CommandType::CallCustomer]);
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T09:10:00+02:00").unwrap();
        assert_eq!(w.case(&id).ticket.status, TicketStatus::Pending);
        assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-04T09:00:00+02:00")));
    }

    #[test]
    fn r2_6_both_attempts_not_reached_cancel_the_order() {
        let (mut w, id) = opened(CancelledBy::Customer);
        w.fire_next(&id);
        w.when(call(&id, CallOutcome::Busy, None), "2026-03-03T09:10:00+02:00").unwrap();
        w.fire_next(&id);
        w.when(call(&id, CallOutcome::Voicemail, None), "2026-03-04T09:10:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::CancelOrder]);
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.priority), (TicketStatus::WaitingOnCustomer, Priority::Medium));
        assert_eq!(c.pending(TimerKind::CallAttempt), None);
        assert!(c.pending(TimerKind::AutoClose).is_some(), "R2.9 still closes it later");
    }

    #[test]
    fn r2_6_acts_once_and_a_later_answer_can_still_rebook() {
        let (mut w, id) = opened(CancelledBy::Customer);
        w.when(call(&id, CallOutcome::Busy, None), "2026-03-03T09:10:00+02:00").unwrap();
        w.when(call(&id, CallOutcome::Busy, None), "2026-03-04T09:10:00+02:00").unwrap();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-04T12:00:00+02:00").unwrap();
        assert!(w.commands().is_empty(), "no second cancel_order");
        assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnCustomer);
        // The customer calls back while the ticket waits on them.
        let r = Resolution::Rebooked { window_start: t("2026-03-09T10:00:00+02:00"), window_end: t("2026-03-09T12:00:00+02:00") };
        w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-03-05T10:00:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::CreateVisit]);
        assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);
    }

    #[test]
    fn r2_7_rebooked_creates_the_visit_and_resolves() {
        let (mut w, id) = opened(CancelledBy::Customer);
        let r = Resolution::Rebooked { window_start: t("2026-03-09T10:00:00+02:00"), window_end: t("2026-03-09T12:00:00+02:00") };
        w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-03-03T09:10:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::CreateVisit]);
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.priority), (TicketStatus::Resolved, Priority::Medium));
        assert!(c.timers.is_empty());
    }

    #[test]
    fn r2_8_declined_paths() {
        let declined = |complaint, follow_up| Resolution::Declined { reason: "price".into(), complaint, follow_up };
        let (mut w, id) = opened(CancelledBy::Customer);
        w.when(call(&id, CallOutcome::Answered, Some(declined(true, false))), "2026-03-03T09:10:00+02:00").unwrap();
        assert_eq!(w.commands(), vec![CommandType::OpenComplaint, CommandType::CancelOrder]);
        assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);

        let (mut w, id) = opened(CancelledBy::Customer);
        w.when(call(&id, CallOutcome::Answered, Some(declined(false, true))), "2026-03-03T09:10:00+02:00").unwrap();
        assert!(w.commands().is_empty());
        assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-04T09:00:00+02:00")));

        let (mut w, id) = opened(CancelledBy::Customer);
        let later = Resolution::FollowUpLater { at: t("2026-03-05T22:00:00+02:00") };
        w.when(call(&id, CallOutcome::Answered, Some(later)), "2026-03-03T09:10:00+02:00").unwrap();
        assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-07T09:00:00+02:00")), "after hours on Thursday → Saturday 09:00");
    }

    #[test]
    fn r2_9_closed_unresolved_after_seven_days() {
        let (mut w, id) = opened(CancelledBy::NoShow);
        assert_eq!(w.due(&id, TimerKind::AutoClose), Some(t("2026-03-09T10:00:00+02:00")));
        let c = w.case(&id).clone();
        let close = c.pending(TimerKind::AutoClose).unwrap().clone();
        let timer = TimerRef { stream: w.stream.key.clone(), case_id: Some(id.clone()), kind: TimerKind::AutoClose, step: close.step };
        w.when(Input::Timer(timer), "2026-03-09T10:00:00+02:00").unwrap();
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.as_deref()), (TicketStatus::Closed, Some("unreachable")));
        assert!(c.timers.is_empty());
    }

    #[test]
    fn stale_timers_do_nothing() {
        let (mut w, id) = opened(CancelledBy::Customer);
        let first = w.case(&id).pending(TimerKind::CallAttempt).unwrap().clone();
        // An early outcome spends attempt 1; its timer may still fire late.
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T11:00:00+02:00").unwrap();
        let before = w.case(&id).clone();
        let stale = TimerRef { stream: w.stream.key.clone(), case_id: Some(id.clone()), kind: TimerKind::CallAttempt, step: first.step };
        w.when(Input::Timer(stale), "2026-03-03T09:00:00+02:00").unwrap();
        assert!(w.effects.is_empty());
        assert_eq!(w.case(&id), &before);
    }

    #[test]
    fn r2_10_reopen_from_thirty_days_after_the_appointment_day_when_it_waited() {
        let (mut w, id) = opened(CancelledBy::Customer);
        let reopen = || event(EventBody::CaseReopen { case_id: "o1-O1".into() });
        let e = w.when(reopen(), "2026-04-05T10:00:00+02:00").unwrap_err();
        assert_eq!(e.rule, Some("R2.10"), "never waited on the customer");
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T09:10:00+02:00").unwrap();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-04T09:10:00+02:00").unwrap();
        assert_eq!(w.when(reopen(), "2026-04-01T23:59:00+02:00").unwrap_err().rule, Some("R2.10"), "day 29");
        w.when(reopen(), "2026-04-02T00:00:00+02:00").unwrap();
        let c = w.case(&id);
        assert_eq!(c.ticket.status, TicketStatus::Open);
        assert_eq!(c.pending(TimerKind::CallAttempt).map(|t| t.due_at), Some(t("2026-04-04T09:00:00+02:00")), "Friday 04-03 skipped");
        assert_eq!(c.pending(TimerKind::AutoClose).map(|t| t.due_at), Some(t("2026-04-09T00:00:00+02:00")));
        assert_eq!(w.when(reopen(), "2026-04-02T01:00:00+02:00").unwrap_err().rule, Some("R2.10"), "already open");
    }

    #[test]
    fn outcomes_on_a_resolved_case_are_recorded_only() {
        let (mut w, id) = opened(CancelledBy::Customer);
        let r = Resolution::Declined { reason: "x".into(), complaint: false, follow_up: false };
        w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-03-03T09:10:00+02:00").unwrap();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T10:10:00+02:00").unwrap();
        assert!(w.effects.is_empty());
        assert_eq!(w.case(&id).attempts.len(), 2);
        assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);
    }

    #[test]
    fn will_pay_does_not_apply_here() {
        let (mut w, id) = opened(CancelledBy::Customer);
        let e = w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-03T09:10:00+02:00").unwrap_err();
        assert_eq!((e.kind, e.field.as_deref()), (RefusalKind::Rule, Some("data.resolution.kind")));
    }
}
