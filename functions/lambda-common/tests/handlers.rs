//! Each function's handler fed from `events/`: the sample envelopes wrapped in API Gateway HTTP
//! API (payload v2) requests, Scheduler inputs from `events/timer.*.json`, and the daily tick —
//! all against the AWS adapters on a local moto server. Scheduler does not fire in moto, so
//! `pump` plays its part: it reads due schedules and invokes the owning function with the exact Input.

#[path = "../../../shared/tests/common/moto.rs"]
mod moto;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use followup::domain::effects::{Effect, TimerSpec};
use followup::domain::policy::Policy;
use followup::domain::records::case::Language;
use followup::domain::sms::{self, SmsVars, TemplateId};
use followup::ports::{CaseStore, Clock, Commit, Delivery, PendingEffect};
use followup_lambda::{dispatch_with, engine, handle, AwsEngine, BootError, Function, HandlerError, Invocation, WebhookSecret};
use moto::{serial, Fixture};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const SECRET: &str = "test-secret";

#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);
impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00+02:00").unwrap().with_timezone(&Utc)
}

async fn setup(name: &str) -> (Fixture, AwsEngine<TestClock>, TestClock) {
    let f = Fixture::new(name).await;
    let settings = f.settings();
    let clock = TestClock(Arc::new(Mutex::new(start())));
    let e = engine(&settings, &f.config, Policy::default(), SECRET.into(), clock.clone());
    (f, e, clock)
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"))).expect("sample")
}

fn json_sample(name: &str) -> Value {
    serde_json::from_str(&sample(name)).expect("a JSON sample")
}

/// A signed webhook as API Gateway hands it to the function (payload format 2.0).
fn post(path: &str, body: &str, base64: bool) -> Value {
    let ts = Utc::now().timestamp();
    let sig = followup_lambda::sign(SECRET, ts, body.as_bytes());
    json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-timestamp": ts.to_string(), "x-signature": sig},
        "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                            "routeKey": format!("POST {path}"), "stage": "$default", "requestId": "r1", "accountId": moto::ACCOUNT, "apiId": "api",
                            "domainName": "example.invalid", "domainPrefix": "example", "time": "02/Mar/2026:08:00:00 +0000", "timeEpoch": 0},
        "body": if base64 { base64::engine::general_purpose::STANDARD.encode(body) } else { body.to_string() },
        "isBase64Encoded": base64,
    })
}

fn get(path: &str, query: &str) -> Value {
    let mut r = post(path, "", false);
    r["requestContext"]["http"]["method"] = json!("GET");
    r["routeKey"] = json!(format!("GET {path}"));
    r["rawQueryString"] = json!(query);
    r
}

/// Status and JSON body of an HTTP API response.
fn answer(v: Value) -> (u16, Value) {
    let status = v["statusCode"].as_u64().expect("statusCode") as u16;
    (status, serde_json::from_str(v["body"].as_str().expect("body")).expect("JSON body"))
}

async fn call(e: &AwsEngine<TestClock>, f: Function, event: Value) -> (u16, Value) {
    answer(handle(e, f, event).await.expect("an HTTP answer, not an invocation error"))
}

/// Plays Scheduler: fires every schedule due by `upto` in due order into the function its target names.
async fn pump(f: &Fixture, e: &AwsEngine<TestClock>, clock: &TestClock, upto: DateTime<Utc>) -> Vec<Value> {
    let targets = moto::targets();
    let function = |arn: &str| match arn {
        a if a == targets.appointments => Function::Appointments,
        a if a == targets.cancellation_request => Function::CancellationRequest,
        a if a == targets.package_payment => Function::PackagePayment,
        a if a == targets.package_expiry => Function::PackageExpiry,
        other => panic!("a schedule targets {other}"),
    };
    let mut fired = Vec::new();
    loop {
        let mut due: Vec<(TimerSpec, String, String)> = f
            .schedules()
            .await
            .into_iter()
            .map(|(_, arn, input)| (serde_json::from_str::<TimerSpec>(&input).expect("Input"), arn, input))
            .filter(|(t, _, _)| t.due_at <= upto)
            .collect();
        due.sort_by_key(|(t, _, _)| t.due_at);
        let Some((timer, arn, input)) = due.into_iter().next() else { break };
        *clock.0.lock().unwrap() = timer.due_at.max(clock.now());
        let out = handle(e, function(&arn), serde_json::from_str(&input).unwrap()).await.expect("timer handled");
        // ActionAfterCompletion: DELETE.
        aws_sdk_scheduler::Client::new(&f.config)
            .delete_schedule()
            .group_name(&f.group)
            .name(timer.timer.name())
            .send()
            .await
            .expect("delete");
        fired.push(out);
    }
    fired
}

#[tokio::test]
async fn appointments_cancellation_request_call_attempt_and_cases_play_the_order_story() {
    let _one = serial().await;
    let (f, e, clock) = setup("story").await;

    // appointments: the booking, base64-encoded as API Gateway may deliver it.
    let (status, body) = call(&e, Function::Appointments, post("/v1/appointments", &sample("01_appointment.booked"), true)).await;
    assert_eq!(status, 202, "{body}");
    // A route another function owns is not found here.
    let (status, _) = call(&e, Function::Appointments, post("/v1/calls", &sample("07_call.completed"), false)).await;
    assert_eq!(status, 404);

    // cancellation-request: the cancelled first visit opens cancellation_follow_up (R2.1).
    let (status, body) =
        call(&e, Function::CancellationRequest, post("/v1/cancellations", &sample("05_appointment.cancelled"), false)).await;
    assert_eq!((status, body["case_id"].as_str()), (202, Some("o1-O-501")), "{body}");
    // The same delivery again is a duplicate.
    let (status, body) =
        call(&e, Function::CancellationRequest, post("/v1/cancellations", &sample("05_appointment.cancelled"), false)).await;
    assert_eq!((status, &body["duplicate"]), (202, &json!(true)));

    // cases: by id and by order.
    let (status, case) = call(&e, Function::Cases, get("/v1/cases/o1-O-501", "")).await;
    assert_eq!((status, case["playbook"].as_str()), (200, Some("cancellation_follow_up")), "{case}");
    let (status, list) = call(&e, Function::Cases, get("/v1/cases", "order_id=O-501")).await;
    assert_eq!((status, list["cases"].as_array().map(Vec::len)), (200, Some(1)), "{list}");
    let (status, _) = call(&e, Function::Cases, get("/v1/cases/o9-nothing", "")).await;
    assert_eq!(status, 404);

    // Scheduler fires the first follow-up attempt (R2.5) into cancellation-request.
    let fired = pump(&f, &e, &clock, start() + chrono::Duration::days(1)).await;
    assert!(!fired.is_empty(), "the first attempt is scheduled for the next working day");
    let commands: Vec<Value> = f.ops_messages().await.iter().map(|m| serde_json::from_str(m).unwrap()).collect();
    assert!(commands.iter().any(|c| c["type"] == "call_customer" && c["case_id"] == "o1-O-501"), "{commands:?}");

    // call-attempt: the outcome of that call.
    let (status, body) = call(&e, Function::CallAttempt, post("/v1/calls", &sample("07_call.completed"), false)).await;
    assert_eq!((status, body["case_id"].as_str()), (202, Some("o1-O-501")), "{body}");
    let (_, case) = call(&e, Function::Cases, get("/v1/cases/o1-O-501", "")).await;
    assert_eq!(case["ticket"]["status"], "resolved", "R2.7 rebooked: {case}");

    // Unsigned: 401, and nothing stored.
    let mut unsigned = post("/v1/calls", &sample("07_call.completed"), false);
    unsigned["headers"].as_object_mut().unwrap().remove("x-signature");
    assert_eq!(call(&e, Function::CallAttempt, unsigned).await.0, 401);
}

fn at(local: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(local).unwrap().with_timezone(&Utc)
}

fn call_outcome(id: &str, case_id: &str, outcome: &str) -> String {
    json!({"id": id, "type": "call.completed", "occurred_at": "2026-03-02T10:00:00+02:00",
           "data": {"case_id": case_id, "call_id": id, "agent_id": "agent-4", "outcome": outcome}})
    .to_string()
}

/// SPEC §4 text of `template` with the default hotline, as the customer receives it.
fn text(template: TemplateId) -> String {
    sms::render(template, Language::Ar, &SmsVars::default(), &Policy::default().sms.hotline).unwrap().1
}

/// The SMS moto recorded since `before` (its log is global to the server).
async fn sms_since(before: usize) -> Vec<(String, String)> {
    moto::sent_sms().await.split_off(before)
}

/// The commands delivered to the ops queue since the last look.
async fn ops(f: &Fixture) -> Vec<Value> {
    f.ops_messages().await.iter().map(|m| serde_json::from_str(m).expect("a command")).collect()
}

fn commands_of(all: &[Value], kind: &str) -> usize {
    all.iter().filter(|c| c["type"] == kind).count()
}

/// R4 end to end through package-payment, call-attempt and cases, with Scheduler played by `pump`.
#[tokio::test]
async fn package_payment_plays_the_whole_unpaid_chase() {
    let _one = serial().await;
    let (f, e, clock) = setup("chase").await;
    let sms_before = moto::sent_sms().await.len();
    let mut commands = Vec::new();

    // R4.1: the unpaid package opens its case with a call task at once.
    let (status, body) = call(&e, Function::PackagePayment, post("/v1/packages", &sample("09_package.booked"), false)).await;
    assert_eq!((status, body["case_id"].as_str()), (202, Some("p1-P-77")), "{body}");
    let (status, body) = call(&e, Function::PackagePayment, post("/v1/packages", "{not json", false)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")));
    commands.extend(ops(&f).await);
    assert_eq!(commands_of(&commands, "call_customer"), 1);

    // R4.3 not reached: SMS1, waiting on the customer.
    let (status, _) = call(&e, Function::CallAttempt, post("/v1/calls", &call_outcome("K1", "p1-P-77", "no_answer"), false)).await;
    assert_eq!(status, 202);
    assert_eq!(sms_since(sms_before).await, [("+201001234567".to_string(), text(TemplateId::Sms1))]);
    let (_, case) = call(&e, Function::Cases, get("/v1/cases/p1-P-77", "")).await;
    assert_eq!(case["ticket"]["status"], "waiting_on_customer", "{case}");

    // R4.4 the day before the first visit: Scheduler fires the call step into package-payment.
    let fired = pump(&f, &e, &clock, at("2026-03-08T09:00:00+02:00")).await;
    assert!(!fired.is_empty());
    commands.extend(ops(&f).await);
    assert_eq!(commands_of(&commands, "call_customer"), 2);
    let (status, _) = call(&e, Function::CallAttempt, post("/v1/calls", &call_outcome("K2", "p1-P-77", "busy"), false)).await;
    assert_eq!(status, 202);
    commands.extend(ops(&f).await);
    assert_eq!((commands_of(&commands, "cancel_package"), commands_of(&commands, "cancel_package_visits")), (1, 1), "{commands:?}");
    let sent = sms_since(sms_before).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1, text(TemplateId::Sms2));

    // R4.5 the final call the next day; not reached: closed as unreachable.
    pump(&f, &e, &clock, at("2026-03-09T09:00:00+02:00")).await;
    commands.extend(ops(&f).await);
    assert_eq!(commands_of(&commands, "call_customer"), 3);
    let (status, _) = call(&e, Function::CallAttempt, post("/v1/calls", &call_outcome("K3", "p1-P-77", "voicemail"), false)).await;
    assert_eq!(status, 202);
    let (_, case) = call(&e, Function::Cases, get("/v1/cases/p1-P-77", "")).await;
    assert_eq!((case["ticket"]["status"].as_str(), case["ticket"]["result"].as_str()), (Some("closed"), Some("unreachable")), "{case}");
    assert_eq!(case["timers"], json!([]), "{case}");

    // Nothing more is scheduled for the case, and nothing else goes out.
    pump(&f, &e, &clock, at("2026-05-30T12:00:00+02:00")).await;
    assert_eq!(sms_since(sms_before).await.len(), 2);
    let (_, list) = call(&e, Function::Cases, get("/v1/cases", "package_id=P-77")).await;
    assert_eq!(list["cases"].as_array().map(Vec::len), Some(1), "a package cancelled for non-payment never expires into a case");
}

/// The function a timer sample belongs to, as `TimerTargets` routes a bare `TimerRef` (no playbook).
fn owner(timer: &Value) -> Function {
    match (timer["stream"].as_str().unwrap_or_default().split(':').next(), timer["case_id"].is_null(), timer["kind"].as_str()) {
        (Some("package"), true, _) => Function::PackageExpiry,
        (Some("package"), false, _) => Function::PackagePayment,
        (_, _, Some("call_attempt" | "auto_close")) => Function::CancellationRequest,
        _ => Function::Appointments,
    }
}

#[tokio::test]
async fn every_timer_sample_is_handled_by_its_function_and_a_hopeless_one_is_acknowledged() {
    let _one = serial().await;
    let (_f, e, _clock) = setup("timers").await;
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("timer.") && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), followup::domain::records::case::TimerKind::ALL.len(), "one sample per timer kind: {names:?}");
    let mut owners = std::collections::HashSet::new();
    for name in names {
        let input: Value = serde_json::from_str(&sample(&name)).unwrap();
        let function = owner(&input);
        owners.insert(function.name());
        // No such case or package yet: the engine refuses it, so the invocation succeeds and Scheduler stops retrying.
        let out = handle(&e, function, input).await.expect("acknowledged");
        assert_eq!(out["acknowledged"], json!(true), "{name}: {out}");
        assert!(out["refused"]["error"]["code"].is_string(), "{name}: {out}");
    }
    assert_eq!(owners.len(), 4, "timers go to every function that owns cases: {owners:?}");
}

#[tokio::test]
async fn the_daily_sweep_re_drives_a_lost_day1_schedule_and_others_refuse_the_tick() {
    let _one = serial().await;
    let (f, e, clock) = setup("tick").await;
    let paid = sample("09_package.booked").replace("\"paid\": false", "\"paid\": true");
    assert_ne!(paid, sample("09_package.booked"));
    let (status, body) = call(&e, Function::PackagePayment, post("/v1/packages", &paid, false)).await;
    assert_eq!((status, body["case_id"].as_str()), (202, None), "a paid package opens no case: {body}");

    // The package's Day 1 schedule is lost on the way.
    let day1 = f
        .schedules()
        .await
        .into_iter()
        .map(|(_, _, input)| serde_json::from_str::<TimerSpec>(&input).unwrap())
        .find(|t| t.timer.kind == followup::domain::records::case::TimerKind::ExpiryDay1)
        .expect("R5.2 Day 1 placed at booking");
    assert_eq!(day1.due_at, at("2026-04-09T09:00:00+02:00"));
    aws_sdk_scheduler::Client::new(&f.config).delete_schedule().group_name(&f.group).name(day1.timer.name()).send().await.unwrap();
    *clock.0.lock().unwrap() = at("2026-04-10T00:05:00+02:00");
    let (_, list) = call(&e, Function::Cases, get("/v1/cases", "package_id=P-77")).await;
    assert_eq!(list["cases"], json!([]));

    // 22:05 UTC on 04-09 is 00:05 Cairo on 04-10: the sweep covers 04-09 and runs the lost tick.
    let out = handle(&e, Function::PackageExpiry, json_sample("scheduled.daily_sweep")).await.expect("tick");
    assert_eq!((out["date"].as_str(), out["fired"].as_u64()), (Some("2026-04-09"), Some(1)), "{out}");
    let (_, list) = call(&e, Function::Cases, get("/v1/cases", "package_id=P-77")).await;
    let cases = list["cases"].as_array().unwrap();
    assert_eq!((cases.len(), cases[0]["playbook"].as_str()), (1, Some("package_expiry")), "{list}");

    // A retried invocation sweeps the same day and changes nothing; the day before has nothing due.
    let out = handle(&e, Function::PackageExpiry, json_sample("scheduled.daily_sweep")).await.expect("retry");
    assert_eq!(out["fired"], json!(0));
    let mut day_before = json_sample("scheduled.daily_sweep");
    day_before["time"] = json!("2026-04-08T22:05:00Z");
    let out = handle(&e, Function::PackageExpiry, day_before).await.expect("day before");
    assert_eq!((out["date"].as_str(), out["fired"].as_u64()), (Some("2026-04-08"), Some(0)));

    // Housekeeping belongs to package-expiry alone.
    assert!(matches!(handle(&e, Function::Appointments, json_sample("scheduled.daily_sweep")).await, Err(HandlerError::UnknownEvent(_))));
    assert!(matches!(handle(&e, Function::Cases, json_sample("task.redrive")).await, Err(HandlerError::UnknownEvent(_))));
    assert!(matches!(handle(&e, Function::Cases, json!({"hello": 1})).await, Err(HandlerError::UnknownEvent(_))));
}

#[tokio::test]
async fn the_redrive_task_performs_an_effect_left_pending() {
    let _one = serial().await;
    let (f, e, _clock) = setup("redrive").await;
    let sms_before = moto::sent_sms().await.len();
    // A commit whose effects were never performed: the invocation died right after it.
    let mut stream = followup::domain::subjects::snapshot::Snapshot::order("O-9");
    stream.version = 1;
    let sms = followup::domain::effects::Sms {
        to: "+201009999999".into(),
        template: TemplateId::Sms1,
        language: Language::Ar,
        body: "left pending".into(),
        segments: 1,
        case_id: None,
        at: Utc::now(),
    };
    let pending = PendingEffect { id: "d-redrive#0".into(), effect: Effect::SendSms(sms) };
    let delivery = Delivery { id: "d-redrive".into(), body_hash: "h".into(), case_id: None, accepted_at: Utc::now() };
    f.store()
        .commit(Commit {
            stream,
            expected_version: None,
            delivery,
            index: vec![],
            effects: vec![pending],
            sms_counts: vec![],
            received: None,
        })
        .await
        .expect("commit");

    let out = handle(&e, Function::PackageExpiry, json_sample("task.redrive")).await.expect("redrive");
    assert!(out["performed"].as_u64() >= Some(1), "{out}");
    assert_eq!(sms_since(sms_before).await, [("+201009999999".to_string(), "left pending".to_string())]);
    let out = handle(&e, Function::PackageExpiry, json_sample("task.redrive")).await.expect("again");
    assert_eq!(out["performed"], json!(0), "done effects leave the queue");
    assert_eq!(sms_since(sms_before).await.len(), 1);
}

/// SPEC v2 on Lambda: the first attempt's report is lost and the second attempt still goes out;
/// both lapse and R2.6 cancels the order (R9.1); the dashboard's echo of a cancellation is
/// accepted (R9.2); a wrong method gets the error body (R9.6).
#[tokio::test]
async fn v2_a_lost_report_an_echo_and_a_wrong_method() {
    let _one = serial().await;
    let (f, e, clock) = setup("v2").await;
    assert_eq!(call(&e, Function::Appointments, post("/v1/appointments", &sample("01_appointment.booked"), false)).await.0, 202);
    let (status, body) =
        call(&e, Function::CancellationRequest, post("/v1/cancellations", &sample("05_appointment.cancelled"), false)).await;
    assert_eq!((status, body["case_id"].as_str()), (202, Some("o1-O-501")), "{body}");

    // No call.completed ever arrives: day 2's task goes out, and at 21:00 R2.6 acts.
    pump(&f, &e, &clock, at("2026-03-04T21:00:00+02:00")).await;
    let commands = ops(&f).await;
    assert_eq!(commands_of(&commands, "call_customer"), 2, "{commands:?}");
    assert_eq!(commands_of(&commands, "cancel_order"), 1, "{commands:?}");
    let (_, case) = call(&e, Function::Cases, get("/v1/cases/o1-O-501", "")).await;
    let outcomes: Vec<&str> = case["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["unreported", "unreported"], "{case}");
    assert_eq!(case["ticket"]["status"], "waiting_on_customer");

    // The dashboard echoes the cancellation under a new delivery id.
    let echo = sample("05_appointment.cancelled").replace("evt-05-appointment.cancelled", "evt-echo");
    let (status, body) = call(&e, Function::CancellationRequest, post("/v1/cancellations", &echo, false)).await;
    assert_eq!((status, body["duplicate"].as_bool()), (202, Some(false)), "{body}");
    let (_, list) = call(&e, Function::Cases, get("/v1/cases", "order_id=O-501")).await;
    assert_eq!(list["cases"].as_array().map(Vec::len), Some(1), "the echo opens nothing");
    assert!(ops(&f).await.is_empty(), "and sends nothing");

    // The HTTP API's $default route brings a wrong method to the cases function.
    let mut wrong = get("/v1/appointments", "");
    wrong["routeKey"] = json!("$default");
    let (status, body) = call(&e, Function::Cases, wrong).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{body}");
}

/// R9.6 (v3) on Lambda: the HTTP API's `$default` route brings the cases function every request
/// no other route takes. A path of the API asked with a method it does not serve (`TRACE`,
/// `QUERY`, `HEAD` and extension methods too) is a 405 with `Allow` and the error body; a path
/// that does not exist is a 404 without `Allow`.
#[tokio::test]
async fn v3_a_method_a_path_does_not_serve_is_405_with_allow() {
    let _one = serial().await;
    let (_f, e, _clock) = setup("v3-allow").await;
    let unmatched = |method: &str, path: &str| {
        let mut r = get(path, "");
        r["requestContext"]["http"]["method"] = json!(method);
        r["routeKey"] = json!("$default");
        r["requestContext"]["routeKey"] = json!("$default");
        r
    };
    for (method, path, allow) in [
        ("TRACE", "/v1/appointments", "POST"),
        ("QUERY", "/v1/cases", "GET"),
        ("HEAD", "/v1/cases/o1-O-501", "GET"),
        ("OPTIONS", "/v1/calls", "POST"),
        ("PATCH", "/v1/cases/o1-O-501", "GET"),
        ("DELETE", "/v1/packages", "POST"),
        ("PUT", "/v1/cancellations", "POST"),
        ("GET", "/v1/appointments", "POST"),
        ("POST", "/v1/cases", "GET"),
        ("PURGE", "/v1/cases/o1-O-501", "GET"),
    ] {
        let out = handle(&e, Function::Cases, unmatched(method, path)).await.expect("an HTTP answer");
        assert_eq!(out["headers"]["allow"].as_str(), Some(allow), "{method} {path}: {out}");
        let (status, body) = answer(out);
        assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{method} {path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(method)), "{body}");
        assert!(body["error"].get("field").is_some() && body["error"].get("rule").is_some(), "the SPEC §5 error body: {body}");
    }
    for (method, path) in [("TRACE", "/v2/nothing"), ("QUERY", "/v1/cases/a/b"), ("GET", "/local/sms"), ("DELETE", "/")] {
        let out = handle(&e, Function::Cases, unmatched(method, path)).await.expect("an HTTP answer");
        assert!(out["headers"].get("allow").is_none(), "{method} {path}: {out}");
        let (status, body) = answer(out);
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{method} {path}: {body}");
    }
    // The routes themselves still answer.
    let (status, body) = call(&e, Function::Cases, get("/v1/cases", "order_id=O-501")).await;
    assert_eq!((status, body["cases"].as_array().map(Vec::len)), (200, Some(0)), "{body}");
}

/// R9.3 on AWS: Scheduler loses a random share of the schedules (about half, chosen by a seeded
/// generator, deleted right after they are placed); the 5-minute re-drive rule's timer sweep still
/// drives every case to its end.
#[tokio::test]
async fn lost_schedules_are_swept_and_every_case_ends() {
    let _one = serial().await;
    let (f, e, clock) = setup("lost").await;
    let scheduler = aws_sdk_scheduler::Client::new(&f.config);
    let booked = json_sample("01_appointment.booked");
    let cancelled = json_sample("05_appointment.cancelled");
    let orders = ["O-L1", "O-L2", "O-L3", "O-L4"];
    let mut lost = 0;
    let mut seen = std::collections::HashSet::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut lose = move || {
        // xorshift64: reproducible, and no dependency for one coin per schedule.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng.is_multiple_of(2)
    };
    for (i, order) in orders.iter().enumerate() {
        let mut b = booked.clone();
        (b["id"], b["data"]["order_id"], b["data"]["appointment_id"]) = (json!(format!("b-{i}")), json!(order), json!(format!("A-L{i}")));
        b["data"]["technician_id"] = json!("T-1");
        assert_eq!(call(&e, Function::Appointments, post("/v1/appointments", &b.to_string(), false)).await.0, 202);
        let mut c = cancelled.clone();
        (c["id"], c["data"]["appointment_id"], c["data"]["cancelled_by"]) =
            (json!(format!("c-{i}")), json!(format!("A-L{i}")), json!("no_show"));
        assert_eq!(call(&e, Function::CancellationRequest, post("/v1/cancellations", &c.to_string(), false)).await.0, 202);
    }
    let redrive = || handle(&e, Function::PackageExpiry, json!({"task": "redrive"}));
    // Eight days in six-hour steps: Scheduler fires what it still has; the sweep the rest.
    let mut swept = 0;
    for _ in 0..32 {
        // Lose about half of the schedules placed since the last look.
        for (_, _, input) in f.schedules().await {
            let timer: TimerSpec = serde_json::from_str(&input).unwrap();
            if seen.insert(timer.timer.name()) && lose() {
                scheduler.delete_schedule().group_name(&f.group).name(timer.timer.name()).send().await.expect("delete");
                lost += 1;
            }
        }
        let upto = clock.now() + chrono::Duration::hours(6);
        pump(&f, &e, &clock, upto).await;
        *clock.0.lock().unwrap() = upto;
        let out = redrive().await.expect("the re-drive rule");
        swept += out["timers"].as_u64().unwrap();
    }
    assert!(lost >= 4 && swept >= 1, "lost {lost}, swept {swept}");
    for order in orders {
        let (_, list) = call(&e, Function::Cases, get("/v1/cases", &format!("order_id={order}"))).await;
        for case in list["cases"].as_array().unwrap() {
            let status = case["ticket"]["status"].as_str().unwrap();
            assert!(["closed", "resolved"].contains(&status), "{} is {status}: {case}", case["case_id"]);
        }
    }
}

/// The webhook secret comes from Secrets Manager (the template holds its name only); a missing
/// secret is an error that names it.
#[tokio::test]
async fn the_webhook_secret_is_read_from_secrets_manager() {
    let _one = serial().await;
    let f = Fixture::new("secret").await;
    let client = aws_sdk_secretsmanager::Client::new(&f.config);
    let name = format!("followup/{}/webhook-secret", f.table);
    client.create_secret().name(&name).secret_string("new-secret,old-secret").send().await.expect("CreateSecret");
    assert_eq!(followup_lambda::webhook_secret(&client, &name).await.expect("the secret"), "new-secret,old-secret");
    let missing = followup_lambda::webhook_secret(&client, "followup/nowhere").await.unwrap_err();
    assert!(missing.to_string().contains("followup/nowhere"), "{missing}");
}

/// A webhook function reads its secret from Secrets Manager at its first webhook, not during init,
/// and keeps it for the life of the instance: an invocation that is not a webhook never reads it,
/// and once read, the secret answers every later webhook even if Secrets Manager no longer does.
#[tokio::test]
async fn the_webhook_secret_is_read_at_the_first_webhook_and_kept() {
    let _one = serial().await;
    let f = Fixture::new("secret-first-webhook").await;
    let client = aws_sdk_secretsmanager::Client::new(&f.config);
    let name = format!("followup/{}/webhook-secret", f.table);
    client.create_secret().name(&name).secret_string(SECRET).send().await.expect("CreateSecret");
    let clock = TestClock(Arc::new(Mutex::new(start())));
    // As engine_from_env builds a webhook function: no secret in the engine, its name only.
    let e = engine(&f.settings(), &f.config, Policy::default(), String::new(), clock);
    let secret = WebhookSecret::from_secrets_manager(&f.config, &name);
    let run = |event: Value| dispatch_with(&e, &secret, Function::Appointments, Invocation::read(event).expect("an invocation"));

    let (status, _) = answer(run(get("/v1/appointments", "")).await.expect("an answer"));
    assert_eq!((status, secret.is_read()), (405, false), "a request that is no webhook does not read the secret");
    let (status, body) = answer(run(post("/v1/appointments", &sample("01_appointment.booked"), false)).await.expect("an answer"));
    assert_eq!((status, secret.is_read()), (202, true), "{body}");

    client.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.expect("DeleteSecret");
    let mut again = json_sample("01_appointment.booked");
    again["id"] = json!("evt-booked-again");
    let (status, body) = answer(run(post("/v1/appointments", &again.to_string(), false)).await.expect("an answer"));
    assert_eq!(status, 202, "the secret read once serves the instance's life: {body}");
    // A wrong signature is still refused with the secret kept.
    let mut forged = post("/v1/appointments", &again.to_string(), false);
    forged["headers"]["x-signature"] = json!(followup_lambda::sign("not-the-secret", Utc::now().timestamp(), again.to_string().as_bytes()));
    assert_eq!(answer(run(forged).await.expect("an answer")).0, 401);
}

/// A webhook whose secret cannot be read fails as an invocation, with the boot error's message
/// (naming the secret), and is never accepted unverified; the next webhook reads again, so the
/// function recovers as soon as the secret is there.
#[tokio::test]
async fn a_webhook_whose_secret_cannot_be_read_fails_and_the_next_one_reads_again() {
    let _one = serial().await;
    let f = Fixture::new("secret-unreadable").await;
    let name = format!("followup/{}/not-yet", f.table);
    let clock = TestClock(Arc::new(Mutex::new(start())));
    let e = engine(&f.settings(), &f.config, Policy::default(), String::new(), clock);
    let secret = WebhookSecret::from_secrets_manager(&f.config, &name);
    let booking = || Invocation::read(post("/v1/appointments", &sample("01_appointment.booked"), false)).expect("an invocation");

    let err = dispatch_with(&e, &secret, Function::Appointments, booking()).await.expect_err("no secret, no answer");
    assert!(matches!(&err, HandlerError::Secret(BootError::Secret { name: n, .. }) if *n == name), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot read the webhook secret {name} from Secrets Manager: ")), "{err}");
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "WebhookSecretUnavailable");
    assert!(!secret.is_read());
    // An unsigned request fails the same way: nothing is checked against a secret it does not have.
    let mut unsigned = post("/v1/appointments", &sample("01_appointment.booked"), false);
    unsigned["headers"].as_object_mut().unwrap().remove("x-signature");
    assert!(matches!(
        dispatch_with(&e, &secret, Function::Appointments, Invocation::read(unsigned).unwrap()).await,
        Err(HandlerError::Secret(_))
    ));
    assert!(f.schedules().await.is_empty(), "nothing was decided");

    aws_sdk_secretsmanager::Client::new(&f.config).create_secret().name(&name).secret_string(SECRET).send().await.expect("CreateSecret");
    let (status, body) = answer(dispatch_with(&e, &secret, Function::Appointments, booking()).await.expect("an answer"));
    assert_eq!((status, secret.is_read()), (202, true), "{body}");
}
