//! Given a stream in some state, when an input arrives at some time, then these effects.
use super::*;
use crate::domain::testkit::*;

/// Order O1 with first visit A1 on Tuesday 2026-03-03 10:00.
fn stream(discount_percent: u32, visit_number: u32) -> Snapshot {
    let mut w = World::given(Snapshot::order("O1"));
    w.when(booked("A1", "2026-03-03T10:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00").unwrap();
    let a = w.order_mut().appointment_mut("A1").unwrap();
    (a.area, a.service, a.discount_percent, a.visit_number) = ("Alex".into(), "cleaning".into(), discount_percent, visit_number);
    w.snapshot.unwrap()
}

fn cancel(by: CancelledBy, wants_follow_up: bool, availability: Option<Availability>) -> Input {
    event(EventBody::from(AppointmentCancelled {
        appointment_id: "A1".into(),
        cancelled_by: by,
        reason: "moving".into(),
        wants_follow_up,
        availability,
    }))
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
        assert_eq!(w.order().appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
    }
    let mut w = World::given(stream(0, 2));
    assert_eq!(w.when(cancel(CancelledBy::Ops, true, None), MON).unwrap(), None, "R2.1 first visits only");
}

#[test]
fn r2_1_ticket_view_and_reason_on_the_timeline() {
    let (w, id) = opened(CancelledBy::Customer);
    let c = w.case(&id);
    assert_eq!(
        (c.ticket.kind.category(), c.ticket.kind.sub_category(), c.ticket.kind.as_str()),
        ("follow_up", "customer_care", "follow_up")
    );
    assert_eq!((c.ticket.status, c.ticket.priority, c.ticket.group), (TicketStatus::Open, Priority::Low, Group::CustomerCare));
    assert_eq!(c.ticket.area, "Alex");
    assert!(c.timeline.iter().any(|e| e.detail.contains("moving")));
    assert_eq!(c.version, 1);
}

/// A second appointment, A2, booked on the same order.
fn book_a2(w: &mut World) {
    let mut a2 = w.order().appointments[0].clone();
    a2.appointment_id = "A2".into();
    a2.status = AppointmentStatus::Booked;
    w.order_mut().appointments.push(a2);
}

#[test]
fn r2_2_the_older_open_case_of_the_order_is_closed_as_duplicate() {
    let (mut w, first) = opened(CancelledBy::Customer);
    book_a2(&mut w);
    let input = event(EventBody::from(AppointmentCancelled {
        appointment_id: "A2".into(),
        cancelled_by: CancelledBy::Ops,
        reason: "no technician".into(),
        wants_follow_up: false,
        availability: None,
    }));
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
    for (by, discount, coupon) in
        [(CancelledBy::Customer, 0, true), (CancelledBy::Ops, 0, true), (CancelledBy::NoShow, 0, false), (CancelledBy::Customer, 10, false)]
    {
        let mut w = World::given(stream(discount, 1));
        let id = w.when(cancel(by, true, None), MON).unwrap().unwrap();
        assert_eq!(w.sms() == vec![TemplateId::DiscountOffer], coupon, "{by} discount={discount}");
        assert!(w.case(&id).appointment_id.is_some());
        assert_eq!(w.appointment("A1").coupon.is_some(), coupon);
        if let Some(c) = &w.appointment("A1").coupon {
            assert_eq!(c.discount, Percent::whole(15));
            assert!(c.code.starts_with("FU-") && c.code.len() == 15);
            assert_eq!(c.valid_until.to_string(), "2026-04-01");
        }
    }
}

#[test]
fn r2_3_coupon_codes_are_unique_per_appointment() {
    let codes: std::collections::BTreeSet<String> = (1..500).map(|i| coupon_code(&format!("o{i}-O{i}"))).collect();
    assert_eq!(codes.len(), 499);
}

#[test]
fn r2_4_unsure_availability_requests_an_appointment_four_weeks_out() {
    let mut w = World::given(stream(0, 1));
    let id = w.when(cancel(CancelledBy::Customer, true, Some(Availability::Unsure)), MON).unwrap().unwrap();
    let request = w.command("create_appointment_request").expect("R2.4 request");
    assert_eq!(request.data["not_before"], "2026-03-30");
    assert!(w.case(&id).appointment_id.is_some());
    assert_eq!(
        w.appointment("A1").coupon.as_ref().unwrap().valid_until.to_string(),
        "2026-04-01",
        "the longer of 30 days and the request date"
    );

    let mut p = Policy::default();
    p.cancellation_follow_up.coupon_valid_days = 7;
    let mut w = World { policy: p, ..World::given(stream(0, 1)) };
    let id = w.when(cancel(CancelledBy::Customer, true, Some(Availability::Unsure)), MON).unwrap().unwrap();
    assert!(w.case(&id).appointment_id.is_some());
    assert_eq!(w.appointment("A1").coupon.as_ref().unwrap().valid_until.to_string(), "2026-03-30", "valid until the request date");
}

#[test]
fn r2_5_two_attempts_on_the_next_two_working_days_and_first_outcome_pends() {
    let (mut w, id) = opened(CancelledBy::Customer);
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")));
    assert_eq!(w.fire_next(&id).0, TimerKind::CallAttempt);
    assert_eq!(w.commands(), vec!["call_customer"]);
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
    assert_eq!(w.commands(), vec!["cancel_order"]);
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
    assert_eq!(w.commands(), vec!["create_visit"]);
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);
}

#[test]
fn r2_7_rebooked_creates_the_visit_and_resolves() {
    let (mut w, id) = opened(CancelledBy::Customer);
    let r = Resolution::Rebooked { window_start: t("2026-03-09T10:00:00+02:00"), window_end: t("2026-03-09T12:00:00+02:00") };
    w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["create_visit"]);
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.priority), (TicketStatus::Resolved, Priority::Medium));
    assert!(c.timers.is_empty());
}

#[test]
fn r2_8_declined_paths() {
    let declined = |complaint, follow_up| Resolution::Declined { reason: "price".into(), complaint, follow_up };
    let (mut w, id) = opened(CancelledBy::Customer);
    w.when(call(&id, CallOutcome::Answered, Some(declined(true, false))), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["open_complaint", "cancel_order"]);
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
fn r9_7_v3_attempts_count_from_when_the_cancellation_happened() {
    // Tuesday 20:50, delivered Wednesday 09:30: attempt 1 at once, attempt 2 Thursday 09:00.
    let mut w = World::given(stream(0, 1));
    let id = w.when_late(cancel(CancelledBy::NoShow, false, None), "2026-03-03T20:50:00+02:00", "2026-03-04T09:30:00+02:00");
    let id = id.unwrap().unwrap();
    assert_eq!(w.command("call_customer").unwrap().data["due"], "2026-03-04T09:30:00+02:00");
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-03-05T09:00:00+02:00")]);
    let line = w.case(&id).timeline.iter().find(|l| l.detail.starts_with("appointment.cancelled")).unwrap();
    assert_eq!((line.at, line.occurred_at), (t("2026-03-04T09:30:00+02:00"), Some(t("2026-03-03T20:50:00+02:00"))));
    // Delivered Thursday 10:00: attempt 1 at once, attempt 2 on Saturday (Friday is off).
    let mut w = World::given(stream(0, 1));
    let id = w.when_late(cancel(CancelledBy::NoShow, false, None), "2026-03-03T20:50:00+02:00", "2026-03-05T10:00:00+02:00");
    let id = id.unwrap().unwrap();
    assert_eq!(w.commands(), vec!["call_customer"]);
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-03-07T09:00:00+02:00")]);
    // Delivered Wednesday 07:00, before the opening: attempt 1 at 09:00 as if on time.
    let mut w = World::given(stream(0, 1));
    let id = w.when_late(cancel(CancelledBy::NoShow, false, None), "2026-03-03T20:50:00+02:00", "2026-03-04T07:00:00+02:00");
    assert_eq!(w.dues(&id.unwrap().unwrap(), TimerKind::CallAttempt), vec![t("2026-03-04T09:00:00+02:00")]);
}

#[test]
fn r2_4_v3_the_request_date_counts_from_the_cancellation_day() {
    let mut w = World::given(stream(0, 1));
    let unsure = cancel(CancelledBy::Customer, true, Some(Availability::Unsure));
    w.when_late(unsure, "2026-03-02T20:00:00+02:00", "2026-03-04T10:00:00+02:00").unwrap();
    assert_eq!(w.command("create_appointment_request").unwrap().data["not_before"], "2026-03-30");
}

#[test]
fn r9_1_v3_a_rebooking_reported_after_r2_9_closed_the_case_still_acts() {
    let (mut w, id) = opened(CancelledBy::NoShow);
    let close = w.case(&id).pending(TimerKind::AutoClose).unwrap().clone();
    let timer = TimerRef { stream: w.snapshot().key.clone(), case_id: Some(id.clone()), kind: TimerKind::AutoClose, step: close.step };
    w.when(Input::Timer(timer), "2026-03-09T10:00:00+02:00").unwrap();
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-09T11:00:00+02:00").unwrap();
    assert!(w.effects.is_empty(), "resolves nothing: recorded only");
    let rebooked = Resolution::Rebooked { window_start: t("2026-03-12T10:00:00+02:00"), window_end: t("2026-03-12T12:00:00+02:00") };
    w.when(call(&id, CallOutcome::Answered, Some(rebooked)), "2026-03-09T11:30:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["create_visit"]);
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Resolved, Some(TicketResult::Rebooked)));
    assert!(c.timers.is_empty());
}

#[test]
fn r2_9_closed_unresolved_after_seven_days() {
    let (mut w, id) = opened(CancelledBy::NoShow);
    assert_eq!(w.due(&id, TimerKind::AutoClose), Some(t("2026-03-09T10:00:00+02:00")));
    let c = w.case(&id).clone();
    let close = c.pending(TimerKind::AutoClose).unwrap().clone();
    let timer = TimerRef { stream: w.snapshot().key.clone(), case_id: Some(id.clone()), kind: TimerKind::AutoClose, step: close.step };
    w.when(Input::Timer(timer), "2026-03-09T10:00:00+02:00").unwrap();
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Closed, Some("unreachable")));
    assert!(c.timers.is_empty());
}

#[test]
fn stale_timers_do_nothing() {
    let (mut w, id) = opened(CancelledBy::Customer);
    let first = w.case(&id).pending(TimerKind::CallAttempt).unwrap().clone();
    // An early outcome spends attempt 1; its timer may still fire late.
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-02T11:00:00+02:00").unwrap();
    let before = w.case(&id).clone();
    let stale = TimerRef { stream: w.snapshot().key.clone(), case_id: Some(id.clone()), kind: TimerKind::CallAttempt, step: first.step };
    w.when(Input::Timer(stale), "2026-03-03T09:00:00+02:00").unwrap();
    assert!(w.effects.is_empty());
    assert_eq!(w.case(&id), &before);
}

#[test]
fn r2_10_reopen_from_thirty_days_after_the_appointment_day_when_it_waited() {
    let (mut w, id) = opened(CancelledBy::Customer);
    let reopen = || event(EventBody::from(CaseReopen { case_id: "o1-O1".into() }));
    let e = w.when(reopen(), "2026-04-05T10:00:00+02:00").unwrap_err();
    assert_eq!(e.rule, Some(Rule::R2_10), "never waited on the customer");
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T09:10:00+02:00").unwrap();
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-04T09:10:00+02:00").unwrap();
    assert_eq!(w.when(reopen(), "2026-04-01T23:59:00+02:00").unwrap_err().rule, Some(Rule::R2_10), "day 29");
    w.when(reopen(), "2026-04-02T00:00:00+02:00").unwrap();
    let c = w.case(&id);
    assert_eq!(c.ticket.status, TicketStatus::Open);
    assert_eq!(c.pending(TimerKind::CallAttempt).map(|t| t.due_at), Some(t("2026-04-04T09:00:00+02:00")), "Friday 04-03 skipped");
    assert_eq!(c.pending(TimerKind::AutoClose).map(|t| t.due_at), Some(t("2026-04-09T00:00:00+02:00")));
    assert_eq!(w.when(reopen(), "2026-04-02T01:00:00+02:00").unwrap_err().rule, Some(Rule::R2_10), "already open");
}

#[test]
fn r2_10_a_case_closed_as_a_duplicate_is_not_reopened() {
    let (mut w, id) = opened(CancelledBy::Customer);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T09:10:00+02:00").unwrap();
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-04T09:10:00+02:00").unwrap();
    assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnCustomer);
    book_a2(&mut w);
    let cancel_a2 = event(EventBody::from(AppointmentCancelled {
        appointment_id: "A2".into(),
        cancelled_by: CancelledBy::Customer,
        reason: "travelling".into(),
        wants_follow_up: true,
        availability: None,
    }));
    let newer = w.when(cancel_a2, "2026-03-05T12:00:00+02:00").unwrap().unwrap();
    assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnThirdParty);
    let before = w.case(&id).clone();
    let e = w.when(event(EventBody::from(CaseReopen { case_id: id.clone() })), "2026-04-10T10:00:00+02:00").unwrap_err();
    assert_eq!((e.rule, e.field.as_deref()), (Some(Rule::R2_10), Some("data.case_id")));
    assert!(e.message.contains("duplicate"), "{}", e.message);
    assert_eq!(w.case(&id), &before, "nothing changed");
    assert!(w.case(&newer).ticket.is_open(), "the newer case still follows up");
}

#[test]
fn outcomes_on_a_resolved_case_are_recorded_only() {
    let (mut w, id) = opened(CancelledBy::Customer);
    let r = Resolution::Declined { reason: "x".into(), complaint: false, follow_up: false };
    w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-03-03T09:10:00+02:00").unwrap();
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T10:10:00+02:00").unwrap();
    assert!(w.commands().is_empty() && w.sms().is_empty());
    assert_eq!(w.case(&id).attempts.len(), 2);
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);
}

#[test]
fn will_pay_does_not_apply_here() {
    let (mut w, id) = opened(CancelledBy::Customer);
    let e = w.when(call(&id, CallOutcome::Answered, Some(Resolution::WillPay)), "2026-03-03T09:10:00+02:00").unwrap_err();
    assert_eq!((e.kind, e.field.as_deref()), (RefusalKind::Rule, Some("data.resolution.kind")));
}

#[test]
fn r9_1_a_lost_report_does_not_stall_the_attempts_and_r2_6_still_acts() {
    let (mut w, id) = opened(CancelledBy::Customer);
    assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-03T09:00:00+02:00")));
    assert_eq!(w.command("call_customer").unwrap().data["attempt"], 1);
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-04T09:00:00+02:00")), "attempt 2 placed on its own day");
    // The phone system never reports attempt 1: attempt 2 goes out on Wednesday all the same.
    assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-04T09:00:00+02:00")));
    assert_eq!(w.command("call_customer").unwrap().data["attempt"], 2);
    let c = w.case(&id);
    assert_eq!(c.attempts.iter().map(|a| a.outcome).collect::<Vec<_>>(), vec![CallOutcome::Unreported]);
    assert_eq!(c.ticket.status, TicketStatus::Pending);
    // Attempt 2 unreported by 21:00: not reached twice, R2.6 cancels the order.
    assert_eq!(w.fire_next(&id), (TimerKind::ReportDue, t("2026-03-04T21:00:00+02:00")));
    assert_eq!(w.commands(), vec!["cancel_order"]);
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.attempts.len()), (TicketStatus::WaitingOnCustomer, 2));
    assert!(c.pending(TimerKind::AutoClose).is_some(), "R9.3 still moves on: R2.9 closes it");
    // R9.1 a late report that resolves the case still acts.
    let r = Resolution::Rebooked { window_start: t("2026-03-09T10:00:00+02:00"), window_end: t("2026-03-09T12:00:00+02:00") };
    w.when(call(&id, CallOutcome::Answered, Some(r)), "2026-03-05T10:00:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["create_visit"]);
    assert_eq!(w.case(&id).ticket.result, Some(TicketResult::Rebooked));
}

#[test]
fn r9_1_a_report_that_does_come_keeps_the_next_attempt_on_its_day() {
    let (mut w, id) = opened(CancelledBy::Customer);
    w.fire_next(&id);
    w.when(call(&id, CallOutcome::NoAnswer, None), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.dues(&id, TimerKind::CallAttempt), vec![t("2026-03-04T09:00:00+02:00")], "one attempt 2, not two");
    w.fire_next(&id);
    w.when(call(&id, CallOutcome::Busy, None), "2026-03-04T09:10:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["cancel_order"]);
    assert_eq!(w.case(&id).pending(TimerKind::ReportDue), None, "the report came");
}

#[test]
fn r2_3_v2_a_coupon_for_every_customer_or_ops_cancellation_once_and_registered() {
    // A customer who wants no follow-up still gets the coupon, from the order itself.
    let mut w = World::given(stream(0, 1));
    assert_eq!(w.when(cancel(CancelledBy::Customer, false, None), MON).unwrap(), None);
    assert_eq!(w.sms(), vec![TemplateId::DiscountOffer]);
    let issued = w.command("issue_coupon").expect("R2.3 issue_coupon");
    let code = w.appointment("A1").coupon.as_ref().unwrap().code.clone();
    assert_eq!(issued.case_id, None);
    assert_eq!(issued.data["code"], code.as_str());
    assert_eq!((issued.data["order_id"].clone(), issued.data["customer_id"].clone()), (serde_json::json!("O1"), serde_json::json!("C1")));
    assert_eq!(issued.data["valid_until"], "2026-04-01");
    assert_eq!(w.snapshot().cases.len(), 0);
    // R9.2 the dashboard cancelling it again is an echo: no second coupon.
    w.when(cancel(CancelledBy::Customer, false, None), "2026-03-02T11:00:00+02:00").unwrap();
    assert!(w.commands().is_empty() && w.sms().is_empty());
    // An ops cancellation of a second visit earns one too; the follow-up does not open (R2.1).
    let mut w = World::given(stream(0, 2));
    w.when(cancel(CancelledBy::Ops, false, None), MON).unwrap();
    assert_eq!(w.commands(), vec!["issue_coupon"]);
    // With a follow-up the offer is on its case.
    let (w, id) = opened(CancelledBy::Ops);
    assert_eq!(w.command("issue_coupon").unwrap().case_id.as_deref(), Some(id.as_str()));
}

#[test]
fn r2_3_coupon_codes_are_indexed_so_no_two_orders_hold_one() {
    let mut w = World::given(stream(0, 1));
    let d = decide(w.snapshot.as_ref(), &cancel(CancelledBy::Customer, true, None), t(MON), &w.policy, &SmsLedger::default()).unwrap();
    let code = d.snapshot.as_order().unwrap().appointment("A1").unwrap().coupon.clone().unwrap().code;
    assert_eq!(d.index, vec![format!("coupon:{code}")]);
    w.when(cancel(CancelledBy::Customer, true, None), MON).unwrap();
}
