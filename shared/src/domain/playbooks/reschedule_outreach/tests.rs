//! Given an order with a booked visit, when the customer asks to reschedule, then the outreach of seed 000.
use crate::domain::testkit::*;

const MON_10: &str = "2026-03-02T10:00:00+02:00";
const THU_14: &str = "2026-03-05T14:00:00+02:00";

fn requested_at(now: &str) -> (World, String) {
    let mut w = World::new();
    w.when(booked("A1", THU_14, Some("T1")), MON_10).unwrap();
    let id = w.when(requested("A1"), now).unwrap().expect("R1.1 outreach case");
    (w, id)
}

fn rebooked(start: &str) -> Resolution {
    Resolution::Rebooked { window_start: t(start), window_end: t(start) + chrono::Duration::hours(2) }
}

#[test]
fn r1_1_attempt_one_now_in_working_hours_with_the_soonest_first_hint() {
    let (w, id) = requested_at(MON_10);
    let task = w.command("call_customer").expect("call task now");
    assert_eq!(task.data["offer"], "soonest_available_first");
    assert_eq!(task.data["stf_link"], "https://stf.example.com/r/A1");
    assert_eq!(task.data["due"], MON_10);
    let c = w.case(&id);
    assert_eq!(
        (c.playbook().as_str(), c.ticket.group, c.ticket.status),
        ("reschedule_outreach", crate::domain::records::case::Group::CustomerCare, TicketStatus::Open)
    );
    assert_eq!(w.due(&id, TimerKind::OutreachCancel), Some(t("2026-03-05T13:00:00+02:00")));
}

#[test]
fn r1_1_outside_working_hours_attempt_one_at_the_next_opening() {
    let (mut w, id) = requested_at("2026-03-02T22:00:00+02:00");
    assert!(w.commands().is_empty());
    assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-03T09:00:00+02:00")));
    assert_eq!(w.commands(), vec!["call_customer"]);
}

#[test]
fn r1_2_r1_3_not_reached_sends_the_link_twice_and_leaves_the_status() {
    let (mut w, id) = requested_at(MON_10);
    w.when(calls(completed_call(&id, CallOutcome::Voicemail, None)), "2026-03-02T10:30:00+02:00").unwrap();
    assert_eq!(w.sms(), vec![TemplateId::StfLink]);
    assert!(w.sms_bodies()[0].contains("https://stf.example.com/r/A1"));
    assert!(w.commands().is_empty(), "R1.2 appointment status left unchanged");
    assert_eq!(w.order().appointment("A1").unwrap().status, AppointmentStatus::Booked);
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Pending);
    assert_eq!(w.fire_next(&id), (TimerKind::CallAttempt, t("2026-03-03T09:00:00+02:00")));
    w.when(calls(completed_call(&id, CallOutcome::Busy, None)), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.sms(), vec![TemplateId::StfLink]);
    assert_eq!(w.case(&id).state(), "waiting");
    assert_eq!(w.case(&id).timers.len(), 1, "only the T-1h cancel left");
}

#[test]
fn r9_1_v3_late_not_reached_reports_send_no_more_links_and_a_late_rebooking_still_acts() {
    let (mut w, id) = requested_at(MON_10);
    let mut links = 0;
    // Both attempts lapse unreported: each counts as not reached and sends its link (R1.2, R1.3).
    w.fire_next(&id);
    links += w.sms().len();
    let (kind, _) = w.fire_next(&id);
    assert_eq!(kind, TimerKind::ReportDue);
    links += w.sms().len();
    assert_eq!(links, 2);
    // Then both reports arrive late: recorded, nothing sent.
    for (occurred, outcome) in [("2026-03-02T10:20:00+02:00", CallOutcome::NoAnswer), ("2026-03-03T09:10:00+02:00", CallOutcome::Busy)] {
        w.when_late(calls(completed_call(&id, outcome, None)), occurred, "2026-03-03T22:00:00+02:00").unwrap();
        assert!(w.effects.is_empty(), "a late report that resolves nothing sends nothing: {:?}", w.effects);
    }
    assert_eq!(w.case(&id).attempts.len(), 4, "two unreported, two late reports");
    // A late answer that rebooks still acts (R9.1): the outreach resolves.
    let late = completed_call(&id, CallOutcome::Answered, Some(rebooked("2026-03-06T10:00:00+02:00")));
    w.when_late(calls(late), "2026-03-03T09:15:00+02:00", "2026-03-03T22:05:00+02:00").unwrap();
    assert!(w.commands().contains(&"update_appointment"));
    assert_eq!(w.case(&id).ticket.status, TicketStatus::Resolved);
}

#[test]
fn r1_4_unresolved_at_t_minus_1h_cancels_by_ops_and_follows_up_a_first_visit() {
    let (mut w, id) = requested_at(MON_10);
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-02T10:30:00+02:00").unwrap();
    w.fire_next(&id);
    w.when(calls(completed_call(&id, CallOutcome::NoAnswer, None)), "2026-03-03T09:10:00+02:00").unwrap();
    assert_eq!(w.fire_next(&id), (TimerKind::OutreachCancel, t("2026-03-05T13:00:00+02:00")));
    let cancel = w.command("cancel_appointment").unwrap();
    assert_eq!((cancel.data["by"].as_str(), cancel.data["reason"].as_str()), (Some("ops"), Some("customer_unreached")));
    assert_eq!(w.order().appointment("A1").unwrap().status, AppointmentStatus::Cancelled);
    assert_eq!(w.case(&id).ticket.result.map(TicketResult::as_str), Some("unreachable"));
    assert!(w.snapshot().cases.iter().any(|c| c.playbook() == "cancellation_follow_up"));
}

#[test]
fn r1_5_rebooked_updates_notifies_revokes_and_resolves() {
    let (mut w, id) = requested_at(MON_10);
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(rebooked("2026-03-07T10:00:00+02:00")))), "2026-03-02T10:30:00+02:00")
        .unwrap();
    assert_eq!(w.commands(), vec!["update_appointment", "notify_technician", "revoke_stf_links"]);
    assert_eq!(w.command("update_appointment").unwrap().data["window_start"], "2026-03-07T10:00:00+02:00");
    assert_eq!(w.command("notify_technician").unwrap().data["technician_id"], "T1");
    assert_eq!(w.command("revoke_stf_links").unwrap().data["before"], "2026-03-07T10:00:00+02:00");
    assert_eq!(w.sms(), vec![TemplateId::RescheduleConfirmation], "R7.3");
    let c = w.case(&id);
    assert_eq!((c.ticket.status, c.ticket.result.map(TicketResult::as_str)), (TicketStatus::Resolved, Some("rebooked")));
    assert!(c.timers.is_empty());
    let a = w.order().appointment("A1").unwrap();
    assert_eq!((a.window_start, a.reschedules), (t("2026-03-07T10:00:00+02:00"), 1));
}

#[test]
fn r1_5_a_rebooking_past_the_limit_is_refused_by_r7_2() {
    let (mut w, id) = requested_at(MON_10);
    w.order_mut().appointment_mut("A1").unwrap().reschedules = 3;
    let e =
        w.when(calls(completed_call(&id, CallOutcome::Answered, Some(rebooked("2026-03-07T10:00:00+02:00")))), "2026-03-02T10:30:00+02:00");
    assert_eq!(e.unwrap_err().rule, Some(Rule::R7_2));
}

#[test]
fn r1_6_declined_cancels_and_applies_the_discount_rule() {
    let declined = |follow_up| Resolution::Declined { reason: "no longer needed".into(), complaint: false, follow_up };
    // No follow-up wanted: the coupon comes from the outreach case.
    let (mut w, id) = requested_at(MON_10);
    w.when(calls(completed_call(&id, CallOutcome::Answered, Some(declined(false)))), "2026-03-02T10:30:00+02:00").unwrap();
    let cancel = w.command("cancel_appointment").unwrap();
    assert_eq!((cancel.data["by"].as_str(), cancel.data["reason"].as_str()), (Some("customer"), Some("no longer needed")));
    assert_eq!(w.sms(), vec![TemplateId::DiscountOffer]);
    assert_eq!(w.snapshot().cases.len(), 1);
    assert_eq!(w.case(&id).ticket.result.map(TicketResult::as_str), Some("declined"));
    // Follow-up wanted on a first visit: R2.1 opens the follow-up, which makes the offer.
    let (mut w, _) = requested_at(MON_10);
    w.when(calls(completed_call("o1-O1", CallOutcome::Answered, Some(declined(true)))), "2026-03-02T10:30:00+02:00").unwrap();
    assert_eq!(w.sms(), vec![TemplateId::DiscountOffer]);
    assert!(w.snapshot().cases.iter().any(|c| c.playbook() == "cancellation_follow_up"));
}

#[test]
fn a_dashboard_reschedule_resolves_the_outreach() {
    let (mut w, id) = requested_at(MON_10);
    w.when(rescheduled("A1", "2026-03-08T10:00:00+02:00"), "2026-03-02T11:00:00+02:00").unwrap();
    assert_eq!(w.case(&id).ticket.result.map(TicketResult::as_str), Some("rescheduled"));
    assert!(w.commands().contains(&"revoke_stf_links"));
    assert!(w.case(&id).timers.is_empty());
}

#[test]
fn r9_1_lost_reports_still_send_the_link_and_the_second_attempt_and_r1_4_waits_for_t_minus_1h() {
    // Requested Monday 10:00; attempt 1 goes out at once.
    let (mut w, id) = requested_at("2026-03-02T10:00:00+02:00");
    assert_eq!(w.due(&id, TimerKind::CallAttempt), Some(t("2026-03-03T09:00:00+02:00")), "attempt 2 placed with attempt 1");
    // Attempt 1 is never reported: at attempt 2 it counts as not reached (R1.2's link).
    w.fire_next(&id);
    assert_eq!(w.sms(), vec![TemplateId::StfLink]);
    assert_eq!(w.command("call_customer").unwrap().data["attempt"], 2);
    assert_eq!(w.case(&id).attempts[0].outcome, CallOutcome::Unreported);
    // Attempt 2 unreported by 21:00: the link again (R1.3), then the case waits for T-1h.
    assert_eq!(w.fire_next(&id), (TimerKind::ReportDue, t("2026-03-03T21:00:00+02:00")));
    assert_eq!(w.sms(), vec![TemplateId::StfLink]);
    assert_eq!(w.case(&id).state(), "waiting");
    assert_eq!(w.fire_next(&id).0, TimerKind::OutreachCancel);
    assert_eq!(w.command("cancel_appointment").unwrap().data["reason"], "customer_unreached");
}
