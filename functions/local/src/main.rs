//! followup-local: every route of the follow-up engine in one process, on embedded SQLite.
//!
//! `followup-local [serve]` serves them over HTTP, configured by the environment (SPEC §5;
//! `serve --help` lists it); `followup-local simulate` runs a month of generated traffic through
//! the engine and prices it (followup-tools). `--help` on each says the rest.

/// mimalloc rather than glibc's malloc: the engine allocates and frees a snapshot, its JSON and
/// its effects per input, and a month's simulation spent a fifth of its CPU in glibc's free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
