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
