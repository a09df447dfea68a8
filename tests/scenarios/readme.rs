//! README.md's example commands, run as written.
//!
//! A fenced `sh` block right after a `<!-- readme-check: <session> -->` comment belongs to that
//! session. A session's `… make run` block starts a followup-local of its own on a free port and
//! a temporary data directory, with the environment that line sets; its other blocks run in
//! order with bash (`-e -o pipefail`) from the workspace root, `http://localhost:3000` replaced by
//! the engine's address (and `FOLLOWUP_URL` set for `events/send`). Each must exit 0, and a `text`
//! block right after one lists lines its output must contain, in order (`…` stands for anything).
//! The README's routes are held to docs/openapi.json, its make targets to the Makefile and
//! `events/send`'s routes to the engine's; what its prose says of the night hold and of the
//! samples on the real clock is tested too.

use followup_tests::{root, Local};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

const MARKER: &str = "<!-- readme-check:";
const README_URL: &str = "http://localhost:3000";

/// One checked `sh` block: its session, its code, and the lines its output must contain.
#[derive(Debug)]
struct Block {
    session: String,
    line: usize,
    code: String,
    expect: Vec<String>,
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// The fenced block opening at `lines[*i]` with the given info string, if it does; `*i` moves past it.
fn fenced(lines: &[&str], i: &mut usize, info: &str) -> Option<String> {
    let mut j = *i;
    while lines.get(j).is_some_and(|l| l.trim().is_empty()) {
        j += 1;
    }
    if lines.get(j).map(|l| l.trim()) != Some(&format!("```{info}")) {
        return None;
    }
    let end = (j + 1..lines.len()).find(|&k| lines[k].trim() == "```").unwrap_or_else(|| panic!("README.md:{}: unclosed ```{info}", j + 1));
    *i = end + 1;
    Some(lines[j + 1..end].join("\n"))
}

fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].trim().strip_prefix(MARKER) else {
            i += 1;
            continue;
        };
        let line = i + 1;
        i += 1;
        let Some(session) = rest.strip_suffix("-->").map(str::trim).filter(|s| !s.is_empty() && !s.contains(' ')) else {
            continue; // the note at the end of the README that says how this works
        };
        let code = fenced(&lines, &mut i, "sh").unwrap_or_else(|| panic!("README.md:{line}: {MARKER} is not followed by a ```sh block"));
        let expect = fenced(&lines, &mut i, "text")
            .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        out.push(Block { session: session.to_owned(), line, code, expect });
    }
    out
}

/// `NAME=value … make run`: the environment the line sets, or `None` if the block is not one.
fn serve_line(code: &str) -> Option<Vec<(String, String)>> {
    let line = code.lines().map(|l| l.split('#').next().unwrap_or_default().trim()).find(|l| !l.is_empty())?;
    // Words as the shell splits them, for the forms the README uses: `$(mktemp -d)` is one.
    let mut words: Vec<String> = Vec::new();
    for w in line.split_whitespace() {
        match words.last_mut() {
            Some(last) if last.matches('(').count() > last.matches(')').count() => {
                last.push(' ');
                last.push_str(w);
            }
            _ => words.push(w.to_owned()),
        }
    }
    let at = words.windows(2).position(|w| w == ["make", "run"])?;
    assert_eq!(at + 2, words.len(), "`{line}`: nothing may follow make run");
    Some(
        words[..at]
            .iter()
            .map(|w| {
                let (k, v) = w.split_once('=').unwrap_or_else(|| panic!("`{line}`: {w} is not NAME=value"));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
    )
}

/// Each expected line, split at `…`, must match some output line with its pieces in order; the
/// expected lines match output lines in order.
fn assert_output(block: &Block, stdout: &str) {
    let out: Vec<&str> = stdout.lines().collect();
    let mut from = 0;
    for want in &block.expect {
        let pieces: Vec<&str> = want.split('…').filter(|p| !p.is_empty()).collect();
        let matches = |line: &str| {
            let mut rest = line;
            pieces.iter().all(|p| match rest.find(p) {
                Some(at) => {
                    rest = &rest[at + p.len()..];
                    true
                }
                None => false,
            })
        };
        match (from..out.len()).find(|&k| matches(out[k])) {
            Some(k) => from = k + 1,
            None => panic!("README.md:{}: no line of the output matches\n  {want}\noutput:\n{stdout}", block.line),
        }
    }
}

fn run(block: &Block, base: Option<&str>) -> String {
    let code = match base {
        Some(base) => block.code.replace(README_URL, base),
        None => block.code.clone(),
    };
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-o", "pipefail", "-c", &code]).current_dir(root()).env_remove("FOLLOWUP_WEBHOOK_SECRET");
    if let Some(base) = base {
        cmd.env("FOLLOWUP_URL", base);
    }
    let started = Instant::now();
    let out = cmd.output().expect("run bash");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(
        out.status.success(),
        "README.md:{}: the block exited {:?}\n{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        block.line,
        out.status,
        block.code
    );
    eprintln!("README.md:{} ({}) ran in {:.1} s", block.line, block.session, started.elapsed().as_secs_f64());
    stdout
}

/// Starts the engine a session's `make run` line describes, on a free port and a temp dir.
fn serve(env: &[(String, String)], dir: &std::path::Path) -> Local {
    let mut clock = None;
    let mut rest = vec![("FOLLOWUP_WEBHOOK_SECRET", followup::wire::DEFAULT_LOCAL_SECRET)];
    for (k, v) in env {
        match k.as_str() {
            "FOLLOWUP_VIRTUAL_CLOCK" => clock = Some(v.as_str()),
            // The test's own: a free port and a data directory of its own.
            "FOLLOWUP_DATA_DIR" | "FOLLOWUP_ADDR" => {}
            _ => rest.push((k.as_str(), v.as_str())),
        }
    }
    Local::spawn(dir, clock, &rest)
}

#[test]
fn the_readme_examples_run_as_written() {
    let text = readme();
    let blocks = blocks(&text);
    assert!(blocks.len() >= 8, "the README's checked examples: {blocks:#?}");
    let started = Instant::now();
    let mut engines: Vec<(String, Local, tempfile::TempDir)> = Vec::new();
    for block in &blocks {
        if let Some(env) = serve_line(&block.code) {
            assert!(!engines.iter().any(|(s, ..)| *s == block.session), "README.md:{}: {} starts twice", block.line, block.session);
            let dir = tempfile::tempdir().expect("temp dir");
            let local = serve(&env, dir.path());
            engines.push((block.session.clone(), local, dir));
            continue;
        }
        let base = engines.iter().find(|(s, ..)| *s == block.session).map(|(_, l, _)| l.base.clone());
        if base.is_none() {
            assert!(
                !block.code.contains(README_URL) && !block.code.contains("events/send"),
                "README.md:{}: no make run for {}",
                block.line,
                block.session
            );
        }
        let stdout = run(block, base.as_deref());
        assert_output(block, &stdout);
    }

    // The real-clock session: the coupon SMS went out, or (at night, Friday or Saturday in
    // Cairo) is held and says so on the case's timeline, as the README tells.
    let (_, real, _) = engines.iter().find(|(s, ..)| s == "real").expect("a real-clock session");
    let sent = real.sms().iter().any(|m| m["template"] == "DISCOUNT_OFFER");
    let held = real.case("o1-O-501")["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .any(|t| t["kind"] == "sms_held" && t["detail"].as_str().is_some_and(|d| d.starts_with("DISCOUNT_OFFER")));
    assert!(sent ^ held, "the coupon SMS is either sent or held: sent {sent}, held {held}");
    eprintln!("README check: {} blocks in {:.1} s", blocks.len(), started.elapsed().as_secs_f64());
}

/// Every `sh` block that talks to an engine is checked: no example in the README goes untested.
#[test]
fn every_example_that_talks_to_the_engine_is_checked() {
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    let checked: BTreeSet<usize> = blocks(&text).iter().map(|b| b.line).collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() != "```sh" {
            continue;
        }
        let end = (i + 1..lines.len()).find(|&k| lines[k].trim() == "```").expect("closed");
        let code = lines[i + 1..end].join("\n");
        if code.contains("localhost:3000") || code.contains("events/send") {
            let marker = (0..i).rev().find(|&k| !lines[k].trim().is_empty()).map(|k| k + 1);
            assert!(
                marker.is_some_and(|m| checked.contains(&m)),
                "README.md:{}: this example is not marked {MARKER} <session> -->:\n{code}",
                i + 1
            );
        }
    }
}

/// The README names every route docs/openapi.json has, as `METHOD /path`.
#[test]
fn the_readme_names_every_route_of_the_contract() {
    let text = readme();
    let doc: Value = serde_json::from_slice(&std::fs::read(root().join("docs/openapi.json")).expect("openapi")).expect("json");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                let route = format!("`{} {path}", method.to_uppercase());
                assert!(text.contains(&route), "README.md does not name {route}`");
            }
        }
    }
}

/// `events/send --routes` posts each event type where the engine takes it: its table is the
/// engine's, type for type.
#[test]
fn events_send_routes_every_type_where_the_engine_takes_it() {
    let out = Command::new(root().join("events/send")).arg("--routes").output().expect("run events/send");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: BTreeSet<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (kind, route) = l.split_once(' ').expect("<type> <route>");
            (kind.to_owned(), route.to_owned())
        })
        .collect();
    let ours: BTreeSet<(String, String)> =
        followup::wire::Route::ALL.iter().flat_map(|r| r.event_types().iter().map(|t| (t.to_string(), r.path().to_owned()))).collect();
    assert_eq!(theirs, ours, "events/send's ROUTES and the engine's routes differ");
}

/// `events/send` exits 1 when an answer is not a 202, and names an engine it cannot reach.
#[test]
fn events_send_fails_on_a_refusal_and_on_no_engine() {
    let l = Local::virtual_at("2026-03-02T10:00:00+02:00");
    let send = |args: &[&str], secret: &str| {
        Command::new(root().join("events/send"))
            .args(args)
            .current_dir(root())
            .env("FOLLOWUP_URL", &l.base)
            .env("FOLLOWUP_WEBHOOK_SECRET", secret)
            .output()
            .expect("run events/send")
    };
    let out = send(&["events/01_appointment.booked.json"], "not-the-secret");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 401 "), "{}", String::from_utf8_lossy(&out.stdout));
    let out = send(&["events/01_appointment.booked.json"], followup_tests::SECRET);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let out = Command::new(root().join("events/send"))
        .args(["--url", "http://127.0.0.1:9", "events/01_appointment.booked.json"])
        .current_dir(root())
        .output()
        .expect("run events/send");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is followup-local running?"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// "SMS at night": a coupon SMS at 22:00 in Cairo is held, the case's timeline says until when,
/// and moving the virtual clock there sends it.
#[test]
fn the_coupon_sms_held_at_night_goes_out_when_the_clock_reaches_its_time() {
    let l = Local::virtual_at("2026-03-02T22:00:00+02:00");
    for name in ["01_appointment.booked.json", "05_appointment.cancelled.json"] {
        let (status, body) = l.post_signed(route_of(name), &std::fs::read(root().join("events").join(name)).expect("sample"));
        assert_eq!(status, 202, "{name}: {body}");
    }
    assert!(l.sms().is_empty(), "nothing goes out at night: {:?}", l.sms());
    let case = l.case("o1-O-501");
    let held: Vec<&Value> = case["timeline"].as_array().expect("timeline").iter().filter(|t| t["kind"] == "sms_held").collect();
    assert_eq!(held.len(), 1, "{case}");
    let detail = held[0]["detail"].as_str().expect("detail");
    assert!(detail.starts_with("DISCOUNT_OFFER to +201******567 held until 2026-03-03T09:00:00+02:00"), "{detail}");
    l.clock_to("2026-03-03T09:00:00+02:00");
    let sms = l.sms();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!((sms[0]["template"].as_str(), sms[0]["sent_at"].as_str()), (Some("DISCOUNT_OFFER"), Some("2026-03-03T09:00:00+02:00")));
}

/// "On the real clock": the package sample as written has its whole expiry behind it, and its
/// deactivation goes out on arrival.
#[test]
fn on_the_real_clock_the_package_sample_as_written_is_deactivated_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = Local::spawn(dir.path(), None, &[]);
    let name = "09_package.booked.json";
    let (status, body) = l.post_signed(route_of(name), &std::fs::read(root().join("events").join(name)).expect("sample"));
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while l.commands_of("deactivate_package").is_empty() {
        assert!(Instant::now() < deadline, "no deactivate_package: {:?}", l.commands());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The route of a numbered sample, by its type.
fn route_of(name: &str) -> &'static str {
    let kind = followup_tests::sample(name)["type"].as_str().expect("type").to_owned();
    followup::wire::Route::ALL.into_iter().find(|r| r.event_types().contains(&kind.as_str())).expect("a route").path()
}

/// The README's table of make targets names every target the Makefile declares.
#[test]
fn the_readme_names_every_make_target() {
    let text = readme();
    let makefile = std::fs::read_to_string(root().join("Makefile")).expect("Makefile");
    let phony = makefile.lines().find_map(|l| l.strip_prefix(".PHONY:")).expect("a .PHONY line");
    let table: Vec<&str> = text.lines().filter(|l| l.starts_with("| `make ")).collect();
    for target in phony.split_whitespace() {
        let named = table.iter().any(|row| row.contains(&format!("`make {target}`")) || row.contains(&format!("`{target}`")));
        assert!(named, "README.md's make targets do not name `{target}`");
    }
}
