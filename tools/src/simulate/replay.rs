//! A real period, replayed: `followup-local export` writes every webhook a store accepted, as
//! received, one JSON line each; `simulate --replay FILE` sends them again, re-signed, in
//! `occurred_at` order on the virtual clock, under the policy (or two) being weighed.
//!
//! The call reports and re-opens of the file are left out: they answered the call tasks of the
//! policy the period ran under, and another policy calls on other days, or more often. The
//! simulated agent answers the replayed policy's own calls instead, by the `--no-answer`,
//! `--rebook` and `--report-lost` rates, keyed by case and attempt as in a generated month.

use super::month::Plan;
use super::traffic::{Scheduled, Step};
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use followup::adapters::local::{AcceptedInput, SqliteStore};
use followup::domain::calendar::Calendar;
use followup::domain::subjects::snapshot::SubjectKey;
use followup::wire::Route;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

/// The event types that answer the engine rather than the world: left out of a replay.
const AGENT_EVENTS: [&str; 2] = ["call.completed", "case.reopen"];

/// `followup-local export`: every input the store in `data_dir` accepted, in the order it
/// accepted them, as JSON lines to `out` (stdout without one). Returns how many.
pub fn export(data_dir: &Path, out: Option<&Path>) -> anyhow::Result<u64> {
    anyhow::ensure!(data_dir.join("followup.db").exists(), "{} holds no store (no followup.db)", data_dir.display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let inputs = runtime.block_on(async {
        let store = SqliteStore::open(data_dir).with_context(|| format!("opening data dir {}", data_dir.display()))?;
        anyhow::Ok(store.accepted_inputs().await?)
    })?;
    let mut sink: Box<dyn Write> = match out {
        Some(file) => {
            Box::new(std::io::BufWriter::new(std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?))
        }
        None => Box::new(std::io::stdout().lock()),
    };
    for input in &inputs {
        serde_json::to_writer(&mut sink, input)?;
        sink.write_all(b"\n")?;
    }
    sink.flush()?;
    Ok(inputs.len() as u64)
}

/// The stream an envelope lands on, as far as its data names one; inputs of a replay run one at
/// a time (`--concurrency 1`), so this only labels them.
fn stream_of(data: &Value) -> String {
    let field = |k: &str| data[k].as_str();
    if let Some(case_id) = field("case_id") {
        return SubjectKey::of_case(case_id).map(|k| k.to_string()).unwrap_or_default();
    }
    match (field("order_id"), field("package_id"), field("appointment_id")) {
        (Some(o), _, _) => format!("order:{o}"),
        (_, Some(p), _) => format!("package:{p}"),
        (_, _, Some(a)) => format!("appointment:{a}"),
        _ => String::new(),
    }
}

/// The plan of a replay: the file's inputs but the agent's, in `occurred_at` order (the file's
/// order among equal instants); and the local day of the first, where the month starts.
pub(super) fn plan(cal: &Calendar, file: &Path) -> anyhow::Result<(Plan, Option<NaiveDate>)> {
    let reader = std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut steps: Vec<Scheduled> = Vec::new();
    let mut visit_days: HashMap<u32, NaiveDate> = HashMap::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", file.display(), n + 1);
        let input: AcceptedInput = serde_json::from_str(&line).with_context(|| format!("{}: not an exported input", at()))?;
        let mut envelope: Value = serde_json::from_str(&input.body).with_context(|| format!("{}: the body is not JSON", at()))?;
        // A store the simulation filled names its inputs `sim-<stream>-<n>`, as this run names the call
        // reports it generates: such an id is renamed so the two never meet as one delivery.
        let mut body = input.body;
        if let Some(id) = envelope["id"].as_str().filter(|id| id.starts_with("sim-")) {
            envelope["id"] = Value::from(format!("replayed-{id}"));
            body = envelope.to_string();
        }
        let kind = envelope["type"].as_str().unwrap_or("").to_owned();
        if AGENT_EVENTS.contains(&kind.as_str()) {
            continue;
        }
        let route = Route::from_path(&input.route).with_context(|| format!("{}: no route {}", at(), input.route))?;
        let occurred: DateTime<Utc> = DateTime::parse_from_rfc3339(&input.occurred_at)
            .with_context(|| format!("{}: occurred_at {}", at(), input.occurred_at))?
            .with_timezone(&Utc);
        let data = &envelope["data"];
        if kind == "appointment.booked" && data["visit_number"].as_u64() == Some(1) {
            let (order, start) = (data["order_id"].as_str().unwrap_or(""), data["window_start"].as_str().unwrap_or(""));
            if let (Some(o), Ok(s)) = (order.strip_prefix('O').and_then(|o| o.parse().ok()), DateTime::parse_from_rfc3339(start)) {
                visit_days.insert(o, cal.local_date(s.with_timezone(&Utc)));
            }
        }
        steps.push(Scheduled { at: occurred, step: Step::Received { route, stream: stream_of(data), kind, body } });
    }
    steps.sort_by_key(|s| s.at);
    let first = steps.first().map(|s| cal.local_date(s.at));
    Ok((Plan::of(steps, visit_days), first))
}
