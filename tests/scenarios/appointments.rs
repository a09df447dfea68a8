//! Appointment playbooks end to end (R0, R1, R3, R7, R8): followup-local over HTTP with the virtual clock.
//! Dates: 2026-03-02 is a Monday; Friday is the day off.

use followup_tests::{booked, call, Local};
use serde_json::{json, Value};

const MON_10: &str = "2026-03-02T10:00:00+02:00";

fn book(l: &Local, appointment_id: &str, order_id: &str, start: &str, end: &str, technician: Option<&str>) -> Option<String> {
    let mut b = booked(appointment_id, order_id, start, end);
    b["technician_id"] = json!(technician);
    l.accept("/v1/appointments", "appointment.booked", b)
}

fn cases_of(l: &Local, appointment_id: &str) -> Vec<Value> {
    l.get(&format!("/v1/cases?appointment_id={appointment_id}")).1["cases"].as_array().cloned().unwrap_or_default()
}

fn templates(l: &Local) -> Vec<String> {
    l.sms().iter().map(|m| m["template"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn r0_assigned_between_t3h_and_t1h_gets_the_sms_and_no_cancel() {
    let l = Local::virtual_at(MON_10);
    assert_eq!(book(&l, "A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00", None), None, "no case before T-3h");
    assert!(cases_of(&l, "A1").is_empty());

    // R0.1 T-3h exact (07:00, before working hours): STATUS_UPDATE, the watch case opens.
    assert_eq!(l.clock_to("2026-03-03T06:59:00+02:00"), 0);
    assert_eq!(l.clock_to("2026-03-03T07:00:00+02:00"), 1);
    assert_eq!(templates(&l), vec!["STATUS_UPDATE"]);
    let sms = &l.sms()[0];
    assert_eq!(sms["language"], "ar");
    let cases = cases_of(&l, "A1");
    assert_eq!(cases.len(), 1);
    let watch = cases[0]["case_id"].as_str().unwrap().to_owned();
    assert_eq!(cases[0]["playbook"], "appointment_watch");
    assert_eq!(cases[0]["ticket"]["group"], "ops");
    assert_eq!(sms["case_id"], watch.as_str());
    assert_eq!(cases[0]["timers"], json!([{"kind": "auto_cancel", "due_at": "2026-03-03T09:00:00+02:00"}]));

    // R0.3 assigned at 08:00: the T-1h cancel never happens.
    l.clock_to("2026-03-03T08:00:00+02:00");
    let id = l.accept("/v1/appointments", "appointment.assigned", json!({"appointment_id": "A1", "technician_id": "T-12"}));
    assert_eq!(id.as_deref(), Some(watch.as_str()));
    let case = l.case(&watch);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("resolved"), Some("assigned")));
    assert_eq!(l.clock_to("2026-03-03T12:00:00+02:00"), 0);
    assert!(l.commands_of("cancel_appointment").is_empty());
    assert_eq!(l.sms().len(), 1);
}

#[test]
fn r0_2_unassigned_at_t_minus_1h_is_cancelled_and_followed_up() {
    let l = Local::virtual_at(MON_10);
    book(&l, "A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00", None);
    assert_eq!(l.clock_to("2026-03-03T09:00:00+02:00"), 2, "T-3h then T-1h");
    let cancels = l.commands_of("cancel_appointment");
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0]["at"], "2026-03-03T09:00:00+02:00");
    assert_eq!(cancels[0]["data"], json!({"appointment_id": "A1", "order_id": "O1", "by": "ops", "reason": "unassigned"}));
    let cases = cases_of(&l, "A1");
    let playbooks: Vec<&str> = cases.iter().map(|c| c["playbook"].as_str().unwrap()).collect();
    assert_eq!(playbooks, vec!["appointment_watch", "cancellation_follow_up"]);
    assert_eq!(cases[0]["ticket"]["result"], "auto_cancelled");
    assert_eq!(templates(&l), vec!["STATUS_UPDATE", "DISCOUNT_OFFER"], "R2.3 the ops cancellation's coupon");
    // Cancelled: a late assignment is refused, no stale effect.
    let (status, _) = l.send("/v1/appointments", "late", "appointment.assigned", json!({"appointment_id": "A1", "technician_id": "T-1"}));
    assert_eq!(status, 422);
}

#[test]
fn r1_outreach_answered_on_attempt_two_rebooks() {
    let l = Local::virtual_at(MON_10);
    book(&l, "A1", "O1", "2026-03-05T14:00:00+02:00", "2026-03-05T16:00:00+02:00", Some("T-12"));
    let case_id = l
        .accept(
            "/v1/appointments",
            "appointment.reschedule_requested",
            json!({"appointment_id": "A1", "reason": "technician running late", "stf_link": "https://stf.example.com/r/A1"}),
        )
        .expect("R1.1 outreach case");
    // R1.1 attempt 1 now (working hours), with the soonest-first hint.
    let tasks = l.commands_of("call_customer");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["data"]["offer"], "soonest_available_first");
    // R1.2 not reached: STF link, status untouched.
    l.advance(600);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "voicemail", None));
    assert_eq!(templates(&l), vec!["STF_LINK"]);
    assert!(l.sms()[0]["body"].as_str().unwrap().contains("https://stf.example.com/r/A1"));
    assert!(l.commands_of("update_appointment").is_empty() && l.commands_of("cancel_appointment").is_empty());
    // R1.3 attempt 2 next working day 09:00.
    assert_eq!(l.clock_to("2026-03-03T09:00:00+02:00"), 1);
    let tasks = l.commands_of("call_customer");
    assert_eq!((tasks.len(), tasks[1]["data"]["attempt"].as_u64()), (2, Some(2)));
    // R1.5 answered and rebooked.
    l.advance(300);
    l.accept(
        "/v1/calls",
        "call.completed",
        call(
            &case_id,
            "K2",
            "answered",
            Some(json!({"kind": "rebooked", "window_start": "2026-03-07T10:00:00+02:00", "window_end": "2026-03-07T12:00:00+02:00"})),
        ),
    );
    let kinds: Vec<String> =
        l.commands().iter().map(|c| c["type"].as_str().unwrap().to_owned()).filter(|k| k != "interaction_summary").collect();
    assert_eq!(kinds, vec!["call_customer", "call_customer", "update_appointment", "notify_technician", "revoke_stf_links"]);
    assert_eq!(l.commands_of("update_appointment")[0]["data"]["window_start"], "2026-03-07T10:00:00+02:00");
    assert_eq!(l.commands_of("notify_technician")[0]["data"]["technician_id"], "T-12");
    assert_eq!(l.commands_of("revoke_stf_links")[0]["data"]["before"], "2026-03-07T10:00:00+02:00");
    // R7.3 confirmation in Arabic with the local date and time.
    let confirm = l.sms().last().cloned().unwrap();
    assert_eq!(confirm["template"], "RESCHEDULE_CONFIRMATION");
    let body = confirm["body"].as_str().unwrap();
    assert!(body.contains("2026-03-07") && body.contains("10:00"), "{body}");
    let case = l.case(&case_id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("resolved"), Some("rebooked")));
    assert!(case["timers"].as_array().unwrap().is_empty());
    // Nothing at the old T-1h.
    assert_eq!(l.clock_to("2026-03-05T14:00:00+02:00"), 0);
    assert!(l.commands_of("cancel_appointment").is_empty());
}

#[test]
fn r1_4_unreached_twice_is_cancelled_at_t_minus_1h() {
    let l = Local::virtual_at("2026-03-02T22:00:00+02:00");
    book(&l, "A1", "O1", "2026-03-04T14:00:00+02:00", "2026-03-04T16:00:00+02:00", Some("T-12"));
    let case_id = l
        .accept(
            "/v1/appointments",
            "appointment.reschedule_requested",
            json!({"appointment_id": "A1", "reason": "r", "stf_link": "https://s/1"}),
        )
        .unwrap();
    assert!(l.commands_of("call_customer").is_empty(), "after hours: attempt 1 at the next opening");
    assert_eq!(l.clock_to("2026-03-03T09:00:00+02:00"), 1);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "busy", None));
    l.clock_to("2026-03-04T09:00:00+02:00");
    l.accept("/v1/calls", "call.completed", call(&case_id, "K2", "no_answer", None));
    assert_eq!(templates(&l), vec!["STF_LINK", "STF_LINK"]);
    assert_eq!(l.clock_to("2026-03-04T13:00:00+02:00"), 1);
    let cancel = &l.commands_of("cancel_appointment")[0];
    assert_eq!((cancel["data"]["by"].as_str(), cancel["data"]["reason"].as_str()), (Some("ops"), Some("customer_unreached")));
    assert_eq!(l.case(&case_id)["ticket"]["result"], "unreachable");
}

fn completed(appointment_id: &str, outcome: &str, needs_material: bool, painting: Option<Value>) -> Value {
    let mut d = json!({"appointment_id": appointment_id, "outcome": outcome, "needs_material": needs_material});
    if let Some(p) = painting {
        d["painting"] = p;
    }
    d
}

#[test]
fn r3_painting_per_day_split_with_a_remainder_and_blocked_days() {
    let l = Local::virtual_at(MON_10);
    book(&l, "A1", "O1", "2026-03-02T08:00:00+02:00", "2026-03-02T10:00:00+02:00", Some("T-12"));
    let painting = json!({"days": 3, "total_price": {"amount": 1_000_000, "currency": "EGP"},
        "material_price": {"amount": 250_000, "currency": "EGP"}, "tax_invoice": true});
    assert_eq!(l.accept("/v1/appointments", "appointment.completed", completed("A1", "painting", false, Some(painting))), None);
    // R3.1 one hour later the case opens with its call task.
    assert_eq!(l.clock_to("2026-03-02T10:59:00+02:00"), 0);
    assert_eq!(l.clock_to("2026-03-02T11:00:00+02:00"), 1);
    let case = cases_of(&l, "A1").pop().unwrap();
    assert_eq!(case["playbook"], "second_visit_follow_up");
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["group"].as_str()), (Some("open"), Some("customer_care")));
    let case_id = case["case_id"].as_str().unwrap().to_owned();
    let task = &l.commands_of("call_customer")[0];
    let p = &task["data"]["painting"];
    // R3.7 1,000,000 ÷ 3: the remainder on the last day; material +10%, tax 29% on the quotation, 50% on day 1.
    assert_eq!(p["price_per_day"], json!([333_333, 333_333, 333_334]));
    assert_eq!(
        (p["material_quotation"].as_i64(), p["tax"].as_i64(), p["material_total"].as_i64()),
        (Some(275_000), Some(79_750), Some(354_750))
    );
    assert_eq!(p["material_day1"], 177_375);

    l.advance(600);
    let mut c = call(
        &case_id,
        "K1",
        "answered",
        Some(json!({"kind": "rebooked", "window_start": "2026-03-05T09:00:00+02:00", "window_end": "2026-03-05T15:00:00+02:00"})),
    );
    c["cost_told"] = json!(true);
    l.accept("/v1/calls", "call.completed", c);
    assert_eq!(l.commands_of("create_visit").len(), 1);
    let block = &l.commands_of("block_technician_days")[0];
    assert_eq!(block["data"]["days"], json!(["2026-03-05", "2026-03-07", "2026-03-08"]), "Friday is skipped");
    let case = l.case(&case_id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["group"].as_str()), (Some("pending"), Some("engineering_operation")));
    // R3.7 one follow-up call during the job (middle day, at the window's end time).
    assert_eq!(l.clock_to("2026-03-07T15:00:00+02:00"), 1);
    assert_eq!(l.commands_of("call_customer").len(), 2);
    // R3.5 (v2) no later visit of the order was booked: closed `not_booked` 7 days after opening.
    assert_eq!(l.clock_to("2026-03-20T15:00:00+02:00"), 1, "no more calls; the close");
    assert_eq!(l.case(&case_id)["ticket"]["result"], "not_booked");
    assert!(l.commands_of("escalate").is_empty());
}

#[test]
fn r3_5_material_booking_skips_friday_and_a_configured_holiday() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.toml");
    std::fs::write(&config, "[calendar]\nholidays = [\"2026-03-07\"]\n").unwrap();
    let data = dir.path().join("data");
    let l = Local::spawn(&data, Some("2026-03-05T12:00:00+02:00"), &[("FOLLOWUP_CONFIG", config.to_str().unwrap())]);
    book(&l, "A1", "O1", "2026-03-05T09:00:00+02:00", "2026-03-05T11:00:00+02:00", Some("T-12"));
    l.clock_to("2026-03-05T13:00:00+02:00");
    l.accept("/v1/appointments", "appointment.completed", completed("A1", "inspection", true, None));
    assert_eq!(l.clock_to("2026-03-05T14:00:00+02:00"), 1);
    let case_id = cases_of(&l, "A1").pop().unwrap()["case_id"].as_str().unwrap().to_owned();
    l.clock_to("2026-03-05T15:00:00+02:00");
    let rebook = |id: &str, start: &str| {
        let mut c = call(
            &case_id,
            id,
            "answered",
            Some(json!({"kind": "rebooked", "window_start": start, "window_end": "2026-03-09T18:00:00+02:00"})),
        );
        c["cost_told"] = json!(true);
        l.send("/v1/calls", id, "call.completed", c)
    };
    // Price confirmed Thursday 15:00: Friday is off and Saturday a holiday → Sunday 15:00 at the earliest.
    for (id, start) in [("K1", "2026-03-06T10:00:00+02:00"), ("K2", "2026-03-07T16:00:00+02:00"), ("K3", "2026-03-08T14:59:00+02:00")] {
        let (status, body) = rebook(id, start);
        assert_eq!(status, 422, "{start}: {body}");
        assert_eq!(body["error"]["rule"], "R3.5");
        assert!(body["error"]["message"].as_str().unwrap().contains("2026-03-08T15:00:00+02:00"), "{body}");
    }
    assert!(l.commands_of("create_visit").is_empty(), "nothing stored on a refusal");
    assert!(l.case(&case_id)["attempts"].as_array().unwrap().is_empty());
    let (status, body) = rebook("K4", "2026-03-08T15:00:00+02:00");
    assert_eq!(status, 202, "{body}");
    assert_eq!(l.commands_of("create_visit")[0]["data"]["window_start"], "2026-03-08T15:00:00+02:00");
}

#[test]
fn r3_2_sla_breach_and_a_call_just_in_time() {
    let l = Local::virtual_at(MON_10);
    for (a, o) in [("A1", "O1"), ("A2", "O2")] {
        book(&l, a, o, "2026-03-02T08:00:00+02:00", "2026-03-02T10:00:00+02:00", Some("T-12"));
        l.accept("/v1/appointments", "appointment.completed", completed(a, "incomplete", false, None));
    }
    assert_eq!(l.clock_to("2026-03-02T11:00:00+02:00"), 2);
    let late = cases_of(&l, "A1").pop().unwrap()["case_id"].as_str().unwrap().to_owned();
    let in_time = cases_of(&l, "A2").pop().unwrap()["case_id"].as_str().unwrap().to_owned();
    // A2's first outcome arrives one minute before the 8-hour SLA.
    l.clock_to("2026-03-02T18:59:00+02:00");
    l.accept("/v1/calls", "call.completed", call(&in_time, "K1", "no_answer", None));
    l.clock_to("2026-03-02T19:00:00+02:00");
    let escalations = l.commands_of("escalate");
    assert_eq!(escalations.len(), 1);
    assert_eq!(escalations[0]["case_id"], late.as_str());
    assert_eq!(escalations[0]["data"]["sla"], "first_call_sla");
    assert_eq!(l.case(&late)["ticket"]["priority"], "high");
    assert_eq!(l.case(&in_time)["ticket"]["priority"], "low");
    // R3.4 A2's second attempt Tuesday 09:00, answered without the cost; A1 never reported a call,
    // so R9.1 converts its order Tuesday 21:00 and R9.4 stops its cost SLA.
    assert_eq!(l.case(&in_time)["timers"][0], json!({"kind": "call_attempt", "due_at": "2026-03-03T09:00:00+02:00"}));
    l.clock_to("2026-03-03T09:00:00+02:00");
    l.accept("/v1/calls", "call.completed", call(&in_time, "K2", "answered", None));
    l.clock_to("2026-03-03T21:00:00+02:00");
    assert_eq!(l.commands_of("convert_order_to_complete").len(), 1);
    // R3.3 no cost told within 48 h (Wednesday 11:00): only the case still following escalates.
    l.clock_to("2026-03-04T11:00:00+02:00");
    let cost: Vec<Value> = l.commands_of("escalate").into_iter().filter(|c| c["data"]["sla"] == "cost_sla").collect();
    assert_eq!(cost.len(), 1);
    assert_eq!(cost[0]["case_id"], in_time.as_str());
}

#[test]
fn r3_4_two_unreached_attempts_convert_the_order() {
    let l = Local::virtual_at(MON_10);
    book(&l, "A1", "O1", "2026-03-02T08:00:00+02:00", "2026-03-02T10:00:00+02:00", Some("T-12"));
    l.accept("/v1/appointments", "appointment.completed", completed("A1", "inspection", false, None));
    l.clock_to("2026-03-02T11:00:00+02:00");
    let case_id = cases_of(&l, "A1").pop().unwrap()["case_id"].as_str().unwrap().to_owned();
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "busy", None));
    l.clock_to("2026-03-03T09:00:00+02:00");
    l.accept("/v1/calls", "call.completed", call(&case_id, "K2", "voicemail", None));
    assert_eq!(l.commands_of("convert_order_to_complete").len(), 1);
    assert_eq!(l.case(&case_id)["ticket"]["status"], "waiting_on_customer");
    // R3.9 closed after 7 days.
    l.clock_to("2026-03-09T11:00:00+02:00");
    assert_eq!(l.case(&case_id)["ticket"]["status"], "closed");
}

#[test]
fn r7_reschedules_confirmed_and_the_fourth_refused() {
    let l = Local::virtual_at(MON_10);
    let mut b = booked("A1", "O1", "2026-03-10T10:00:00+02:00", "2026-03-10T12:00:00+02:00");
    b["technician_id"] = json!("T-12");
    b["customer"]["language"] = json!("en");
    l.accept("/v1/appointments", "appointment.booked", b);
    for (i, day) in ["11", "12", "14"].iter().enumerate() {
        let data = json!({"appointment_id": "A1", "window_start": format!("2026-03-{day}T16:30:00+02:00"),
            "window_end": format!("2026-03-{day}T18:30:00+02:00"), "requested_by": "customer"});
        let (status, body) = l.send("/v1/appointments", &format!("r{i}"), "appointment.rescheduled", data);
        assert_eq!(status, 202, "{body}");
    }
    let sms = l.sms();
    assert_eq!(sms.len(), 3);
    assert_eq!(sms[2]["template"], "RESCHEDULE_CONFIRMATION");
    assert_eq!(sms[2]["language"], "en");
    assert_eq!(sms[2]["case_id"], Value::Null);
    assert!(sms[2]["body"].as_str().unwrap().contains("2026-03-14 at 16:30"), "{}", sms[2]["body"]);
    let data = json!({"appointment_id": "A1", "window_start": "2026-03-15T10:00:00+02:00", "window_end": "2026-03-15T12:00:00+02:00", "requested_by": "customer"});
    let (status, body) = l.send("/v1/appointments", "r4", "appointment.rescheduled", data);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["rule"], "R7.2");
    assert_eq!(l.sms().len(), 3, "nothing sent on a refusal");
}

#[test]
fn r3_8_a_late_time_change_replaces_the_visit() {
    let l = Local::virtual_at(MON_10);
    book(&l, "A1", "O1", "2026-03-02T11:00:00+02:00", "2026-03-02T13:00:00+02:00", Some("T-12"));
    let data = json!({"appointment_id": "A1", "window_start": "2026-03-02T16:00:00+02:00", "window_end": "2026-03-02T18:00:00+02:00", "requested_by": "customer"});
    l.accept("/v1/appointments", "appointment.rescheduled", data);
    let kinds: Vec<String> = l.commands().iter().map(|c| c["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, vec!["cancel_appointment", "create_visit"]);
    assert_eq!(l.commands_of("create_visit")[0]["data"]["window_start"], "2026-03-02T16:00:00+02:00");
    assert_eq!(templates(&l), vec!["RESCHEDULE_CONFIRMATION"]);
}

#[test]
fn r8_every_call_with_topics_is_summarised() {
    let l = Local::virtual_at(MON_10);
    book(&l, "A1", "O1", "2026-03-05T14:00:00+02:00", "2026-03-05T16:00:00+02:00", Some("T-12"));
    let case_id = l
        .accept(
            "/v1/appointments",
            "appointment.reschedule_requested",
            json!({"appointment_id": "A1", "reason": "r", "stf_link": "https://s/1"}),
        )
        .unwrap();
    let mut c = call(&case_id, "K1", "answered", Some(json!({"kind": "follow_up_later", "at": "2026-03-03T12:00:00+02:00"})));
    c["topics"] = json!(["inquiry.billing", "appointment.reschedule", "booking.escalation", "inquiry.general"]);
    c["requested_follow_up"] = json!(true);
    c["notes"] = json!("asked about fees");
    l.accept("/v1/calls", "call.completed", c);
    let summaries = l.commands_of("interaction_summary");
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(s["case_id"], case_id.as_str());
    assert_eq!(s["data"]["primary_topic"], "booking.escalation");
    assert_eq!(s["data"]["notes"], json!(["inquiry.billing", "appointment.reschedule", "inquiry.general", "asked about fees"]));
    assert_eq!(s["data"]["requested_follow_up"], true);
    // R8.1 unknown topic → 400.
    let mut bad = call(&case_id, "K2", "answered", None);
    bad["topics"] = json!(["appointment.teleport"]);
    assert_eq!(l.send("/v1/calls", "bad", "call.completed", bad).0, 400);
}
