//! followup-local: every route of the follow-up engine in one process, on embedded SQLite.
//!
//! `followup-local [serve]` serves them over HTTP, configured by the environment (SPEC §5;
//! `serve --help` lists it); `followup-local simulate` runs a month of generated traffic through
//! the engine and prices it (followup-tools). `--help` on each says the rest.

/// mimalloc rather than glibc's malloc: the engine allocates and frees a snapshot, its JSON and
/// its effects per input, and a month's simulation spent a fifth of its CPU in glibc's free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's own setter of its options (`mimalloc.h`), linked in with the allocator.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t`: how long freed memory waits before
/// it goes back to the OS (in milliseconds; -1: never).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// A simulation keeps the memory it frees for its next allocations. By default mimalloc hands
/// freed pages back to the OS after a delay, and the month, which frees and allocates snapshots
/// at every input, faulted them back in as fresh transparent huge pages: 21,386
/// page faults and a tenth of a `--compare`'s CPU zeroing pages, against 1,588 faults and a
/// peak resident size 8 % higher without the purge (2.17 GB against 2.01 GB). The server keeps
/// the default: it runs for weeks and should give back what a burst took.
fn keep_freed_memory() {
    // SAFETY: sets an integer option of the allocator linked into this binary; mimalloc reads it
    // at each purge, so setting it while threads allocate is what its API is for.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

mod console;
mod engine;
mod server;

use anyhow::Context;
use clap::{Parser, Subcommand};
use followup::adapters::local::{LocalClock, SqliteStore, VirtualClock};
use followup::domain::policy::Policy;
use followup::ports::SystemClock;
use followup_tools::simulate::{self, SimulateArgs};
use std::sync::Arc;

/// Every route of the follow-up engine in one process, on embedded SQLite.
#[derive(Debug, Parser)]
#[command(name = "followup-local", version, after_help = "With no command, followup-local serves (see `followup-local serve --help`).")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every route over HTTP (the default); configured by the environment
    #[command(after_help = environment())]
    Serve,
    /// Run a month of generated traffic through the engine, with its AWS bill
    Simulate(Box<SimulateArgs>),
    /// Write every webhook a store accepted, as received, as JSON lines (for `simulate --replay`)
    Export(ExportArgs),
}

/// `followup-local export [--data-dir DIR] [--out FILE]`.
#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Data dir of the store [default: FOLLOWUP_DATA_DIR, else ./.followup]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// File to write [default: stdout]
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
}

/// The environment `serve` reads, with each default.
fn environment() -> String {
    format!(
        "Environment:
  FOLLOWUP_ADDR            address to listen on [default: 127.0.0.1:3000]
  FOLLOWUP_DATA_DIR        directory of the SQLite store [default: ./.followup]
  FOLLOWUP_WEBHOOK_SECRET  secret the webhooks are signed with [default: {}]
  FOLLOWUP_CONFIG          policy TOML over the SPEC's figures [default: none]
  FOLLOWUP_VIRTUAL_CLOCK   RFC 3339 start of a clock that moves only through POST /local/clock
                           [default: the system clock]
  FOLLOWUP_CONSOLE_TOKEN   token the console (/console) and GET /v1/cases* need when FOLLOWUP_ADDR is not a
                           loopback address (Authorization: Bearer, or /console?token= once for a cookie);
                           unset there, those routes answer 401 [default: none]
  FOLLOWUP_LOG             `json` for JSON logs on stderr [default: text]
  RUST_LOG                 log filter [default: info]

stdout carries one line, `listening on <address>`; the logs go to stderr.",
        followup::wire::DEFAULT_LOCAL_SECRET
    )
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve()),
        Command::Simulate(args) => {
            // The engine logs every input at info; a month of them would drown the report.
            let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "warn".into());
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
            keep_freed_memory();
            simulate::run(*args)
        }
        Command::Export(args) => {
            let dir = args.data_dir.unwrap_or_else(|| std::env::var("FOLLOWUP_DATA_DIR").unwrap_or_else(|_| "./.followup".into()).into());
            let written = simulate::export(&dir, args.out.as_deref())?;
            eprintln!("{written} inputs exported from {}", dir.display());
            Ok(())
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into());
    if std::env::var("FOLLOWUP_LOG").as_deref() == Ok("json") {
        tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_env_filter(filter).init();
    } else {
        // stdout carries one line, the address; logs go to stderr.
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    }

    let addr = std::env::var("FOLLOWUP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let data_dir = std::env::var("FOLLOWUP_DATA_DIR").unwrap_or_else(|_| "./.followup".into());
    let secret = std::env::var("FOLLOWUP_WEBHOOK_SECRET").unwrap_or_else(|_| followup::wire::DEFAULT_LOCAL_SECRET.into());
    let policy = match std::env::var("FOLLOWUP_CONFIG") {
        Ok(path) if !path.is_empty() => Policy::load(&path)?,
        _ => Policy::default(),
    };
    let clock = match std::env::var("FOLLOWUP_VIRTUAL_CLOCK") {
        Ok(start) if !start.is_empty() => {
            let start = chrono::DateTime::parse_from_rfc3339(&start)
                .with_context(|| format!("FOLLOWUP_VIRTUAL_CLOCK={start:?} is not an RFC 3339 instant"))?;
            let file = std::path::Path::new(&data_dir).join("virtual-clock");
            std::fs::create_dir_all(&data_dir).with_context(|| format!("creating data dir {data_dir}"))?;
            LocalClock::Virtual(
                VirtualClock::persisted(start.with_timezone(&chrono::Utc), file).context("reading the saved virtual clock")?,
            )
        }
        _ => LocalClock::System(SystemClock),
    };
    let store = SqliteStore::open(std::path::Path::new(&data_dir)).with_context(|| format!("opening data dir {data_dir}"))?;
    let engine = Arc::new(engine::engine(store, clock, policy, secret));
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir, virtual_clock = engine.clock.virtual_clock().is_some(), "followup-local listening");
    server::serve(engine, listener).await
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    }

    /// The purge delay mimalloc holds now.
    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads an integer option of the allocator linked into this binary.
        unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn the_simulation_turns_off_mimallocs_purge_by_its_own_option() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay(), 1000, "option 15 is mimalloc v3's purge delay, 1,000 ms by default");
        }
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }
}
