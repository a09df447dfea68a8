//! SPEC version 3 at the edges of the local runtime, through the real binary: a path asked with a
//! method it does not serve is a 405 with `Allow` and the error body, `TRACE`, `QUERY` and
//! extension methods included, and 404 is for a path that does not exist (R9.6); a clock move
//! runs the timer sweep, so a timer lost from the timer table is still taken, at its due time
//! plus the grace (R9.3). Dates: 2026-03-02 is a Monday; Friday is the day off.

mod doc;

use chrono::{DateTime, Duration, Utc};
use followup::domain::effects::TimerSpec;
use followup::domain::policy::Policy;
use followup::domain::records::case::TimerKind;
use followup_tests::{booked, customer, timers, Local};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const MON_10: &str = "2026-03-02T10:00:00+02:00";

/// Methods no path serves, or only some do: the common ones, the ones R9.6 names, and extension
/// methods (`PURGE` as caches use it, and one made up).
const METHODS: [&str; 12] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY", "PURGE", "LINK", "FROBNICATE"];

/// Status, `Allow` (as a set of methods) and JSON body (`Null` when there is none) of one request.
fn request(l: &Local, method: &str, path: &str) -> (u16, Option<BTreeSet<String>>, Value) {
    let client = reqwest::blocking::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method token");
    let resp = client.request(method, format!("{}{path}", l.base)).send().expect("request");
    let status = resp.status().as_u16();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().expect("Allow is text").split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect());
    (status, allow, resp.json().unwrap_or(Value::Null))
}

/// The methods each path of docs/openapi.json is served with: its documented ones, and HEAD with
/// GET (HTTP's HEAD is a GET without the body).
fn served() -> Vec<(String, BTreeSet<String>)> {
    let doc = doc::Doc::load();
    let mut paths = Vec::new();
    for (path, item) in doc.value["paths"].as_object().expect("paths") {
        let mut methods: BTreeSet<String> = doc::METHODS.iter().filter(|m| item.get(**m).is_some()).map(|m| m.to_uppercase()).collect();
        if methods.contains("GET") {
            methods.insert("HEAD".into());
        }
        paths.push((path.replace("{case_id}", "o1-O-501"), methods));
    }
    paths
}

/// The SPEC §5 error body with `code`, a message for a person and the `field` and `rule` keys.
#[track_caller]
fn error_body(body: &Value, code: &str) {
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "a message for a person: {body}");
    assert!(e.get("field").is_some() && e.get("rule").is_some(), "field and rule are there, null or not: {body}");
    let errors = doc::Doc::load().errors("Error", body);
    assert!(errors.is_empty(), "the documented error body: {errors:?}");
}

/// R9.6 (v3): every path of the API and of the local runtime, asked with each method it does not
/// serve, answers 405 with `Allow` naming exactly the methods it does serve and the error body.
#[test]
fn r9_6_every_method_a_path_does_not_serve_is_405_with_allow() {
    let l = Local::virtual_at(MON_10);
    let paths = served();
    for p in ["/v1/cases/{case_id}", "/local/sms", "/local/clock", "/openapi.json"] {
        assert!(paths.iter().any(|(path, _)| *path == p.replace("{case_id}", "o1-O-501")), "{p} is documented");
    }
    for (path, methods) in &paths {
        for method in METHODS.into_iter().filter(|m| !methods.contains(*m)) {
            let (status, allow, body) = request(&l, method, path);
            assert_eq!(status, 405, "{method} {path}: {body}");
            assert_eq!(allow.as_ref(), Some(methods), "{method} {path}: Allow names what the path serves");
            if method == "HEAD" {
                assert_eq!(body, Value::Null, "a HEAD answer has no body");
                continue;
            }
            error_body(&body, "method_not_allowed");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(method) && message.contains(path.as_str()), "the message names the method and path: {message}");
        }
    }
    // Nothing was stored, sent or moved by any of them.
    assert!(l.sms().is_empty() && l.commands().is_empty());
    assert_eq!(l.now(), DateTime::parse_from_rfc3339(MON_10).unwrap());
}

/// R9.6 (v3) as the SPEC names it: TRACE and QUERY on a few paths, with the Allow of each.
#[test]
fn r9_6_trace_and_query_are_405_not_404() {
    let l = Local::virtual_at(MON_10);
    let set = |m: &[&str]| Some(m.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    for (path, allow) in [
        ("/local/sms", set(&["GET", "HEAD"])),
        ("/local/commands", set(&["GET", "HEAD"])),
        ("/local/clock", set(&["GET", "HEAD", "POST"])),
        ("/local/timer-sweep", set(&["POST"])),
        ("/v1/cases/o1-NOPE", set(&["GET", "HEAD"])),
        ("/v1/cases", set(&["GET", "HEAD"])),
        ("/v1/calls", set(&["POST"])),
        ("/openapi.json", set(&["GET", "HEAD"])),
    ] {
        for method in ["TRACE", "QUERY"] {
            let (status, got, body) = request(&l, method, path);
            assert_eq!((status, &got), (405, &allow), "{method} {path}: {body}");
            error_body(&body, "method_not_allowed");
        }
    }
}

/// R9.6: 404 is for a path that does not exist, whatever the method, with the error body and no
/// `Allow`.
#[test]
fn r9_6_a_path_that_does_not_exist_is_404() {
    let l = Local::virtual_at(MON_10);
    for (method, path) in [
        ("GET", "/v2/nothing"),
        ("TRACE", "/v2/nothing"),
        ("QUERY", "/local/nothing"),
        ("GET", "/local"),
        ("DELETE", "/"),
        ("POST", "/v1/appointment"),
        ("GET", "/v1/cases/a/b"),
        ("TRACE", "/v1/cases/a/b"),
        ("FROBNICATE", "/openapi"),
    ] {
        let (status, allow, body) = request(&l, method, path);
        assert_eq!((status, allow), (404, None), "{method} {path}: {body}");
        error_body(&body, "not_found");
    }
}

fn cancelled(appointment_id: &str, by: &str, wants_follow_up: bool) -> Value {
    json!({"appointment_id": appointment_id, "cancelled_by": by, "reason": "customer travelling", "wants_follow_up": wants_follow_up})
}

/// The timer table's rows, as the store wrote them.
fn timer_rows(data_dir: &std::path::Path) -> Vec<(String, TimerSpec)> {
    let conn = rusqlite::Connection::open(data_dir.join("followup.db")).expect("open the store");
    let mut stmt = conn.prepare("SELECT name, doc FROM timers").expect("the timer table");
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).expect("rows");
    rows.map(|r| {
        let (name, doc) = r.expect("row");
        (name, serde_json::from_str(&doc).expect("a timer"))
    })
    .collect()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("RFC 3339").with_timezone(&Utc)
}

/// Moves the clock to `to`: (fired, swept).
fn move_to(l: &Local, to: DateTime<Utc>) -> (u64, u64) {
    let (status, body) = l.post_raw("/local/clock", json!({"to": to.to_rfc3339()}).to_string().as_bytes(), &[]);
    assert_eq!(status, 200, "clock: {body}");
    (body["fired"].as_u64().expect("fired"), body["swept"].as_u64().expect("swept"))
}

/// R9.3 (v3): the first call task's one-shot timer is lost from the timer table while the server
/// is down (the case still holds it); a restart does not place it again. A clock move past its due
/// time and the grace runs the timer sweep, which re-fires it at due + grace, as the real clock's
/// sweep would, not at the end of the move; the case then goes on as usual.
#[test]
fn r9_3_a_clock_move_runs_the_timer_sweep_on_a_lost_timer() {
    let grace = Duration::minutes(i64::from(Policy::default().timers.sweep_grace_minutes));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut l = Local::spawn(&data, Some(MON_10), &[]);
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-05T10:00:00+02:00", "2026-03-05T12:00:00+02:00"));
    let id = l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A1", "no_show", false)).unwrap();
    let pending = timers(&l.case(&id));
    let due = at(&pending.iter().find(|(kind, _)| kind == "call_attempt").expect("attempt 1 is pending").1);
    assert!(l.commands_of("call_customer").is_empty(), "attempt 1 waits for its timer");

    // Lost while the server is down.
    assert!(l.terminate(std::time::Duration::from_secs(10)), "a clean stop");
    drop(l);
    let lost: Vec<String> = timer_rows(&data)
        .into_iter()
        .filter(|(_, t)| t.timer.kind == TimerKind::CallAttempt && t.timer.case_id.as_deref() == Some(id.as_str()))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(lost.len(), 1, "one call_attempt row");
    let conn = rusqlite::Connection::open(data.join("followup.db")).unwrap();
    assert_eq!(conn.execute("DELETE FROM timers WHERE name = ?1", [&lost[0]]).unwrap(), 1);
    drop(conn);

    // The restart re-drives pending effects only: the timer's placement was done, so it stays lost.
    let l = Local::spawn(&data, Some(MON_10), &[]);
    assert!(timer_rows(&data).iter().all(|(name, _)| *name != lost[0]), "the restart did not place it again");
    assert_eq!(timers(&l.case(&id)), pending, "the case still waits on it");

    // Inside the grace nothing runs.
    assert_eq!(move_to(&l, due + grace - Duration::minutes(1)), (0, 0));
    assert!(l.commands_of("call_customer").is_empty());
    // Past it, in one move of hours: the sweep re-fires it when the grace ran out.
    let (fired, swept) = move_to(&l, due + Duration::hours(3));
    assert_eq!((fired, swept), (1, 1), "only the lost timer ran, through the sweep");
    let tasks = l.commands_of("call_customer");
    assert_eq!((tasks.len(), tasks[0]["case_id"].as_str()), (1, Some(id.as_str())), "{tasks:?}");
    assert_eq!(at(tasks[0]["at"].as_str().unwrap()), due + grace, "at due + grace, not at the end of the move");
    // Re-fired once: the timer sweep has nothing left, and attempt 2 is placed as usual.
    assert_eq!(l.post_raw("/local/timer-sweep", b"", &[]).1["fired"], 0);
    let next = timers(&l.case(&id));
    assert_eq!(next[0].0, "call_attempt", "{next:?}");
    assert!(at(&next[0].1) > due + Duration::hours(3), "{next:?}");
    assert!(timer_rows(&data).iter().any(|(_, t)| t.timer.kind == TimerKind::CallAttempt && at(&next[0].1) == t.due_at));
    // And it fires from the table at its own time, with nothing to sweep.
    assert_eq!(move_to(&l, at(&next[0].1)), (1, 0));
    assert_eq!(l.commands_of("call_customer").len(), 2);
}

/// R9.3 (v3): a clock move with no lost timer runs no re-fire: timers fire from the table at their
/// due time and the sweep finds each gone, so `swept` stays 0 through a whole cancellation story.
#[test]
fn r9_3_the_timer_sweep_re_fires_nothing_that_fired_on_time() {
    let l = Local::virtual_at(MON_10);
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-05T10:00:00+02:00", "2026-03-05T12:00:00+02:00"));
    l.accept("/v1/cancellations", "appointment.cancelled", cancelled("A1", "customer", true));
    let (fired, swept) = move_to(&l, at("2026-03-12T10:00:00+02:00"));
    assert!(fired >= 2, "the attempts and what follows them fired: {fired}");
    assert_eq!(swept, 0);
    assert!(l.commands_of("call_customer").len() >= 2);
}

/// R9.3 (v3) on a package's own timer: the R5.2 Day 1 tick, lost from the timer table while the
/// server runs, is re-fired by the clock move's timer sweep at 09:00 + the grace, the same morning,
/// not at midnight by R5's daily sweep.
#[test]
fn r9_3_a_lost_expiry_tick_is_swept_the_same_morning() {
    let grace = Duration::minutes(i64::from(Policy::default().timers.sweep_grace_minutes));
    let l = Local::virtual_at(MON_10);
    let visits: Vec<Value> = ["2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"visit_id": format!("V{}", i + 1), "window_start": format!("{d}T10:00:00+02:00")}))
        .collect();
    let package = json!({
        "package_id": "P-8", "customer": customer("ar"), "area": "Cairo",
        "price": {"amount": 200000, "currency": "EGP"}, "visits": visits,
        "start_date": "2026-03-09", "payment_method": "card", "paid": true
    });
    l.accept("/v1/packages", "package.booked", package);
    let (name, day1) = timer_rows(&l.data_dir)
        .into_iter()
        .find(|(_, t)| t.timer.kind == TimerKind::ExpiryDay1)
        .expect("the Day 1 tick was placed at booking");
    let conn = rusqlite::Connection::open(l.data_dir.join("followup.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(conn.execute("DELETE FROM timers WHERE name = ?1", [&name]).unwrap(), 1);
    drop(conn);

    let cases = |l: &Local| l.get("/v1/cases?package_id=P-8").1["cases"].as_array().cloned().unwrap();
    assert_eq!(move_to(&l, day1.due_at + grace - Duration::seconds(1)), (0, 0));
    assert!(cases(&l).is_empty(), "inside the grace");
    assert_eq!(move_to(&l, day1.due_at + Duration::hours(3)), (1, 1));
    let opened = cases(&l);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["playbook"], "package_expiry");
    assert_eq!(at(opened[0]["opened_at"].as_str().unwrap()), day1.due_at + grace);
    // R5's sweep at midnight finds the tick already run.
    let midnight = day1.due_at + Duration::hours(16);
    let (_, swept) = move_to(&l, midnight);
    assert_eq!(swept, 0);
    assert_eq!(cases(&l).len(), 1);
}
