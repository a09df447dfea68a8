//! The month's report: what ran, the cases, SMS and commands it made, the AWS calls of the
//! deployment, and the three designs' bills; as one JSON document (`--json`) or as text.

use super::bill::{self, Invocations, Usage};
use super::meter::Tally;
use super::month::{Ran, SweepFigures};
use super::options::Options;
use super::traffic::Rates;
use super::world::World;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Days in the month the fixed-rate rules are billed for.
const MONTH_DAYS: f64 = 30.0;

/// What the store holds when the clock has stopped.
pub(super) struct Ending {
    pub left_over_timers: u64,
    /// The outboxes, to cross-check what the ports counted.
    pub outbox_sms: u64,
    pub outbox_commands: u64,
}

impl Ending {
    pub(super) async fn read(world: &World) -> anyhow::Result<Ending> {
        let store = &world.engine.store.inner;
        Ok(Ending {
            left_over_timers: store.timers().await?.len() as u64,
            outbox_sms: store.sms_outbox().await?.len() as u64,
            outbox_commands: store.commands().await?.len() as u64,
        })
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// The policy the month ran under: its file (or the SPEC's figures).
    pub policy: Value,
    pub run: Value,
    pub rates: Rates,
    pub cases: Value,
    pub sms: Value,
    pub commands: BTreeMap<&'static str, u64>,
    pub aws: Value,
    pub bills: Value,
    /// What a team lead compares policies by (`whatif::figures`).
    pub what_if: Value,
    /// The busiest second of each AWS call against the Region's quotas (`capacity::figures`).
    pub capacity: Value,
}

/// The re-drive rule's period in minutes, from its `rate(N minutes)` in the template.
fn redrive_period_minutes(template: &str) -> f64 {
    template.lines().find_map(|l| l.trim().strip_prefix("Schedule: rate(")?.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(5.0)
}

/// The fixed-rate rules of template.yaml over a month, at the handler times measured at each
/// midnight: their invocations added to `package-expiry`, and the read units they cost.
fn bill_the_rules(lambda: &mut BTreeMap<&'static str, Invocations>, sweeps: &SweepFigures) -> f64 {
    let redrives = MONTH_DAYS * 24.0 * 60.0 / redrive_period_minutes(bill::TEMPLATE);
    let mean = |ms: f64, n: u64| if n == 0 { 0.0 } else { ms / n as f64 };
    let expiry = lambda.entry("package-expiry").or_default();
    expiry.add(mean(sweeps.redrive_ms, sweeps.redrive_runs), redrives as u64);
    expiry.add(mean(sweeps.daily_ms, sweeps.daily_runs), MONTH_DAYS as u64);
    redrives * mean(sweeps.redrive_read_units as f64, sweeps.redrive_runs)
        + MONTH_DAYS * mean(sweeps.daily_read_units as f64, sweeps.daily_runs)
}

impl Report {
    pub(super) fn build(opts: &Options, policy: &str, world: &World, ran: Ran, end: &Ending) -> Report {
        let tally = world.meter.tally();
        let t = &*tally;
        let p = &opts.prices;
        let c = ran.counts;
        let mut lambda = c.lambda;
        let rule_read_units = bill_the_rules(&mut lambda, &c.sweeps);
        let (messages, segments) = t.sms.values().fold((0, 0), |(m, s), (a, b)| (m + a, s + b));
        let aws = &t.aws;
        let http = c.webhooks + c.views;
        let designs = bill::designs(
            p,
            &Usage {
                http_requests: http,
                lambda: &lambda,
                sns_publishes: aws.sns_publish,
                write_units: aws.write_units + aws.gsi_write_units,
                read_units: aws.read_units as f64 + rule_read_units,
                scheduler_invocations: c.timers_fired,
                sfn_transitions: t.sfn_transitions,
                durable_operations: t.durable_ops,
            },
        );
        let sms_usd = segments as f64 * p.sms_per_segment;

        let mut what_if = super::whatif::figures(t, &world.cal);
        what_if["sms_usd"] = json!(sms_usd);
        what_if["aws_bill_usd"] = json!(designs.this.total_usd);
        Report {
            policy: json!({"name": policy}),
            what_if,
            capacity: super::capacity::figures(&t.observed, opts.scale, &opts.region, &world.cal),
            run: json!({
                "replay": opts.replay.as_ref().map(|f| f.display().to_string()),
                "appointments": opts.appointments, "packages": opts.packages, "days": opts.days, "seed": opts.seed,
                "start": opts.start.to_string(), "virtual_end": world.cal.rfc3339(ran.virtual_now), "concurrency": opts.concurrency,
                "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
                "wall_seconds": (ran.wall_seconds * 100.0).round() / 100.0,
                "store": world.meter.inner.name(),
                "decide_only_floor": ran.floor.as_ref().map(|f| json!({
                    "seconds": (f.seconds * 1000.0).round() / 1000.0, "inputs": f.inputs, "decisions": f.decisions,
                    "streams": f.streams, "streams_differing": f.streams_differing,
                    "month_over_floor": (ran.wall_seconds / f.seconds.max(1e-9) * 10.0).round() / 10.0,
                })),
                "data_dir": opts.data_dir.as_ref().map(|d| d.display().to_string()),
                "batches": c.batches, "mean_batch": (c.batched as f64 / c.batches.max(1) as f64 * 100.0).round() / 100.0,
                "planned_inputs": c.planned, "webhooks": c.webhooks, "timers_fired": c.timers_fired,
                "case_views": c.views, "reopens": c.reopens,
                "commits": t.commits, "daily_sweeps": c.sweeps.daily_runs, "sweep_ticks_fired": c.sweeps.ticks_fired,
                "refusals": c.refusals, "left_over_timers": end.left_over_timers, "left_over_inputs": ran.left_over_inputs,
                "outbox_sms": end.outbox_sms, "outbox_commands": end.outbox_commands,
            }),
            rates: opts.rates.clone(),
            cases: cases(t),
            sms: json!({"messages": messages, "segments": segments, "by_template": sms_by_template(t)}),
            commands: t.commands.clone(),
            aws: json!({
                "lambda": lambda,
                "http_api_requests": http,
                "dynamodb": aws,
                "dynamodb_rule_read_units_per_month": rule_read_units.round(),
                "scheduler": {"schedules_created": aws.scheduler_create, "schedules_deleted": aws.scheduler_delete, "invocations": c.timers_fired},
                "sns_publishes": aws.sns_publish,
                "step_functions_transitions": t.sfn_transitions,
                "durable_operations": t.durable_ops,
            }),
            bills: json!({
                "prices": p,
                "this_design": designs.this,
                "step_functions_standard": designs.step_functions,
                "lambda_durable_functions": designs.durable,
                "sms": {"segments": segments, "per_segment_usd": p.sms_per_segment, "usd": sms_usd},
            }),
        }
    }
}

/// Cases by playbook, and by status and result within each.
fn cases(t: &Tally) -> Value {
    let mut by_playbook: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for c in t.cases.values() {
        *by_playbook.entry(c.playbook).or_default() += 1;
        let key = format!("{} / {}", c.status, c.result.unwrap_or("-"));
        *by_status.entry(c.playbook).or_default().entry(key).or_default() += 1;
    }
    json!({"total": t.cases.len(), "by_playbook": by_playbook, "by_status_and_result": by_status})
}

fn sms_by_template(t: &Tally) -> BTreeMap<&str, Value> {
    t.sms.iter().map(|(k, (m, s))| (*k, json!({"messages": m, "segments": s}))).collect()
}
