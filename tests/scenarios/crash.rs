//! Durability: a `kill -9` with timers pending loses nothing; after a restart on the same data dir they fire.

use followup_tests::{booked, Local};
use serde_json::json;

#[test]
fn kill_9_with_timers_pending_then_restart_and_they_fire() {
    let dir = tempfile::tempdir().unwrap();
    let start = "2026-03-02T10:00:00+02:00";
    let mut l = Local::spawn(dir.path(), Some(start), &[]);
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"));
    let case_id = l
        .accept(
            "/v1/cancellations",
            "appointment.cancelled",
            json!({"appointment_id": "A1", "cancelled_by": "ops", "reason": "no technician", "wants_follow_up": false}),
        )
        .unwrap();
    assert_eq!(l.case(&case_id)["timers"].as_array().unwrap().len(), 2);
    l.kill9();

    let mut l = Local::spawn(dir.path(), Some(start), &[]);
    // The accepted event, its case, its SMS and its timers all survived.
    assert_eq!(l.case(&case_id)["ticket"]["status"], "open");
    assert_eq!(l.sms().len(), 1);
    assert_eq!(l.clock_to("2026-03-03T09:00:00+02:00"), 1, "the first attempt timer fires after the restart");
    assert_eq!(l.commands_of("call_customer").len(), 1);
    // The idempotency record of a delivery accepted before the crash is still there:
    // the same id with another body (a later occurred_at) is a conflict.
    let (status, body) = l.send(
        "/v1/appointments",
        "d-0",
        "appointment.booked",
        booked("A1", "O1", "2026-03-03T10:00:00+02:00", "2026-03-03T12:00:00+02:00"),
    );
    assert_eq!(status, 409, "{body}");

    // The virtual clock resumes where it was, not at the start it was first given.
    l.kill9();
    let l = Local::spawn(dir.path(), Some(start), &[]);
    assert_eq!(l.get("/local/clock").1["now"], "2026-03-03T09:00:00+02:00");
}

/// On the real clock, the runner fires due timers by itself (here R2.9 with a zero-day
/// close policy, so the close falls due at once); SIGTERM stops the process cleanly.
#[test]
fn the_real_clock_runner_fires_due_timers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("policy.toml");
    std::fs::write(&config, "[cancellation_follow_up]\nclose_after_days = 0\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let data = dir.path().join("data");
    let mut l = Local::spawn(&data, None, &[("FOLLOWUP_CONFIG", config.as_str())]);
    let start = chrono::Utc::now();
    let window = |h: i64| (start + chrono::Duration::days(3) + chrono::Duration::hours(h)).to_rfc3339();
    l.accept("/v1/appointments", "appointment.booked", booked("A1", "O1", &window(0), &window(2)));
    let case_id = l
        .accept(
            "/v1/cancellations",
            "appointment.cancelled",
            json!({"appointment_id": "A1", "cancelled_by": "no_show", "reason": "not home", "wants_follow_up": false}),
        )
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let case = l.case(&case_id);
        if case["ticket"]["status"] == "closed" {
            assert_eq!(case["ticket"]["result"], "unreachable");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the R2.9 timer did not fire on the real clock: {case}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(l.terminate(std::time::Duration::from_secs(10)), "graceful shutdown on SIGTERM");
    let l = Local::spawn(&data, None, &[("FOLLOWUP_CONFIG", config.as_str())]);
    assert_eq!(l.case(&case_id)["ticket"]["status"], "closed");
}
