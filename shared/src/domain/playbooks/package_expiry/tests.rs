//! Given a paid package, when its expiry ticks and calls arrive, then these effects.
use super::*;
use crate::domain::effects::Effect;
use crate::domain::events::{EventBody, PaymentMethod};
use crate::domain::records::case::CallOutcome;
use crate::domain::testkit::*;

const MON: &str = "2026-03-02T10:00:00+02:00";

/// Paid, start 2026-03-09: Day 1 = Thursday 2026-04-09, Day 6 = Tuesday 04-14, Day 15 = 04-23.
fn expired(completed: &[&str]) -> (World, String) {
    let mut w = World::new();
    w.when(weekly(true), MON).unwrap();
    for v in completed {
        w.when(visit(|package_id, visit_id| EventBody::from(VisitCompleted { package_id, visit_id }), v), "2026-03-20T12:00:00+02:00")
            .unwrap();
    }
    let id = w.fire_subject_at(TimerKind::ExpiryDay1, None).expect("R5.2 opens a case");
    (w, id)
}

fn sms_bodies(w: &World) -> Vec<(TemplateId, String)> {
    w.sent_sms().into_iter().map(|s| (s.template, s.body)).collect()
}

#[test]
fn r5_2_day1_opens_a_case_with_a_call() {
    let (w, id) = expired(&["V1"]);
    let c = w.case(&id);
    assert_eq!((c.playbook().as_str(), c.package_id.as_deref()), ("package_expiry", Some("P1")));
    assert_eq!((c.ticket.status, c.ticket.group), (TicketStatus::Open, Group::CustomerSuccess));
    assert_eq!(c.ticket.resolution_due, Some(t("2026-04-23T00:00:00+02:00")));
    assert_eq!(c.opened_at, t("2026-04-09T09:00:00+02:00"));
    assert_eq!(w.commands(), vec!["call_customer"]);
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-04-14T09:00:00+02:00")], "R5.3 Day 6");
}

#[test]
fn r5_2_no_case_when_unpaid_cancelled_or_used_up() {
    // Unpaid (and never cancelled).
    let mut w = World::new();
    w.when(weekly(false), MON).unwrap();
    w.snapshot.as_mut().unwrap().cases.clear();
    assert_eq!(w.fire_subject_at(TimerKind::ExpiryDay1, None), None);
    // Every visit used.
    let mut w = World::new();
    w.when(package_booked(true, PaymentMethod::Card, "2026-03-09", &["2026-03-09T10:00:00+02:00"], 50_000), MON).unwrap();
    w.when(visit(|package_id, visit_id| EventBody::from(VisitCompleted { package_id, visit_id }), "V1"), "2026-03-09T12:00:00+02:00")
        .unwrap();
    assert_eq!(w.fire_subject_at(TimerKind::ExpiryDay1, None), None);
    assert!(w.snapshot().cases.is_empty());
    assert!(w.pkg().timeline.iter().any(|e| e.detail.contains("R5.2")));
}

#[test]
fn r5_2_first_call_not_reached_sends_sms3_with_the_remaining_visits() {
    let (mut w, id) = expired(&["V1"]);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-04-09T09:30:00+02:00").unwrap();
    let sms = w.sent_sms();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].template, TemplateId::Sms3);
    assert!(sms[0].body.contains("لديك 3 زيارات متبقية"), "X = 3 remaining");
    assert!(sms[0].body.contains("في خلال إسبوعين"));
    assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnCustomer);
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-04-14T09:00:00+02:00")]);
    w.when(call(&id, CallOutcome::Busy, None), "2026-04-10T09:30:00+02:00").unwrap();
    assert!(w.sent_sms().is_empty(), "SMS3 once");
}

#[test]
fn r5_3_day6_second_call_not_reached_sends_sms4_and_closes() {
    let (mut w, id) = expired(&[]);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-04-09T09:30:00+02:00").unwrap();
    let (kind, due) = w.fire_next(&id);
    assert_eq!((kind, due), (TimerKind::CallAttempt, t("2026-04-14T09:00:00+02:00")));
    assert_eq!(w.command("call_customer").unwrap().data["attempt"], 2);
    w.when(call(&id, CallOutcome::Voicemail, None), "2026-04-14T09:30:00+02:00").unwrap();
    let bodies = sms_bodies(&w);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].0, TemplateId::Sms4);
    assert!(bodies[0].1.contains("لديك 4 زيارات متبقية") && bodies[0].1.contains("في خلال إسبوع "));
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Closed, Some("unreachable")));
    assert!(c.timers.is_empty());
}

#[test]
fn r9_1_v3_the_day6_call_rebooked_but_reported_after_21h_resolves_the_closed_case() {
    let (mut w, id) = expired(&[]);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-04-09T09:30:00+02:00").unwrap();
    w.fire_next(&id); // Day 6, the second call
    assert_eq!(w.fire_next(&id).0, TimerKind::ReportDue, "unreported by 21:00");
    assert_eq!(w.case(&id).ticket.result, Some(TicketResult::Unreachable));
    let rebooked = Resolution::Rebooked { window_start: t("2026-04-16T10:00:00+02:00"), window_end: t("2026-04-16T12:00:00+02:00") };
    w.when_late(call(&id, CallOutcome::Answered, Some(rebooked)), "2026-04-14T09:40:00+02:00", "2026-04-14T21:30:00+02:00").unwrap();
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Resolved, Some(TicketResult::Rebooked)));
    assert!(w.sent_sms().is_empty(), "R5.5 no later SMS");
}

#[test]
fn r9_3_v3_follow_up_later_on_the_day6_call_leaves_a_call_to_wait_on() {
    let (mut w, id) = expired(&[]);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-04-09T09:30:00+02:00").unwrap();
    w.fire_next(&id);
    let later = Resolution::FollowUpLater { at: t("2026-04-16T11:00:00+02:00") };
    w.when(call(&id, CallOutcome::Answered, Some(later)), "2026-04-14T09:30:00+02:00").unwrap();
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-04-16T11:00:00+02:00")]);
    assert_eq!(w.fire_next(&id).0, TimerKind::CallAttempt);
    assert_eq!(w.commands(), vec!["call_customer"]);
}

#[test]
fn r5_4_end_of_grace_deactivates_and_forfeits() {
    let (mut w, id) = expired(&["V1", "V2"]);
    w.fire_subject_at(TimerKind::ExpiryDeactivate, None);
    assert_eq!(w.commands(), vec!["deactivate_package"]);
    let c = w.command("deactivate_package").unwrap();
    assert_eq!(c.case_id.as_deref(), Some(id.as_str()));
    assert_eq!(c.at, t("2026-04-23T00:00:00+02:00"));
    assert_eq!((c.data["package_id"].as_str(), c.data["forfeited_visits"].as_u64()), (Some("P1"), Some(2)));
    assert_eq!(w.pkg().status, PackageStatus::Deactivated);
    assert_eq!(w.pkg().remaining(), 0);
    let case = w.case(&id);
    assert_eq!((case.ticket.status, case.ticket.result.map(TicketResult::as_str)), (TicketStatus::Closed, Some("deactivated")));
}

#[test]
fn r5_4_happens_without_a_case_too() {
    let mut w = World::new();
    w.when(weekly(false), MON).unwrap();
    w.when(event(EventBody::from(PackagePaid { package_id: "P1".into() })), "2026-03-03T10:00:00+02:00").unwrap();
    // Its Day 1 tick was lost; grace ends all the same.
    w.fire_subject_at(TimerKind::ExpiryDeactivate, None);
    let c = w.command("deactivate_package").unwrap();
    assert_eq!(c.case_id, None);
    assert_eq!(c.data["forfeited_visits"], 4);
}

#[test]
fn r5_5_rebooked_within_grace_resolves_with_no_later_sms() {
    let (mut w, id) = expired(&["V1"]);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-04-09T09:30:00+02:00").unwrap();
    let r = Resolution::Rebooked { window_start: t("2026-04-18T10:00:00+02:00"), window_end: t("2026-04-18T12:00:00+02:00") };
    w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-04-11T11:00:00+02:00").unwrap();
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Resolved, Some("rebooked")));
    assert!(c.timers.is_empty(), "no Day 6 call");
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-04-14T09:30:00+02:00").unwrap();
    assert!(w.sms().is_empty(), "no later SMS");
}

#[test]
fn r5_1_a_package_booked_on_the_31st() {
    let mut w = World::new();
    w.when(
        package_booked(true, PaymentMethod::Card, "2026-01-31", &["2026-01-31T10:00:00+02:00", "2026-02-07T10:00:00+02:00"], 80_000),
        "2026-01-29T10:00:00+02:00",
    )
    .unwrap();
    assert_eq!(w.subject_due(TimerKind::ExpiryDay1), Some(t("2026-02-28T09:00:00+02:00")), "Jan 31 + 1 month = Feb 28");
    assert_eq!(w.subject_due(TimerKind::ExpiryDeactivate), Some(t("2026-03-14T00:00:00+02:00")));
    assert_eq!(w.pkg().valid_until(1).to_string(), "2026-02-27");
}

#[test]
fn a_day1_falling_on_friday_calls_on_saturday() {
    let mut w = World::new();
    // Start 2026-03-10 → Day 1 is Friday 04-10, a day off.
    w.when(package_booked(true, PaymentMethod::Card, "2026-03-10", &["2026-03-10T10:00:00+02:00"], 50_000), MON).unwrap();
    let id = w.fire_subject_at(TimerKind::ExpiryDay1, None).unwrap();
    assert!(w.commands().is_empty());
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-04-11T09:00:00+02:00"), t("2026-04-15T09:00:00+02:00")]);
    assert!(!w.effects.iter().any(|e| matches!(e, Effect::SendSms(_))));
}

#[test]
fn will_pay_does_not_apply_here() {
    let (mut w, id) = expired(&[]);
    let e = w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-04-09T09:30:00+02:00").unwrap_err();
    assert_eq!(e.code.as_str(), "resolution_not_applicable");
}

#[test]
fn r9_1_unreported_grace_calls_still_send_sms3_and_sms4() {
    let (mut w, id) = expired(&["V1"]);
    // Day 1's call is never reported: at Day 6 it counts as not reached (SMS3), then the second call.
    assert_eq!(w.fire_next(&id).0, TimerKind::CallAttempt);
    assert_eq!(w.sms(), vec![TemplateId::Sms3]);
    assert_eq!(w.command("call_customer").unwrap().data["attempt"], 2);
    assert_eq!(w.fire_next(&id).0, TimerKind::ReportDue);
    assert_eq!(w.sms(), vec![TemplateId::Sms4]);
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Closed, Some(TicketResult::Unreachable)));
}
