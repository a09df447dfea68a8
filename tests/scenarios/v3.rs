//! SPEC version 3 end to end, through the real binary: the same fact re-sent under a new delivery
//! id is an echo (R9.2), late reports act only when they resolve (R9.1), rules count from
//! `occurred_at` (R9.7), the daily SMS cap is per phone number (section 4), the painting call
//! outlives the booking (R3.7) and `follow_up_later` leaves a call to wait on (R9.3). Each test
//! is one bullet of what went wrong before. Dates: 2026-03-02 is a Monday; Friday is the day off.

use followup_tests::{booked, call, customer, timers, Local};
use serde_json::{json, Value};

const MON_10: &str = "2026-03-02T10:00:00+02:00";

fn cancelled(appointment_id: &str, by: &str, wants_follow_up: bool) -> Value {
    json!({"appointment_id": appointment_id, "cancelled_by": by, "reason": "customer travelling", "wants_follow_up": wants_follow_up})
}

fn with_technician(mut booking: Value) -> Value {
    booking["technician_id"] = json!("T-1");
    booking
}

fn package(id: &str, paid: bool) -> Value {
    let visits: Vec<Value> = ["2026-03-09T10:00:00+02:00", "2026-03-16T10:00:00+02:00", "2026-03-23T10:00:00+02:00"]
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"visit_id": format!("V{}", i + 1), "window_start": w}))
        .collect();
    json!({
        "package_id": id, "customer": customer("ar"), "area": "Cairo", "price": {"amount": 150000, "currency": "EGP"},
        "visits": visits, "start_date": "2026-03-09", "payment_method": "card", "paid": paid
    })
}

fn outcomes(case: &Value) -> Vec<String> {
    case["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap().to_owned()).collect()
}

fn templates(l: &Local) -> Vec<String> {
    l.sms().iter().map(|m| m["template"].as_str().unwrap().to_owned()).collect()
}

/// Sends `data` as a delivery of its own, then again under a new id with the same `occurred_at`:
/// the copy is an echo and changes nothing a customer or an agent sees.
fn twice(l: &Local, path: &str, id: &str, kind: &str, data: Value) -> Value {
    let at = l.now().to_rfc3339();
    let (status, first) = l.send_at(path, id, kind, &at, data.clone());
    assert_eq!(status, 202, "{kind}: {first}");
    assert_eq!(first.get("echo"), None, "{kind}: the first delivery is no echo");
    let (sms, commands) = (l.sms().len(), l.commands().len());
    let (status, copy) = l.send_at(path, &format!("{id}-resent"), kind, &at, data);
    assert_eq!((status, copy["echo"].as_bool(), copy["duplicate"].as_bool()), (202, Some(true), Some(false)), "{kind}: {copy}");
    assert_eq!((l.sms().len(), l.commands().len()), (sms, commands), "{kind}: the echo sent nothing");
    first
}

/// R9.2 (v3): the same `call.completed` (same `call_id`) re-sent under a new id is the same
/// attempt, so R2.6 does not cancel the customer's order after one missed call.
#[test]
fn r9_2_the_same_call_resent_under_a_new_id_is_one_attempt() {
    let l = Local::virtual_at(MON_10);
    l.accept(
        "/v1/appointments",
        "appointment.booked",
        with_technician(booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00")),
    );
    let id = l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A1", "customer", true)).unwrap();
    l.clock_to("2026-03-03T09:00:00+02:00");
    twice(&l, "/v1/calls", "call-1", "call.completed", call(&id, "K-1", "no_answer", None));
    // The phone system re-sends it once more, now saying busy: the first report counts.
    let (status, body) = l.send_at("/v1/calls", "call-1-third", "call.completed", &l.now().to_rfc3339(), call(&id, "K-1", "busy", None));
    assert_eq!((status, body["echo"].as_bool()), (202, Some(true)));
    let case = l.case(&id);
    assert_eq!(outcomes(&case), vec!["no_answer"]);
    assert!(case["timeline"].as_array().unwrap().iter().any(|e| e["detail"].as_str().unwrap().contains("R9.2 echo")));
    assert!(l.commands_of("cancel_order").is_empty(), "one missed call is not two");
    assert_eq!(l.commands_of("interaction_summary").len(), 1, "one call, one summary");
    l.clock_to("2026-03-04T09:00:00+02:00");
    assert_eq!(l.commands_of("call_customer").len(), 2, "R2.5 the second attempt still goes out");
}

/// R9.2 (v3): every webhook of an everyday story, re-sent once under a new id, is accepted as an
/// echo: no 422 for the sender to alert on, and no effect doubled.
#[test]
fn r9_2_every_webhook_of_an_everyday_story_resent_is_an_echo() {
    let l = Local::virtual_at(MON_10);
    let a = "/v1/appointments";
    twice(&l, a, "b1", "appointment.booked", booked("A1", "O1", "2026-03-04T10:00:00+02:00", "2026-03-04T12:00:00+02:00"));
    twice(&l, a, "as1", "appointment.assigned", json!({"appointment_id": "A1", "technician_id": "T-1"}));
    let moved = json!({"appointment_id": "A1", "window_start": "2026-03-05T10:00:00+02:00", "window_end": "2026-03-05T12:00:00+02:00", "requested_by": "customer"});
    twice(&l, a, "rs1", "appointment.rescheduled", moved);
    twice(&l, a, "b3", "appointment.booked", with_technician(booked("A3", "O3", "2026-03-20T10:00:00+02:00", "2026-03-20T12:00:00+02:00")));
    let request = json!({"appointment_id": "A3", "reason": "traffic", "stf_link": "https://stf.example.com/r/A3"});
    twice(&l, a, "rq3", "appointment.reschedule_requested", request);
    l.clock_to("2026-03-05T13:00:00+02:00");
    let done = json!({"appointment_id": "A1", "outcome": "inspection", "needs_material": false});
    twice(&l, a, "cp1", "appointment.completed", done);
    twice(&l, a, "b2", "appointment.booked", with_technician(booked("A2", "O2", "2026-03-09T10:00:00+02:00", "2026-03-09T12:00:00+02:00")));
    twice(&l, "/v1/cancellations", "c2", "appointment.cancelled", cancelled("A2", "customer", true));
    let p = "/v1/packages";
    twice(&l, p, "pb1", "package.booked", package("P-1", false));
    twice(&l, p, "pp1", "package.paid", json!({"package_id": "P-1"}));
    twice(
        &l,
        p,
        "pv1",
        "package_visit.rescheduled",
        json!({"package_id": "P-1", "visit_id": "V2", "window_start": "2026-03-17T10:00:00+02:00"}),
    );
    l.clock_to("2026-03-09T13:00:00+02:00");
    twice(&l, p, "pc1", "package_visit.completed", json!({"package_id": "P-1", "visit_id": "V1"}));
    twice(&l, "/v1/cancellations", "pvc1", "package_visit.cancelled", json!({"package_id": "P-1", "visit_id": "V3"}));
    twice(&l, "/v1/cancellations", "pkc1", "package.cancelled", json!({"package_id": "P-1", "reason": "moving"}));
    // A booking that contradicts the one held stays a 422.
    let other = booked("A1", "O1", "2026-03-06T10:00:00+02:00", "2026-03-06T12:00:00+02:00");
    let (status, body) = l.send("/v1/appointments", "b1-other", "appointment.booked", other);
    assert_eq!((status, body["error"]["rule"].as_str()), (422, Some("R9.2")), "{body}");
}

/// R9.1 (v3): two late "no answer" reports for an outreach send no more links: each attempt
/// already counted as not reached when its step passed, and sent its link then.
#[test]
fn r9_1_late_not_reached_reports_for_an_outreach_send_no_more_links() {
    let l = Local::virtual_at(MON_10);
    l.accept(
        "/v1/appointments",
        "appointment.booked",
        with_technician(booked("A1", "O1", "2026-03-05T14:00:00+02:00", "2026-03-05T16:00:00+02:00")),
    );
    let request = json!({"appointment_id": "A1", "reason": "traffic", "stf_link": "https://stf.example.com/r/A1"});
    let id = l.accept("/v1/appointments", "appointment.reschedule_requested", request).unwrap();
    l.clock_to("2026-03-03T21:00:00+02:00");
    assert_eq!(templates(&l), vec!["STF_LINK", "STF_LINK"], "R1.2, R1.3 on the unreported attempts");
    l.clock_to("2026-03-03T22:00:00+02:00");
    for (n, (occurred, outcome)) in
        [("2026-03-02T10:20:00+02:00", "no_answer"), ("2026-03-03T09:10:00+02:00", "busy")].into_iter().enumerate()
    {
        let (status, _) =
            l.send_at("/v1/calls", &format!("late-{n}"), "call.completed", occurred, call(&id, &format!("K-{n}"), outcome, None));
        assert_eq!(status, 202);
    }
    assert_eq!(templates(&l), vec!["STF_LINK", "STF_LINK"], "no link for a late report");
    assert!(l.commands_of("interaction_summary").is_empty(), "a late report that resolves nothing sends nothing");
    assert_eq!(outcomes(&l.case(&id)), vec!["unreported", "unreported", "no_answer", "busy"]);
}

/// R9.1 (v3) with R4.5 (v2): the final unpaid-package call, answered but reported after 21:00,
/// takes the case from closed unreachable to resolved.
#[test]
fn r9_1_the_final_package_call_reported_after_21h_still_resolves() {
    let l = Local::virtual_at(MON_10);
    let id = l.accept("/v1/packages", "package.booked", package("P-1", false)).unwrap();
    l.clock_to("2026-03-09T21:00:00+02:00");
    assert_eq!(l.commands_of("cancel_package").len(), 1, "R4.4");
    let case = l.case(&id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("closed"), Some("unreachable")));
    l.clock_to("2026-03-09T22:00:00+02:00");
    let (status, _) = l.send_at(
        "/v1/calls",
        "final",
        "call.completed",
        "2026-03-09T09:20:00+02:00",
        call(&id, "K-final", "answered", Some(json!({"kind": "will_pay"}))),
    );
    assert_eq!(status, 202);
    let case = l.case(&id);
    assert_eq!(
        (case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()),
        (Some("resolved"), Some("reached_after_cancellation"))
    );
    assert!(l.commands_of("send_payment_link").is_empty());
}

/// R9.1 (v3) with R5.5: the Day-6 expiry call, rebooked but reported after 21:00, resolves the
/// case R5.3 had closed, and no later SMS goes out.
#[test]
fn r9_1_the_day6_expiry_call_reported_after_21h_still_resolves() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/packages", "package.booked", package("P-1", true));
    l.clock_to("2026-04-09T09:30:00+02:00");
    let id = l.get("/v1/cases?package_id=P-1").1["cases"][0]["case_id"].as_str().unwrap().to_owned();
    l.accept("/v1/calls", "call.completed", call(&id, "K-1", "no_answer", None));
    l.clock_to("2026-04-14T21:00:00+02:00");
    assert_eq!(templates(&l), vec!["SMS3", "SMS4"]);
    l.clock_to("2026-04-14T21:30:00+02:00");
    let rebooked = json!({"kind": "rebooked", "window_start": "2026-04-16T10:00:00+02:00", "window_end": "2026-04-16T12:00:00+02:00"});
    let (status, _) =
        l.send_at("/v1/calls", "day6", "call.completed", "2026-04-14T09:40:00+02:00", call(&id, "K-2", "answered", Some(rebooked)));
    assert_eq!(status, 202);
    let case = l.case(&id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("resolved"), Some("rebooked")));
    l.clock_to("2026-04-23T01:00:00+02:00");
    assert_eq!(templates(&l), vec!["SMS3", "SMS4"], "R5.5 no later SMS");
}

/// R9.7 (v3): a cancellation of Tuesday 20:50 delivered on Wednesday 09:30 gets its first attempt
/// at once and its second on Thursday 09:00; `occurred_at` is on the timeline; one from the
/// future is a 400.
#[test]
fn r9_7_a_cancellation_delivered_next_morning_counts_from_when_it_happened() {
    let l = Local::virtual_at("2026-03-02T09:00:00+02:00");
    l.accept(
        "/v1/appointments",
        "appointment.booked",
        with_technician(booked("A1", "O1", "2026-03-03T18:00:00+02:00", "2026-03-03T20:00:00+02:00")),
    );
    l.clock_to("2026-03-04T09:30:00+02:00");
    let (status, body) = l.send_at(
        "/v1/cancellations",
        "late-cancel",
        "appointment.cancelled",
        "2026-03-03T20:50:00+02:00",
        cancelled("A1", "no_show", false),
    );
    assert_eq!(status, 202, "{body}");
    let id = body["case_id"].as_str().unwrap();
    let tasks = l.commands_of("call_customer");
    assert_eq!((tasks.len(), tasks[0]["data"]["due"].as_str()), (1, Some("2026-03-04T09:30:00+02:00")), "attempt 1 at once");
    let case = l.case(id);
    assert_eq!(
        timers(&case).iter().filter(|(k, _)| k == "call_attempt").map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        vec!["2026-03-05T09:00:00+02:00"]
    );
    let line = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail"].as_str().unwrap().starts_with("appointment.cancelled"))
        .unwrap()
        .clone();
    assert_eq!((line["at"].as_str(), line["occurred_at"].as_str()), (Some("2026-03-04T09:30:00+02:00"), Some("2026-03-03T20:50:00+02:00")));
    let (status, body) = l.send_at(
        "/v1/appointments",
        "future",
        "appointment.booked",
        "2026-03-04T09:40:00+02:00",
        booked("A9", "O9", "2026-03-09T10:00:00+02:00", "2026-03-09T12:00:00+02:00"),
    );
    assert_eq!((status, body["error"]["field"].as_str(), body["error"]["rule"].as_str()), (400, Some("occurred_at"), Some("R9.7")));
}

/// SPEC §4 (v3): the daily cap counts per phone number, so one customer with six orders
/// cancelled in a day gets five SMS, not six.
#[test]
fn sms_cap_v3_one_number_across_six_orders_gets_five_sms_a_day() {
    let l = Local::virtual_at(MON_10);
    for n in 1..=6 {
        let mut b = with_technician(booked(&format!("A{n}"), &format!("O{n}"), "2026-03-04T10:00:00+02:00", "2026-03-04T12:00:00+02:00"));
        b["visit_number"] = json!(2);
        l.accept("/v1/appointments", "appointment.booked", b);
        l.accept("/v1/cancellations", "appointment.cancelled", cancelled(&format!("A{n}"), "customer", false));
    }
    assert_eq!(l.commands_of("issue_coupon").len(), 6, "R2.3 every coupon is registered");
    assert_eq!(templates(&l), vec!["DISCOUNT_OFFER"; 5], "the daily cap of 5 holds across the orders");
    l.clock_to("2026-03-03T10:00:00+02:00");
    l.accept(
        "/v1/appointments",
        "appointment.booked",
        with_technician(booked("A7", "O7", "2026-03-06T10:00:00+02:00", "2026-03-06T12:00:00+02:00")),
    );
    let moved = json!({"appointment_id": "A7", "window_start": "2026-03-07T10:00:00+02:00", "window_end": "2026-03-07T12:00:00+02:00", "requested_by": "customer"});
    l.accept("/v1/appointments", "appointment.rescheduled", moved);
    assert_eq!(templates(&l).len(), 6, "a new local day, a new count");
}

/// R3.7 (v3): the painting job's call goes out even when R3.5 resolved the case on the booking
/// of the job's visit; the case stays resolved.
#[test]
fn r3_7_the_painting_call_goes_out_after_the_booking_resolved_the_case() {
    let l = Local::virtual_at("2026-03-02T09:00:00+02:00");
    l.accept(
        "/v1/appointments",
        "appointment.booked",
        with_technician(booked("A1", "O1", "2026-03-02T08:00:00+02:00", "2026-03-02T09:00:00+02:00")),
    );
    let painting = json!({"days": 3, "total_price": {"amount": 1000000}, "material_price": {"amount": 250000}, "tax_invoice": false});
    l.accept(
        "/v1/appointments",
        "appointment.completed",
        json!({"appointment_id": "A1", "outcome": "painting", "needs_material": false, "painting": painting}),
    );
    l.clock_to("2026-03-02T10:00:00+02:00");
    let id =
        l.get("/v1/cases?order_id=O1").1["cases"].as_array().unwrap().iter().find(|c| c["playbook"] == "second_visit_follow_up").unwrap()
            ["case_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let mut report = call(
        &id,
        "K-1",
        "answered",
        Some(json!({"kind": "rebooked", "window_start": "2026-03-05T09:00:00+02:00", "window_end": "2026-03-05T17:00:00+02:00"})),
    );
    report["cost_told"] = json!(true);
    l.accept("/v1/calls", "call.completed", report);
    assert_eq!(l.commands_of("block_technician_days").len(), 1);
    l.accept(
        "/v1/appointments",
        "appointment.booked",
        with_technician(booked("A2", "O1", "2026-03-05T09:00:00+02:00", "2026-03-05T17:00:00+02:00")),
    );
    assert_eq!(l.case(&id)["ticket"]["status"], "resolved");
    l.clock_to("2026-03-07T18:00:00+02:00");
    let job_calls: Vec<Value> = l.commands_of("call_customer").into_iter().filter(|c| c["case_id"] == id.as_str()).collect();
    assert_eq!(job_calls.len(), 2, "the first call and the job's follow-up");
    assert_eq!(job_calls[1]["data"]["reason"], "Follow up the painting job in progress");
    assert_eq!(l.case(&id)["ticket"]["status"], "resolved");
}

/// R9.3 (v3): `follow_up_later` on a package-expiry call places the call the case waits on.
#[test]
fn r9_3_follow_up_later_on_a_package_expiry_call_leaves_a_call_to_wait_on() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/packages", "package.booked", package("P-1", true));
    l.clock_to("2026-04-14T09:30:00+02:00");
    let id = l.get("/v1/cases?package_id=P-1").1["cases"][0]["case_id"].as_str().unwrap().to_owned();
    let later = json!({"kind": "follow_up_later", "at": "2026-04-16T11:00:00+02:00"});
    l.accept("/v1/calls", "call.completed", call(&id, "K-2", "answered", Some(later)));
    let case = l.case(&id);
    assert!(timers(&case).contains(&("call_attempt".to_owned(), "2026-04-16T11:00:00+02:00".to_owned())), "{case}");
    let before = l.commands_of("call_customer").len();
    l.clock_to("2026-04-16T11:00:00+02:00");
    assert_eq!(l.commands_of("call_customer").len(), before + 1);
}
