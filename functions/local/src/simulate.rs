//! `followup-local simulate`: a month of generated traffic through the real engine, counted and priced.
//!
//! Every input goes through `Engine::webhook` (signed, parsed, decided, committed, its effects
//! performed) or `Engine::fire_timer`, on the embedded SQLite store, exactly as the server runs
//! them; the ports are wrapped (`meter::Metered`) only to count, on the way, what the AWS
//! adapters would call for the same work. Timers fire from the SQLite timer table at their due
//! instants, and the R5 sweep runs at every local midnight, as `POST /local/clock` does.
//!
//! **What "a month" means.** `--appointments` and `--packages` are booked over `--days` (30) of
//! virtual time, and the clock then runs until every case has ended and every timer has fired
//! (a package's last tick is 6–7 weeks after its booking). In a steady state the work of one
//! month equals the whole life of one month's bookings, so the counts are those of a month of
//! operation; the fixed-rate work (the 5-minute re-drive rule, the daily sweep) is billed per
//! calendar month from the schedules in `template.yaml`.
//!
//! **Concurrency.** Inputs for different streams (orders, packages) share nothing, so up to
//! `--concurrency` of them, each the earliest still waiting for its stream, run at once, each
//! seeing its own instant through a task-local virtual clock (`SimClock`); inputs of one stream
//! always run in time order, timers before webhooks due at the same instant. `--concurrency 1`
//! fires everything in strict due order, as `POST /local/clock` does; the counts do not depend on
//! it (every random choice is keyed by subject, case and attempt, not by arrival).
//!
//! **Store.** Without `--data-dir` the SQLite file goes to a fresh directory under `/dev/shm`
//! when there is one (else the system temp dir) and is removed afterwards: the store still runs
//! with `synchronous=FULL`, but an fsync on tmpfs costs nothing, so the run measures the engine
//! rather than this machine's disk (the bill prices DynamoDB by units, not by local latency).

mod bill;
mod meter;
mod traffic;

use anyhow::{bail, Context};
use bill::{Bill, Invocations, Line, Prices};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use followup::adapters::local::SqliteStore;
use followup::domain::effects::TimerSpec;
use followup::domain::policy::Policy;
use followup::domain::snapshot::SubjectKey;
use followup::engine::{Engine, ProcessError};
use followup::ports::{Clock, Ports};
use followup::wire::{self, Route};
use meter::Metered;
use serde::Serialize;
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use traffic::{Rates, Scheduled, Step};

/// The webhook secret of the simulated senders (never leaves the process).
const SECRET: &str = "simulate-secret";
/// The clock stops here at the latest, whatever is still waiting (reported as left over).
const MAX_VIRTUAL_DAYS: i64 = 200;
/// The progress bar is redrawn at most this often.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Days the last package tick can fall after its booking: start ≤ 4 days, one month of
/// validity, 14 days of grace (R5.1) — for the progress estimate only.
const PACKAGE_LIFE_DAYS: i64 = 4 + 31 + 15;

type SimEngine = Engine<SimPorts>;

/// The simulated engine's ports: SQLite metered as AWS would bill it, on the per-input clock.
enum SimPorts {}

impl Ports for SimPorts {
    type Store = Metered;
    type Timers = Metered;
    type Sms = Metered;
    type Commands = Metered;
    type Clock = SimClock;
}

tokio::task_local! {
    /// The instant the input being decided on this task happens at.
    static NOW: DateTime<Utc>;
}

/// A virtual clock per input: each task reads the instant of its own input, so inputs of
/// different streams can be decided side by side, each at its own time.
#[derive(Debug, Clone)]
pub struct SimClock {
    /// Outside an input (never, in practice): the latest instant the driver reached.
    fallback: Arc<Mutex<DateTime<Utc>>>,
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        NOW.try_with(|t| *t).unwrap_or_else(|_| *self.fallback.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

const USAGE: &str = "usage: followup-local simulate [options]
  --appointments N        appointments booked in the month (100000)
  --packages N            packages booked in the month (20000)
  --days N                days the bookings spread over (30)
  --seed N                random seed (1); the same seed replays the same month
  --start YYYY-MM-DD      first day of the month, local (2026-03-01)
  --data-dir PATH         keep the SQLite store there (must not hold one yet)
  --concurrency N         streams decided at once (32)
  --json                  print one JSON document instead of the report
  rates (shares in 0..1):
  --cancel R --cancel-by-customer R --cancel-by-ops R (the rest are no-shows)
  --wants-follow-up R --unsure R --unassigned R --never-assigned R
  --reschedule R --reschedule-request R --second-visit R --painting R --discounted R
  --no-answer R1,R2,..    per attempt, the last repeats (0.4,0.5)
  --rebook R --unpaid R --paid-late R --visits-left R --visits N --call-delay-minutes N
  --visit-cancel R --visit-reschedule R (package visits) --reopen R (cases left waiting)
  --case-views N          dashboard case views per call task (1)
  --report-lost R         call reports never delivered (0.03)
  prices (USD): --sms-price P (per segment, Egypt) and --price-<name> P for
  lambda-gb-second, lambda-per-million-requests, http-api-per-million,
  dynamodb-per-million-write-units, dynamodb-per-million-read-units,
  scheduler-per-million-invocations, sns-per-million-publishes,
  sfn-per-transition, durable-per-million-operations";

struct Options {
    appointments: u32,
    packages: u32,
    days: i64,
    seed: u64,
    start: NaiveDate,
    data_dir: Option<PathBuf>,
    concurrency: usize,
    json: bool,
    rates: Rates,
    prices: Prices,
}

impl Options {
    fn parse(args: &[String], arm64: bool) -> anyhow::Result<Options> {
        let mut o = Options {
            appointments: 100_000,
            packages: 20_000,
            days: 30,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date"),
            data_dir: None,
            concurrency: 32,
            json: false,
            rates: Rates::default(),
            prices: Prices::list(arm64),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--json" {
                o.json = true;
                continue;
            }
            if flag == "--help" || flag == "-h" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let Some(value) = it.next() else { bail!("{flag} needs a value\n{USAGE}") };
            let num = || value.parse::<f64>().with_context(|| format!("{flag} {value:?} is not a number"));
            let share = || {
                let v = num()?;
                anyhow::ensure!((0.0..=1.0).contains(&v), "{flag} {v} is not a share in 0..1");
                Ok::<f64, anyhow::Error>(v)
            };
            let whole = || value.parse::<u64>().with_context(|| format!("{flag} {value:?} is not a whole number"));
            let r = &mut o.rates;
            match flag.as_str() {
                "--appointments" => o.appointments = whole()? as u32,
                "--packages" => o.packages = whole()? as u32,
                "--days" => o.days = (whole()? as i64).max(1),
                "--seed" => o.seed = whole()?,
                "--start" => o.start = value.parse().with_context(|| format!("--start {value:?} is not YYYY-MM-DD"))?,
                "--data-dir" => o.data_dir = Some(PathBuf::from(value)),
                "--concurrency" => o.concurrency = (whole()? as usize).max(1),
                "--cancel" => r.cancel = share()?,
                "--cancel-by-customer" => r.cancel_by_customer = share()?,
                "--cancel-by-ops" => r.cancel_by_ops = share()?,
                "--wants-follow-up" => r.wants_follow_up = share()?,
                "--unsure" => r.unsure = share()?,
                "--unassigned" => r.unassigned = share()?,
                "--never-assigned" => r.never_assigned = share()?,
                "--reschedule" => r.reschedule = share()?,
                "--reschedule-request" => r.reschedule_request = share()?,
                "--second-visit" => r.second_visit = share()?,
                "--painting" => r.painting = share()?,
                "--visit-cancel" => r.visit_cancel = share()?,
                "--visit-reschedule" => r.visit_reschedule = share()?,
                "--reopen" => r.reopen = share()?,
                "--report-lost" => r.report_lost = share()?,
                "--case-views" => r.case_views = (whole()? as u32).min(20),
                "--discounted" => r.discounted = share()?,
                "--rebook" => r.rebook = share()?,
                "--unpaid" => r.unpaid = share()?,
                "--paid-late" => r.paid_late = share()?,
                "--visits-left" => r.visits_left = share()?,
                "--visits" => r.visits = (whole()? as u32).clamp(1, 30),
                "--call-delay-minutes" => r.call_delay_minutes = whole()? as i64,
                "--no-answer" => {
                    r.no_answer = value
                        .split(',')
                        .map(|v| v.trim().parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v)))
                        .collect::<Option<Vec<_>>>()
                        .with_context(|| format!("--no-answer {value:?}: give shares in 0..1, comma-separated"))?;
                }
                "--sms-price" => o.prices.sms_per_segment = num()?,
                other => match other.strip_prefix("--price-") {
                    Some(name) if o.prices.set(name, num()?) => {}
                    _ => bail!("unknown option {other}\n{USAGE}"),
                },
            }
        }
        let r = &o.rates;
        for (sum, flags) in [
            (r.cancel + r.reschedule + r.reschedule_request, "--cancel + --reschedule + --reschedule-request"),
            (r.cancel_by_customer + r.cancel_by_ops, "--cancel-by-customer + --cancel-by-ops"),
            (r.second_visit + r.painting, "--second-visit + --painting"),
            (r.visit_cancel + r.visit_reschedule, "--visit-cancel + --visit-reschedule"),
        ] {
            anyhow::ensure!(sum <= 1.0 + 1e-9, "{flags} exceed 1");
        }
        Ok(o)
    }
}

/// One input waiting for its time: a planned or reactive request (a webhook, or a dashboard
/// read of a case), or a timer from the store.
enum Work {
    Request(Step),
    Timer(TimerSpec),
}

/// The planned inputs, earliest first; `seq` keeps equal instants in the order they were planned.
struct Queue {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u64)>>,
    steps: HashMap<u64, Step>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, s: Scheduled) {
        self.seq += 1;
        self.heap.push(Reverse((s.at, self.seq)));
        self.steps.insert(self.seq, s.step);
    }
    fn peek(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }
    fn pop(&mut self) -> Option<(DateTime<Utc>, Step)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        self.steps.remove(&seq).map(|s| (at, s))
    }
}

/// What one input did, for the invocation figures.
struct Done {
    function: &'static str,
    ms: f64,
    kind: Kind,
    refused: Option<String>,
}

/// What an input was, for the run's counters.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Webhook,
    Timer,
    View,
}

/// The Lambda function a timer fires into (`docs/dynamodb.md`, Timers).
fn timer_function(spec: &TimerSpec) -> &'static str {
    match spec.playbook.map(|p| p.as_str()) {
        Some("cancellation_follow_up") => "cancellation-request",
        Some("package_payment") => "package-payment",
        Some("package_expiry") => "package-expiry",
        Some(_) => "appointments",
        None => match spec.timer.stream {
            SubjectKey::Order(_) => "appointments",
            SubjectKey::Package(_) => "package-expiry",
        },
    }
}

fn route_function(route: Route) -> &'static str {
    match route {
        Route::Appointments => "appointments",
        Route::Cancellations => "cancellation-request",
        Route::Calls => "call-attempt",
        Route::Packages => "package-payment",
    }
}

async fn perform(engine: Arc<SimEngine>, at: DateTime<Utc>, work: Work, delivery: u64) -> anyhow::Result<Done> {
    let started = Instant::now();
    match work {
        Work::Request(Step::View { case_id }) => {
            // The dashboard's read, signed on AWS by the HTTP API's IAM authorizer, not by the engine.
            let reply = NOW.scope(at, engine.case_reply(&case_id)).await;
            let refused =
                (reply.status != 200).then(|| format!("case view {} {}", reply.status, reply.body["error"]["code"].as_str().unwrap_or("")));
            Ok(Done { function: "cases", ms: started.elapsed().as_secs_f64() * 1e3, kind: Kind::View, refused })
        }
        Work::Request(step) => {
            let cal = &engine.policy.calendar;
            let (route, _, kind, data) = traffic::render(cal, &step);
            let body =
                serde_json::to_vec(&json!({"id": format!("sim-{delivery}"), "type": kind, "occurred_at": cal.rfc3339(at), "data": data}))?;
            let ts = Utc::now().timestamp();
            let signature = wire::sign(SECRET, ts, &body);
            let reply = NOW.scope(at, engine.webhook(route, Some(&ts.to_string()), Some(&signature), &body, ts)).await;
            let refused =
                (reply.status != 202).then(|| format!("{kind} {} {}", reply.status, reply.body["error"]["code"].as_str().unwrap_or("")));
            if reply.status == 503 {
                bail!("{kind}: storage failure: {}", reply.body);
            }
            Ok(Done { function: route_function(route), ms: started.elapsed().as_secs_f64() * 1e3, kind: Kind::Webhook, refused })
        }
        Work::Timer(spec) => {
            let refused = match NOW.scope(at, engine.fire_timer(&spec)).await {
                Ok(_) => None,
                Err(ProcessError::Refused(w)) => Some(format!("timer {} {} {}", spec.timer.kind, w.status, w.code)),
                Err(ProcessError::Contended) => Some(format!("timer {} contended", spec.timer.kind)),
                Err(ProcessError::Store(e)) => return Err(e.into()),
            };
            let ms = started.elapsed().as_secs_f64() * 1e3;
            // On AWS the schedule deletes itself after it ran (`ActionAfterCompletion: DELETE`).
            engine.store.inner.remove_timer(&spec.timer.name()).await?;
            Ok(Done { function: timer_function(&spec), ms, kind: Kind::Timer, refused })
        }
    }
}

/// A hand-drawn progress bar on stderr.
struct Progress {
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn draw(&mut self, fraction: f64, now: &str, inputs: u64, started: Instant, force: bool) {
        if !force && self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        self.drawn = true;
        let width = 30;
        let filled = ((fraction.clamp(0.0, 1.0) * width as f64) as usize).min(width);
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{bar}] {:>3.0}%  virtual {now}  {inputs} inputs  {:.1} s ",
            fraction.clamp(0.0, 1.0) * 100.0,
            started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }
    fn finish(&self) {
        if self.drawn {
            eprintln!();
        }
    }
}

/// A fresh directory for the store: tmpfs when the machine has one.
fn temp_data_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    base.join(format!("followup-simulate-{}-{nanos}", std::process::id()))
}

/// Removes the temporary store however the run ends.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `followup-local simulate …`.
///
/// The month runs on a single-threaded runtime of its own thread: the engine's work is handed
/// between this thread, SQLite's blocking readers and its writer thread, and a second worker
/// stealing tasks only added wake-ups (measured: more system time, no more throughput).
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let args = args.to_vec();
    let month = std::thread::Builder::new().name("simulate".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(simulate(&args))
    })?;
    tokio::task::spawn_blocking(move || month.join()).await?.map_err(|_| anyhow::anyhow!("the simulation thread panicked"))?
}

async fn simulate(args: &[String]) -> anyhow::Result<()> {
    let (memory, arm64) = bill::template_sizes(bill::TEMPLATE);
    let opts = Options::parse(args, arm64)?;
    let policy = match std::env::var("FOLLOWUP_CONFIG") {
        Ok(path) if !path.is_empty() => Policy::load(&path)?,
        _ => Policy::default(),
    };
    let (dir, _cleanup) = match &opts.data_dir {
        Some(d) => {
            anyhow::ensure!(!d.join("followup.db").exists(), "{} already holds a store; give a new --data-dir", d.display());
            (d.clone(), Cleanup(None))
        }
        None => {
            let d = temp_data_dir();
            (d.clone(), Cleanup(Some(d)))
        }
    };
    let store = SqliteStore::open(&dir).with_context(|| format!("opening data dir {}", dir.display()))?;
    let meter = Metered::new(store);
    let cal = policy.calendar.clone();
    let start = cal.at(opts.start, NaiveTime::MIN);
    let clock = SimClock { fallback: Arc::new(Mutex::new(start)) };
    let engine = Arc::new(SimEngine {
        store: meter.clone(),
        timers: meter.clone(),
        sms: meter.clone(),
        commands: meter.clone(),
        clock: clock.clone(),
        policy: Arc::new(policy),
        secret: SECRET.into(),
        locks: Default::default(),
    });

    let started = Instant::now();
    let mut queue = Queue { heap: BinaryHeap::new(), steps: HashMap::new(), seq: 0 };
    // The day of each order's first visit, as booked or moved: R2.10 counts a re-open from it.
    let mut visit_days: HashMap<u32, NaiveDate> = HashMap::new();
    for i in 0..opts.appointments {
        for s in traffic::appointment(&cal, &opts.rates, opts.seed, i + 1, opts.start, opts.days) {
            if let Step::Book { window_start, visit: 1, .. } | Step::Reschedule { window_start, .. } = &s.step {
                visit_days.insert(i + 1, cal.local_date(*window_start));
            }
            queue.push(s);
        }
    }
    for i in 0..opts.packages {
        traffic::package(&cal, &opts.rates, opts.seed, i + 1, opts.start, opts.days).into_iter().for_each(|s| queue.push(s));
    }
    let planned = queue.heap.len() as u64;
    let expected_end = start + Duration::days(opts.days + PACKAGE_LIFE_DAYS);
    let stop_at = start + Duration::days(MAX_VIRTUAL_DAYS);

    let mut lambda: BTreeMap<&'static str, Invocations> =
        memory.iter().map(|(f, mb)| (*f, Invocations { memory_mb: *mb, ..Default::default() })).collect();
    let mut webhooks = 0u64;
    let mut timers_fired = 0u64;
    let mut views = 0u64;
    let mut reopened: HashSet<String> = HashSet::new();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempts: HashMap<String, usize> = HashMap::new();
    let mut delivery = 0u64;
    let mut midnight = cal.at(cal.local_date(start) + Duration::days(1), NaiveTime::MIN);
    let mut sweeps = SweepFigures::default();
    let mut progress = Progress { last: Instant::now(), drawn: false };
    let mut virtual_now = start;
    let (mut batches, mut batched) = (0u64, 0u64);

    loop {
        // The next batch: the earliest inputs in time order, one per stream, up to --concurrency,
        // none past the coming local midnight (its sweep goes first).
        let fetch = opts.concurrency;
        let due = engine.store.inner.due_timers(midnight, fetch).await?;
        let mut taken = 0usize;
        let mut batch: Vec<(DateTime<Utc>, Work)> = Vec::new();
        let mut streams: HashSet<String> = HashSet::new();
        let mut due_iter = due.into_iter().peekable();
        while batch.len() < opts.concurrency {
            let timer_at = due_iter.peek().map(|t| t.due_at);
            let step_at = queue.peek().filter(|at| *at <= midnight);
            let take_timer = match (timer_at, step_at) {
                (None, None) => break,
                (Some(t), Some(s)) => t <= s,
                (Some(_), None) => true,
                (None, Some(_)) => {
                    // More timers may wait beyond the ones fetched.
                    if taken == fetch {
                        break;
                    }
                    false
                }
            };
            let stream = if take_timer {
                let t = due_iter.peek().expect("peeked");
                t.timer.stream.to_string()
            } else {
                let seq = queue.heap.peek().map(|Reverse((_, seq))| *seq).expect("peeked");
                traffic::render_stream(&queue.steps[&seq])
            };
            if !streams.insert(stream) {
                break;
            }
            if take_timer {
                let t = due_iter.next().expect("peeked");
                taken += 1;
                batch.push((t.due_at, Work::Timer(t)));
            } else {
                let (at, step) = queue.pop().expect("peeked");
                batch.push((at, Work::Request(step)));
            }
        }

        if batch.is_empty() {
            let next_timer = engine.store.inner.next_due_at().await?;
            if queue.peek().is_none() && next_timer.is_none() {
                break;
            }
            if midnight > stop_at {
                break;
            }
            // The R5 safety sweep for the day that ended, and the re-drive rule's work, measured.
            *clock.fallback.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = midnight;
            sweeps.run(&engine, &cal, midnight).await?;
            virtual_now = midnight;
            midnight = cal.at(cal.local_date(midnight) + Duration::days(1), NaiveTime::MIN);
            continue;
        }

        batches += 1;
        batched += batch.len() as u64;
        let mut tasks = tokio::task::JoinSet::new();
        for (at, work) in batch {
            virtual_now = virtual_now.max(at);
            delivery += 1;
            tasks.spawn(perform(engine.clone(), at, work, delivery));
        }
        while let Some(done) = tasks.join_next().await {
            let done = done.context("an input task failed")??;
            match done.kind {
                Kind::Timer => timers_fired += 1,
                Kind::Webhook => webhooks += 1,
                Kind::View => views += 1,
            }
            if let Some(r) = done.refused {
                *refusals.entry(r).or_default() += 1;
            }
            if let Some(inv) = lambda.get_mut(done.function) {
                inv.add(done.ms, 1);
            }
        }

        // The simulated agent answers every call task published meanwhile.
        let mut calls = std::mem::take(&mut meter.tally().call_tasks);
        calls.sort_by(|a, b| (&a.case_id, a.at).cmp(&(&b.case_id, b.at)));
        for call in calls {
            let attempt = attempts.entry(call.case_id.clone()).or_default();
            *attempt += 1;
            let playbook = meter.tally().cases.get(&call.case_id).map_or("", |c| c.playbook);
            let due = DateTime::parse_from_rfc3339(&call.due).map_or(call.at, |d| d.with_timezone(&Utc)).max(call.at);
            for v in 0..opts.rates.case_views {
                queue.push(Scheduled { at: due + Duration::seconds(v as i64), step: Step::View { case_id: call.case_id.clone() } });
            }
            let at = due + Duration::minutes(opts.rates.call_delay_minutes);
            for s in traffic::answer(&cal, &opts.rates, opts.seed, &call.case_id, playbook, *attempt, at) {
                queue.push(s);
            }
        }
        // An agent re-opens some of the cases left waiting on the customer, once each (R2.10, R3.9).
        let gave_up = std::mem::take(&mut meter.tally().gave_up);
        for case_id in gave_up {
            if reopened.contains(&case_id) {
                continue;
            }
            let waiting = meter.tally().cases.get(&case_id).filter(|c| c.status == "waiting_on_customer").map(|c| c.playbook);
            let after_days = match waiting {
                Some("cancellation_follow_up") => engine.policy.cancellation_follow_up.reopen_after_days,
                Some("second_visit_follow_up") => engine.policy.second_visit.reopen_after_days,
                _ => continue,
            };
            let Some(day) = traffic::order_of_case(&case_id).and_then(|o| visit_days.get(&o)) else { continue };
            if let Some(s) = traffic::reopen(&cal, &opts.rates, opts.seed, &case_id, *day, after_days) {
                reopened.insert(case_id);
                queue.push(s);
            }
        }

        let fraction = (virtual_now - start).num_seconds() as f64 / (expected_end - start).num_seconds() as f64;
        progress.draw(fraction, &cal.local_date(virtual_now).to_string(), webhooks + timers_fired + views, started, false);
    }
    progress.draw(1.0, &cal.local_date(virtual_now).to_string(), webhooks + timers_fired + views, started, true);
    progress.finish();
    let wall = started.elapsed().as_secs_f64();
    let left_over_timers = engine.store.inner.timers().await?.len() as u64;
    let left_over_inputs = queue.heap.len() as u64;

    // Cross-check: the outboxes hold exactly what the ports counted.
    let outbox_sms = engine.store.inner.sms_outbox().await?.len() as u64;
    let outbox_commands = engine.store.inner.commands().await?.len() as u64;

    let report = Report::build(ReportInput {
        opts: &opts,
        tally: &meter.tally(),
        lambda,
        webhooks,
        timers_fired,
        views,
        reopens: reopened.len() as u64,
        planned,
        refusals,
        sweeps,
        wall,
        batches,
        mean_batch: batched as f64 / batches.max(1) as f64,
        left_over_timers,
        left_over_inputs,
        outbox_sms,
        outbox_commands,
        virtual_end: cal.rfc3339(virtual_now),
        data_dir: opts.data_dir.as_ref().map(|d| d.display().to_string()),
    });
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// The daily sweep and the re-drive rule, run at every local midnight and measured, so the
/// fixed-rate invocations of `template.yaml`'s rules are billed at this run's handler times.
#[derive(Debug, Default)]
struct SweepFigures {
    daily_runs: u64,
    daily_ms: f64,
    daily_read_units: u64,
    redrive_runs: u64,
    redrive_ms: f64,
    redrive_read_units: u64,
    redrive_queries: u64,
    ticks_fired: u64,
}

impl SweepFigures {
    async fn run(
        &mut self,
        engine: &Arc<SimEngine>,
        cal: &followup::domain::calendar::Calendar,
        midnight: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let day = cal.local_date(midnight) - Duration::days(1);
        let units = |e: &Arc<SimEngine>| {
            let t = e.store.tally();
            (t.aws.read_units, t.aws.dynamodb_query)
        };
        let (r0, _) = units(engine);
        let t = Instant::now();
        self.ticks_fired += NOW.scope(midnight, engine.expiry_sweep(day)).await? as u64;
        self.daily_ms += t.elapsed().as_secs_f64() * 1e3;
        let (r1, q1) = units(engine);
        self.daily_runs += 1;
        self.daily_read_units += r1 - r0;
        let t = Instant::now();
        NOW.scope(midnight, engine.drive_pending()).await?;
        NOW.scope(midnight, engine.timer_sweep()).await?;
        self.redrive_ms += t.elapsed().as_secs_f64() * 1e3;
        let (r2, q2) = units(engine);
        self.redrive_runs += 1;
        self.redrive_read_units += r2 - r1;
        self.redrive_queries += q2 - q1;
        Ok(())
    }
}

/// Days in the month the fixed-rate rules are billed for.
const MONTH_DAYS: f64 = 30.0;

/// The re-drive rule's period in minutes, from its `rate(N minutes)` in the template.
fn redrive_period_minutes(template: &str) -> f64 {
    template.lines().find_map(|l| l.trim().strip_prefix("Schedule: rate(")?.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(5.0)
}

struct ReportInput<'a> {
    opts: &'a Options,
    tally: &'a meter::Tally,
    lambda: BTreeMap<&'static str, Invocations>,
    webhooks: u64,
    timers_fired: u64,
    /// Dashboard case views served, and re-opens the agents sent.
    views: u64,
    reopens: u64,
    planned: u64,
    refusals: BTreeMap<String, u64>,
    sweeps: SweepFigures,
    wall: f64,
    /// Rounds of inputs decided side by side, and their mean size.
    batches: u64,
    mean_batch: f64,
    left_over_timers: u64,
    left_over_inputs: u64,
    outbox_sms: u64,
    outbox_commands: u64,
    virtual_end: String,
    data_dir: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    run: Value,
    rates: Rates,
    cases: Value,
    sms: Value,
    commands: BTreeMap<&'static str, u64>,
    aws: Value,
    bills: Value,
}

impl Report {
    fn build(i: ReportInput) -> Report {
        let t = i.tally;
        let p = &i.opts.prices;
        let mut lambda = i.lambda;
        // The rules of template.yaml, per month, at the handler times measured at each midnight.
        let redrives = MONTH_DAYS * 24.0 * 60.0 / redrive_period_minutes(bill::TEMPLATE);
        let mean = |ms: f64, n: u64| if n == 0 { 0.0 } else { ms / n as f64 };
        let expiry = lambda.entry("package-expiry").or_default();
        expiry.add(mean(i.sweeps.redrive_ms, i.sweeps.redrive_runs), redrives as u64);
        expiry.add(mean(i.sweeps.daily_ms, i.sweeps.daily_runs), MONTH_DAYS as u64);
        let rule_read_units = redrives * mean(i.sweeps.redrive_read_units as f64, i.sweeps.redrive_runs)
            + MONTH_DAYS * mean(i.sweeps.daily_read_units as f64, i.sweeps.daily_runs);

        let mut by_playbook: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_status: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for c in t.cases.values() {
            *by_playbook.entry(c.playbook).or_default() += 1;
            let key = format!("{} / {}", c.status, c.result.unwrap_or("-"));
            *by_status.entry(c.playbook).or_default().entry(key).or_default() += 1;
        }
        let (messages, segments) = t.sms.values().fold((0, 0), |(m, s), (a, b)| (m + a, s + b));
        let sms_by_template: BTreeMap<&str, Value> = t.sms.iter().map(|(k, (m, s))| (*k, json!({"messages": m, "segments": s}))).collect();

        let aws = &t.aws;
        let read_units = aws.read_units as f64 + rule_read_units;
        let http = i.webhooks + i.views;
        let shared = bill::shared_lines(p, http, &lambda, aws.sns_publish);
        let mut this = shared.clone();
        this.push(Line {
            item: "DynamoDB write request units",
            quantity: (aws.write_units + aws.gsi_write_units) as f64,
            unit: "WRU",
            usd: (aws.write_units + aws.gsi_write_units) as f64 / 1e6 * p.dynamodb_per_million_write_units,
        });
        this.push(Line {
            item: "DynamoDB read request units",
            quantity: read_units,
            unit: "RRU",
            usd: read_units / 1e6 * p.dynamodb_per_million_read_units,
        });
        this.push(Line {
            item: "EventBridge Scheduler invocations",
            quantity: i.timers_fired as f64,
            unit: "invocations",
            usd: i.timers_fired as f64 / 1e6 * p.scheduler_per_million_invocations,
        });
        let mut sfn = shared.clone();
        sfn.push(Line {
            item: "Step Functions Standard transitions",
            quantity: t.sfn_transitions as f64,
            unit: "transitions",
            usd: t.sfn_transitions as f64 * p.sfn_per_transition,
        });
        let mut durable = shared;
        durable.push(Line {
            item: "Lambda durable functions operations",
            quantity: t.durable_ops as f64,
            unit: "operations",
            usd: t.durable_ops as f64 / 1e6 * p.durable_per_million_operations,
        });
        let sms_usd = segments as f64 * p.sms_per_segment;

        Report {
            run: json!({
                "appointments": i.opts.appointments, "packages": i.opts.packages, "days": i.opts.days, "seed": i.opts.seed,
                "start": i.opts.start.to_string(), "virtual_end": i.virtual_end, "concurrency": i.opts.concurrency,
                "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
                "wall_seconds": (i.wall * 100.0).round() / 100.0, "data_dir": i.data_dir,
                "batches": i.batches, "mean_batch": (i.mean_batch * 100.0).round() / 100.0,
                "planned_inputs": i.planned, "webhooks": i.webhooks, "timers_fired": i.timers_fired,
                "case_views": i.views, "reopens": i.reopens,
                "commits": t.commits, "daily_sweeps": i.sweeps.daily_runs, "sweep_ticks_fired": i.sweeps.ticks_fired,
                "refusals": i.refusals, "left_over_timers": i.left_over_timers, "left_over_inputs": i.left_over_inputs,
                "outbox_sms": i.outbox_sms, "outbox_commands": i.outbox_commands,
            }),
            rates: i.opts.rates.clone(),
            cases: json!({"total": t.cases.len(), "by_playbook": by_playbook, "by_status_and_result": by_status}),
            sms: json!({"messages": messages, "segments": segments, "by_template": sms_by_template}),
            commands: t.commands.clone(),
            aws: json!({
                "lambda": lambda,
                "http_api_requests": http,
                "dynamodb": aws,
                "dynamodb_rule_read_units_per_month": rule_read_units.round(),
                "scheduler": {"schedules_created": aws.scheduler_create, "schedules_deleted": aws.scheduler_delete, "invocations": i.timers_fired},
                "sns_publishes": aws.sns_publish,
                "step_functions_transitions": t.sfn_transitions,
                "durable_operations": t.durable_ops,
            }),
            bills: json!({
                "prices": p,
                "this_design": Bill::of(this),
                "step_functions_standard": Bill::of(sfn),
                "lambda_durable_functions": Bill::of(durable),
                "sms": {"segments": segments, "per_segment_usd": p.sms_per_segment, "usd": sms_usd},
            }),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let r = &self.run;
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let _ = std::fmt::Write::write_fmt(
            w,
            format_args!(
                "month simulation: {} appointments, {} packages over {} days from {}, seed {}\n\
                 {} inputs ({} webhooks with {} re-opens, {} timers, {} case views) in {:.2} s wall ({} build, concurrency {}); \
                 virtual end {}\n",
                n(&r["appointments"]),
                n(&r["packages"]),
                n(&r["days"]),
                r["start"].as_str().unwrap_or(""),
                n(&r["seed"]),
                n(&r["webhooks"]) + n(&r["timers_fired"]) + n(&r["case_views"]),
                n(&r["webhooks"]),
                n(&r["reopens"]),
                n(&r["timers_fired"]),
                n(&r["case_views"]),
                r["wall_seconds"].as_f64().unwrap_or(0.0),
                r["build_profile"].as_str().unwrap_or(""),
                n(&r["concurrency"]),
                r["virtual_end"].as_str().unwrap_or(""),
            ),
        );
        let refusals = r["refusals"].as_object().cloned().unwrap_or_default();
        if !refusals.is_empty() {
            out.push_str("refused inputs:\n");
            for (k, v) in &refusals {
                out.push_str(&format!("  {k:<58} {v:>9}\n"));
            }
        }
        if n(&r["left_over_timers"]) + n(&r["left_over_inputs"]) > 0 {
            out.push_str(&format!(
                "left over at the clock's limit: {} timers, {} inputs\n",
                n(&r["left_over_timers"]),
                n(&r["left_over_inputs"])
            ));
        }

        out.push_str(&format!("\ncases: {}\n", n(&self.cases["total"])));
        for (pb, count) in self.cases["by_playbook"].as_object().into_iter().flatten() {
            out.push_str(&format!("  {pb:<28} {:>9}\n", n(count)));
            for (k, v) in self.cases["by_status_and_result"][pb].as_object().into_iter().flatten() {
                out.push_str(&format!("      {k:<40} {:>9}\n", n(v)));
            }
        }

        out.push_str(&format!("\nSMS: {} messages, {} segments\n", n(&self.sms["messages"]), n(&self.sms["segments"])));
        for (t, v) in self.sms["by_template"].as_object().into_iter().flatten() {
            out.push_str(&format!("  {t:<28} {:>9} messages {:>9} segments\n", n(&v["messages"]), n(&v["segments"])));
        }
        out.push_str(&format!("\ncommands: {}\n", self.commands.values().sum::<u64>()));
        for (k, v) in &self.commands {
            out.push_str(&format!("  {k:<28} {v:>9}\n"));
        }

        let a = &self.aws;
        out.push_str("\nAWS calls of the deployment (one month)\n");
        out.push_str(&format!("  {:<22} {:>11} {:>6} {:>10} {:>12}\n", "Lambda function", "invocations", "MB", "mean ms", "GB-seconds"));
        for (f, v) in a["lambda"].as_object().into_iter().flatten() {
            let count = n(&v["count"]);
            let mean = if count == 0 { 0.0 } else { v["measured_ms"].as_f64().unwrap_or(0.0) / count as f64 };
            out.push_str(&format!(
                "  {f:<22} {count:>11} {:>6} {mean:>10.3} {:>12.1}\n",
                n(&v["memory_mb"]),
                v["gb_seconds"].as_f64().unwrap_or(0.0)
            ));
        }
        let d = &a["dynamodb"];
        out.push_str(&format!(
            "  DynamoDB: {} GetItem, {} Query, {} TransactWriteItems ({} items), {} PutItem, {} UpdateItem\n\
             \x20           {} write units on the table + {} on GSIs, {} read units (+ {} by the rules)\n",
            n(&d["dynamodb_get_item"]),
            n(&d["dynamodb_query"]),
            n(&d["dynamodb_transact_write"]),
            n(&d["dynamodb_transact_items"]),
            n(&d["dynamodb_put_item"]),
            n(&d["dynamodb_update_item"]),
            n(&d["write_units"]),
            n(&d["gsi_write_units"]),
            n(&d["read_units"]),
            a["dynamodb_rule_read_units_per_month"].as_f64().unwrap_or(0.0),
        ));
        out.push_str(&format!(
            "  stream doc: largest {} bytes ({} packed); mean written {} bytes ({} packed)\n",
            n(&d["largest_stream_doc"]),
            n(&d["largest_stream_docz"]),
            n(&d["stream_doc_bytes_written"]) / n(&d["dynamodb_transact_write"]).max(1),
            n(&d["stream_docz_bytes_written"]) / n(&d["dynamodb_transact_write"]).max(1)
        ));
        let s = &a["scheduler"];
        out.push_str(&format!(
            "  Scheduler: {} schedules created, {} deleted, {} invoked\n  SNS: {} publishes to the ops topic (+ {} SMS)\n  HTTP API: {} requests\n",
            n(&s["schedules_created"]),
            n(&s["schedules_deleted"]),
            n(&s["invocations"]),
            n(&a["sns_publishes"]),
            n(&self.sms["messages"]),
            n(&a["http_api_requests"]),
        ));

        let b = &self.bills;
        out.push_str(&format!("\nmonthly bill, list prices of {} (USD, no free tier)\n", b["prices"]["as_of"].as_str().unwrap_or("")));
        let designs = [
            ("this design", &b["this_design"]),
            ("Step Functions Std", &b["step_functions_standard"]),
            ("durable functions", &b["lambda_durable_functions"]),
        ];
        out.push_str(&format!("  {:<40} {:>18} {:>18} {:>18}\n", "", designs[0].0, designs[1].0, designs[2].0));
        let mut items: Vec<String> = Vec::new();
        for (_, bill) in designs {
            for l in bill["lines"].as_array().into_iter().flatten() {
                let item = l["item"].as_str().unwrap_or("").to_owned();
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        for item in &items {
            let cell = |bill: &Value| {
                bill["lines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|l| l["item"].as_str() == Some(item))
                    .map_or("-".to_owned(), |l| bill::usd(l["usd"].as_f64().unwrap_or(0.0)))
            };
            out.push_str(&format!("  {item:<40} {:>18} {:>18} {:>18}\n", cell(designs[0].1), cell(designs[1].1), cell(designs[2].1)));
        }
        let total = |bill: &Value| bill::usd(bill["total_usd"].as_f64().unwrap_or(0.0));
        out.push_str(&format!(
            "  {:<40} {:>18} {:>18} {:>18}\n",
            "total without SMS",
            total(designs[0].1),
            total(designs[1].1),
            total(designs[2].1)
        ));
        out.push_str(&format!(
            "  Step Functions: {} transitions; durable functions: {} operations\n",
            n(&a["step_functions_transitions"]),
            n(&a["durable_operations"])
        ));
        out.push_str(&format!(
            "\nSMS to Egypt (any design): {} segments × ${} = {}\n",
            n(&b["sms"]["segments"]),
            b["sms"]["per_segment_usd"].as_f64().unwrap_or(0.0),
            bill::usd(b["sms"]["usd"].as_f64().unwrap_or(0.0))
        ));
        out
    }
}
