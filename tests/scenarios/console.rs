//! The team lead's console (`/console`): its pages drawn from a store seeded through the webhooks
//! and the virtual clock, the overdue call task and the breached SLA marked, Arabic SMS right to
//! left, and the token a non-loopback bind asks for (401 in the error body without it).

use followup_tests::{booked, call, customer, sample, Local};
use serde_json::{json, Value};
use std::time::Duration;

const START: &str = "2026-03-02T10:00:00+02:00";
const TOKEN: &str = "console-test-token";

/// A Monday: an unpaid package not reached (SMS1 in Arabic), a painting inspection whose
/// second-visit case nobody calls back (R3.2 breached at 19:00, its call task overdue), and an
/// unassigned appointment for tomorrow (its R0.1 watch due within 24 h); the clock at 19:30.
fn seed(l: &Local) -> (String, String) {
    let package = l.accept("/v1/packages", "package.booked", sample("09_package.booked.json")["data"].clone()).expect("package case");
    l.accept("/v1/calls", "call.completed", call(&package, "call-1", "no_answer", None));
    let mut assigned = sample("01_appointment.booked.json")["data"].clone();
    assigned["technician_id"] = json!("T-9");
    assigned["window_start"] = json!("2026-03-02T08:00:00+02:00");
    assigned["window_end"] = json!("2026-03-02T10:00:00+02:00");
    l.accept("/v1/appointments", "appointment.booked", assigned);
    l.accept(
        "/v1/appointments",
        "appointment.completed",
        json!({"appointment_id": "A-1001", "outcome": "inspection", "needs_material": false}),
    );
    let tomorrow = json!({
        "appointment_id": "A-3001", "order_id": "O-701", "customer": customer("en"), "area": "Alex",
        "service": "Deep cleaning", "price": {"amount": 90000}, "window_start": "2026-03-03T14:00:00+02:00",
        "window_end": "2026-03-03T16:00:00+02:00", "visit_number": 1, "technician_id": null, "discount_percent": 0
    });
    l.accept("/v1/appointments", "appointment.booked", tomorrow);
    l.clock_to("2026-03-02T19:30:00+02:00");
    let second = l.get("/v1/cases?order_id=O-501").1["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["playbook"] == "second_visit_follow_up")
        .map(|c| c["case_id"].as_str().expect("id").to_string())
        .expect("R3.1 the second-visit case opened");
    (package, second)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A page's status and text.
fn page(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().expect("request");
    (resp.status().as_u16(), resp.text().expect("text"))
}

/// The number a page's `<li id="count-{id}">` shows.
fn count(html: &str, id: &str) -> usize {
    let at = html.find(&format!("id=\"count-{id}\"><strong>")).unwrap_or_else(|| panic!("no count {id}"));
    let rest = &html[at + format!("id=\"count-{id}\"><strong>").len()..];
    rest[..rest.find('<').expect("closing tag")].parse().expect("a number")
}

#[test]
fn the_console_shows_what_is_due_the_sla_breaches_and_todays_sms() {
    let l = Local::virtual_at(START);
    let (package, second) = seed(&l);
    let base = l.base.clone();

    // What is due now: the second-visit call task went out at 11:00 and is unreported: overdue.
    let (status, due) = page(&base, "/console", None);
    assert_eq!(status, 200, "{due}");
    assert_eq!((count(&due, "due"), count(&due, "overdue")), (0, 1), "{due}");
    assert!(due.contains("<span class=\"mark overdue\">OVERDUE</span>"), "marked in text, not colour only");
    assert!(due.contains(&format!("/console/cases/{second}")), "{due}");
    assert!(due.contains("<h2 id=\"g-customer_care\">"), "grouped by the ticket's group: {due}");
    for landmark in ["<a class=\"skip\" href=\"#main\">", "<nav aria-label=\"Console\">", "<main id=\"main\"", "<th scope=\"col\">"] {
        assert!(due.contains(landmark), "{landmark}");
    }

    // SLA: R3.2 breached at 19:00 (escalated); R0.1 of tomorrow's unassigned visit coming.
    let (status, sla) = page(&base, "/console/sla", None);
    assert_eq!(status, 200);
    assert_eq!(count(&sla, "breached"), 1, "{sla}");
    assert!(sla.contains("<span class=\"mark breached\">BREACHED</span> first_call_sla"), "{sla}");
    assert!(sla.contains("<th scope=\"row\">R3.2</th>"));
    assert!(sla.contains("escalate"), "what the engine did: {sla}");
    assert_eq!(count(&sla, "coming"), 1, "{sla}");
    assert!(sla.contains("<th scope=\"row\">R0.1</th><td>status_update</td><td>appointment:A-3001</td>"), "{sla}");

    // Today's SMS: SMS1 in Arabic, right to left.
    let (status, sms) = page(&base, "/console/sms", None);
    assert_eq!(status, 200);
    assert_eq!(count(&sms, "sent"), 1, "{sms}");
    assert_eq!((count(&sms, "held"), count(&sms, "capped"), count(&sms, "suppressed")), (0, 0, 0));
    assert!(sms.contains("<p class=\"sms-body\" dir=\"rtl\" lang=\"ar\">مرحباً،"), "{sms}");
    assert!(count(&sms, "segments") >= 2, "SMS1 is UCS-2, more than one part");

    // Cases: the filters are a GET form and each narrows by index.
    let (_, all) = page(&base, "/console/cases", None);
    // The second visit and the package; tomorrow's visit is only watched by a subject timer so far.
    assert_eq!(count(&all, "cases"), 2, "{all}");
    for field in ["for=\"f-playbook\"", "for=\"f-state\"", "for=\"f-status\"", "for=\"f-area\""] {
        assert!(all.contains(field), "a label for each field: {field}");
    }
    let (_, payment) = page(&base, "/console/cases?playbook=package_payment&status=waiting_on_customer&area=Cairo", None);
    assert_eq!(count(&payment, "cases"), 1, "{payment}");
    assert!(payment.contains(&format!("/console/cases/{package}")));
    let (_, following) = page(&base, "/console/cases?playbook=second_visit_follow_up&state=following&status=open", None);
    assert_eq!(count(&following, "cases"), 1, "{following}");
    let (_, alex) = page(&base, "/console/cases?area=Alex", None);
    assert_eq!(count(&alex, "cases"), 0);
    let (status, refused) = page(&base, "/console/cases?status=lost", None);
    assert_eq!(status, 400);
    assert!(refused.contains("role=\"alert\""));

    // One case as a story: its SMS right to left, its attempt, its timers, its timeline.
    let (status, story) = page(&base, &format!("/console/cases/{package}"), None);
    assert_eq!(status, 200);
    assert!(story.contains("dir=\"rtl\" lang=\"ar\""), "{story}");
    assert!(story.contains("no_answer (not reached)"));
    assert!(story.contains("<h2 id=\"timeline\">Timeline</h2>") && story.contains("<h2 id=\"timers\">Pending timers</h2>"));
    assert!(story.contains("<th scope=\"row\">call_attempt</th>"), "R4.4 the day-before call is pending: {story}");
    let (_, second_story) = page(&base, &format!("/console/cases/{second}"), None);
    assert!(second_story.contains("<span class=\"mark overdue\">OVERDUE</span>"));
    assert_eq!(page(&base, "/console/cases/o9-nothing", None).0, 404);

    // The clock.
    let (_, clock) = page(&base, "/console/clock", None);
    assert!(clock.contains("2026-03-02T19:30:00+02:00") && clock.contains("virtual"), "{clock}");

    // Read-only: any other method is a 405 in the error body.
    let (status, body) = l.request("POST", "/console");
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
}

/// The lines of a 401 every guarded route answers without the token.
fn refused(base: &str, path: &str, token: Option<&str>) {
    let resp = {
        let mut req = client().get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().expect("request")
    };
    assert_eq!(resp.status().as_u16(), 401, "{path}");
    let body: Value = resp.json().expect("the error body");
    assert_eq!(body["error"]["code"], "unauthorized", "{path}: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The address a 0.0.0.0 bind is reached on from this machine (requests still come in over loopback).
fn on_loopback(base: &str) -> String {
    base.replace("0.0.0.0", "127.0.0.1")
}

#[test]
fn on_a_non_loopback_address_the_console_and_case_routes_need_the_token() {
    let dir = tempfile::tempdir().expect("dir");
    let l = Local::spawn(dir.path(), Some(START), &[("FOLLOWUP_ADDR", "0.0.0.0:0"), ("FOLLOWUP_CONSOLE_TOKEN", TOKEN)]);
    let base = on_loopback(&l.base);
    let case_id = l.accept("/v1/packages", "package.booked", sample("09_package.booked.json")["data"].clone()).expect("case");
    for path in ["/console", "/console/sla", "/console/cases?area=Cairo", "/v1/cases?package_id=P-77", &format!("/v1/cases/{case_id}")] {
        refused(&base, path, None);
        refused(&base, path, Some("not-the-token"));
        assert_eq!(page(&base, path, Some(TOKEN)).0, 200, "{path} with the token");
    }
    // The webhooks and /local/* are not the console's to guard.
    assert_eq!(page(&base, "/local/clock", None).0, 200);

    // A browser: ?token= once sets the cookie and drops the token from the address.
    let resp = client().get(format!("{base}/console/cases?token={TOKEN}&area=Cairo")).send().expect("request");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/console/cases?area=Cairo");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with(&format!("followup_console={TOKEN};")) && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let with_cookie = client().get(format!("{base}/console/cases?area=Cairo")).header("cookie", format!("followup_console={TOKEN}")).send();
    assert_eq!(with_cookie.expect("request").status().as_u16(), 200);
}

#[test]
fn on_a_non_loopback_address_without_a_token_the_console_is_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let l = Local::spawn(dir.path(), Some(START), &[("FOLLOWUP_ADDR", "0.0.0.0:0"), ("FOLLOWUP_CONSOLE_TOKEN", "")]);
    let base = on_loopback(&l.base);
    for path in ["/console", "/v1/cases/p1-P-77"] {
        refused(&base, path, None);
        refused(&base, path, Some(""));
    }
    let (_, body) = {
        let resp = client().get(format!("{base}/console")).send().expect("request");
        (resp.status().as_u16(), resp.json::<Value>().expect("json"))
    };
    assert!(body["error"]["message"].as_str().unwrap().contains("FOLLOWUP_CONSOLE_TOKEN is not set"), "{body}");
    // The webhooks still work.
    l.accept("/v1/packages", "package.booked", sample("09_package.booked.json")["data"].clone());
}

/// A data dir written before the console existed (schema 3) opens with the read model built
/// from its snapshots and its SMS.
#[test]
fn a_data_dir_from_before_the_console_gets_its_read_model_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = Local::spawn(dir.path(), Some(START), &[]);
    let package = l.accept("/v1/packages", "package.booked", sample("09_package.booked.json")["data"].clone()).expect("case");
    l.accept("/v1/calls", "call.completed", call(&package, "call-1", "no_answer", None));
    assert!(l.terminate(Duration::from_secs(10)));
    {
        let raw = rusqlite::Connection::open(dir.path().join("followup.db")).expect("raw open");
        raw.execute_batch(
            "DROP TABLE console_cases; DROP TABLE console_deadlines; DROP TABLE console_breaches; DROP TABLE console_sms_stops;
             CREATE TABLE sms_v3 (seq INTEGER PRIMARY KEY AUTOINCREMENT, effect_id TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
             INSERT INTO sms_v3 (seq, effect_id, doc) SELECT seq, effect_id, doc FROM sms_outbox;
             DROP TABLE sms_outbox; ALTER TABLE sms_v3 RENAME TO sms_outbox;
             PRAGMA user_version = 3;",
        )
        .expect("back to schema 3");
    }
    let l = Local::spawn(dir.path(), Some(START), &[]);
    let base = l.base.clone();
    let (_, cases) = page(&base, "/console/cases?playbook=package_payment", None);
    assert_eq!(count(&cases, "cases"), 1, "{cases}");
    let (_, story) = page(&base, &format!("/console/cases/{package}"), None);
    assert!(story.contains("dir=\"rtl\" lang=\"ar\""), "the SMS found by case after the migration: {story}");
}

/// One cell of a what-if table row, by its label: `[A, B, B - A]`.
fn row_of(html: &str, label: &str) -> Vec<String> {
    let at = html.find(&format!("<th scope=\"row\">{label}</th>")).unwrap_or_else(|| panic!("no row {label:?}"));
    html[at..].split("</tr>").next().unwrap().split("<td>").skip(1).map(|c| c.split('<').next().unwrap().to_string()).collect()
}

#[test]
fn the_what_if_page_compares_the_running_policy_with_the_changes_as_the_command_line_does() {
    let l = Local::virtual_at(START);
    let (status, form) = page(&l.base, "/console/what-if", None);
    assert_eq!(status, 200);
    for field in ["attempts", "attempt_time", "discount", "daily_cap", "appointments", "packages"] {
        assert!(form.contains(&format!("<label for=\"{field}\"")), "the form labels {field}");
    }
    assert!(form.contains("value=\"2\"") && form.contains("value=\"09:00\""), "the fields start at the running policy's figures");

    // The same month and policies through the command line: the page must show its figures.
    let dir = tempfile::tempdir().expect("dir");
    let b = dir.path().join("b.toml");
    std::fs::write(&b, "[cancellation_follow_up]\nattempts = 3\n").expect("policy");
    let out = std::process::Command::new(followup_tests::binary())
        .args(["simulate", "--appointments", "150", "--packages", "30", "--json", "--compare"])
        .arg(&b)
        .env_remove("FOLLOWUP_CONFIG")
        .output()
        .expect("simulate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).expect("json");

    let (status, html) = page(&l.base, "/console/what-if?run=1&attempts=3&appointments=150&packages=30", None);
    assert_eq!(status, 200, "{html}");
    assert_eq!(html.matches("<svg").count(), 4, "the four charts");
    for (label, key) in [("call tasks", "call_tasks"), ("customers reached", "customers_reached"), ("coupons issued", "coupons_issued")] {
        let (a, b) = (&cli["a"]["what_if"][key], &cli["b"]["what_if"][key]);
        let diff = cli["difference"][key].as_i64().expect("a difference");
        let shown = row_of(&html, label);
        assert_eq!(shown[..2], [a.to_string(), b.to_string()], "{label}");
        assert_eq!(shown[2].trim_start_matches('+'), diff.to_string(), "{label}");
    }
    assert!(cli["difference"]["call_tasks"].as_i64().unwrap() > 0, "a third attempt places more calls");

    let (status, refused) = page(&l.base, "/console/what-if?run=1&attempts=9", None);
    assert_eq!(status, 400);
    assert!(refused.contains("attempts: a whole number from 1 to 5"), "{refused}");
    assert!(!refused.contains("<svg"), "nothing ran");
}

#[test]
fn a_coupon_sms_held_at_night_is_counted_held_until_it_goes() {
    // SPEC §4: a promotional SMS outside 09:00-21:00 Cairo waits for the next allowed time.
    let l = Local::virtual_at("2026-03-02T22:00:00+02:00");
    l.accept("/v1/appointments", "appointment.booked", sample("01_appointment.booked.json")["data"].clone());
    let case =
        l.accept("/v1/cancellations", "appointment.cancelled", sample("05_appointment.cancelled.json")["data"].clone()).expect("case");
    let counts = |html: &str| {
        ["sent", "held", "capped", "suppressed"].map(|n| {
            let at = html.find(&format!("id=\"count-{n}\"><strong>")).unwrap_or_else(|| panic!("no count {n}: {html}"));
            html[at..].split("<strong>").nth(1).unwrap().split('<').next().unwrap().parse::<u64>().unwrap()
        })
    };
    let (status, sms) = page(&l.base, "/console/sms", None);
    assert_eq!(status, 200);
    assert_eq!(counts(&sms), [0, 1, 0, 0], "the coupon SMS is held, nothing sent");
    assert!(sms.contains("DISCOUNT_OFFER"), "{sms}");
    let (_, story) = page(&l.base, &format!("/console/cases/{case}"), None);
    assert!(story.contains("DISCOUNT_OFFER"), "the case shows its held SMS: {story}");

    // At 09:00 the next day it goes out: that day's page counts it sent.
    l.clock_to("2026-03-03T09:00:00+02:00");
    let (_, sms) = page(&l.base, "/console/sms", None);
    assert_eq!(counts(&sms)[0], 1, "sent once the hold ends");
}

#[test]
fn the_sixth_sms_to_one_number_in_a_day_is_counted_capped_and_named_by_its_order() {
    // SPEC §4 (v3): one number gets at most five SMS a local day, across all its orders.
    let l = Local::virtual_at(START);
    for n in 1..=6 {
        let mut visit = booked(&format!("A{n}"), &format!("O{n}"), "2026-03-04T10:00:00+02:00", "2026-03-04T12:00:00+02:00");
        visit["technician_id"] = json!("T-1");
        visit["visit_number"] = json!(2);
        l.accept("/v1/appointments", "appointment.booked", visit);
        let cancelled =
            json!({"appointment_id": format!("A{n}"), "cancelled_by": "customer", "reason": "travelling", "wants_follow_up": false});
        l.accept("/v1/cancellations", "appointment.cancelled", cancelled);
    }
    let (status, sms) = page(&l.base, "/console/sms", None);
    assert_eq!(status, 200);
    assert_eq!(
        ["sent", "held", "capped", "suppressed"].map(|n| count(&sms, n)),
        [5, 0, 1, 0],
        "five coupon SMS sent, the sixth capped: {sms}"
    );
    assert_eq!(l.sms().len(), 5, "the outbox agrees");
    // The coupon is about the order, not a case (no follow-up wanted): the row names the order,
    // and the order's own timeline says why it did not go.
    assert!(sms.contains("order:O6") && sms.contains("daily cap 5"), "{sms}");
    let (_, cases) = l.get("/v1/cases?order_id=O6");
    assert_eq!(cases["cases"].as_array().map(Vec::len), Some(0), "no case was opened: {cases}");
}
