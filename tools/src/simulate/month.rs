//! The month's clock: the planned inputs and the store's timers decided in batches, in time
//! order; the simulated agent answering every call task and re-opening some of the cases left
//! waiting; and the sweeps of every local midnight.

use super::bill::{self, Invocations};
use super::clock::NOW;
use super::floor::{Decided, Floor};
use super::inputs::{self, Kind, Queue, Work};
use super::options::Options;
use super::traffic::{self, Scheduled, Step};
use super::world::{SimEngine, World};
use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use followup::domain::calendar::Calendar;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// The clock stops here at the latest, whatever is still waiting (reported as left over).
const MAX_VIRTUAL_DAYS: i64 = 200;
/// The progress bar is redrawn at most this often.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Days the last package tick can fall after its booking: start ≤ 4 days, one month of
/// validity, 14 days of grace (R5.1) — for the progress estimate only.
const PACKAGE_LIFE_DAYS: i64 = 4 + 31 + 15;

/// The month's traffic as planned from the flags, before any of it is sent.
#[derive(Clone)]
pub(super) struct Plan {
    queue: Queue,
    /// The day of each order's first visit, as booked or moved: R2.10 counts a re-open from it.
    visit_days: HashMap<u32, NaiveDate>,
}

impl Plan {
    /// Every booking's inputs: appointments first, then packages, each in its own order.
    pub(super) fn generate(cal: &Calendar, opts: &Options) -> Plan {
        let mut queue = Queue::default();
        let mut visit_days = HashMap::new();
        for i in 0..opts.appointments {
            for s in traffic::appointment(cal, &opts.rates, opts.seed, i + 1, opts.start, opts.days) {
                if let Step::Book { window_start, visit: 1, .. } | Step::Reschedule { window_start, .. } = &s.step {
                    visit_days.insert(i + 1, cal.local_date(*window_start));
                }
                queue.push(s);
            }
        }
        for i in 0..opts.packages {
            traffic::package(cal, &opts.rates, opts.seed, i + 1, opts.start, opts.days).into_iter().for_each(|s| queue.push(s));
        }
        Plan { queue, visit_days }
    }
}

impl Plan {
    /// A plan of inputs given in advance (a replay): `visit_days` as [`Plan::generate`] keeps them.
    pub(super) fn of(steps: impl IntoIterator<Item = Scheduled>, visit_days: HashMap<u32, NaiveDate>) -> Plan {
        let mut queue = Queue::default();
        steps.into_iter().for_each(|s| queue.push(s));
        Plan { queue, visit_days }
    }
}

/// What the month counted as it ran.
pub(super) struct Counts {
    /// Invocations per Lambda function, at the memory size the template gives it.
    pub lambda: BTreeMap<&'static str, Invocations>,
    pub planned: u64,
    pub webhooks: u64,
    pub timers_fired: u64,
    /// Dashboard case views served, and re-opens the agents sent.
    pub views: u64,
    pub reopens: u64,
    pub refusals: BTreeMap<String, u64>,
    pub sweeps: SweepFigures,
    /// Rounds of inputs decided side by side, and the inputs in them.
    pub batches: u64,
    pub batched: u64,
}

/// How the month ended.
pub(super) struct Ran {
    pub counts: Counts,
    /// The virtual instant of the last input or sweep.
    pub virtual_now: DateTime<Utc>,
    pub wall_seconds: f64,
    /// Planned inputs still waiting when the clock stopped.
    pub left_over_inputs: u64,
    /// Every input the engine decided on, in the order it did, for the decide-only floor.
    pub decided: Vec<Decided>,
    /// The floor, once measured.
    pub floor: Option<Floor>,
}

/// The month in progress.
pub(super) struct Month<'a> {
    world: &'a World,
    opts: &'a Options,
    queue: Queue,
    visit_days: HashMap<u32, NaiveDate>,
    counts: Counts,
    /// Call tasks answered so far per case, and the cases re-opened (once each).
    attempts: HashMap<String, usize>,
    reopened: HashSet<String>,
    /// Webhooks sent so far per stream, which name the next one's delivery id.
    deliveries: HashMap<String, u32>,
    midnight: DateTime<Utc>,
    virtual_now: DateTime<Utc>,
    started: Instant,
    progress: Progress,
    decided: Vec<Decided>,
}

impl<'a> Month<'a> {
    /// `started` is when the run began, planning included: the wall time counts from it.
    pub(super) fn new(world: &'a World, opts: &'a Options, plan: Plan, started: Instant) -> Month<'a> {
        let (memory, _) = bill::template_sizes(bill::TEMPLATE);
        let lambda = memory.iter().map(|(f, mb)| (*f, Invocations { memory_mb: *mb, ..Default::default() })).collect();
        let counts = Counts {
            lambda,
            planned: plan.queue.len() as u64,
            webhooks: 0,
            timers_fired: 0,
            views: 0,
            reopens: 0,
            refusals: BTreeMap::new(),
            sweeps: SweepFigures::default(),
            batches: 0,
            batched: 0,
        };
        let cal = &world.cal;
        Month {
            world,
            opts,
            queue: plan.queue,
            visit_days: plan.visit_days,
            counts,
            attempts: HashMap::new(),
            reopened: HashSet::new(),
            deliveries: HashMap::new(),
            midnight: cal.at(cal.local_date(world.start) + Duration::days(1), NaiveTime::MIN),
            virtual_now: world.start,
            started,
            progress: Progress { shown: opts.progress, last: Instant::now(), drawn: false },
            decided: Vec::new(),
        }
    }

    /// Runs the clock until nothing waits any more (or its limit), batch after batch, with
    /// the midnight sweeps in between.
    pub(super) async fn run(mut self) -> anyhow::Result<Ran> {
        loop {
            let batch = self.next_batch().await?;
            if batch.is_empty() {
                if self.over().await? {
                    break;
                }
                self.turn_midnight().await?;
                continue;
            }
            self.perform(batch).await?;
            self.answer_calls();
            self.reopen_waiting();
            let expected_end = self.world.start + Duration::days(self.opts.days + PACKAGE_LIFE_DAYS);
            let fraction =
                (self.virtual_now - self.world.start).num_seconds() as f64 / (expected_end - self.world.start).num_seconds() as f64;
            self.draw_progress(fraction, false);
        }
        self.world.meter.settle()?;
        self.draw_progress(1.0, true);
        self.progress.finish();
        self.counts.reopens = self.reopened.len() as u64;
        Ok(Ran {
            wall_seconds: self.started.elapsed().as_secs_f64(),
            left_over_inputs: self.queue.len() as u64,
            virtual_now: self.virtual_now,
            counts: self.counts,
            decided: self.decided,
            floor: None,
        })
    }

    /// The next batch: the earliest inputs in time order, one per stream, up to --concurrency,
    /// none past the coming local midnight (its sweep goes first).
    async fn next_batch(&mut self) -> anyhow::Result<Vec<(DateTime<Utc>, Work)>> {
        let fetch = self.opts.concurrency;
        let due = self.world.engine.store.inner.due_timers(self.midnight, fetch).await?;
        let mut taken = 0usize;
        let mut batch: Vec<(DateTime<Utc>, Work)> = Vec::new();
        let mut streams: HashSet<String> = HashSet::new();
        let mut due_iter = due.into_iter().peekable();
        while batch.len() < self.opts.concurrency {
            let timer_at = due_iter.peek().map(|t| t.due_at);
            let step_at = self.queue.peek().filter(|at| *at <= self.midnight);
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
                self.queue.peek_stream().expect("peeked")
            };
            if !streams.insert(stream) {
                break;
            }
            if take_timer {
                let t = due_iter.next().expect("peeked");
                taken += 1;
                batch.push((t.due_at, Work::Timer(t)));
            } else {
                let (at, step) = self.queue.pop().expect("peeked");
                batch.push((at, Work::Request(step)));
            }
        }
        Ok(batch)
    }

    /// Whether the month is over: nothing planned and no timer left, or the clock's limit reached.
    async fn over(&self) -> anyhow::Result<bool> {
        let next_timer = self.world.engine.store.inner.next_due_at().await?;
        let stop_at = self.world.start + Duration::days(MAX_VIRTUAL_DAYS);
        Ok((self.queue.peek().is_none() && next_timer.is_none()) || self.midnight > stop_at)
    }

    /// The R5 safety sweep for the day that ended, and the re-drive rule's work, measured.
    async fn turn_midnight(&mut self) -> anyhow::Result<()> {
        self.world.clock.set_fallback(self.midnight);
        self.counts.sweeps.run(&self.world.engine, &self.world.cal, self.midnight).await?;
        self.virtual_now = self.midnight;
        self.midnight = self.world.cal.at(self.world.cal.local_date(self.midnight) + Duration::days(1), NaiveTime::MIN);
        Ok(())
    }

    /// The envelope id of a generated webhook: `sim-<stream>-<n>`, its stream's n-th. Numbered per
    /// stream, not across the month, so that under `--compare` a stream the two policies treat
    /// alike receives the same ids, and commits the same effects (an effect id names its
    /// delivery), under both.
    /// Empty for what is not a generated webhook: a timer, a case view, a replayed input.
    fn delivery_id(&mut self, work: &Work) -> String {
        let Work::Request(step) = work else { return String::new() };
        if matches!(step, Step::View { .. } | Step::Received { .. }) {
            return String::new();
        }
        let stream = traffic::render_stream(step);
        let n = match self.deliveries.get_mut(&stream) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.deliveries.insert(stream.clone(), 1);
                1
            }
        };
        format!("sim-{stream}-{n}")
    }

    /// Decides the batch side by side, each input at its own instant, and counts what each did.
    async fn perform(&mut self, batch: Vec<(DateTime<Utc>, Work)>) -> anyhow::Result<()> {
        self.counts.batches += 1;
        self.counts.batched += batch.len() as u64;
        let mut tasks = tokio::task::JoinSet::new();
        for (at, work) in batch {
            self.virtual_now = self.virtual_now.max(at);
            let delivery = self.delivery_id(&work);
            tasks.spawn(inputs::perform(self.world.engine.clone(), at, work, delivery));
        }
        let counts = &mut self.counts;
        while let Some(done) = tasks.join_next().await {
            let done = done.context("an input task failed")??;
            match done.kind {
                Kind::Timer => counts.timers_fired += 1,
                Kind::Webhook => counts.webhooks += 1,
                Kind::View => counts.views += 1,
            }
            if let Some(r) = done.refused {
                *counts.refusals.entry(r).or_default() += 1;
            }
            if let Some(inv) = counts.lambda.get_mut(done.function) {
                inv.add(done.ms, 1);
            }
            if self.opts.measures_floor() {
                self.decided.extend(done.decided);
            }
        }
        Ok(())
    }

    /// The simulated agent answers every call task published meanwhile, after opening the case.
    fn answer_calls(&mut self) {
        let (meter, opts, cal) = (&self.world.meter, self.opts, &self.world.cal);
        let mut calls = std::mem::take(&mut meter.tally().call_tasks);
        calls.sort_by(|a, b| (&a.case_id, a.at).cmp(&(&b.case_id, b.at)));
        for call in calls {
            let attempt = self.attempts.entry(call.case_id.clone()).or_default();
            *attempt += 1;
            let playbook = meter.tally().cases.get(&call.case_id).map_or("", |c| c.playbook);
            let due = DateTime::parse_from_rfc3339(&call.due).map_or(call.at, |d| d.with_timezone(&Utc)).max(call.at);
            for v in 0..opts.rates.case_views {
                self.queue.push(Scheduled { at: due + Duration::seconds(v as i64), step: Step::View { case_id: call.case_id.clone() } });
            }
            let at = due + Duration::minutes(opts.rates.call_delay_minutes);
            for s in traffic::answer(cal, &opts.rates, opts.seed, &call.case_id, playbook, *attempt, at) {
                self.queue.push(s);
            }
        }
    }

    /// An agent re-opens some of the cases left waiting on the customer, once each (R2.10, R3.9).
    fn reopen_waiting(&mut self) {
        let (meter, opts, policy) = (&self.world.meter, self.opts, &self.world.engine.policy);
        let gave_up = std::mem::take(&mut meter.tally().gave_up);
        for case_id in gave_up {
            if self.reopened.contains(&case_id) {
                continue;
            }
            let waiting = meter.tally().cases.get(&case_id).filter(|c| c.status == "waiting_on_customer").map(|c| c.playbook);
            let after_days = match waiting {
                Some("cancellation_follow_up") => policy.cancellation_follow_up.reopen_after_days,
                Some("second_visit_follow_up") => policy.second_visit.reopen_after_days,
                _ => continue,
            };
            let Some(day) = traffic::order_of_case(&case_id).and_then(|o| self.visit_days.get(&o)) else { continue };
            if let Some(s) = traffic::reopen(&self.world.cal, &opts.rates, opts.seed, &case_id, *day, after_days) {
                self.reopened.insert(case_id);
                self.queue.push(s);
            }
        }
    }

    fn draw_progress(&mut self, fraction: f64, force: bool) {
        let c = &self.counts;
        let today = self.world.cal.local_date(self.virtual_now).to_string();
        self.progress.draw(fraction, &today, c.webhooks + c.timers_fired + c.views, self.started, force);
    }
}

/// The daily sweep and the re-drive rule, run at every local midnight and measured, so the
/// fixed-rate invocations of `template.yaml`'s rules are billed at this run's handler times.
#[derive(Debug, Default)]
pub(super) struct SweepFigures {
    pub daily_runs: u64,
    pub daily_ms: f64,
    pub daily_read_units: u64,
    pub redrive_runs: u64,
    pub redrive_ms: f64,
    pub redrive_read_units: u64,
    pub redrive_queries: u64,
    pub ticks_fired: u64,
}

impl SweepFigures {
    async fn run(&mut self, engine: &Arc<SimEngine>, cal: &Calendar, midnight: DateTime<Utc>) -> anyhow::Result<()> {
        let day = cal.local_date(midnight) - Duration::days(1);
        let units = |e: &Arc<SimEngine>| -> anyhow::Result<(u64, u64)> {
            e.store.settle()?;
            let t = e.store.tally();
            Ok((t.aws.read_units, t.aws.dynamodb_query))
        };
        let (r0, _) = units(engine)?;
        let t = Instant::now();
        self.ticks_fired += NOW.scope(midnight, engine.expiry_sweep(day)).await? as u64;
        self.daily_ms += t.elapsed().as_secs_f64() * 1e3;
        let (r1, q1) = units(engine)?;
        self.daily_runs += 1;
        self.daily_read_units += r1 - r0;
        let t = Instant::now();
        NOW.scope(midnight, engine.drive_pending()).await?;
        NOW.scope(midnight, engine.timer_sweep()).await?;
        self.redrive_ms += t.elapsed().as_secs_f64() * 1e3;
        let (r2, q2) = units(engine)?;
        self.redrive_runs += 1;
        self.redrive_read_units += r2 - r1;
        self.redrive_queries += q2 - q1;
        Ok(())
    }
}

/// A hand-drawn progress bar on stderr.
struct Progress {
    /// Drawn at all: not when the month runs inside a server (the console's what-if).
    shown: bool,
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn draw(&mut self, fraction: f64, now: &str, inputs: u64, started: Instant, force: bool) {
        if !self.shown || (!force && self.last.elapsed() < PROGRESS_EVERY) {
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
