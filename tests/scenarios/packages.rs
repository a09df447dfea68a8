//! Package playbooks end to end (R4, R5, R6): followup-local over HTTP with the virtual clock.
//! Dates: 2026-03-02 is a Monday; Friday is the day off.

use followup::adapters::local::SqliteStore;
use followup::domain::records::case::TimerKind;
use followup_tests::{call, customer, timers, Local};
use serde_json::{json, Value};

const MON_10: &str = "2026-03-02T10:00:00+02:00";

// SPEC §4, exact bodies (hotline 19125), X = 3 where it applies.
const SMS1: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك\nنذكركم بدفع باقة التنظيف.\nيرجى العلم بأننا لن نستطيع تفعيل الباقة حتى يتم الدفع.\nللمزيد من المعلومات إتصل بنا على 19125";
const SMS2: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\nيرجى العلم بأننا سوف نقوم بإلغاء باقة التنظيف لعدم الدفع حتى الأن.\nنقدر تفهمكم.\nللمزيد من المعلومات إتصل بنا على 19125.";
const SMS3: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\nيرجى العلم بإن مدة باقة التنظيف قد انتهت.\nلديك 3 زيارات متبقية في الباقة.\nفي حال عدم تحديد مواعيد الزيارات المتبقية في خلال إسبوعين سوف يتم تعطيل الباقة بشكل نهائي.\nنقدر تفهمكم.\nللمزيد من المعلومات إتصل بنا على 19125.";
const SMS4: &str = "مرحباً،\nلقد حاولنا الاتصال بك منذ قليل ولكن لم نتمكن من الوصول إليك.\nيرجى العلم بإن مدة باقة التنظيف قد انتهت.\nلديك 3 زيارات متبقية في الباقة.\nفي حال عدم تحديد مواعيد الزيارات المتبقية في خلال إسبوع سوف يتم تعطيل الباقة بشكل نهائي.\nنقدر تفهمكم.\nللمزيد من المعلومات إتصل بنا على 19125.";
const SMS5: &str = "مرحباً،\nلقد حاولنا الاتصال بك بخصوص زيارة اليوم في باقة تنظيف و لكن لم نستطيع الوصول اليكم.\nيرجى العلم بأن زيارة إليوم لن يمكننا تأجيلها لميعاد أخر.\nنأسف لاخباركم بأن هذه الزيارة تم احتسابها في الباقة.\nنقدر تفهمكم\nللمزيد من المعلومات إتصل بنا على 19125.";

/// `package.booked` data for package `id`.
fn package(id: &str, start_date: &str, visits: &[&str], paid: bool, method: &str) -> Value {
    let visits: Vec<Value> =
        visits.iter().enumerate().map(|(i, w)| json!({"visit_id": format!("V{}", i + 1), "window_start": w})).collect();
    json!({
        "package_id": id, "customer": customer("ar"), "area": "Cairo",
        "price": {"amount": 200000, "currency": "EGP"}, "visits": visits,
        "start_date": start_date, "payment_method": method, "paid": paid
    })
}

/// Four weekly visits from Monday 2026-03-09 10:00.
fn weekly(id: &str, paid: bool) -> Value {
    package(
        id,
        "2026-03-09",
        &["2026-03-09T10:00:00+02:00", "2026-03-16T10:00:00+02:00", "2026-03-23T10:00:00+02:00", "2026-03-30T10:00:00+02:00"],
        paid,
        "card",
    )
}

fn timer(kind: &str, due: &str) -> (String, String) {
    (kind.to_owned(), due.to_owned())
}

/// Asserts one SMS: template, exact body, case, and the segment count the engine recorded.
fn assert_sms(sms: &Value, template: &str, body: &str, case_id: Option<&str>) {
    assert_eq!(sms["template"], template, "{sms}");
    assert_eq!(sms["body"], body, "{template} body");
    assert_eq!(sms["to"], "+201001234567");
    assert_eq!(sms["case_id"].as_str(), case_id);
    // UCS-2: 70 characters in one part, 67 per part beyond.
    let chars = body.encode_utf16().count() as u64;
    let expected = if chars <= 70 { 1 } else { chars.div_ceil(67) };
    assert_eq!(sms["segments"].as_u64(), Some(expected), "{template} segments");
    assert!(expected >= 3, "{template} is a multi-part Arabic SMS");
}

fn package_cases(l: &Local, id: &str) -> Vec<Value> {
    l.get(&format!("/v1/cases?package_id={id}")).1["cases"].as_array().cloned().unwrap()
}

#[test]
fn r4_full_unpaid_chase_ends_in_a_closed_ticket() {
    let l = Local::virtual_at(MON_10);
    let case_id = l.accept("/v1/packages", "package.booked", weekly("P-1", false)).expect("R4.1 opens a case");
    assert_eq!(case_id, "p1-P-1");

    // R4.1 not_paid ticket for customer_success; a call task now.
    let case = l.case(&case_id);
    assert_eq!(case["playbook"], "package_payment");
    assert_eq!(case["package_id"], "P-1");
    assert_eq!(case["ticket"]["tags"], json!(["not_paid"]));
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["group"].as_str()), (Some("open"), Some("customer_success")));
    assert_eq!(timers(&case), vec![timer("call_attempt", "2026-03-08T09:00:00+02:00")]);
    let tasks = l.commands_of("call_customer");
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0]["case_id"].as_str(), tasks[0]["data"]["package_id"].as_str()), (Some(case_id.as_str()), Some("P-1")));
    assert_eq!(tasks[0]["data"]["due"], MON_10);

    // R4.3 not reached: waiting on the customer until the day before, SMS1.
    l.advance(600);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "no_answer", None));
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["status"], "waiting_on_customer");
    assert_eq!(case["ticket"]["resolution_due"], "2026-03-08T21:00:00+02:00");
    let sms = l.sms();
    assert_eq!(sms.len(), 1);
    assert_sms(&sms[0], "SMS1", SMS1, Some(&case_id));

    // R4.4 the day before the first visit, 09:00: call task, group customer_care, deadline 21:00.
    assert_eq!(l.clock_to("2026-03-08T09:00:00+02:00"), 1);
    let tasks = l.commands_of("call_customer");
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1]["at"], "2026-03-08T09:00:00+02:00");
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["group"], "customer_care");
    assert_eq!(timers(&case), vec![timer("payment_deadline", "2026-03-08T21:00:00+02:00")]);

    // Not reached: cancel the package and its visits, SMS2, resolution next day; R4.5 final call.
    l.advance(900);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K2", "busy", None));
    let cancel = l.commands_of("cancel_package");
    assert_eq!(cancel.len(), 1);
    assert_eq!((cancel[0]["case_id"].as_str(), cancel[0]["data"]["package_id"].as_str()), (Some(case_id.as_str()), Some("P-1")));
    let visits = l.commands_of("cancel_package_visits");
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0]["data"]["visit_ids"], json!(["V1", "V2", "V3", "V4"]));
    let sms = l.sms();
    assert_eq!(sms.len(), 2);
    assert_sms(&sms[1], "SMS2", SMS2, Some(&case_id));
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["resolution_due"], "2026-03-09T21:00:00+02:00");
    assert_eq!(timers(&case), vec![timer("call_attempt", "2026-03-09T09:00:00+02:00")]);

    // R4.5 final call; not reached → closed, unreachable.
    assert_eq!(l.clock_to("2026-03-09T09:00:00+02:00"), 1);
    assert_eq!(l.commands_of("call_customer").len(), 3);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K3", "voicemail", None));
    let case = l.case(&case_id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("closed"), Some("unreachable")));
    assert!(timers(&case).is_empty());
    assert_eq!(case["attempts"].as_array().unwrap().len(), 3);

    // A package cancelled for non-payment never expires into a grace case.
    let commands = l.commands().len();
    l.clock_to("2026-04-30T12:00:00+02:00");
    assert_eq!(l.commands().len(), commands);
    assert_eq!(l.sms().len(), 2);
    assert_eq!(package_cases(&l, "P-1").len(), 1);
}

#[test]
fn r4_6_payment_after_sms1_resolves_and_stops_the_chase() {
    let l = Local::virtual_at(MON_10);
    let case_id = l.accept("/v1/packages", "package.booked", weekly("P-2", false)).unwrap();
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "no_answer", None));
    assert_eq!(l.sms().len(), 1);

    l.clock_to("2026-03-04T15:00:00+02:00");
    assert_eq!(l.accept("/v1/packages", "package.paid", json!({"package_id": "P-2"})).as_deref(), Some(case_id.as_str()));
    let case = l.case(&case_id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("resolved"), Some("paid")));
    assert!(timers(&case).is_empty(), "R4.6 pending timers cancelled");

    // Nothing more about payment: no day-before call, no SMS2.
    l.clock_to("2026-03-10T12:00:00+02:00");
    assert_eq!(l.commands_of("call_customer").len(), 1);
    assert!(l.commands_of("cancel_package").is_empty());
    assert_eq!(l.sms().len(), 1);
}

#[test]
fn r4_7_first_visit_tomorrow_gets_r4_1s_call_and_r4_4s_deadline() {
    let l = Local::virtual_at(MON_10);
    let data = package("P-3", "2026-03-03", &["2026-03-03T10:00:00+02:00", "2026-03-10T10:00:00+02:00"], false, "cash");
    let case_id = l.accept("/v1/packages", "package.booked", data).unwrap();
    let case = l.case(&case_id);
    assert_eq!(case["ticket"]["group"], "customer_success", "R4.7 (v2) still R4.1's call");
    assert_eq!(timers(&case), vec![timer("payment_deadline", "2026-03-02T21:00:00+02:00")]);
    let tasks = l.commands_of("call_customer");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["data"]["stage"], "first");

    // Answered, will pay cash; still unpaid at 21:00 → cancelled, SMS2 (never SMS1), final call Tuesday.
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "answered", Some(json!({"kind": "will_pay"}))));
    let collect = l.commands_of("request_cash_collection");
    assert_eq!(collect.len(), 1);
    assert_eq!(collect[0]["data"]["amount"], json!({"amount": 200000, "currency": "EGP"}));
    assert_eq!(l.clock_to("2026-03-02T21:00:00+02:00"), 1);
    assert_eq!(l.commands_of("cancel_package").len(), 1);
    let sms = l.sms();
    assert_eq!(sms.len(), 1);
    assert_sms(&sms[0], "SMS2", SMS2, Some(&case_id));
    assert_eq!(timers(&l.case(&case_id)), vec![timer("call_attempt", "2026-03-03T09:00:00+02:00")]);
}

#[test]
fn r5_whole_expiry_grace_timeline() {
    let l = Local::virtual_at(MON_10);
    assert_eq!(l.accept("/v1/packages", "package.booked", weekly("P-4", true)), None, "paid: no payment case");
    l.clock_to("2026-03-09T13:00:00+02:00");
    l.accept("/v1/packages", "package_visit.completed", json!({"package_id": "P-4", "visit_id": "V1"}));

    // R5.1 valid 03-09 through 04-08; nothing happens before Day 1.
    l.clock_to("2026-04-09T08:59:00+02:00");
    assert!(package_cases(&l, "P-4").is_empty());

    // R5.2 Day 1 (Thursday 04-09) 09:00: case, ticket open for customer_success, call task.
    assert_eq!(l.clock_to("2026-04-09T09:00:00+02:00"), 1);
    let cases = package_cases(&l, "P-4");
    assert_eq!(cases.len(), 1);
    let case_id = cases[0]["case_id"].as_str().unwrap().to_owned();
    let case = l.case(&case_id);
    assert_eq!(case["playbook"], "package_expiry");
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["group"].as_str()), (Some("open"), Some("customer_success")));
    assert_eq!(case["ticket"]["resolution_due"], "2026-04-23T00:00:00+02:00");
    assert_eq!(timers(&case), vec![timer("call_attempt", "2026-04-14T09:00:00+02:00")]);
    let tasks = l.commands_of("call_customer");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["at"], "2026-04-09T09:00:00+02:00");

    // Not reached → SMS3 with X = 3.
    l.advance(1200);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K1", "no_answer", None));
    let sms = l.sms();
    assert_eq!(sms.len(), 1);
    assert_sms(&sms[0], "SMS3", SMS3, Some(&case_id));

    // R5.3 Day 6 (Tuesday 04-14) 09:00: second call; not reached → SMS4, ticket closed.
    assert_eq!(l.clock_to("2026-04-14T09:00:00+02:00"), 1);
    assert_eq!(l.commands_of("call_customer").len(), 2);
    l.accept("/v1/calls", "call.completed", call(&case_id, "K2", "busy", None));
    let sms = l.sms();
    assert_eq!(sms.len(), 2);
    assert_sms(&sms[1], "SMS4", SMS4, Some(&case_id));
    let case = l.case(&case_id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("closed"), Some("unreachable")));

    // R5.4 end of Day 14 (Day 15 00:00): deactivate_package, remaining visits forfeited.
    l.clock_to("2026-04-22T23:59:00+02:00");
    assert!(l.commands_of("deactivate_package").is_empty());
    l.clock_to("2026-04-23T00:00:00+02:00");
    let deactivate = l.commands_of("deactivate_package");
    assert_eq!(deactivate.len(), 1);
    assert_eq!(deactivate[0]["at"], "2026-04-23T00:00:00+02:00");
    assert_eq!(deactivate[0]["case_id"], case_id.as_str());
    assert_eq!(deactivate[0]["data"]["package_id"], "P-4");
    assert_eq!(deactivate[0]["data"]["forfeited_visits"], 3);
    assert_eq!(deactivate[0]["data"]["visit_ids"], json!(["V2", "V3", "V4"]));
    // The package is closed: visits can no longer change.
    let (status, body) = l.send("/v1/cancellations", "late-1", "package_visit.cancelled", json!({"package_id": "P-4", "visit_id": "V2"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(l.sms().len(), 2);
}

#[test]
fn r5_5_rebooked_within_grace_resolves_without_later_sms() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/packages", "package.booked", weekly("P-5", true));
    l.clock_to("2026-04-09T09:00:00+02:00");
    let case_id = package_cases(&l, "P-5")[0]["case_id"].as_str().unwrap().to_owned();
    l.accept(
        "/v1/calls",
        "call.completed",
        call(
            &case_id,
            "K1",
            "answered",
            Some(json!({"kind": "rebooked", "window_start": "2026-04-18T10:00:00+02:00", "window_end": "2026-04-18T12:00:00+02:00"})),
        ),
    );
    let case = l.case(&case_id);
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("resolved"), Some("rebooked")));
    l.clock_to("2026-04-20T12:00:00+02:00");
    assert!(l.sms().is_empty());
    assert_eq!(l.commands_of("call_customer").len(), 1, "no Day 6 call");
}

#[test]
fn r6_same_day_cancellation_and_one_a_week_ahead() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/packages", "package.booked", weekly("P-6", true));

    // R6.1 a week ahead: free, nothing sent.
    l.clock_to("2026-03-09T08:00:00+02:00");
    assert_eq!(l.accept("/v1/cancellations", "package_visit.cancelled", json!({"package_id": "P-6", "visit_id": "V3"})), None);
    assert!(l.commands().is_empty() && l.sms().is_empty());

    // R6.3 the same day: complete_visit and SMS5, on the package record (case_id null).
    assert_eq!(l.accept("/v1/cancellations", "package_visit.cancelled", json!({"package_id": "P-6", "visit_id": "V1"})), None);
    let complete = l.commands_of("complete_visit");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0]["case_id"], Value::Null);
    assert_eq!((complete[0]["data"]["package_id"].as_str(), complete[0]["data"]["visit_id"].as_str()), (Some("P-6"), Some("V1")));
    let sms = l.sms();
    assert_eq!(sms.len(), 1);
    assert_sms(&sms[0], "SMS5", SMS5, None);

    // A same-day reschedule → 422 citing R6.3; nothing stored or sent.
    let (status, body) = l.send(
        "/v1/packages",
        "resched-1",
        "package_visit.rescheduled",
        json!({"package_id": "P-6", "visit_id": "V1", "window_start": "2026-03-11T10:00:00+02:00"}),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!((body["error"]["code"].as_str(), body["error"]["rule"].as_str()), (Some("rule_violation"), Some("R6.3")));
    assert_eq!(l.sms().len(), 1);

    // Unknown package or visit → 404.
    let (status, body) = l.send("/v1/packages", "nf-1", "package.paid", json!({"package_id": "P-404"}));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_package")));
    let (status, body) = l.send("/v1/cancellations", "nf-2", "package_visit.cancelled", json!({"package_id": "P-6", "visit_id": "V9"}));
    assert_eq!((status, body["error"]["field"].as_str()), (404, Some("data.visit_id")));

    // R6.4 cancelled after payment: V1 counted; V2, V3 (freed) and V4 remain → 3 × 500.00 = 1 500.00,
    // fee 30 % = 450.00, refund 1 050.00.
    l.clock_to("2026-03-10T12:00:00+02:00");
    l.accept("/v1/cancellations", "package.cancelled", json!({"package_id": "P-6", "reason": "moving abroad"}));
    let refund = l.commands_of("refund_package");
    assert_eq!(refund.len(), 1);
    assert_eq!(refund[0]["case_id"], Value::Null);
    assert_eq!(refund[0]["data"]["package_id"], "P-6");
    assert_eq!(refund[0]["data"]["fee"], json!({"amount": 45000, "currency": "EGP"}));
    assert_eq!(refund[0]["data"]["refund"], json!({"amount": 105000, "currency": "EGP"}));
}

#[test]
fn r5_1_a_package_booked_on_the_31st_expires_on_the_last_day_of_february() {
    let l = Local::virtual_at("2026-01-29T10:00:00+02:00");
    let data = package("P-7", "2026-01-31", &["2026-01-31T10:00:00+02:00", "2026-02-07T10:00:00+02:00"], true, "card");
    l.accept("/v1/packages", "package.booked", data);
    l.clock_to("2026-02-27T23:00:00+02:00");
    assert!(package_cases(&l, "P-7").is_empty(), "valid through 02-27");
    assert_eq!(l.clock_to("2026-02-28T09:00:00+02:00"), 1, "Day 1 = 01-31 + 1 month, clamped to 02-28");
    let cases = package_cases(&l, "P-7");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["opened_at"], "2026-02-28T09:00:00+02:00");
    assert_eq!(cases[0]["ticket"]["resolution_due"], "2026-03-14T00:00:00+02:00");
    assert_eq!(l.commands_of("call_customer").len(), 1);
}

/// Loses the package's Day 1 one-shot the way a scheduler might, straight from the local timer table.
fn lose_day1_tick(l: &Local) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&l.data_dir).unwrap();
        let all = store.timers().await.unwrap();
        let day1 = all.iter().find(|t| t.timer.kind == TimerKind::ExpiryDay1).expect("the Day 1 tick was placed at booking");
        store.remove_timer(&day1.timer.name()).await.unwrap();
    });
}

#[test]
fn r5_daily_sweep_re_drives_a_missed_tick() {
    // A clock move runs R9.3's timer sweep too (v3), which would re-fire the lost tick at 09:10; a
    // grace of two days leaves it to this day's R5 sweep at midnight.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.toml");
    std::fs::write(&config, "[timers]\nsweep_grace_minutes = 2880\n").unwrap();
    let l = Local::spawn(&dir.path().join("data"), Some(MON_10), &[("FOLLOWUP_CONFIG", config.to_str().unwrap())]);
    l.accept("/v1/packages", "package.booked", weekly("P-8", true));
    lose_day1_tick(&l);

    // Day 1 09:00 passes without a tick.
    assert_eq!(l.clock_to("2026-04-09T12:00:00+02:00"), 0);
    assert!(package_cases(&l, "P-8").is_empty());

    // Crossing midnight sweeps the day that ended: the tick runs, late, and the case opens.
    assert_eq!(l.clock_to("2026-04-10T00:30:00+02:00"), 1);
    let cases = package_cases(&l, "P-8");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["playbook"], "package_expiry");
    assert_eq!(cases[0]["opened_at"], "2026-04-10T00:00:00+02:00");
    // Friday 04-10 is off: the first call waits for Saturday 09:00; Day 6 stays Tuesday 04-14.
    assert_eq!(
        timers(&cases[0]),
        vec![timer("call_attempt", "2026-04-11T09:00:00+02:00"), timer("call_attempt", "2026-04-14T09:00:00+02:00")]
    );

    // Sweeping the same day again is harmless.
    let (status, body) = l.post_raw("/local/expiry-sweep", br#"{"date": "2026-04-09"}"#, &[]);
    assert_eq!((status, body["fired"].as_u64()), (200, Some(0)), "{body}");
    assert_eq!(package_cases(&l, "P-8").len(), 1);
    assert_eq!(l.clock_to("2026-04-11T09:00:00+02:00"), 1);
    assert_eq!(l.commands_of("call_customer").len(), 1);
}
