//! Two months side by side with their difference: the what-if figures of each (`whatif`), the
//! SMS bill and the AWS bill.

use super::bill;
use super::report::Report;
use super::whatif::HEADLINE;
use serde_json::{json, Map, Value};

/// `b - a` at every number of two figures (a key missing on one side counts 0 there).
pub fn difference(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = Map::new();
            for k in x.keys().chain(y.keys()) {
                if !out.contains_key(k) {
                    let d = difference(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                    if !d.is_null() {
                        out.insert(k.clone(), d);
                    }
                }
            }
            Value::Object(out)
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => Value::Array(x.iter().zip(y).map(|(p, q)| difference(p, q)).collect()),
        (Value::Object(_), Value::Null) => difference(a, &json!({})),
        (Value::Null, Value::Object(_)) => difference(&json!({}), b),
        _ => match (a.as_f64().or(a.is_null().then_some(0.0)), b.as_f64().or(b.is_null().then_some(0.0))) {
            (Some(p), Some(q)) if a.is_i64() || a.is_u64() || b.is_i64() || b.is_u64() => json!(q as i64 - p as i64),
            (Some(p), Some(q)) => json!(((q - p) * 100.0).round() / 100.0),
            _ => Value::Null,
        },
    }
}

/// What two months are compared on: the what-if figures, the SMS bill and the AWS bill.
pub fn compared(r: &Report) -> Value {
    let mut v = r.what_if.clone();
    v["sms_usd"] = r.bills["sms"]["usd"].clone();
    v["aws_bill_usd"] = r.bills["this_design"]["total_usd"].clone();
    v
}

/// The two months as one JSON document: both reports and the difference (second minus first).
pub fn json(a: &Report, b: &Report) -> Value {
    json!({"a": a, "b": b, "difference": difference(&compared(a), &compared(b))})
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn cell(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn line(out: &mut String, label: &str, a: f64, b: f64) {
    let d = b - a;
    let sign = if d > 0.0 { "+" } else { "" };
    out.push_str(&format!("  {label:<44} {:>12} {:>12} {:>12}\n", cell(a), cell(b), format!("{sign}{}", cell(d))));
}

/// The two months side by side, as text.
pub fn text(a: &Report, b: &Report) -> String {
    let (x, y) = (compared(a), compared(b));
    let mut out = String::new();
    out.push_str(&format!(
        "what-if: the same month under two policies\n  A: {}\n  B: {}\n  {} inputs under A, {} under B; {:.2} s and {:.2} s wall\n\n",
        a.policy["name"].as_str().unwrap_or(""),
        b.policy["name"].as_str().unwrap_or(""),
        n(&a.run["webhooks"]) + n(&a.run["timers_fired"]),
        n(&b.run["webhooks"]) + n(&b.run["timers_fired"]),
        n(&a.run["wall_seconds"]),
        n(&b.run["wall_seconds"]),
    ));
    out.push_str(&format!("  {:<44} {:>12} {:>12} {:>12}\n", "", "A", "B", "B - A"));
    for (label, key) in HEADLINE {
        line(&mut out, label, n(&x[key]), n(&y[key]));
    }
    out.push_str("\n  attempts per case\n");
    for k in keys(&x["attempts_per_case"], &y["attempts_per_case"]) {
        line(&mut out, &format!("    {k} attempt(s)"), n(&x["attempts_per_case"][&k]), n(&y["attempts_per_case"][&k]));
    }
    out.push_str("\n  call tasks by local hour of day (agent load)\n");
    for h in 0..24 {
        let (p, q) = (n(&x["call_tasks_by_hour"][h]), n(&y["call_tasks_by_hour"][h]));
        if p + q > 0.0 {
            line(&mut out, &format!("    {h:02}:00"), p, q);
        }
    }
    out.push_str("\n  cases by playbook and result\n");
    let (cx, cy) = (&x["cases_by_playbook_and_result"], &y["cases_by_playbook_and_result"]);
    for pb in keys(cx, cy) {
        for r in keys(&cx[&pb], &cy[&pb]) {
            line(&mut out, &format!("    {pb} / {r}"), n(&cx[&pb][&r]), n(&cy[&pb][&r]));
        }
    }
    out.push_str("\n  SMS by template: sent, held, capped, suppressed, segments\n");
    let (sx, sy) = (&x["sms_by_template"], &y["sms_by_template"]);
    for t in keys(sx, sy) {
        for part in ["sent", "held", "capped", "suppressed", "segments"] {
            let (p, q) = (n(&sx[&t][part]), n(&sy[&t][part]));
            if p + q > 0.0 || part == "sent" {
                line(&mut out, &format!("    {t} {part}"), p, q);
            }
        }
    }
    out.push('\n');
    line(&mut out, "SMS cost (USD)", n(&x["sms_usd"]), n(&y["sms_usd"]));
    line(&mut out, "AWS bill, this design, no SMS (USD)", n(&x["aws_bill_usd"]), n(&y["aws_bill_usd"]));
    out.push_str(&format!(
        "\n  SMS {} vs {}; AWS {} vs {}\n",
        bill::usd(n(&x["sms_usd"])),
        bill::usd(n(&y["sms_usd"])),
        bill::usd(n(&x["aws_bill_usd"])),
        bill::usd(n(&y["aws_bill_usd"]))
    ));
    for (name, r) in [("A", a), ("B", b)] {
        out.push_str(&format!("\ncapacity under {name}\n"));
        out.push_str(&super::text::capacity_text(&r.capacity));
    }
    out
}

/// The keys of two objects, in order, each once.
fn keys(a: &Value, b: &Value) -> Vec<String> {
    let mut k: Vec<String> = a.as_object().into_iter().chain(b.as_object()).flat_map(|m| m.keys().cloned()).collect();
    k.sort();
    k.dedup();
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_difference_is_the_second_minus_the_first_at_every_number() {
        let a = json!({"calls": 4, "by_hour": [1, 2], "sms": {"SMS3": {"sent": 1}}, "usd": 1.5});
        let b = json!({"calls": 6, "by_hour": [0, 2], "sms": {"SMS4": {"sent": 2}}, "usd": 1.0});
        assert_eq!(
            difference(&a, &b),
            json!({"calls": 2, "by_hour": [-1, 0], "sms": {"SMS3": {"sent": -1}, "SMS4": {"sent": 2}}, "usd": -0.5})
        );
    }
}
