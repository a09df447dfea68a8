//! `followup-local simulate`: a tiny month whose every rate is 0 or 1, checked against counts
//! worked out by hand from the SOP rules, and the same month replayed.
//!
//! The month: two appointments, both cancelled as no-shows (no technician missing, no
//! reschedule), and one paid package of one visit that is never done, so it expires with a visit
//! left. No call is ever answered (`--no-answer 1`), no case is re-opened, and the agent opens
//! each case once before each call. Seed 3 books the package on Sunday 2026-03-01 with its first
//! visit on Tuesday 2026-03-03, so its Day 1 (R5.1) is Friday 2026-04-03, a day off.
//!
//! A second month covers the inputs the first has none of: a painting job (R3.7) nobody answers,
//! re-opened (R3.9 as R2.10), package visits moved (R6.1, R6.2) and two case views per call.

use serde_json::Value;
use std::process::Command;

/// What both hand-computed months share: bookings on one day (seed 3 from Sunday 2026-03-01),
/// no appointment moved or unassigned, every package paid, no call answered, every report delivered.
const ONE_DAY: &[&str] = &[
    "--days",
    "1",
    "--seed",
    "3",
    "--start",
    "2026-03-01",
    "--reschedule",
    "0",
    "--reschedule-request",
    "0",
    "--unassigned",
    "0",
    "--unpaid",
    "0",
    "--no-answer",
    "1",
    "--report-lost",
    "0",
];

const MONTH: &[&str] = &[
    "--appointments",
    "2",
    "--packages",
    "1",
    // Every appointment is cancelled as a no-show (R2.1 opens a follow-up, R2.3 gives no coupon).
    "--cancel",
    "1",
    "--cancel-by-customer",
    "0",
    "--cancel-by-ops",
    "0",
    "--unsure",
    "0",
    // Nobody answers; the package is paid, has one visit, and that visit is left at expiry.
    "--visits",
    "1",
    "--visits-left",
    "1",
    "--reopen",
    "0",
    "--case-views",
    "1",
];

fn simulate(extra: &[&str]) -> Value {
    simulate_month(&[ONE_DAY, MONTH].concat(), extra)
}

fn simulate_month(month: &[&str], extra: &[&str]) -> Value {
    let out = Command::new(followup_tests::binary())
        .arg("simulate")
        .args(month)
        .args(extra)
        .arg("--json")
        .env_remove("FOLLOWUP_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run followup-local simulate");
    assert!(out.status.success(), "simulate failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON document")
}

fn count(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or_else(|| panic!("{path:?} is not a count in {v}"))
}

#[test]
fn a_month_of_unanswered_no_shows_and_one_expiring_package_counts_as_the_rules_say() {
    let month = simulate(&[]);

    // Cases: one cancellation follow-up per no-show (R2.1), one expiry case for the package
    // with a visit left (R5.2). Both follow-ups wait on the customer after two unreached
    // attempts (R2.6) and R2.9 closes them at 7 days; the expiry case closes after SMS4 (R5.3).
    assert_eq!(month["cases"]["by_playbook"], serde_json::json!({"cancellation_follow_up": 2, "package_expiry": 1}));
    assert_eq!(count(&month, &["cases", "by_status_and_result", "cancellation_follow_up", "closed / unreachable"]), 2);
    assert_eq!(count(&month, &["cases", "by_status_and_result", "package_expiry", "closed / unreachable"]), 1);

    // SMS: no coupon for a no-show (R2.3), so no DISCOUNT_OFFER; the expiry case sends SMS3
    // after its first unreached call and SMS4 after its second, each the fixed Arabic text of
    // SPEC §4 in UCS-2: 5 segments of 67 characters.
    assert_eq!(
        month["sms"]["by_template"],
        serde_json::json!({"SMS3": {"messages": 1, "segments": 5}, "SMS4": {"messages": 1, "segments": 5}})
    );

    // Commands: 2 call tasks per case (R2.5, R5.2 + R5.3) = 6, each reported, so 6
    // interaction summaries (R9.5); cancel_order for each follow-up (R2.6); the package is
    // deactivated at the end of its grace (R5.4).
    assert_eq!(
        month["commands"],
        serde_json::json!({"call_customer": 6, "interaction_summary": 6, "cancel_order": 2, "deactivate_package": 1})
    );

    // Schedules. A follow-up: attempt 1 and the R2.9 close at opening, attempt 2 when attempt 1
    // goes out (R9.1), and the last attempt's report_due (21:00) when attempt 2 goes out = 4, × 2.
    // The package: its Day 1 and end-of-grace ticks at booking; on Day 1 (a Friday) the two
    // calls (moved to Saturday, and Day 6), and the last one's report_due = 5. Total 13.
    // Invoked: per follow-up the two attempts and the close (report_due is cancelled by the
    // report) = 3 × 2; the package's two ticks and two calls = 4. Total 10.
    let scheduler = &month["aws"]["scheduler"];
    assert_eq!(count(scheduler, &["schedules_created"]), 13);
    assert_eq!(count(scheduler, &["invocations"]), 10);
    assert_eq!(count(scheduler, &["schedules_deleted"]), 3);

    // Webhooks: per appointment booked, cancelled and two call reports = 4 × 2; the package's
    // booking and two call reports = 3. Nothing refused, nothing left waiting.
    assert_eq!(count(&month, &["run", "webhooks"]), 11);
    assert_eq!(count(&month, &["run", "timers_fired"]), 10);
    assert_eq!(month["run"]["refusals"], serde_json::json!({}));
    assert_eq!(count(&month, &["run", "left_over_timers"]), 0);
    // The outboxes hold what the ports counted.
    assert_eq!(count(&month, &["run", "outbox_sms"]), 2);
    assert_eq!(count(&month, &["run", "outbox_commands"]), 15);
    // One case view per call task, served by the `cases` function; the HTTP API takes the
    // webhooks and the views.
    assert_eq!(count(&month, &["run", "case_views"]), 6);
    assert_eq!(count(&month, &["aws", "lambda", "cases", "count"]), 6);
    assert_eq!(count(&month, &["aws", "http_api_requests"]), 11 + 6);

    // The SMS bill is the segments at the per-segment price.
    assert_eq!(count(&month, &["bills", "sms", "segments"]), 10);
}

/// One painting job and one package of two visits, both moved. Seed 3 books appointment A1 for
/// Monday 2026-03-02 17:00–19:00 and the package's visits for Tuesdays 03-03 and 03-10.
const PAINTING_MONTH: &[&str] = &[
    "--appointments",
    "1",
    "--packages",
    "1",
    "--cancel",
    "0",
    "--second-visit",
    "0",
    "--painting",
    "1",
    "--reopen",
    "1",
    "--case-views",
    "2",
    "--visits",
    "2",
    "--visits-left",
    "0",
    "--visit-cancel",
    "0",
    "--visit-reschedule",
    "1",
];

#[test]
fn a_painting_job_nobody_answers_is_re_opened_and_moved_package_visits_are_counted_as_r6_says() {
    let month = simulate_month(&[ONE_DAY, PAINTING_MONTH].concat(), &[]);

    // R3.1 the painting completion opens one second-visit case an hour later (20:00, still
    // working hours: attempt 1 at once). Both attempts unreached → R3.4 converts the order and
    // the ticket waits on the customer; R3.9 (R2.9) closes it 7 days after opening. The agent
    // re-opens it from 30 days after the visit day (R2.10); the round starts over, is again
    // unreached, converted, and closed 7 days after the re-open.
    assert_eq!(month["cases"]["by_playbook"], serde_json::json!({"second_visit_follow_up": 1}));
    assert_eq!(count(&month, &["cases", "by_status_and_result", "second_visit_follow_up", "closed / unreachable"]), 1);
    assert_eq!(count(&month, &["run", "reopens"]), 1);
    // Never rebooked, so no create_visit and no block_technician_days (R3.7); every outcome
    // came before its SLA (R3.2 8 h) and the conversion before the cost SLA (R3.3 48 h), both
    // cancelled. The package moved both visits and did both, so Day 1 opens no expiry case and
    // R5.4 deactivates it. No SMS at all.
    assert_eq!(
        month["commands"],
        serde_json::json!({"call_customer": 4, "interaction_summary": 4, "convert_order_to_complete": 2, "deactivate_package": 1})
    );
    assert_eq!(count(&month, &["sms", "messages"]), 0);

    // Schedules: the R3.1 opening timer; per round attempt 2, R3.2, R3.3, the close and the last
    // attempt's report_due = 5, × 2; the package's Day 1 and end-of-grace ticks. 13 created.
    // Cancelled: per round R3.2 (by the first outcome), report_due (by the report) and R3.3 (by
    // the conversion) = 6. Invoked: the opening, per round attempt 2 and the close, the 2 ticks = 7.
    let scheduler = &month["aws"]["scheduler"];
    assert_eq!(count(scheduler, &["schedules_created"]), 13);
    assert_eq!(count(scheduler, &["schedules_deleted"]), 6);
    assert_eq!(count(scheduler, &["invocations"]), 7);

    // Webhooks: the order's booking, completion, 4 call reports and the re-open = 7; the
    // package's booking, 2 moves (V1 the day before, < 24 h: R6.2 counted; V2 ≥ 24 h: R6.1
    // free) and 2 visits done = 5. None refused: every move and every re-open was allowed.
    assert_eq!(count(&month, &["run", "webhooks"]), 12);
    assert_eq!(month["run"]["refusals"], serde_json::json!({}));
    assert_eq!(count(&month, &["run", "left_over_timers"]) + count(&month, &["run", "left_over_inputs"]), 0);

    // Two views per call task; the re-open goes to the cancellation-request function (its route).
    assert_eq!(count(&month, &["run", "case_views"]), 8);
    let lambda = &month["aws"]["lambda"];
    assert_eq!(count(lambda, &["cases", "count"]), 8);
    assert_eq!(count(lambda, &["cancellation-request", "count"]), 1);
    assert_eq!(count(lambda, &["call-attempt", "count"]), 4);
    // appointments: 2 webhooks + the opening, 2 attempts and 2 closes; package-payment: the 5 package webhooks.
    assert_eq!(count(lambda, &["appointments", "count"]), 7);
    assert_eq!(count(lambda, &["package-payment", "count"]), 5);
}

#[test]
fn the_same_seed_replays_the_same_month_whatever_the_concurrency() {
    let args = ["--appointments", "300", "--packages", "60", "--seed", "11"];
    let one = simulate(&[&args[..], &["--concurrency", "1"]].concat());
    let many = simulate(&[&args[..], &["--concurrency", "16"]].concat());
    for part in ["cases", "sms", "commands"] {
        assert_eq!(one[part], many[part], "{part} differ between --concurrency 1 and 16");
    }
    assert_eq!(one["aws"]["scheduler"], many["aws"]["scheduler"]);
    assert_eq!(one["run"]["webhooks"], many["run"]["webhooks"]);
    assert!(count(&one, &["cases", "total"]) > 0, "a default-rate month opens cases: {}", one["cases"]);
}

#[test]
fn with_every_call_report_lost_every_case_still_ends_on_its_timers() {
    // Default rates but for lost reports and re-opens. R9.1 / R9.3: no report ever arrives, yet
    // the attempts go out on their own days, each unreported attempt counts as not reached, and
    // every case ends by a timer.
    let month = simulate_month(&["--appointments", "300", "--packages", "60", "--seed", "11"], &["--report-lost", "1", "--reopen", "0"]);
    assert_eq!(count(&month, &["aws", "lambda", "call-attempt", "count"]), 0, "no report reached the call-attempt function");
    assert!(count(&month, &["commands", "call_customer"]) > 0, "call tasks went out: {}", month["commands"]);
    assert_eq!(month["commands"].get("interaction_summary"), None, "no call, no summary (R9.5)");
    // Every unreported attempt counts as not reached: each cancellation follow-up ends in R2.6's
    // cancel_order, each second visit in R3.4's conversion.
    let cases = &month["cases"]["by_playbook"];
    assert_eq!(count(&month, &["commands", "cancel_order"]), count(cases, &["cancellation_follow_up"]));
    assert_eq!(count(&month, &["commands", "convert_order_to_complete"]), count(cases, &["second_visit_follow_up"]));
    assert_eq!(month["run"]["refusals"], serde_json::json!({}));
    assert_eq!(count(&month, &["run", "left_over_timers"]) + count(&month, &["run", "left_over_inputs"]), 0);
    for (playbook, statuses) in month["cases"]["by_status_and_result"].as_object().expect("cases by playbook") {
        for status in statuses.as_object().expect("statuses").keys() {
            assert!(status.starts_with("closed") || status.starts_with("resolved"), "a {playbook} case ended as {status}");
        }
    }
}

/// The month's store does not change what it counts: the same seed on the in-memory store (the
/// default) and on SQLite (`--data-dir`) gives the same cases, SMS, commands, AWS calls and units
/// and bills but for the Lambda compute line, which is measured handler time. On both the
/// decide-only floor decided against every state the store ended with.
#[test]
fn the_in_memory_store_and_sqlite_count_the_same_month() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data").display().to_string();
    let args = ["--appointments", "300", "--packages", "60", "--seed", "11"];
    let memory = simulate_month(&args, &[]);
    let sqlite = simulate_month(&args, &["--data-dir", &data_dir]);
    assert_eq!((memory["run"]["store"].as_str(), sqlite["run"]["store"].as_str()), (Some("memory"), Some("sqlite")));
    for part in ["cases", "sms", "commands"] {
        assert_eq!(memory[part], sqlite[part], "{part} differ between the stores");
    }
    for run in ["webhooks", "timers_fired", "case_views", "reopens", "commits", "refusals", "outbox_sms", "outbox_commands"] {
        assert_eq!(memory["run"][run], sqlite["run"][run], "run.{run} differs between the stores");
    }
    for aws in ["dynamodb", "scheduler", "sns_publishes", "http_api_requests", "step_functions_transitions", "durable_operations"] {
        assert_eq!(memory["aws"][aws], sqlite["aws"][aws], "aws.{aws} differs between the stores");
    }
    let invocations = |month: &Value| -> Vec<(String, u64)> {
        let lambda = month["aws"]["lambda"].as_object().expect("lambda functions");
        lambda.iter().map(|(f, inv)| (f.clone(), count(inv, &["count"]))).collect()
    };
    assert_eq!(invocations(&memory), invocations(&sqlite));
    for design in ["this_design", "step_functions_standard", "lambda_durable_functions"] {
        let lines = |month: &Value| -> Vec<Value> {
            let all = month["bills"][design]["lines"].as_array().expect("bill lines");
            all.iter().filter(|l| l["item"] != "Lambda compute").cloned().collect()
        };
        assert_eq!(lines(&memory), lines(&sqlite), "the {design} bill differs between the stores");
    }
    for month in [&memory, &sqlite] {
        let floor = &month["run"]["decide_only_floor"];
        assert_eq!(count(floor, &["streams_differing"]), 0, "{floor}");
        assert!(count(floor, &["inputs"]) == count(month, &["run", "webhooks"]) + count(month, &["run", "timers_fired"]), "{floor}");
    }
}

/// A policy file in a fresh directory (kept until the test's `TempDir` goes).
fn policy_file(dir: &tempfile::TempDir, name: &str, toml: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, toml).expect("write the policy");
    path.display().to_string()
}

/// The what-if figures of the hand-computed month of unanswered no-shows, for B = three call
/// attempts on a cancellation follow-up (R2.5's `attempts`, 2 by default).
///
/// By hand, under A (the SPEC: 2 attempts): each follow-up calls twice, unreached, then R2.6
/// cancels the order; the expiry case calls twice (R5.2, R5.3). Call tasks 2 + 2 + 2 = 6, every
/// case called twice. Under B each follow-up calls three times before R2.6: 3 + 3 + 2 = 8, two
/// cases called three times and one twice. Nobody is reached under either; both follow-ups end
/// in cancel_order; no coupon (a no-show gets none, R2.3); the package is deactivated at the end of
/// its grace; SMS3 and SMS4 once each under both (the expiry playbook is the same).
fn assert_three_attempts_against_two(a: &Value, b: &Value, diff: &Value) {
    assert_eq!(count(a, &["call_tasks"]), 6);
    assert_eq!(count(b, &["call_tasks"]), 8);
    assert_eq!(a["attempts_per_case"], serde_json::json!({"2": 3}));
    assert_eq!(b["attempts_per_case"], serde_json::json!({"2": 1, "3": 2}));
    for side in [a, b] {
        assert_eq!(count(side, &["customers_reached"]), 0);
        assert_eq!(count(side, &["orders_cancelled_unreached"]), 2);
        assert_eq!(count(side, &["coupons_issued"]), 0);
        assert_eq!(count(side, &["packages_deactivated"]), 1);
        assert_eq!(count(side, &["sms_by_template", "SMS3", "sent"]), 1);
        assert_eq!(count(side, &["sms_by_template", "SMS4", "sent"]), 1);
        assert_eq!(
            side["cases_by_playbook_and_result"],
            serde_json::json!({"cancellation_follow_up": {"unreachable": 2}, "package_expiry": {"unreachable": 1}})
        );
        // Every call task falls due at 09:00 local: R2.5's attempt time and R5.2 / R5.3's call time.
        let hours = side["call_tasks_by_hour"].as_array().expect("24 hours");
        assert_eq!(hours.iter().filter_map(Value::as_u64).sum::<u64>(), count(side, &["call_tasks"]));
        assert_eq!(hours[9].as_u64(), Some(count(side, &["call_tasks"])));
    }
    assert_eq!(diff["call_tasks"], serde_json::json!(2));
    assert_eq!(diff["call_tasks_by_hour"][9], serde_json::json!(2));
    assert_eq!(diff["sms_usd"], serde_json::json!(0.0));
}

#[test]
fn compare_runs_the_same_month_under_three_attempts_and_two_and_gives_the_difference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = policy_file(&dir, "three-attempts.toml", "[cancellation_follow_up]\nattempts = 3\n");
    let html = dir.path().join("compare.html");
    let out = simulate(&["--compare", &b, "--html", &html.display().to_string()]);
    assert_three_attempts_against_two(&out["a"]["what_if"], &out["b"]["what_if"], &out["difference"]);
    // Same traffic, same customers: the webhooks differ by the two extra call reports only.
    assert_eq!(count(&out, &["b", "run", "webhooks"]), count(&out, &["a", "run", "webhooks"]) + 2);
    assert_eq!(out["a"]["policy"]["name"], serde_json::json!("the SPEC's figures"));
    assert!(out["a"]["capacity"]["rows"].as_array().is_some_and(|r| r.len() == 7), "{}", out["a"]["capacity"]);

    // One page: the four charts inline, nothing fetched from elsewhere, no script.
    let page = std::fs::read_to_string(&html).expect("--html wrote the page");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 4, "daily SMS, daily call tasks, tasks by hour, cases by result");
    for chart in ["SMS sent per day", "Call tasks per day", "Call tasks by local hour of day", "Cases by playbook and result"] {
        assert!(page.contains(chart), "the page has the chart {chart}");
    }
    for external in ["src=\"http", "href=\"http", "src='http", "href='http", "url(http", "@import", "<script"] {
        assert!(!page.to_lowercase().contains(external), "the page refers outside itself: {external}");
    }
}

#[test]
fn an_exported_store_replayed_under_another_policy_counts_as_that_policy_would() {
    // The store: the hand-computed month under the SPEC's figures, kept in a data dir. It
    // accepted 11 webhooks (per no-show its booking, its cancellation and two call reports; the
    // package's booking and its two call reports).
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("store");
    let kept = simulate(&["--data-dir", &data.display().to_string()]);
    assert_eq!(count(&kept, &["run", "webhooks"]), 11);
    let file = dir.path().join("inputs.jsonl");
    let out = Command::new(followup_tests::binary())
        .args(["export", "--data-dir", &data.display().to_string(), "--out", &file.display().to_string()])
        .output()
        .expect("run followup-local export");
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).expect("the export").lines().map(|l| serde_json::from_str(l).expect("one JSON line")).collect();
    assert_eq!(lines.len(), 11, "every accepted webhook, as received");
    for l in &lines {
        let envelope: Value = serde_json::from_str(l["body"].as_str().expect("the raw envelope")).expect("JSON");
        assert!(l["route"].as_str().is_some_and(|r| r.starts_with("/v1/")), "{l}");
        let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().expect("an instant")).expect("RFC 3339");
        assert_eq!(instant(&l["occurred_at"]), instant(&envelope["occurred_at"]), "{l}");
    }

    // Replayed under B (three attempts): the 5 inputs of the world (2 bookings, 2 cancellations,
    // the package's booking) go again; the 6 call reports are left out and the agent answers B's
    // own 8 call tasks (nobody reached). So B's figures, as `--compare` computed them by hand.
    let b = policy_file(&dir, "three-attempts.toml", "[cancellation_follow_up]\nattempts = 3\n");
    let a = policy_file(&dir, "spec.toml", "");
    let replayed = simulate_month(&[ONE_DAY, MONTH].concat(), &["--replay", &file.display().to_string(), "--policy", &a, "--compare", &b]);
    assert_three_attempts_against_two(&replayed["a"]["what_if"], &replayed["b"]["what_if"], &replayed["difference"]);
    assert_eq!(count(&replayed, &["a", "run", "webhooks"]), 5 + 6);
    assert_eq!(count(&replayed, &["b", "run", "webhooks"]), 5 + 8);
    assert_eq!(replayed["b"]["run"]["refusals"], serde_json::json!({}));
    assert_eq!(replayed["a"]["run"]["replay"], serde_json::json!(file.display().to_string()), "the report names the file it replayed");
}
