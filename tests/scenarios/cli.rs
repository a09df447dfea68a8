//! The command line of `followup-local`: help and version print and exit 0, `simulate --help`
//! lists its flags with their defaults, and a word it does not know is refused with a non-zero
//! exit — none of them starts the server.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs the binary with `args` on a port that is never bound (a server started by mistake
/// would run until killed: the test gives up on it after 60 s).
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(followup_tests::binary())
        .args(args)
        .env("FOLLOWUP_ADDR", "127.0.0.1:0")
        .env("FOLLOWUP_DATA_DIR", std::env::temp_dir().join("followup-cli-never-opened"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start followup-local");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("followup-local {args:?} did not exit: it started the server");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_names_the_commands_and_exits_0() {
    for flag in ["--help", "-h", "help"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {:?} {}", out.status, text(&out.stderr));
        let help = text(&out.stdout);
        assert!(help.contains("Usage: followup-local"), "{flag}: {help}");
        for command in ["serve", "simulate", "export"] {
            assert!(help.contains(command), "{flag} does not name {command}: {help}");
        }
        assert!(!help.contains("listening on"), "{flag} started the server");
    }
}

#[test]
fn version_prints_the_crate_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        assert_eq!(text(&out.stdout).trim(), format!("followup-local {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn serve_help_documents_the_environment() {
    let out = run(&["serve", "--help"]);
    assert!(out.status.success(), "{:?} {}", out.status, text(&out.stderr));
    let help = text(&out.stdout);
    for var in ["FOLLOWUP_ADDR", "FOLLOWUP_DATA_DIR", "FOLLOWUP_WEBHOOK_SECRET", "FOLLOWUP_CONFIG", "FOLLOWUP_VIRTUAL_CLOCK"] {
        assert!(help.contains(var), "serve --help does not name {var}: {help}");
    }
}

#[test]
fn simulate_help_lists_every_flag_with_its_default() {
    let out = run(&["simulate", "--help"]);
    assert!(out.status.success(), "{:?} {}", out.status, text(&out.stderr));
    let help = text(&out.stdout);
    for (flag, default) in [
        ("--appointments", "100000"),
        ("--packages", "20000"),
        ("--days", "30"),
        ("--seed", "1"),
        ("--start", "2026-03-01"),
        ("--concurrency", "32"),
        ("--cancel", "0.12"),
        ("--no-answer", "0.4,0.5"),
        ("--case-views", "1"),
        ("--report-lost", "0.03"),
        ("--sms-price", "0.1"),
        ("--price-dynamodb-per-million-write-units", "0.625"),
    ] {
        let line = help.lines().skip_while(|l| !l.contains(&format!("{flag} <"))).take(2).collect::<Vec<_>>().join(" ");
        assert!(line.contains(&format!("[default: {default}]")), "{flag} is not listed with [default: {default}]: {line:?}\n{help}");
    }
    for flag in [
        "--data-dir",
        "--json",
        "--visit-reschedule",
        "--price-durable-per-million-operations",
        "--policy",
        "--compare",
        "--replay",
        "--html",
        "--scale",
        "--region",
    ] {
        assert!(help.contains(flag), "simulate --help does not list {flag}");
    }
}

#[test]
fn an_unknown_word_is_refused_and_never_serves() {
    for args in [&["exports", "--help"][..], &["frobnicate"], &["--json"], &["simulate", "--frobnicate", "1"], &["export", "--frobnicate"]]
    {
        let out = run(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error");
        let err = text(&out.stderr);
        assert!(err.contains("error:") && err.contains("Usage: followup-local"), "{args:?}: {err}");
        assert!(!text(&out.stdout).contains("listening on"), "{args:?} started the server");
    }
}

#[test]
fn a_simulate_value_out_of_range_is_refused() {
    let out = run(&["simulate", "--cancel", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a share in 0..1"), "{}", text(&out.stderr));
    let out = run(&["simulate", "--cancel", "0.9", "--reschedule", "0.2", "--appointments", "1", "--packages", "0"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("exceed 1"), "{}", text(&out.stderr));
}
