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
mod inputs;
mod meter;
mod month;
mod observe;
mod options;
mod report;
mod text;
mod traffic;
mod world;

pub use options::SimulateArgs;

use anyhow::anyhow;
use month::{Month, Plan};
use options::Options;
use report::{Ending, Report};
use std::time::Instant;
use world::World;

/// `followup-local simulate …`.
///
/// The month runs on a single-threaded runtime of its own thread: the engine's work is handed
/// between this thread, SQLite's blocking readers and its writer thread, and a second worker
/// stealing tasks only added wake-ups (measured: more system time, no more throughput).
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let opts = args.options()?;
    let month = std::thread::Builder::new().name("simulate".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(simulate(&opts))
    })?;
    month.join().map_err(|_| anyhow!("the simulation thread panicked"))?
}

/// The month, step by step: build the world, plan the traffic, run the clock, read what the
/// store holds at the end, then report (the counts, the AWS calls and the bills).
async fn simulate(opts: &Options) -> anyhow::Result<()> {
    let world = World::build(opts, world::policy_from_env()?)?;
    let started = Instant::now();
    let plan = Plan::generate(&world.cal, opts);
    let ran = Month::new(&world, opts, plan, started).run().await?;
    let end = Ending::read(&world).await?;
    let report = Report::build(opts, &world, ran, &end);
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
