//! package_payment (R4.1–R4.7): the unpaid-package chase (seed 004, not paid tag).
//!
//! Decisions the SPEC leaves open, settled here:
//! - "The day before the first visit" is the last working day before the first visit's local
//!   day (a Saturday visit is called on Thursday: Friday is off). "Next working day" for the final
//!   call (R4.5) counts from that day.
//! - Ticket: category `package`, sub_category `payment`, type `not_paid`, tag `not_paid`, priority
//!   `medium` (unpaid revenue), area from the package. `resolution_due` is set by R4.3 (the day
//!   before at the payment deadline, 21:00) and R4.4 (the next working day at the close of working
//!   hours); it is not set at opening.
//! - The first call and the day-before call are separate one-shot timers placed at opening, so an
//!   outcome that never comes cannot stall the chase. An outcome counts as the current stage's
//!   call: in the first stage it spends any first-call task still pending, never the day-before one.
//! - `will_pay` (card → `send_payment_link`, cash → `request_cash_collection`) does not stop the
//!   chase: a package still unpaid on the day before gets the R4.4 call and deadline all the same.
//!   Further not-reached outcomes after SMS1, or after a reached `will_pay` in the same stage, are
//!   recorded only (SMS1 and SMS2 go at most once).
//! - Declined without follow-up (the customer does not want the package): before the package is
//!   cancelled, commands `cancel_package` and `cancel_package_visits` without SMS2 (the customer was
//!   reached); the ticket is closed with result `declined`. `rebooked` does not apply here (422).
//! - R4.5 (v2) any answer on the final call resolves the ticket (`reached_after_cancellation`):
//!   the package is already cancelled, so no payment link or collection request goes out.
//! - R4.7 (v2): when the first call (now, or the next working-hours start) already falls on or
//!   after the day before, it is still R4.1's call (not reached: SMS1, R4.3), and R4.4's deadline
//!   is placed at 21:00 of that call's day: unpaid then, the package is cancelled with SMS2. No
//!   separate day-before call is made.
//! - R9.1 a call whose report has not come when the next step falls due counts as not reached
//!   (`unreported`): the first call at the day-before call (SMS1 if not yet sent), the day-before
//!   call at the deadline, the final call at the end of its working day (`report_due`: closed,
//!   `unreachable`). An unreported first call at a late booking's deadline sends no SMS1: SMS2 says
//!   the same at that moment.
//! - The engine's own cancellation (R4.4) marks the package cancelled and stops its expiry timers.
//!   `package.paid` after it resolves the case (R4.6) but does not revive the package: the visits
//!   were cancelled on the dashboard, which books a new package.

use super::attempts::{Attempts, Report};
use super::{Playbook, PlaybookName, SubjectEvent};
use crate::domain::calendar::Calendar;
use crate::domain::commands::{CallCustomer, CommandBody, PaymentRequest};
use crate::domain::ctx::{Ctx, Intent};
use crate::domain::events::{CallCompleted, PaymentMethod, Resolution};
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketResult, TicketStatus, TimelineKind, TimerKind};
use crate::domain::records::package::{Package, PackageStatus};
use crate::domain::refusal::Refusal;
use crate::domain::sms::{SmsVars, TemplateId};
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

pub struct PackagePayment;

crate::named_enum! {
    pub enum State {
        /// R4.1 the first call is under way.
        Chasing = "chasing",
        /// R4.3 not reached: SMS1 sent, waiting for the day before.
        WaitingOnCustomer = "waiting_on_customer",
        /// R4.2 the customer will pay: link or cash collection sent.
        AwaitingPayment = "awaiting_payment",
        /// R4.4 the day-before call is made; the 21:00 deadline is pending.
        DayBefore = "day_before",
        /// R4.4 cancelled for non-payment; R4.5 final call.
        FinalCall = "final_call",
        /// R4.6 paid: resolved.
        Paid = "paid",
        /// R4.5 unreachable, or declined.
        Closed = "closed",
        /// The customer cancelled the package (`package.cancelled`).
        Withdrawn = "withdrawn",
    }
}

crate::named_enum! {
    /// Which call of the chase the case is at.
    pub enum Stage {
        /// R4.1 / R4.2 / R4.3.
        First = "first",
        /// R4.4.
        DayBefore = "day_before",
        /// R4.5.
        Final = "final",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub state: State,
    pub stage: Stage,
    pub payment_method: PaymentMethod,
    /// R4.4 day (moved to the first call's day by R4.7).
    pub day_before: NaiveDate,
    /// R4.5 day, once the package is cancelled for non-payment.
    pub final_day: Option<NaiveDate>,
    pub sms1_sent: bool,
    /// R4.7 booked so late that the first call is the only one before the deadline.
    pub late: bool,
    pub attempts: Attempts,
}

impl Flow {
    fn is_done(&self) -> bool {
        matches!(self.state, State::Paid | State::Closed | State::Withdrawn)
    }
}

/// The last working day strictly before `day`.
pub fn working_day_before(cal: &Calendar, day: NaiveDate) -> NaiveDate {
    let mut d = day.pred_opt().expect("date in range");
    // A calendar has at least one working day a week, so this ends within seven steps.
    while !cal.is_working_day(d) {
        d = d.pred_opt().expect("date in range");
    }
    d
}

/// The call task of a stage; its report is awaited (R9.1).
fn stage_call(case: &mut CaseCore, flow: &mut Flow, reason: &str, ctx: &mut Ctx) {
    let n = flow.attempts.task();
    let task = CallCustomer { stage: Some(flow.stage.as_str().into()), attempt: Some(n), ..CallCustomer::default() };
    ctx.call_task(case, reason, task);
}

fn first_call_task(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    stage_call(case, flow, "Ask the customer to pay the package (R4.1)", ctx);
}

/// R4.3 the first call not reached: SMS1 (once), waiting on the customer until the deadline.
fn sms1(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    let due = ctx.cal().at(flow.day_before, ctx.policy.package_payment.payment_deadline_time);
    ctx.ticket(case, |t| {
        t.status = TicketStatus::WaitingOnCustomer;
        t.resolution_due = Some(due);
    });
    ctx.sms(case, TemplateId::Sms1, &SmsVars::default());
    flow.sms1_sent = true;
    flow.state = State::WaitingOnCustomer;
    ctx.decided(case, format!("R4.3 not reached: SMS1, waiting on the customer until {}", flow.day_before));
}

/// R4.4 the call on the day before the first visit, with the 21:00 deadline.
fn day_before_call(case: &mut CaseCore, flow: &mut Flow, ctx: &mut Ctx) {
    let today = ctx.cal().local_date(ctx.now);
    // R9.1 the first call's report never came: not reached.
    if flow.attempts.lapse(case, ctx.now, "when the day-before call fell due").is_some() && !flow.sms1_sent {
        sms1(case, flow, ctx);
    }
    // The first-call task, if still pending, is overtaken by this one.
    ctx.cancel(case, &[TimerKind::CallAttempt]);
    flow.stage = Stage::DayBefore;
    flow.state = State::DayBefore;
    flow.day_before = today;
    ctx.ticket(case, |t| t.group = Group::CustomerCare);
    stage_call(case, flow, "Last day to pay the package before the first visit (R4.4)", ctx);
    let deadline = ctx.cal().at(today, ctx.policy.package_payment.payment_deadline_time).max(ctx.now);
    ctx.place(case, TimerKind::PaymentDeadline, deadline);
    ctx.decided(case, format!("R4.4 day-before call; unpaid at {} → the package is cancelled", ctx.cal().rfc3339(deadline)));
}

/// R4.4 the package and its visits cancelled (by the package, asked here); with `sms2`, SMS2 and the R4.5 final call.
fn cancel_for_non_payment(case: &mut CaseCore, flow: &mut Flow, sms2: bool, ctx: &mut Ctx) {
    ctx.cancel(case, &[TimerKind::CallAttempt, TimerKind::PaymentDeadline]);
    let reason = if sms2 { "not_paid" } else { "declined" };
    ctx.intend(case, Intent::CancelPackage { reason: reason.into() });
    if sms2 {
        ctx.sms(case, TemplateId::Sms2, &SmsVars::default());
        let cal = ctx.cal().clone();
        let final_day = cal.next_working_day(flow.day_before);
        flow.stage = Stage::Final;
        flow.state = State::FinalCall;
        flow.final_day = Some(final_day);
        ctx.ticket(case, |t| {
            t.status = TicketStatus::WaitingOnCustomer;
            t.resolution_due = Some(cal.at(final_day, cal.work_end()));
        });
        ctx.place(case, TimerKind::CallAttempt, cal.at(final_day, ctx.policy.package_payment.final_call_time));
        ctx.decided(case, format!("R4.4 package cancelled for non-payment, SMS2; final call on {final_day} (R4.5)"));
    } else {
        close(case, flow, TicketResult::Declined, ctx);
        ctx.decided(case, "declined: package and visits cancelled");
    }
}

fn close(case: &mut CaseCore, flow: &mut Flow, result: TicketResult, ctx: &mut Ctx) {
    ctx.finish(case, TicketStatus::Closed, result);
    flow.state = State::Closed;
}

/// The payment command of R4.2 for the package's method.
fn payment_command(case: &mut CaseCore, flow: &mut Flow, pkg: &Package, ctx: &mut Ctx) {
    let request = PaymentRequest {
        package_id: pkg.package_id.clone(),
        amount: pkg.price.clone(),
        payment_method: pkg.payment_method,
        phone: pkg.customer.phone.clone(),
        pay_before: pkg.first_visit().map(|v| ctx.cal().rfc3339(v.window_start)),
    };
    let body = match pkg.payment_method {
        PaymentMethod::Card => CommandBody::SendPaymentLink(request),
        PaymentMethod::Cash => CommandBody::RequestCashCollection(request),
    };
    let kind = body.kind();
    ctx.command(case, body);
    flow.state = State::AwaitingPayment;
    if matches!(case.ticket.status, TicketStatus::Open | TicketStatus::WaitingOnCustomer) {
        ctx.ticket(case, |t| t.status = TicketStatus::Pending);
    }
    ctx.decided(case, format!("R4.2 will pay by {}: {kind}; waiting for package.paid", pkg.payment_method));
}

impl Playbook for PackagePayment {
    const NAME: PlaybookName = PlaybookName::PackagePayment;
    type Flow = Flow;
    type Subject = Package;
    type Opening = ();

    /// R4.1 opens the chase for a package booked unpaid.
    fn open(case_id: String, pkg: &Package, _: &(), ctx: &mut Ctx) -> (CaseCore, Flow) {
        let cal = ctx.cal().clone();
        let first_visit = pkg.first_visit().map(|v| v.window_start).unwrap_or(ctx.now);
        let scheduled_day_before = working_day_before(&cal, cal.local_date(first_visit));
        // R9.7 the first call counts from the booking; one that fell due before it arrived is taken now.
        let first_call = ctx.catch_up(cal.working_moment(ctx.occurred));
        // R4.7 the day-before step's day has come (or passed) by the first call.
        let late = cal.local_date(first_call) >= scheduled_day_before;
        let day_before = if late { cal.local_date(first_call) } else { scheduled_day_before };
        let ticket = Ticket::open("package", "payment", "not_paid", Priority::Medium, Group::CustomerSuccess, &pkg.area).tagged("not_paid");
        let mut flow = Flow {
            state: State::Chasing,
            stage: Stage::First,
            payment_method: pkg.payment_method,
            day_before,
            final_day: None,
            sms1_sent: false,
            late,
            attempts: Attempts::default(),
        };
        let mut case = CaseCore::open(case_id, pkg.customer.clone(), ticket, ctx.now).about_package(&pkg.package_id);
        case.note(
            ctx.now,
            TimelineKind::Event,
            format!(
                "package.booked unpaid: {} {} by {}, first visit {}",
                pkg.price.amount,
                pkg.price.currency,
                pkg.payment_method,
                cal.rfc3339(first_visit)
            ),
        );
        ctx.decided(&mut case, "R4.1 not_paid ticket opened for customer_success");
        if first_call <= ctx.now {
            first_call_task(&mut case, &mut flow, ctx);
        } else {
            ctx.place(&mut case, TimerKind::CallAttempt, first_call);
        }
        if late {
            let deadline = cal.at(day_before, ctx.policy.package_payment.payment_deadline_time).max(ctx.now);
            ctx.decided(
                &mut case,
                format!(
                    "R4.7 the first visit is close: R4.1's call, and unpaid at {} the package is cancelled (R4.4)",
                    cal.rfc3339(deadline)
                ),
            );
            ctx.place(&mut case, TimerKind::PaymentDeadline, deadline);
        } else {
            let at = cal.at(day_before, ctx.policy.package_payment.day_before_call_time);
            ctx.place(&mut case, TimerKind::CallAttempt, at);
        }
        (case, flow)
    }

    fn state(flow: &Flow) -> &'static str {
        flow.state.as_str()
    }

    fn refuses(resolution: &Resolution) -> Option<&'static str> {
        matches!(resolution, Resolution::Rebooked { .. })
            .then_some("a rebooked resolution does not apply to package_payment cases; use will_pay")
    }

    fn on_timer(case: &mut CaseCore, flow: &mut Flow, kind: TimerKind, pkg: &Package, ctx: &mut Ctx) {
        if flow.is_done() {
            return;
        }
        let today = ctx.cal().local_date(ctx.now);
        match kind {
            TimerKind::CallAttempt => {
                if let Some(final_day) = flow.final_day {
                    if today >= final_day {
                        flow.state = State::FinalCall;
                        stage_call(case, flow, "Final call about the cancelled unpaid package (R4.5)", ctx);
                        // R9.1 the last call waits for its report until the end of its working day.
                        let end_of_day = ctx.cal().at(today, ctx.cal().work_end()).max(ctx.now);
                        ctx.place(case, TimerKind::ReportDue, end_of_day);
                    }
                } else if today >= flow.day_before && !flow.late {
                    day_before_call(case, flow, ctx);
                } else {
                    first_call_task(case, flow, ctx);
                }
            }
            TimerKind::PaymentDeadline if flow.stage != Stage::Final && !pkg.paid => {
                // R9.1 an unreported first call is not reached: R4.3's SMS1 (R4.7 v2), as on a report.
                let lapsed = flow.attempts.lapse(case, ctx.now, "by the payment deadline").is_some();
                if lapsed && flow.stage == Stage::First && !flow.sms1_sent && flow.state == State::Chasing {
                    sms1(case, flow, ctx);
                }
                ctx.decided(case, "R4.4 still unpaid at the deadline");
                cancel_for_non_payment(case, flow, true, ctx);
            }
            // R4.5 the final call's report never came: not reached.
            TimerKind::ReportDue if flow.stage == Stage::Final => {
                let lapsed = flow.attempts.lapse(case, ctx.now, "by the end of its working day");
                if lapsed.is_some() {
                    close(case, flow, TicketResult::Unreachable, ctx);
                    ctx.decided(case, "R4.5 final call not reached: ticket closed");
                }
            }
            _ => {}
        }
    }

    /// Answered with `will_pay` or a decline on a live chase, or answered at all on R4.5's final
    /// call, also when R9.1 closed it unreachable before the report came (v3).
    fn resolves(case: &CaseCore, flow: &Flow, call: &CallCompleted) -> bool {
        let final_call = flow.stage == Stage::Final
            && (flow.state == State::FinalCall || case.ticket.result == Some(TicketResult::Unreachable) && flow.state == State::Closed);
        call.outcome.reached()
            && (final_call
                || !flow.is_done()
                    && matches!(call.resolution, Some(Resolution::WillPay) | Some(Resolution::Declined { follow_up: false, .. })))
    }

    fn on_call(case: &mut CaseCore, flow: &mut Flow, call: &CallCompleted, pkg: &Package, ctx: &mut Ctx) -> Result<(), Refusal> {
        if flow.is_done() && !(flow.stage == Stage::Final && Self::resolves(case, flow, call)) {
            ctx.decided(case, format!("outcome recorded; the case is already {}", flow.state));
            return Ok(());
        }
        let early = matches!(flow.attempts.report(), Report::Early(_));
        ctx.cancel(case, &[TimerKind::ReportDue]);
        if flow.stage == Stage::First && early {
            // An early outcome spends a first-call task still pending, never the day-before one.
            let boundary = ctx.cal().at(flow.day_before, NaiveTime::MIN);
            let keep: Vec<_> = case.timers.iter().filter(|t| t.kind == TimerKind::CallAttempt && t.due_at >= boundary).cloned().collect();
            case.timers.retain(|t| !(t.kind == TimerKind::CallAttempt && t.due_at >= boundary));
            ctx.cancel(case, &[TimerKind::CallAttempt]);
            case.timers.extend(keep);
        }
        if !call.outcome.reached() {
            match flow.stage {
                Stage::First if !flow.sms1_sent && flow.state == State::Chasing => sms1(case, flow, ctx),
                Stage::DayBefore if flow.state != State::AwaitingPayment => {
                    ctx.decided(case, "R4.4 day-before call not reached");
                    cancel_for_non_payment(case, flow, true, ctx);
                }
                Stage::Final if flow.state != State::AwaitingPayment => {
                    close(case, flow, TicketResult::Unreachable, ctx);
                    ctx.decided(case, "R4.5 final call not reached: ticket closed");
                }
                _ => ctx.decided(case, "not reached; recorded"),
            }
            return Ok(());
        }
        if flow.stage == Stage::Final {
            // R4.5 (v2) reached after the cancellation: no payment link, the package is gone.
            ctx.finish(case, TicketStatus::Resolved, TicketResult::ReachedAfterCancellation);
            flow.state = State::Closed;
            ctx.decided(case, "R4.5 final call reached: resolved; the package stays cancelled (a renewal is a new booking)");
            return Ok(());
        }
        match &call.resolution {
            Some(Resolution::WillPay) => payment_command(case, flow, pkg, ctx),
            // R9.3 (v3) a call task at the time the customer asked for, on which the case waits.
            Some(Resolution::FollowUpLater { at }) => {
                // The chase's own steps (R4.4's day-before call and deadline) stay as they are.
                let due = ctx.cal().working_moment((*at).max(ctx.now));
                ctx.place(case, TimerKind::CallAttempt, due);
                ctx.decided(case, format!("R9.3 follow up later at {}", ctx.cal().rfc3339(due)));
            }
            Some(Resolution::Declined { follow_up: false, reason, .. }) => {
                ctx.decided(case, format!("declined: {reason}"));
                cancel_for_non_payment(case, flow, false, ctx);
            }
            _ => ctx.decided(case, "answered without a payment promise; the chase goes on"),
        }
        Ok(())
    }

    fn on_subject(case: &mut CaseCore, flow: &mut Flow, event: &SubjectEvent, pkg: &Package, ctx: &mut Ctx) {
        match event {
            // R4.6 `package.paid` at any point: resolved, timers cancelled, no later payment SMS.
            SubjectEvent::PackagePaid if flow.is_done() => {
                ctx.decided(case, format!("package.paid recorded; the case is already {}", flow.state));
            }
            SubjectEvent::PackagePaid => {
                ctx.finish(case, TicketStatus::Resolved, TicketResult::Paid);
                flow.state = State::Paid;
                ctx.decided(case, "R4.6 paid: resolved");
                if pkg.status == PackageStatus::Cancelled {
                    ctx.decided(case, "the package was already cancelled for non-payment (R4.4); re-book it on the dashboard");
                }
            }
            // The customer cancelled the package: the chase stops.
            SubjectEvent::PackageCancelled if !flow.is_done() => {
                ctx.finish(case, TicketStatus::Closed, TicketResult::PackageCancelled);
                flow.state = State::Withdrawn;
                ctx.decided(case, "package cancelled by the customer: chase stopped");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! Given an unpaid package, when calls, payments and timers arrive, then these effects.
    use super::*;
    use crate::domain::effects::TimerRef;
    use crate::domain::events::{EventBody, Input};
    use crate::domain::records::case::CallOutcome;
    use crate::domain::testkit::*;

    use chrono::{DateTime, Utc};

    const MON: &str = "2026-03-02T10:00:00+02:00";

    /// Booked unpaid on Monday 10:00; first visit Monday 2026-03-09 (the day before: Sunday 03-08).
    fn opened() -> (World, String) {
        let mut w = World::new();
        let id = w.when(weekly(false), MON).unwrap().expect("R4.1 opens a case");
        (w, id)
    }

    fn f(w: &World, id: &str) -> Flow {
        match &w.case(id).flow {
            super::super::CaseFlow::PackagePayment(f) => f.clone(),
            _ => unreachable!(),
        }
    }

    fn paid() -> Input {
        event(EventBody::from(PackagePaid { package_id: "P1".into() }))
    }

    fn at(s: &str) -> DateTime<Utc> {
        t(s)
    }

    #[test]
    fn r4_1_opens_with_the_not_paid_tag_and_a_call_now() {
        let (w, id) = opened();
        assert_eq!(id, "p1-P1");
        let c = w.case(&id);
        assert_eq!(c.playbook(), "package_payment");
        assert_eq!(c.package_id.as_deref(), Some("P1"));
        assert_eq!((c.ticket.status, c.ticket.group), (TicketStatus::Open, Group::CustomerSuccess));
        assert_eq!(c.ticket.tags, vec!["not_paid".to_string()]);
        assert_eq!(w.commands(), vec!["call_customer"]);
        let task = w.command("call_customer").unwrap();
        assert_eq!((task.data["package_id"].as_str(), task.data["due"].as_str()), (Some("P1"), Some(MON)));
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-08T09:00:00+02:00")], "R4.4 the day before, 09:00");
    }

    #[test]
    fn r4_1_outside_working_hours_the_call_waits_for_the_next_opening() {
        let mut w = World::new();
        // Thursday 22:00 → Saturday 09:00 (Friday off).
        let id = w.when(weekly(false), "2026-03-05T22:00:00+02:00").unwrap().unwrap();
        assert!(w.commands().is_empty());
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-07T09:00:00+02:00"), at("2026-03-08T09:00:00+02:00")]);
        let (kind, _) = w.fire_next(&id);
        assert_eq!(kind, TimerKind::CallAttempt);
        assert_eq!(w.commands(), vec!["call_customer"]);
        assert_eq!(w.command("call_customer").unwrap().data["stage"], "first");
        assert_eq!(w.case(&id).ticket.group, Group::CustomerSuccess);
    }

    #[test]
    fn r4_2_will_pay_sends_the_link_or_the_cash_collection() {
        let (mut w, id) = opened();
        w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.commands(), vec!["send_payment_link"]);
        assert_eq!(w.command("send_payment_link").unwrap().data["amount"]["amount"], 200_000);
        assert_eq!(f(&w, &id).state, State::AwaitingPayment);
        assert!(w.sent_sms().is_empty());

        let mut w = World::new();
        let cash = package_booked(false, PaymentMethod::Cash, "2026-03-09", &["2026-03-09T10:00:00+02:00"], 90_000);
        let id = w.when(cash, MON).unwrap().unwrap();
        w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.commands(), vec!["request_cash_collection"]);
        // Still unpaid the day before: R4.4 applies all the same.
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-08T09:00:00+02:00")]);
    }

    #[test]
    fn r4_3_not_reached_waits_on_the_customer_with_sms1() {
        let (mut w, id) = opened();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:30:00+02:00").unwrap();
        let c = w.case(&id);
        assert_eq!(c.ticket.status, TicketStatus::WaitingOnCustomer);
        assert_eq!(c.ticket.resolution_due, Some(at("2026-03-08T21:00:00+02:00")), "the day before the first visit");
        let sms = w.sent_sms();
        assert_eq!(sms.len(), 1);
        assert_eq!((sms[0].template, sms[0].case_id.as_deref()), (TemplateId::Sms1, Some(id.as_str())));
        assert_eq!(sms[0].segments, 3, "UCS-2: 67 characters per part");
        // SMS1 goes once.
        w.when(call(&id, CallOutcome::Busy, None), "2026-03-03T10:30:00+02:00").unwrap();
        assert!(w.sent_sms().is_empty());
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-08T09:00:00+02:00")], "the day-before call stays");
    }

    #[test]
    fn r4_4_day_before_call_not_reached_cancels_with_sms2() {
        let (mut w, id) = opened();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:30:00+02:00").unwrap();
        w.fire_next(&id);
        assert_eq!(w.commands(), vec!["call_customer"]);
        assert_eq!(w.command("call_customer").unwrap().data["stage"], "day_before");
        assert_eq!(w.case(&id).ticket.group, Group::CustomerCare);
        assert_eq!(w.dues(&id, TimerKind::PaymentDeadline), vec![at("2026-03-08T21:00:00+02:00")]);

        w.when(call(&id, CallOutcome::Voicemail, None), "2026-03-08T09:20:00+02:00").unwrap();
        assert_eq!(w.commands(), vec!["cancel_package", "cancel_package_visits"]);
        assert_eq!(w.command("cancel_package_visits").unwrap().data["visit_ids"], serde_json::json!(["V1", "V2", "V3", "V4"]));
        assert_eq!(w.sent_sms().iter().map(|s| s.template).collect::<Vec<_>>(), vec![TemplateId::Sms2]);
        let c = w.case(&id);
        assert_eq!(c.ticket.resolution_due, Some(at("2026-03-09T21:00:00+02:00")), "next day");
        assert!(c.pending(TimerKind::PaymentDeadline).is_none());
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-09T09:00:00+02:00")], "R4.5 final call");
        assert_eq!(w.pkg().status, PackageStatus::Cancelled);
        assert!(w.snapshot().timers.is_empty(), "no expiry ticks for a cancelled package");
    }

    #[test]
    fn r4_4_still_unpaid_at_21_cancels() {
        let (mut w, id) = opened();
        w.fire_next(&id);
        w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-08T09:20:00+02:00").unwrap();
        // A not-reached call after the promise on the same day does not cancel early.
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-08T15:00:00+02:00").unwrap();
        assert!(w.commands().is_empty());
        let (kind, due) = w.fire_next(&id);
        assert_eq!((kind, due), (TimerKind::PaymentDeadline, at("2026-03-08T21:00:00+02:00")));
        assert_eq!(w.commands(), vec!["cancel_package", "cancel_package_visits"]);
        assert_eq!(w.sent_sms()[0].template, TemplateId::Sms2);
    }

    #[test]
    fn r4_5_final_call_not_reached_closes_unreachable() {
        let (mut w, id) = opened();
        w.fire_next(&id);
        w.fire_next(&id); // the 21:00 deadline
        let (kind, due) = w.fire_next(&id);
        assert_eq!((kind, due), (TimerKind::CallAttempt, at("2026-03-09T09:00:00+02:00")));
        assert_eq!(w.command("call_customer").unwrap().data["stage"], "final");
        w.when(call(&id, CallOutcome::Busy, None), "2026-03-09T09:10:00+02:00").unwrap();
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Closed, Some("unreachable")));
        assert!(c.timers.is_empty());
        assert!(w.sent_sms().is_empty());
    }

    #[test]
    fn r4_6_payment_at_any_point_resolves_and_silences_the_chase() {
        let (mut w, id) = opened();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:30:00+02:00").unwrap();
        let stale = w.case(&id).timers[0].clone();
        assert_eq!(w.when(paid(), "2026-03-04T12:00:00+02:00").unwrap().as_deref(), Some(id.as_str()));
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Resolved, Some("paid")));
        assert!(c.timers.is_empty());
        assert!(w.pkg().paid);
        // The day-before timer, should it still fire, does nothing.
        let timer = TimerRef { stream: w.snapshot().key.clone(), case_id: Some(id.clone()), kind: stale.kind, step: stale.step };
        w.when(Input::Timer(timer), "2026-03-08T09:00:00+02:00").unwrap();
        assert!(w.effects.is_empty());
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-08T10:00:00+02:00").unwrap();
        assert!(w.sent_sms().is_empty(), "no later payment SMS");
    }

    #[test]
    fn r4_7_v2_first_visit_tomorrow_still_gets_the_first_call_sms1_and_the_21h_deadline() {
        let mut w = World::new();
        let input =
            package_booked(false, PaymentMethod::Card, "2026-03-03", &["2026-03-03T10:00:00+02:00", "2026-03-10T10:00:00+02:00"], 100_000);
        let id = w.when(input, MON).unwrap().unwrap();
        assert_eq!(w.commands(), vec!["call_customer"]);
        assert_eq!(w.command("call_customer").unwrap().data["stage"], "first", "R4.1's call");
        assert_eq!(w.case(&id).ticket.group, Group::CustomerSuccess);
        assert_eq!(w.dues(&id, TimerKind::PaymentDeadline), vec![at("2026-03-02T21:00:00+02:00")]);
        assert!(w.dues(&id, TimerKind::CallAttempt).is_empty());
        // Not reached: R4.3's SMS1, and the customer has until 21:00 to pay.
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:20:00+02:00").unwrap();
        assert_eq!(w.sms(), vec![TemplateId::Sms1]);
        assert!(w.commands().is_empty(), "no cancel_package minutes after one missed call");
        assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnCustomer);
        // Still unpaid at 21:00: R4.4 cancels, SMS2, the final call on the next working day.
        assert_eq!(w.fire_next(&id), (TimerKind::PaymentDeadline, at("2026-03-02T21:00:00+02:00")));
        assert_eq!(w.commands(), vec!["cancel_package", "cancel_package_visits"]);
        assert_eq!(w.sms(), vec![TemplateId::Sms2]);
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-03T09:00:00+02:00")]);
    }

    #[test]
    fn r4_7_v2_paid_before_the_deadline_is_not_cancelled() {
        let mut w = World::new();
        let input = package_booked(false, PaymentMethod::Card, "2026-03-03", &["2026-03-03T10:00:00+02:00"], 100_000);
        let id = w.when(input, MON).unwrap().unwrap();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:20:00+02:00").unwrap();
        w.when(event(EventBody::from(PackagePaid { package_id: "P1".into() })), "2026-03-02T18:00:00+02:00").unwrap();
        assert_eq!(w.case(&id).ticket.result, Some(TicketResult::Paid));
        assert!(w.case(&id).timers.is_empty(), "the deadline is gone");
    }

    #[test]
    fn r4_7_booked_after_the_deadline_still_gets_one_call() {
        let mut w = World::new();
        // Wednesday 22:00 for a Thursday visit: the call is Thursday 09:00, deadline Thursday 21:00.
        let input = package_booked(false, PaymentMethod::Cash, "2026-03-05", &["2026-03-05T14:00:00+02:00"], 100_000);
        let id = w.when(input, "2026-03-04T22:00:00+02:00").unwrap().unwrap();
        assert!(w.commands().is_empty());
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-05T09:00:00+02:00")]);
        assert_eq!(w.dues(&id, TimerKind::PaymentDeadline), vec![at("2026-03-05T21:00:00+02:00")]);
        w.fire_next(&id);
        assert_eq!(w.command("call_customer").unwrap().data["stage"], "first");
    }

    #[test]
    fn r4_4_a_saturday_visit_is_called_on_thursday() {
        let mut w = World::new();
        let input = package_booked(false, PaymentMethod::Card, "2026-03-14", &["2026-03-14T10:00:00+02:00"], 100_000);
        let id = w.when(input, MON).unwrap().unwrap();
        assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![at("2026-03-12T09:00:00+02:00")]);
    }

    #[test]
    fn declined_cancels_without_sms2_and_rebooked_does_not_apply() {
        let (mut w, id) = opened();
        let e = w
            .when(
                call(&id, CallOutcome::Answered, Some(Resolution::Rebooked { window_start: at(MON), window_end: at(MON) })),
                "2026-03-02T10:30:00+02:00",
            )
            .unwrap_err();
        assert_eq!((e.kind, e.code.as_str()), (RefusalKind::Rule, "resolution_not_applicable"));
        let declined = Resolution::Declined { reason: "too expensive".into(), complaint: false, follow_up: false };
        w.when(call(&id, CallOutcome::Answered, Some(declined)), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.commands(), vec!["cancel_package", "cancel_package_visits"]);
        assert!(w.sent_sms().is_empty());
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Closed, Some("declined")));
    }

    #[test]
    fn r4_5_v2_reached_on_the_final_call_resolves_without_a_payment_link() {
        let (mut w, id) = opened();
        w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T10:30:00+02:00").unwrap();
        w.fire_next(&id); // the day-before call, Sunday 09:00
        w.when(call(&id, CallOutcome::Busy, None), "2026-03-08T09:20:00+02:00").unwrap();
        assert_eq!(w.fire_next(&id).0, TimerKind::CallAttempt, "the final call");
        w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-09T09:10:00+02:00").unwrap();
        assert!(w.commands().is_empty(), "no send_payment_link for a cancelled package");
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Resolved, Some(TicketResult::ReachedAfterCancellation)));
        assert!(c.timers.is_empty());
    }

    #[test]
    fn r9_1_an_unreported_final_call_closes_the_ticket_at_the_end_of_its_day() {
        let (mut w, id) = opened();
        w.fire_next(&id); // the day-before call; the first call (at booking) was never reported
        assert_eq!(w.sms(), vec![TemplateId::Sms1], "R9.1 the unreported first call is not reached: SMS1");
        assert_eq!(w.fire_next(&id).0, TimerKind::PaymentDeadline);
        assert_eq!(w.sms(), vec![TemplateId::Sms2]);
        assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, at("2026-03-09T09:00:00+02:00")));
        assert_eq!(w.fire_next(&id), (TimerKind::ReportDue, at("2026-03-09T21:00:00+02:00")));
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Closed, Some(TicketResult::Unreachable)));
        assert_eq!(c.attempts.iter().filter(|a| a.outcome == CallOutcome::Unreported).count(), 3);
    }

    #[test]
    fn r9_1_v3_the_final_call_reported_answered_after_21h_resolves_the_closed_case() {
        let (mut w, id) = opened();
        w.fire_next(&id);
        w.fire_next(&id);
        w.fire_next(&id); // R4.5 the final call, Monday 09:00
        w.fire_next(&id); // its report deadline, 21:00: closed unreachable
        assert_eq!(w.case(&id).ticket.result, Some(TicketResult::Unreachable));
        // A late no-answer resolves nothing.
        w.when_late(call(&id, CallOutcome::NoAnswer, None), "2026-03-09T09:05:00+02:00", "2026-03-09T21:30:00+02:00").unwrap();
        assert!(w.effects.is_empty());
        // The answer came at 09:20 but is reported at 22:00: R4.5 (v2) acts from now.
        w.when_late(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-09T09:20:00+02:00", "2026-03-09T22:00:00+02:00")
            .unwrap();
        let c = w.case(&id);
        assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Resolved, Some(TicketResult::ReachedAfterCancellation)));
        assert!(w.command("send_payment_link").is_none(), "the package is already cancelled");
        assert!(w.command("interaction_summary").is_some(), "R9.5 the call that acted is summarised");
    }

    #[test]
    fn r9_3_v3_follow_up_later_places_the_call_the_case_waits_on() {
        let (mut w, id) = opened();
        let later = Resolution::FollowUpLater { at: at("2026-03-04T22:00:00+02:00") };
        w.when(call(&id, CallOutcome::Answered, Some(later)), "2026-03-02T10:30:00+02:00").unwrap();
        assert_eq!(w.dues(&id, TimerKind::CallAttempt)[0], at("2026-03-05T09:00:00+02:00"), "moved into working hours");
        assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, at("2026-03-05T09:00:00+02:00")));
        assert_eq!(w.commands(), vec!["call_customer"]);
    }

    #[test]
    fn r9_7_v3_the_first_call_counts_from_the_booking() {
        // Booked Sunday 20:50, delivered Monday 09:30: the first call (Monday 09:00) is taken at once.
        let mut w = World::new();
        let id = w.when_late(weekly(false), "2026-03-01T20:50:00+02:00", "2026-03-02T09:30:00+02:00").unwrap().unwrap();
        assert_eq!(w.command("call_customer").unwrap().data["due"], "2026-03-02T09:30:00+02:00");
        let booked = w.case(&id).timeline.iter().find(|l| l.kind == TimelineKind::Event).unwrap();
        assert_eq!(booked.occurred_at, Some(at("2026-03-01T20:50:00+02:00")), "R9.7 occurred_at on the event's line");
    }
}
