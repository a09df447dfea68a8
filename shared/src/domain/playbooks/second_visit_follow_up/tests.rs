//! Given a completed visit, when the follow-up runs, then seed 001's second-appointment policy.
use super::*;
use crate::domain::policy::SecondVisitPolicy;
use crate::domain::testkit::*;

const MON_10: &str = "2026-03-02T10:00:00+02:00";

fn completion(outcome: CompletionOutcome, needs_material: bool, material_days: Option<u32>, painting: Option<Painting>) -> Input {
    event(crate::domain::events::EventBody::from(AppointmentCompleted {
        appointment_id: "A1".into(),
        outcome,
        needs_material,
        material_days,
        painting,
    }))
}

/// A1 booked with a technician, completed at `at`, and the case opened an hour later.
fn opened_with(input: Input, at: &str, policy: Policy) -> (World, String) {
    let mut w = World::new();
    w.policy = policy;
    w.when(booked("A1", "2026-03-02T08:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00").unwrap();
    assert_eq!(w.when(input, at).unwrap(), None);
    let id = w.fire_subject().expect("R3.1 case opens");
    (w, id)
}

fn opened(outcome: CompletionOutcome) -> (World, String) {
    opened_with(completion(outcome, false, None, None), MON_10, Policy::default())
}

fn painting(days: u32, total: i64, material: i64, tax_invoice: bool) -> Painting {
    Painting { days, total_price: Money::new(total, "EGP"), material_price: Money::new(material, "EGP"), tax_invoice }
}

fn rebook(start: &str) -> Resolution {
    Resolution::Rebooked { window_start: t(start), window_end: t(start) + chrono::Duration::hours(3) }
}

#[test]
fn r3_1_opens_one_hour_after_completion_with_a_call_task() {
    let (w, id) = opened(CompletionOutcome::Inspection);
    let c = w.case(&id);
    assert_eq!(c.opened_at, t("2026-03-02T11:00:00+02:00"));
    assert_eq!((c.ticket.status, c.ticket.group), (TicketStatus::Open, crate::domain::records::case::Group::CustomerCare));
    assert_eq!(w.commands(), vec!["call_customer"]);
    let mut w = World::new();
    w.when(booked("A1", "2026-03-02T08:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00").unwrap();
    w.when(completion(CompletionOutcome::Done, false, None, None), MON_10).unwrap();
    assert!(w.snapshot().timers.is_empty(), "done: no follow-up");
}

#[test]
fn r3_1_after_hours_the_call_waits_for_the_opening() {
    let (w, id) = opened_with(completion(CompletionOutcome::Incomplete, false, None, None), "2026-03-02T20:30:00+02:00", Policy::default());
    assert!(w.commands().is_empty());
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")));
    assert_eq!(w.due(&id, TimerKind::FirstCallSla), Some(t("2026-03-03T05:30:00+02:00")), "R9.4 21:30 + 8 h = 05:30, exact");
}

#[test]
fn r3_2_no_outcome_in_8_hours_escalates_with_priority_high() {
    let (mut w, id) = opened(CompletionOutcome::Inspection);
    assert_eq!(w.fire_next(&id), (TimerKind::FirstCallSla, t("2026-03-02T19:00:00+02:00")));
    assert_eq!(w.command("escalate").unwrap().data["sla"], "first_call_sla");
    assert_eq!(w.case(&id).ticket.priority, Priority::High);
}

#[test]
fn r3_2_an_outcome_just_in_time_meets_the_sla() {
    let (mut w, id) = opened(CompletionOutcome::Inspection);
    let sla = w.case(&id).pending(TimerKind::FirstCallSla).unwrap().clone();
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-02T18:59:00+02:00").unwrap();
    assert_eq!(w.due(&id, TimerKind::FirstCallSla), None);
    w.fire(&id, TimerKind::FirstCallSla, sla.step, "2026-03-02T19:00:00+02:00");
    assert!(w.effects.is_empty());
}

#[test]
fn r3_3_cost_told_within_48h_or_escalate() {
    let (mut w, id) = opened(CompletionOutcome::Inspection);
    assert_eq!(w.due(&id, TimerKind::CostSla), Some(t("2026-03-04T11:00:00+02:00")));
    let mut c = completed_call(&id, CallOutcome::Answered, Some(Resolution::FollowUpLater { at: t("2026-03-05T10:00:00+02:00") }));
    c.cost_told = Some(true);
    w.when(calls(c), "2026-03-02T12:00:00+02:00").unwrap();
    assert_eq!(w.due(&id, TimerKind::CostSla), None);

    let (mut w, id) = opened(CompletionOutcome::Inspection);
    w.when(
        calls(completed_call(&id, CallOutcome::Answered, Some(Resolution::FollowUpLater { at: t("2026-03-05T10:00:00+02:00") }))),
        "2026-03-02T12:00:00+02:00",
    )
    .unwrap();
    let cost = w.case(&id).pending(TimerKind::CostSla).unwrap().clone();
    w.fire(&id, TimerKind::CostSla, cost.step, "2026-03-04T11:00:00+02:00");
    assert_eq!(w.command("escalate").unwrap().data["sla"], "cost_sla");
}

#[test]
fn r3_4_two_unreached_attempts_convert_the_order_to_complete() {
    let (mut w, id) = opened(CompletionOutcome::Incomplete);
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-02T11:10:00+02:00").unwrap();
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Pending);
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")));
    w.when(calls(completed_call(&id, CallOutcome::Busy, None)), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["convert_order_to_complete"]);
    assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnCustomer);
}

#[test]
fn r3_5_no_material_books_any_window() {
    let (mut w, id) = opened(CompletionOutcome::Inspection);
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-02T15:00:00+02:00")))), "2026-03-02T11:10:00+02:00")
        .unwrap();
    assert_eq!(w.commands(), vec!["create_visit"]);
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.group), (TicketStatus::Pending, crate::domain::records::case::Group::EngineeringOperation));
}

#[test]
fn r3_5_material_needs_a_working_day_after_the_price_skipping_friday_and_holidays() {
    let p = Policy::from_toml("[calendar]\nholidays = [\"2026-03-07\"]").unwrap();
    // Completed Thursday 13:00, case opens 14:00; cost told at 15:00 (Thursday).
    let (mut w, id) = opened_with(completion(CompletionOutcome::Inspection, true, None, None), "2026-03-05T13:00:00+02:00", p);
    let mut c = completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-07T16:00:00+02:00")));
    c.cost_told = Some(true);
    let e = w.when(calls(c.clone()), "2026-03-05T15:00:00+02:00").unwrap_err();
    assert_eq!(e.rule, Some(Rule::R3_5));
    assert!(e.message.contains("2026-03-08T15:00:00+02:00"), "Friday off, Saturday a holiday: {}", e.message);
    c.resolution = Some(rebook("2026-03-08T15:00:00+02:00"));
    w.when(calls(c), "2026-03-05T15:00:00+02:00").unwrap();
    assert!(w.commands().contains(&"create_visit"));
}

#[test]
fn r3_5_material_days_noted_by_ops_capped_at_two() {
    let (mut w, id) = opened_with(completion(CompletionOutcome::Incomplete, true, Some(5), None), MON_10, Policy::default());
    let mut c = completed_call(&id, CallOutcome::Answered, None);
    c.cost_told = Some(true);
    w.when(calls(c), "2026-03-02T12:00:00+02:00").unwrap();
    let e = w
        .when(calls(completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-04T11:59:00+02:00")))), "2026-03-02T13:00:00+02:00")
        .unwrap_err();
    assert_eq!(e.rule, Some(Rule::R3_5));
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-04T12:00:00+02:00")))), "2026-03-02T13:00:00+02:00")
        .unwrap();
    // Never confirmed: refused.
    let (mut w, id) = opened_with(completion(CompletionOutcome::Incomplete, true, None, None), MON_10, Policy::default());
    let e = w
        .when(calls(completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-20T12:00:00+02:00")))), "2026-03-02T13:00:00+02:00")
        .unwrap_err();
    assert_eq!(e.rule, Some(Rule::R3_5));
}

#[test]
fn r3_6_declined_converts_to_complete_or_keeps_following() {
    let declined = |follow_up| Resolution::Declined { reason: "too expensive".into(), complaint: true, follow_up };
    let (mut w, id) = opened(CompletionOutcome::Inspection);
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(declined(false)))), "2026-03-02T11:10:00+02:00").unwrap();
    assert_eq!(w.commands(), vec!["open_complaint", "convert_order_to_complete"]);
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);
    let (mut w, id) = opened(CompletionOutcome::Inspection);
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(declined(true)))), "2026-03-02T11:10:00+02:00").unwrap();
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")));
}

#[test]
fn r3_7_painting_money_in_minor_units() {
    let q = quote(&painting(3, 1_000_000, 250_000, true), &SecondVisitPolicy::default());
    assert_eq!(q.price_per_day, vec![333_333, 333_333, 333_334]);
    assert_eq!(q.material_quotation, 275_000);
    assert_eq!(q.tax, 79_750);
    assert_eq!(q.material_total, 354_750);
    assert_eq!((q.material_day1, q.material_rest), (177_375, 177_375));
    let q = quote(&painting(4, 1_001, 333, false), &SecondVisitPolicy::default());
    assert_eq!(q.price_per_day, vec![250, 250, 250, 251]);
    assert_eq!((q.material_quotation, q.tax), (366, 0), "333 + 33.3 → 366");
    assert_eq!((q.material_day1, q.material_rest), (183, 183));
}

#[test]
fn r3_7_painting_blocks_every_working_day_and_follows_up_once() {
    let input = completion(CompletionOutcome::Painting, false, None, Some(painting(3, 1_000_000, 250_000, false)));
    let (mut w, id) = opened_with(input, MON_10, Policy::default());
    let task = w.command("call_customer").unwrap();
    assert_eq!(task.data["painting"]["price_per_day"], serde_json::json!([333_333, 333_333, 333_334]));
    let mut c = completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-05T09:00:00+02:00")));
    c.cost_told = Some(true);
    w.when(calls(c), "2026-03-02T11:10:00+02:00").unwrap();
    let block = w.command("block_technician_days").expect("R3.7 block days");
    assert_eq!(block.data["days"], serde_json::json!(["2026-03-05", "2026-03-07", "2026-03-08"]), "Friday is not a job day");
    assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-07T12:00:00+02:00")));
    assert_eq!(w.commands(), vec!["call_customer"]);
    w.when(calls(completed_call(&id, CallOutcome::Answered, None)), "2026-03-07T12:10:00+02:00").unwrap();
    assert_eq!(w.case(&id).pending(TimerKind::CallAttempt), None, "one follow-up call only");
    assert!(w.case(&id).pending(TimerKind::AutoClose).is_some(), "R3.5 v2 / R9.3: it closes if the visit is never booked");
}

#[test]
fn r3_7_v3_the_painting_call_goes_out_after_the_booking_resolved_the_case() {
    let input = completion(CompletionOutcome::Painting, false, None, Some(painting(3, 1_000_000, 250_000, false)));
    let (mut w, id) = opened_with(input, MON_10, Policy::default());
    let mut c = completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-05T09:00:00+02:00")));
    c.cost_told = Some(true);
    w.when(calls(c), "2026-03-02T11:10:00+02:00").unwrap();
    // R3.5 (v2) the job's visit is booked: resolved, and the job's call stays (v3).
    w.when(booked("A2", "2026-03-05T09:00:00+02:00", Some("T1")), "2026-03-02T12:00:00+02:00").unwrap();
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Resolved, Some(TicketResult::Rebooked)));
    assert_eq!(c.timers.iter().map(|t| t.kind).collect::<Vec<_>>(), vec![TimerKind::CallAttempt], "the case's one timer");
    assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-07T12:00:00+02:00")));
    assert_eq!(w.commands(), vec!["call_customer"]);
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved, "the case stays resolved");
    w.when(calls(completed_call(&id, CallOutcome::Answered, None)), "2026-03-07T12:10:00+02:00").unwrap();
    assert!(w.command("interaction_summary").is_some(), "the job call's report is summarised (R9.5)");
}

#[test]
fn r3_1_v3_a_completion_delivered_over_an_hour_late_opens_the_case_at_once() {
    let mut w = World::new();
    w.when(booked("A1", "2026-03-02T09:00:00+02:00", Some("T1")), "2026-03-01T10:00:00+02:00").unwrap();
    let opened =
        w.when_late(completion(CompletionOutcome::Inspection, false, None, None), "2026-03-02T10:00:00+02:00", "2026-03-02T11:30:00+02:00");
    let id = opened.unwrap().expect("R3.1 the hour has passed: the case opens now");
    assert_eq!(w.command("call_customer").unwrap().data["due"], "2026-03-02T11:30:00+02:00");
    assert_eq!(w.due(&id, TimerKind::FirstCallSla), Some(t("2026-03-02T19:30:00+02:00")), "R3.2 from the opening");
}

#[test]
fn r3_9_closed_after_seven_days_and_reopened_after_thirty() {
    let (mut w, id) = opened(CompletionOutcome::Incomplete);
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-02T11:10:00+02:00").unwrap();
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-03T09:10:00+02:00").unwrap();
    let close = w.case(&id).pending(TimerKind::AutoClose).unwrap().clone();
    assert_eq!(close.due_at, t("2026-03-09T11:00:00+02:00"));
    w.fire(&id, TimerKind::AutoClose, close.step, "2026-03-09T11:00:00+02:00");
    assert_eq!(
        (w.case(&id).ticket.status, w.case(&id).ticket.result.map(TicketResult::as_str)),
        (TicketStatus::Closed, Some("unreachable"))
    );
    let reopen = || event(crate::domain::events::EventBody::from(CaseReopen { case_id: id.clone() }));
    assert_eq!(w.when(reopen(), "2026-03-31T10:00:00+02:00").unwrap_err().rule, Some(Rule::R2_10), "R3.9 re-opens as R2.10 and cites it");
    w.when(reopen(), "2026-04-01T10:00:00+02:00").unwrap();
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Open);
    assert_eq!(w.commands(), vec!["call_customer"]);
}

#[test]
fn r3_9_a_case_closed_because_r3_8_replaced_a_visit_is_not_reopened() {
    let (mut w, id) = opened(CompletionOutcome::Incomplete);
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-02T11:10:00+02:00").unwrap();
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.case(&id).ticket.status, TicketStatus::WaitingOnCustomer);
    // The dashboard books another visit of the order and moves it within 90 minutes of its start.
    w.when(booked("A2", "2026-03-05T12:00:00+02:00", Some("T1")), "2026-03-04T10:00:00+02:00").unwrap();
    w.when(rescheduled("A2", "2026-03-05T15:00:00+02:00"), "2026-03-05T11:00:00+02:00").unwrap();
    assert_eq!(
        (w.case(&id).ticket.status, w.case(&id).ticket.result),
        (TicketStatus::Closed, Some(TicketResult::VisitReplaced)),
        "R3.8 closes the order's pending cases"
    );
    let before = w.case(&id).clone();
    let e =
        w.when(event(crate::domain::events::EventBody::from(CaseReopen { case_id: id.clone() })), "2026-04-10T10:00:00+02:00").unwrap_err();
    assert_eq!((e.rule, e.field.as_deref()), (Some(Rule::R2_10), Some("data.case_id")));
    assert!(e.message.contains("visit_replaced"), "{}", e.message);
    assert_eq!(w.case(&id), &before, "nothing changed");
}

#[test]
fn r9_1_unreported_attempts_convert_the_order_and_r9_4_stops_the_cost_sla() {
    let (mut w, id) = opened(CompletionOutcome::Incomplete);
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")), "attempt 2 placed at opening");
    w.fire(&id, TimerKind::FirstCallSla, w.case(&id).pending(TimerKind::FirstCallSla).unwrap().step, "2026-03-02T19:00:00+02:00");
    assert_eq!(w.commands(), vec!["escalate"], "R3.2 exact: opened 11:00 + 8 h");
    let attempt2 = w.case(&id).pending(TimerKind::CallAttempt).unwrap().step;
    w.fire(&id, TimerKind::CallAttempt, attempt2, "2026-03-03T09:00:00+02:00");
    assert_eq!(w.case(&id).attempts[0].outcome, CallOutcome::Unreported);
    assert_eq!(w.fire_next(&id), (TimerKind::ReportDue, t("2026-03-03T21:00:00+02:00")));
    assert_eq!(w.commands(), vec!["convert_order_to_complete"]);
    let c = w.case(&id);
    assert_eq!(c.ticket.status, TicketStatus::WaitingOnCustomer);
    assert_eq!(c.pending(TimerKind::CostSla), None, "R9.4 no cost escalation once the order is converted");
    assert!(c.pending(TimerKind::AutoClose).is_some(), "R9.3");
}

#[test]
fn r3_5_v2_a_rebooked_case_resolves_when_the_visit_is_booked_or_closes_not_booked() {
    let (mut w, id) = opened(CompletionOutcome::Incomplete);
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(rebook("2026-03-05T10:00:00+02:00")))), "2026-03-02T11:10:00+02:00")
        .unwrap();
    let c = w.case(&id);
    assert_eq!((c.state(), c.ticket.status), ("rebooked", TicketStatus::Pending));
    assert!(c.pending(TimerKind::AutoClose).is_some(), "R9.3 a rebooked case still waits on a timer");
    let mut booked_later = w.snapshot.clone();
    // The dashboard books the new visit of the order: resolved, rebooked.
    w.when(booked("A2", "2026-03-05T10:00:00+02:00", Some("T1")), "2026-03-02T12:00:00+02:00").unwrap();
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Resolved, Some(TicketResult::Rebooked)));
    assert!(c.timers.is_empty());
    // Never booked: R2.9 closes it 7 days after it opened, not_booked.
    let mut w2 = World { snapshot: booked_later.take(), ..World::new() };
    let close = w2.case(&id).pending(TimerKind::AutoClose).unwrap().clone();
    assert_eq!(close.due_at, t("2026-03-09T11:00:00+02:00"));
    w2.fire(&id, TimerKind::AutoClose, close.step, "2026-03-09T11:00:00+02:00");
    let c = w2.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result), (TicketStatus::Closed, Some(TicketResult::NotBooked)));
}
