//! The month's busiest second of each AWS call, scaled by `--scale`, beside the Region's default
//! quotas: which quota binds first, at what multiple of this traffic, and what the design does
//! when it does.

use super::observe::{Observed, Rate};
use super::quotas::{QUOTAS, QUOTAS_AS_OF};
use chrono::{DateTime, Utc};
use followup::domain::calendar::Calendar;
use serde_json::{json, Value};

/// What the deployment does when each quota binds.
fn remedy(measure: &str) -> &'static str {
    match measure {
        "create_schedule_per_second" => {
            "a throttled CreateSchedule fails its effect, which stays pending on its delivery record; the 5-minute re-drive rule places it again, and the timer sweep (R9.3) fires any timer overdue past its grace"
        }
        "scheduler_invocations_per_second" => {
            "Scheduler retries a throttled invocation (its retry policy, then the DLQ); the timer sweep re-fires a timer overdue past its grace (R9.3)"
        }
        "live_schedules" => "one-shot schedules delete themselves after they run; raise the quota well before it",
        "lambda_concurrent_executions" => {
            "reserved concurrency per webhook function keeps the timer functions from starving the webhooks; a throttled webhook is a 429 the sender retries, a throttled timer is retried by Scheduler"
        }
        "dynamodb_write_units_per_partition_key" => {
            "the hot key is the pending GSI's single partition value: shard it (P#0..P#n, docs/dynamodb.md); a stream item is one customer's and never nears it"
        }
        "sns_publishes_per_second" => "a throttled publish leaves its effect pending and the re-drive rule publishes it again",
        "sms_per_second" => {
            "SMS are effects: a throttled send stays pending and is re-driven, so a burst is smoothed rather than lost; raise the account's SMS rate or queue the sends (the per-number daily cap bounds each customer, not the account)"
        }
        _ => "",
    }
}

/// One figure: its measured peak and when, and the quota it is held to.
fn row(measure: &str, peak: f64, at: i64, scale: f64, region: &str, cal: &Calendar) -> Value {
    let quota = QUOTAS.iter().find(|q| q.measure == measure).expect("every measure has its quota");
    let limit = quota.in_region(region);
    let scaled = peak * scale;
    let binds_at = if peak > 0.0 { Some(limit / peak) } else { None };
    let when = DateTime::<Utc>::from_timestamp(at, 0).filter(|_| peak > 0.0).map(|t| cal.rfc3339(t));
    json!({
        "measure": measure, "quota": quota.name, "unit": quota.unit, "peak": round(peak), "at": when,
        "at_scale": round(scaled), "limit": limit, "headroom": if scaled > 0.0 { Some(round(limit / scaled)) } else { None },
        "binds_at_scale": binds_at.map(round), "checked": quota.checked, "source": quota.source, "remedy": remedy(measure),
    })
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The capacity figures of a month at `scale` times its traffic, in `region`.
pub fn figures(o: &Observed, scale: f64, region: &str, cal: &Calendar) -> Value {
    let peak = |r: Rate| {
        let (n, at) = o.peak(r);
        (n as f64, at)
    };
    let (lambda, lambda_at) = o.peak_lambda();
    let (live, live_at) = o.peak_live_schedules();
    let (pending, pending_at) = o.peak_pending_gsi();
    let (stream, stream_key, stream_at) = &o.peak_stream_units;
    let (partition, partition_at) = if pending >= *stream { (pending, pending_at) } else { (*stream, *stream_at) };
    let hottest = if pending >= *stream { "pending GSI (one partition value)".to_owned() } else { format!("stream {stream_key}") };
    let mut rows = vec![
        row("create_schedule_per_second", peak(Rate::CreateSchedule).0, peak(Rate::CreateSchedule).1, scale, region, cal),
        row("scheduler_invocations_per_second", peak(Rate::SchedulerInvocation).0, peak(Rate::SchedulerInvocation).1, scale, region, cal),
        row("live_schedules", live as f64, live_at, scale, region, cal),
        row("lambda_concurrent_executions", lambda, lambda_at, scale, region, cal),
        row("dynamodb_write_units_per_partition_key", partition as f64, partition_at, scale, region, cal),
        row("sns_publishes_per_second", peak(Rate::SnsPublish).0, peak(Rate::SnsPublish).1, scale, region, cal),
        row("sms_per_second", peak(Rate::SmsSend).0, peak(Rate::SmsSend).1, scale, region, cal),
    ];
    rows[4]["partition_key"] = json!(hottest);
    let first = rows
        .iter()
        .filter_map(|r| Some((r["binds_at_scale"].as_f64()?, r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(at, r)| json!({"measure": r["measure"], "quota": r["quota"], "binds_at_scale": at, "remedy": r["remedy"]}));
    json!({
        "scale": scale, "region": region, "quotas_as_of": QUOTAS_AS_OF,
        "lambda_note": "concurrency = handler time started in the busiest second / 1 s, as measured here (no network to DynamoDB): a floor",
        "rows": rows, "first_binding": first,
    })
}
