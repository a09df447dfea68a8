//! Cold start of a real function next to a hello-world `lambda_runtime` binary, and its first
//! request with and without the DynamoDB connection opened during init, and with its webhook
//! secret read from Secrets Manager rather than given in the environment (`make footprint`).
//!
//! `footprint <appointments binary> <hello binary> [runs]`: both built with the `lambda` profile.
//! Each run starts a fresh process against its own Runtime API stub on 127.0.0.1, with the
//! environment template.yaml gives the function and AWS pointed at 127.0.0.1 (dummy credentials,
//! never AWS): a local moto server, or for the webhook secret the stub itself, which answers
//! `GetSecretValue` at once (moto, in Python, takes milliseconds to). Cold init is the time from
//! spawning the process to its first `GET /2018-06-01/runtime/invocation/next`; the first request
//! is the time from handing out a signed `POST /v1/appointments` to the function posting its
//! response. Variants run interleaved, each round in its own order, so drift on a shared
//! machine and the order of processes spread over all of them.

#[path = "../../../shared/tests/common/moto.rs"]
mod moto;

use chrono::{Duration as Days, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const SECRET: &str = "footprint-secret";
const SECRET_NAME: &str = "followup/webhook-secret";

/// What the stub saw, when.
enum Seen {
    Next(Instant),
    Response(Instant, String),
    Failed(String),
}

/// A Runtime API on a free loopback port for one process. The first `next` gets `event` (if
/// any); every later one is held open until the process is stopped. It also answers Secrets
/// Manager's `GetSecretValue` with [`SECRET`].
struct Stub {
    port: u16,
    seen: mpsc::Receiver<Seen>,
}

impl Stub {
    fn start(event: Option<String>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("address").port();
        let (tx, seen) = mpsc::channel();
        let given = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            // One process, a handful of connections; the thread ends with the runner.
            for stream in listener.incoming().flatten() {
                let (tx, given, event) = (tx.clone(), Arc::clone(&given), event.clone());
                std::thread::spawn(move || serve(stream, &tx, &given, event.as_deref()));
            }
        });
        Stub { port, seen }
    }

    fn wait(&self, timeout: Duration) -> Result<Seen, String> {
        self.seen.recv_timeout(timeout).map_err(|_| format!("nothing from the process within {timeout:?}"))
    }
}

/// One keep-alive connection of the runtime client: requests until it closes.
fn serve(stream: TcpStream, tx: &mpsc::Sender<Seen>, given: &AtomicBool, event: Option<&str>) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let at = Instant::now();
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let (mut length, mut chunked, mut target) = (0usize, false, String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                "x-amz-target" => target = value.trim().to_string(),
                _ => {}
            }
        }
        let body = if chunked { read_chunked(&mut reader) } else { read_exact(&mut reader, length) };
        match (method.as_str(), path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") => {
                let _ = tx.send(Seen::Next(at));
                match event {
                    Some(event) if !given.swap(true, Ordering::SeqCst) => {
                        let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
                            .duration_since(std::time::UNIX_EPOCH)
                            .expect("after 1970")
                            .as_millis();
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: footprint-1\r\n\
                             lambda-runtime-deadline-ms: {deadline}\r\n\
                             lambda-runtime-invoked-function-arn: arn:aws:lambda:{}:{}:function:followup-appointments\r\n\
                             lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\ncontent-length: {}\r\n\r\n{event}",
                            moto::REGION,
                            moto::ACCOUNT,
                            event.len()
                        );
                        if writer.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    // Held: the process is stopped while it waits.
                    _ => loop {
                        std::thread::park();
                    },
                }
            }
            ("POST", "/") if target == "secretsmanager.GetSecretValue" => {
                let secret =
                    json!({"ARN": format!("arn:aws:secretsmanager:{}:{}:secret:{SECRET_NAME}-AbCdEf", moto::REGION, moto::ACCOUNT),
                                    "Name": SECRET_NAME, "SecretString": SECRET, "VersionId": "v1", "VersionStages": ["AWSCURRENT"]})
                    .to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-requestid: footprint\r\ncontent-length: {}\r\n\r\n{secret}",
                    secret.len()
                );
                if writer.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
            ("POST", p) if p.ends_with("/response") || p.ends_with("/error") || p.ends_with("/init/error") => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let _ = tx.send(if p.ends_with("/response") { Seen::Response(at, text) } else { Seen::Failed(format!("{p}: {text}")) });
                let _ = writer
                    .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"status\":\"OK\"}");
            }
            _ => {
                let _ = writer.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
            }
        }
    }
}

fn read_exact(reader: &mut impl Read, n: usize) -> Vec<u8> {
    let mut body = vec![0; n];
    let _ = reader.read_exact(&mut body);
    body
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).unwrap_or(0) == 0 {
            return body;
        }
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        body.extend(read_exact(reader, n));
        let mut crlf = String::new();
        let _ = reader.read_line(&mut crlf);
        if n == 0 {
            return body;
        }
    }
}

/// One way of starting a binary.
struct Variant {
    label: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    /// Hand out a webhook and time the first request.
    first_request: bool,
    /// Point AWS at the stub (Secrets Manager only), not at moto.
    aws_on_stub: bool,
}

#[derive(Default)]
struct Timings {
    init: Vec<Duration>,
    first: Vec<Duration>,
}

static EVENTS: AtomicUsize = AtomicUsize::new(0);

/// A signed booking for a new appointment, as API Gateway hands it to the function.
fn booking() -> String {
    let n = EVENTS.fetch_add(1, Ordering::SeqCst);
    let run = format!("{}-{n}", std::process::id());
    let now = Utc::now();
    let at = |d: chrono::Duration| (now + d).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/01_appointment.booked.json")).expect("sample"),
    )
    .expect("JSON sample");
    event["id"] = json!(format!("evt-footprint-{run}"));
    event["occurred_at"] = json!(at(Days::zero()));
    event["data"]["appointment_id"] = json!(format!("A-footprint-{run}"));
    event["data"]["order_id"] = json!(format!("O-footprint-{run}"));
    event["data"]["window_start"] = json!(at(Days::days(3)));
    event["data"]["window_end"] = json!(at(Days::days(3) + Days::hours(2)));
    let body = event.to_string();
    let ts = now.timestamp();
    let path = "/v1/appointments";
    json!({
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-timestamp": ts.to_string(),
                    "x-signature": followup_lambda::sign(SECRET, ts, body.as_bytes())},
        "requestContext": {"http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "footprint"},
                           "routeKey": format!("POST {path}"), "stage": "$default", "requestId": format!("r-{run}"),
                           "accountId": moto::ACCOUNT, "apiId": "api", "domainName": "example.invalid", "domainPrefix": "example",
                           "time": "02/Mar/2026:08:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false,
    })
    .to_string()
}

/// Starts `variant` once; its cold init and, if asked, its first request.
fn run_once(variant: &Variant) -> Result<(Duration, Option<Duration>), String> {
    let stub = Stub::start(variant.first_request.then(booking));
    let start = Instant::now();
    let mut command = Command::new(&variant.binary);
    command.env_clear().envs(variant.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if variant.aws_on_stub {
        command.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", stub.port));
    }
    let mut child = command
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", stub.port))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", variant.binary.display()))?;
    let outcome = (|| {
        let init = match stub.wait(Duration::from_secs(30))? {
            Seen::Next(at) => at - start,
            Seen::Failed(why) => return Err(why),
            Seen::Response(..) => return Err("a response before any event".into()),
        };
        if !variant.first_request {
            return Ok((init, None));
        }
        match stub.wait(Duration::from_secs(30))? {
            Seen::Response(at, body) => {
                let reply: Value = serde_json::from_str(&body).map_err(|e| format!("response {body:?}: {e}"))?;
                match reply["statusCode"].as_u64() {
                    Some(200..=299) => Ok((init, Some(at - (start + init)))),
                    _ => Err(format!("the webhook was not accepted: {body}")),
                }
            }
            Seen::Failed(why) => Err(why),
            Seen::Next(_) => Err("asked for a second event before answering the first".into()),
        }
    })();
    stop(&mut child, outcome.is_err()).map_err(|log| format!("{}: {}\n{log}", variant.label, outcome.as_ref().err().unwrap()))?;
    outcome
}

/// Stops the process; on a failed run, what it printed to stderr.
fn stop(child: &mut Child, failed: bool) -> Result<(), String> {
    let _ = child.kill();
    let _ = child.wait();
    if !failed {
        return Ok(());
    }
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut log);
    }
    Err(log)
}

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:7.2} ms", d.as_secs_f64() * 1000.0)
}

fn kib(path: &Path) -> String {
    std::fs::metadata(path).map(|m| format!("{:.0} KiB", m.len() as f64 / 1024.0)).unwrap_or_else(|_| "?".into())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: footprint <appointments binary> <hello binary> [runs]");
        std::process::exit(2);
    }
    let (function, hello) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let runs: usize = args.get(3).map(|r| r.parse().expect("runs is a number")).unwrap_or(20);

    let f = moto::Fixture::new("footprint").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&f.config);
    secrets.create_secret().name(SECRET_NAME).secret_string(SECRET).send().await.expect("CreateSecret on moto");
    let mut moto_secret = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        secrets.get_secret_value().secret_id(SECRET_NAME).send().await.expect("GetSecretValue on moto");
        moto_secret.push(start.elapsed());
    }
    let settings = f.settings();
    let t = &settings.targets;
    let lambda_env = [
        ("FOLLOWUP_TABLE", settings.table.as_str()),
        ("FOLLOWUP_SCHEDULE_GROUP", &settings.schedule_group),
        ("FOLLOWUP_SCHEDULER_ROLE_ARN", &settings.scheduler_role_arn),
        ("FOLLOWUP_TIMER_DLQ_ARN", &settings.timer_dlq_arn),
        ("FOLLOWUP_OPS_TOPIC_ARN", &settings.ops_topic_arn),
        ("FOLLOWUP_SMS_SENDER_ID", "Filkhedma"),
        ("FOLLOWUP_WEBHOOK_SECRET_NAME", SECRET_NAME),
        ("FOLLOWUP_APPOINTMENTS_ARN", &t.appointments),
        ("FOLLOWUP_CANCELLATION_REQUEST_ARN", &t.cancellation_request),
        ("FOLLOWUP_PACKAGE_PAYMENT_ARN", &t.package_payment),
        ("FOLLOWUP_PACKAGE_EXPIRY_ARN", &t.package_expiry),
        ("RUST_LOG", "info"),
        // What Lambda sets; the credentials are moto's dummies and the endpoint is moto.
        ("AWS_LAMBDA_FUNCTION_NAME", "followup-appointments"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/followup-appointments"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "footprint"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_REGION", moto::REGION),
        ("AWS_DEFAULT_REGION", moto::REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_ENDPOINT_URL", &moto::moto().endpoint),
        ("TZ", ":UTC"),
        ("PATH", "/usr/bin:/bin"),
    ];
    let env = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        lambda_env.iter().chain(extra).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let variant = |label, binary: &PathBuf, extra: &[(&str, &str)], first_request, aws_on_stub| Variant {
        label,
        binary: binary.clone(),
        env: env(extra),
        first_request,
        aws_on_stub,
    };
    let from_env = ("FOLLOWUP_WEBHOOK_SECRET", SECRET);
    let (connect, no_connect) = (("FOLLOWUP_CONNECT_AT_INIT", "1"), ("FOLLOWUP_CONNECT_AT_INIT", "0"));
    let variants = [
        variant("hello-world lambda_runtime", &hello, &[], false, false),
        variant("appointments, secret from Secrets Manager (stub)", &function, &[no_connect], false, true),
        variant("appointments, secret from Secrets Manager (moto)", &function, &[no_connect], false, false),
        variant("appointments, secret in the environment", &function, &[no_connect, from_env], false, false),
        variant("appointments, no connection at init", &function, &[no_connect, from_env], true, false),
        variant("appointments, DynamoDB connected at init", &function, &[connect, from_env], true, false),
        variant("appointments, secret from Secrets Manager (moto)", &function, &[no_connect], true, false),
    ];

    println!(
        "footprint: {runs} runs each, interleaved; binaries {} ({}) and {} ({})",
        function.display(),
        kib(&function),
        hello.display(),
        kib(&hello)
    );
    println!("moto on {} (dummy credentials); one Runtime API stub per process on 127.0.0.1", moto::moto().endpoint);
    let mut timings: Vec<Timings> = variants.iter().map(|_| Timings::default()).collect();
    // One unmeasured round: page cache, moto's first requests.
    for v in &variants {
        run_once(v).unwrap_or_else(|e| panic!("{}: {e}", v.label));
    }
    // Each round in its own order (a fixed shuffle): which process comes right after which moves
    // a cold start by a tenth of a millisecond or more, so no variant always follows the same one.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut order: Vec<usize> = (0..variants.len()).collect();
    for _ in 0..runs {
        for k in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(k, (seed % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            let (init, first) = run_once(&variants[i]).unwrap_or_else(|e| panic!("{}: {e}", variants[i].label));
            timings[i].init.push(init);
            timings[i].first.extend(first);
        }
    }

    let hello_median = quantile(&timings[0].init, 0.5);
    println!("\ncold init: spawn → first GET /runtime/invocation/next");
    println!("  {:48} {:>10} {:>10} {:>8}", "", "median", "p90", "× hello");
    for (v, t) in variants.iter().zip(&timings).take(4) {
        let median = quantile(&t.init, 0.5);
        println!(
            "  {:48} {} {} {:7.2}x",
            v.label,
            ms(median),
            ms(quantile(&t.init, 0.9)),
            median.as_secs_f64() / hello_median.as_secs_f64()
        );
    }
    println!("  (moto answers GetSecretValue to a warm client in {} median)", ms(quantile(&moto_secret, 0.5)).trim());
    println!("\nfirst request: signed POST /v1/appointments handed out → response posted (a booking that opens a new case)");
    println!("  {:48} {:>10} {:>10} {:>10} {:>10}", "", "init med", "first med", "first p90", "sum med");
    for (v, t) in variants.iter().zip(&timings).skip(4) {
        let sums: Vec<Duration> = t.init.iter().zip(&t.first).map(|(a, b)| *a + *b).collect();
        println!(
            "  {:48} {} {} {} {}",
            v.label,
            ms(quantile(&t.init, 0.5)),
            ms(quantile(&t.first, 0.5)),
            ms(quantile(&t.first, 0.9)),
            ms(quantile(&sums, 0.5))
        );
    }
}
