//! The what-if figures a team lead compares policies by, for one month: agent load by hour,
//! attempts, customers reached, what the cases came to, coupons, deactivations, escalations and
//! the SMS by template and by day.

use super::meter::Tally;
use chrono::Timelike;
use followup::domain::calendar::Calendar;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The headline figures, as the text and the page label them, each with its key in [`figures`].
pub const HEADLINE: [(&str, &str); 7] = [
    ("call tasks", "call_tasks"),
    ("cases called", "cases_called"),
    ("customers reached", "customers_reached"),
    ("orders cancelled, customer unreached (R2.6)", "orders_cancelled_unreached"),
    ("coupons issued", "coupons_issued"),
    ("packages deactivated", "packages_deactivated"),
    ("escalations", "escalations"),
];

/// The what-if figures of one month.
pub fn figures(t: &Tally, cal: &Calendar) -> Value {
    let o = &t.observed;
    let mut by_hour = [0u64; 24];
    let mut calls_by_day: BTreeMap<String, u64> = BTreeMap::new();
    for due in &o.call_tasks {
        by_hour[cal.local(*due).hour() as usize] += 1;
        *calls_by_day.entry(cal.local_date(*due).to_string()).or_default() += 1;
    }
    let mut sms_by_day: BTreeMap<String, u64> = BTreeMap::new();
    for at in &o.sms_sent {
        *sms_by_day.entry(cal.local_date(*at).to_string()).or_default() += 1;
    }
    let mut attempts: BTreeMap<String, u64> = BTreeMap::new();
    for n in o.attempts.values() {
        *attempts.entry(n.to_string()).or_default() += 1;
    }
    let mut templates: BTreeMap<String, Value> = BTreeMap::new();
    for (k, (m, s)) in &t.sms {
        templates.insert(k.to_string(), json!({"sent": m, "segments": s, "held": 0, "capped": 0, "suppressed": 0}));
    }
    for (k, (held, capped, suppressed)) in &o.sms_stops {
        let e = templates.entry(k.clone()).or_insert_with(|| json!({"sent": 0, "segments": 0}));
        e["held"] = json!(held);
        e["capped"] = json!(capped);
        e["suppressed"] = json!(suppressed);
    }
    let command = |k: &str| t.commands.get(k).copied().unwrap_or(0);
    let mut results: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for c in t.cases.values() {
        *results.entry(c.playbook).or_default().entry(c.result.unwrap_or("open").to_owned()).or_default() += 1;
    }
    json!({
        "call_tasks": o.call_tasks.len(),
        "call_tasks_by_hour": by_hour,
        "call_tasks_by_day": calls_by_day,
        "cases_called": o.attempts.len(),
        "attempts_per_case": attempts,
        "customers_reached": o.reached.len(),
        "cases_by_playbook_and_result": results,
        "orders_cancelled_unreached": o.cancelled_unreached,
        "coupons_issued": command("issue_coupon"),
        "packages_deactivated": command("deactivate_package"),
        "escalations": command("escalate"),
        "sms_by_template": templates,
        "sms_by_day": sms_by_day,
    })
}
