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
use crate::domain::commands::{CallCustomer, CallStage as Stage, CommandBody, PackageCancelReason, PaymentRequest};
use crate::domain::ctx::{Ctx, Intent};
use crate::domain::events::{CallCompleted, PaymentMethod, Resolution};
use crate::domain::records::case::{CaseCore, Group, Priority, Ticket, TicketKind, TicketResult, TicketStatus, TimelineKind, TimerKind};
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
    let task = CallCustomer { stage: Some(flow.stage), attempt: Some(n), ..CallCustomer::default() };
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
    let reason = if sms2 { PackageCancelReason::NotPaid } else { PackageCancelReason::Declined };
    ctx.intend(case, Intent::CancelPackage { reason });
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
        let ticket = Ticket::open(TicketKind::NotPaid, Priority::Medium, Group::CustomerSuccess, &pkg.area).tagged("not_paid");
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
mod tests;
