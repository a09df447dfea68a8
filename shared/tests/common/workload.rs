//! The fault tests' workload, the same over the SQLite adapters and over the AWS adapters on moto:
//! orders with first and second visits cancelled, watched, rescheduled and completed, packages
//! paid and unpaid, and call reports on every case now and then. Envelopes come without `id` and
//! `occurred_at`; the sender fills them in.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use followup::domain::effects::TimerRef;
use followup::domain::subjects::snapshot::Snapshot;
use followup::wire::Route;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Six weeks in six-hour steps: timers fire, reports come.
pub const STEPS: i64 = 6 * 7 * 4;
pub const STEP: Duration = Duration::hours(6);

/// Whether call reports come at this step.
pub fn reports_at(step: i64) -> bool {
    step % 8 == 3
}

pub fn customer() -> Value {
    json!({"id": "C-1", "name": "Mona Adel", "phone": "+201001234567", "language": "ar"})
}

/// The workload: orders with first and second visits cancelled, watched, rescheduled and completed,
/// and packages paid and unpaid.
pub fn workload(start: DateTime<Utc>) -> Vec<(Route, Value)> {
    let mut out = Vec::new();
    let at = |h: i64| (start + Duration::hours(h)).to_rfc3339();
    for i in 0..12 {
        let (a, o) = (format!("A-{i}"), format!("O-{i}"));
        out.push((
            Route::Appointments,
            json!({"type": "appointment.booked", "data": {
            "appointment_id": a, "order_id": o, "customer": customer(), "area": "Cairo", "service": "AC",
            "price": {"amount": 45000}, "window_start": at(30 + i), "window_end": at(32 + i),
            "visit_number": 1 + i % 2, "technician_id": if i % 3 == 0 { Value::Null } else { json!("T-1") }, "discount_percent": 0}}),
        ));
        match i % 4 {
            0 => {
                let by = ["customer", "ops", "no_show"][i as usize % 3];
                out.push((
                    Route::Cancellations,
                    json!({"type": "appointment.cancelled", "data": {
                    "appointment_id": a, "cancelled_by": by, "reason": "r", "wants_follow_up": true}}),
                ))
            }
            1 => out.push((
                Route::Appointments,
                json!({"type": "appointment.reschedule_requested", "data": {
                "appointment_id": a, "reason": "late", "stf_link": "https://stf/x"}}),
            )),
            2 => out.push((
                Route::Appointments,
                json!({"type": "appointment.completed", "data": {
                "appointment_id": a, "outcome": "inspection", "needs_material": false}}),
            )),
            _ => out.push((
                Route::Appointments,
                json!({"type": "appointment.rescheduled", "data": {
                "appointment_id": a, "window_start": at(80 + i), "window_end": at(82 + i), "requested_by": "customer"}}),
            )),
        }
    }
    for i in 0..6 {
        out.push((
            Route::Packages,
            json!({"type": "package.booked", "data": {
            "package_id": format!("P-{i}"), "customer": customer(), "area": "Cairo", "price": {"amount": 200000},
            "visits": [{"visit_id": "V1", "window_start": at(24 * (3 + i))}, {"visit_id": "V2", "window_start": at(24 * (10 + i))}],
            "start_date": (start + Duration::days(3 + i)).date_naive().to_string(), "payment_method": "card", "paid": i % 2 == 0}}),
        ));
    }
    out
}

/// Call reports on every case of the workload, alternately not reached and answered without a resolution.
pub fn call_reports(n: i64) -> Vec<Value> {
    let cases = (0..12).map(|i| format!("o1-O-{i}")).chain((0..6).map(|i| format!("p1-P-{i}")));
    cases
        .enumerate()
        .map(|(i, case)| {
            let outcome = if (i as i64 + n) % 2 == 0 { "no_answer" } else { "answered" };
            let data = json!({"case_id": case, "call_id": format!("K-{n}-{i}"), "agent_id": "G", "outcome": outcome});
            json!({"type": "call.completed", "data": data})
        })
        .collect()
}

/// No case is stuck: every open case of `snapshot` waits on at least one timer, and each is in
/// `live` (the timer table, or the schedules). Returns how many cases the snapshot holds.
pub fn assert_none_stuck(snapshot: &Snapshot, live: &BTreeSet<String>) -> usize {
    for case in snapshot.cases.iter().filter(|c| c.ticket.is_open()) {
        let names: Vec<String> = case
            .timers
            .iter()
            .map(|p| TimerRef { stream: snapshot.key.clone(), case_id: Some(case.case_id.clone()), kind: p.kind, step: p.step }.name())
            .collect();
        assert!(!names.is_empty() && names.iter().all(|n| live.contains(n)), "{} is open and waits on {names:?}", case.case_id);
    }
    snapshot.cases.len()
}
