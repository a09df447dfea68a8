//! Operational metrics as CloudWatch Embedded Metric Format lines: one JSON object per event,
//! written to stdout, which CloudWatch Logs turns into metrics of namespace `FollowUp` with no
//! `PutMetricData` call (so no IAM grant and no latency on the request path).
//!
//! The engine records every event through [`record`]; nothing is written unless a Lambda
//! function enabled EMF at cold start ([`enable_emf`]), so followup-local and the tests stay quiet.
//! Each metric is published with its own dimension (template, command type, error code, timer
//! kind) and with none, so the dashboard can show both the split and the total.

use crate::domain::records::case::TimerKind;
use crate::domain::refusal::ErrorCode;
use crate::domain::sms::TemplateId;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

pub const NAMESPACE: &str = "FollowUp";

/// One thing worth counting.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric<'a> {
    /// An SMS handed to SNS, and its segments (the billable unit).
    SmsSent { template: TemplateId, segments: u32 },
    /// A command published to the ops topic.
    CommandSent { kind: &'a str },
    /// A webhook or a timer refused (4xx).
    Refused { code: ErrorCode, timer: bool },
    /// A timer delivered `seconds` after its due time.
    TimerLateness { kind: TimerKind, seconds: f64 },
    /// An effect that failed and stays pending for a retry.
    EffectRetry { effect: &'a str },
    /// A delivery answered as a duplicate (a webhook repeated, a timer delivered twice).
    Duplicate { timer: bool },
}

/// One value of a metric event.
struct Measure {
    name: &'static str,
    unit: &'static str,
    value: f64,
}

const fn count(name: &'static str, value: f64) -> Measure {
    Measure { name, unit: "Count", value }
}

impl Metric<'_> {
    /// The dimension the event is split by, and its values.
    fn parts(&self) -> ((&'static str, String), Vec<Measure>) {
        match self {
            Metric::SmsSent { template, segments } => {
                (("Template", template.to_string()), vec![count("SmsSent", 1.0), count("SmsSegments", *segments as f64)])
            }
            Metric::CommandSent { kind } => (("CommandType", kind.to_string()), vec![count("CommandsSent", 1.0)]),
            Metric::Refused { code, timer } => {
                (("ErrorCode", code.to_string()), vec![count(if *timer { "TimerRefusals" } else { "Refusals" }, 1.0)])
            }
            Metric::TimerLateness { kind, seconds } => {
                (("TimerKind", kind.to_string()), vec![Measure { name: "TimerLatenessSeconds", unit: "Seconds", value: seconds.max(0.0) }])
            }
            Metric::EffectRetry { effect } => (("Effect", effect.to_string()), vec![count("EffectRetries", 1.0)]),
            Metric::Duplicate { timer } => (("Input", if *timer { "timer" } else { "webhook" }.into()), vec![count("Duplicates", 1.0)]),
        }
    }
}

/// The EMF document of one metric event (specification: "Embedded metric format specification",
/// CloudWatch user guide): the `_aws` metadata names the namespace, the dimension sets and each
/// metric with its unit; the values and dimension values are top-level members.
pub fn emf(metric: &Metric, function: &str, at: DateTime<Utc>) -> Value {
    let ((key, dimension), measures) = metric.parts();
    let mut doc = Map::new();
    let mut definitions = Vec::new();
    for m in measures {
        definitions.push(json!({"Name": m.name, "Unit": m.unit}));
        doc.insert(m.name.into(), json!(m.value));
    }
    doc.insert(key.into(), json!(dimension));
    doc.insert("Function".into(), json!(function));
    let sets = [json!(["Function"]), json!(["Function", key])];
    doc.insert(
        "_aws".into(),
        json!({"Timestamp": at.timestamp_millis(), "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": definitions}]}),
    );
    Value::Object(doc)
}

static FUNCTION: OnceLock<String> = OnceLock::new();

/// Writes every recorded metric as an EMF line from now on, as function `function`.
pub fn enable_emf(function: &str) {
    let _ = FUNCTION.set(function.to_string());
}

/// Records one metric event (an EMF line on stdout when enabled).
pub fn record(metric: Metric) {
    if let Some(function) = FUNCTION.get() {
        println!("{}", emf(&metric, function, Utc::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap().with_timezone(&Utc)
    }

    /// The EMF rules: `_aws.Timestamp` in epoch milliseconds; `CloudWatchMetrics` a list of
    /// directives each with `Namespace`, `Dimensions` (a list of sets of at most 30 member names,
    /// each a top-level string member) and `Metrics` (Name, Unit; each a top-level number).
    fn assert_valid_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_i64(), "{doc}");
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert!(directive["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for key in set {
                    assert!(doc[key.as_str().unwrap()].is_string(), "dimension {key} is a top-level string: {doc}");
                }
            }
            for m in directive["Metrics"].as_array().unwrap() {
                assert!(doc[m["Name"].as_str().unwrap()].is_number(), "metric {m} is a top-level number: {doc}");
                assert!(["Count", "Seconds"].contains(&m["Unit"].as_str().unwrap()));
            }
        }
    }

    #[test]
    fn every_metric_is_a_valid_emf_document() {
        let all = [
            Metric::SmsSent { template: TemplateId::Sms1, segments: 3 },
            Metric::CommandSent { kind: "call_customer" },
            Metric::Refused { code: ErrorCode::InvalidField, timer: false },
            Metric::Refused { code: ErrorCode::UnknownCase, timer: true },
            Metric::TimerLateness { kind: TimerKind::CallAttempt, seconds: 42.5 },
            Metric::EffectRetry { effect: "send_sms" },
            Metric::Duplicate { timer: true },
        ];
        for m in &all {
            assert_valid_emf(&emf(m, "appointments", at()));
        }
    }

    #[test]
    fn an_sms_counts_once_and_its_segments_by_template() {
        let doc = emf(&Metric::SmsSent { template: TemplateId::Sms3, segments: 4 }, "package-expiry", at());
        assert_eq!((doc["SmsSent"].as_f64(), doc["SmsSegments"].as_f64()), (Some(1.0), Some(4.0)));
        assert_eq!((doc["Template"].as_str(), doc["Function"].as_str()), (Some("SMS3"), Some("package-expiry")));
        assert_eq!(doc["_aws"]["Timestamp"], 1_772_438_400_000_i64);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"], ["Function", "Template"]]));
    }

    #[test]
    fn lateness_is_never_negative() {
        let doc = emf(&Metric::TimerLateness { kind: TimerKind::AutoClose, seconds: -3.0 }, "cases", at());
        assert_eq!(doc["TimerLatenessSeconds"].as_f64(), Some(0.0));
    }
}
