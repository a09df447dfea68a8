//! `followup-local simulate`: a month of generated traffic through the real engine, counted and priced.
//!
//! Every input goes through `Engine::webhook` (signed, parsed, decided, committed, its effects
//! performed) or `Engine::fire_timer`, on an embedded store, exactly as the server runs them; the
//! ports are wrapped (`meter::Metered`) only to count, on the way, what the AWS adapters would
//! call for the same work. Timers fire from the store's timer table at their due instants, and
//! the R5 sweep runs at every local midnight, as `POST /local/clock` does.
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
//! **Store.** The month runs on the in-memory store (`followup::adapters::memory`), which the
//! store contract suite holds to the same rules as SQLite and DynamoDB: the bill prices DynamoDB
//! by the units of the items written (`meter` sizes them from the documents, whichever store holds
//! them), not by local latency, so the run measures the engine rather than a store's disk. With
//! `--data-dir` it runs on SQLite there (`synchronous=FULL`; on `/dev/shm` an fsync costs
//! nothing); the counts are the same (`tests/scenarios/simulate.rs`). `make simulate` (516,086
//! inputs) takes about 11 s in memory (followup-local runs on mimalloc) against 60 s on SQLite on
//! tmpfs (70 s before the in-memory store and the meter's sizing thread), with a decide-only
//! floor of about 2.7 s: 4-5x it in memory, 20x on SQLite; `docs/performance.md` has the runs,
//! the RSS and where the time went.
//!
//! **Floor.** `floor` replays the inputs the month decided on through `parse_event` and `decide`
//! alone, against the same states (checked against the store's at the end), and times only that:
//! what the month would take if everything around the decision were free.

mod bill;
mod capacity;
mod clock;
mod compare;
mod floor;
mod html;
mod inputs;
mod meter;
mod month;
mod observe;
mod options;
mod quotas;
mod replay;
mod report;
mod store;
mod text;
mod traffic;
mod whatif;
mod world;

pub use options::SimulateArgs;
pub use replay::export;

use anyhow::{anyhow, Context};
use followup::domain::policy::Policy;
use month::{Month, Plan};
use options::Options;
use report::{Ending, Report};
use std::sync::Arc;
use std::time::Instant;
use world::World;

/// `followup-local simulate …`.
///
/// Each policy's month runs on a single-threaded runtime of its own thread, over a store of its
/// own: the engine's work is handed between that thread, SQLite's blocking readers and its writer
/// thread, and a second worker stealing tasks only added wake-ups (measured: more system time, no
/// more throughput). Under `--compare` the traffic is planned once, the two months run side by
/// side, and a commit one makes exactly as the other did is sized once for both
/// (`meter::Sizing`).
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let Months { opts, reports, wall, shared_commits } = months(args.options()?)?;
    if let Some(file) = &opts.html {
        std::fs::write(file, html::page(&reports)).with_context(|| format!("writing {}", file.display()))?;
    }
    match (reports.as_slice(), opts.json) {
        ([one], true) => println!("{}", serde_json::to_string_pretty(one)?),
        ([one], false) => print!("{}", one.text()),
        ([a, b], true) => {
            let mut doc = compare::json(a, b);
            doc["wall_seconds"] = serde_json::json!((wall * 100.0).round() / 100.0);
            doc["commits_sized_once_for_both"] = serde_json::json!(shared_commits);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        ([a, b], false) => {
            print!("{}\nboth months in {wall:.2} s wall; {shared_commits} commits the same under both, sized once\n", compare::text(a, b))
        }
        _ => unreachable!("options() gives one policy or two"),
    }
    Ok(())
}

/// The what-if of two policies over a generated month of `appointments` and `packages` (every
/// other figure at its default): the figures, charts and capacity of the page `--compare …
/// --html` writes, as the body of a page, and the style they need. The console's what-if runs
/// it; it blocks for the two months, so call it off the async threads.
pub fn what_if_sections(
    appointments: u32,
    packages: u32,
    a: (String, Policy),
    b: (String, Policy),
) -> anyhow::Result<(String, &'static str)> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        args: SimulateArgs,
    }
    let sizes = ["simulate".to_owned(), "--appointments".into(), appointments.to_string(), "--packages".into(), packages.to_string()];
    let mut opts = <Defaults as clap::Parser>::try_parse_from(sizes)?.args.options()?;
    opts.policies = vec![a, b];
    opts.progress = false;
    let reports = months(opts)?.reports;
    Ok((html::sections(&reports), html::STYLE))
}

/// What [`months`] ran.
struct Months {
    opts: Arc<Options>,
    /// In the policies' order.
    reports: Vec<Report>,
    /// Seconds of all of it, planning included.
    wall: f64,
    /// Commits one month made exactly as the other had, whose sizes it took (see `meter::Sizing`).
    shared_commits: u64,
}

/// Plans the traffic once (or reads the replay) and runs it under each policy, each month on its
/// own thread, their docs sized on the run's sizing threads.
fn months(mut opts: Options) -> anyhow::Result<Months> {
    let started = Instant::now();
    let cal = opts.policies[0].1.calendar.clone();
    let plan = match &opts.replay {
        Some(file) => {
            let (plan, first_day) = replay::plan(&cal, file)?;
            opts.start = first_day.unwrap_or(opts.start);
            plan
        }
        None => Plan::generate(&cal, &opts),
    };
    let opts = Arc::new(opts);
    let sizing = meter::Sizing::start(opts.policies.len());
    let months = opts
        .policies
        .iter()
        .cloned()
        .map(|(name, policy)| {
            let (opts, plan, sizing) = (Arc::clone(&opts), plan.clone(), sizing.clone());
            std::thread::Builder::new().name("simulate".into()).spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(simulate(&opts, &name, policy, plan, sizing, started))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reports = months
        .into_iter()
        .map(|m| m.join().map_err(|_| anyhow!("a simulation thread panicked"))?)
        .collect::<anyhow::Result<Vec<Report>>>()?;
    let shared_commits = sizing.taken.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Months { opts, reports, wall: started.elapsed().as_secs_f64(), shared_commits })
}

/// One policy's month, step by step: build its world, run the clock over the planned traffic,
/// read what the store holds at the end, then report (the counts, the AWS calls, the bills, the
/// what-if and capacity figures).
async fn simulate(
    opts: &Options,
    name: &str,
    policy: Policy,
    plan: Plan,
    sizing: meter::Sizing,
    started: Instant,
) -> anyhow::Result<Report> {
    let world = World::build(opts, policy, &sizing)?;
    let mut ran = Month::new(&world, opts, plan, started).run().await?;
    if opts.measures_floor() {
        let decided = std::mem::take(&mut ran.decided);
        ran.floor = Some(floor::measure(&decided, &world.engine.policy, &world.engine.store.inner).await?);
    }
    let end = Ending::read(&world).await?;
    Ok(Report::build(opts, name, &world, ran, &end))
}
