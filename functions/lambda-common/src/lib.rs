//! The handler every follow-up Lambda shares: HTTP API (payload v2) requests, Scheduler timer
//! inputs and the daily expiry tick, dispatched to one `Engine` built once per cold start.
//!
//! Each `functions/<name>/src/main.rs` builds the engine once and runs `handle` for its `Function`. The handler is
//! generic over the ports, so the tests drive it with the AWS adapters on a local emulator.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine as _;
use chrono::Utc;
use followup::adapters::aws::aws_config::SdkConfig;
use followup::adapters::aws::grants::Grant;
use followup::adapters::aws::{aws_sdk_dynamodb, aws_sdk_scheduler, aws_sdk_sns};
use followup::adapters::aws::{AwsPorts, AwsSettings, DynamoStore, MissingSetting, SchedulerTimers, SnsCommands, SnsSms};
use followup::domain::effects::{TimerRef, TimerSpec};
use followup::domain::policy::{Policy, PolicyError};
use followup::domain::ErrorCode;
use followup::engine::{Engine, ProcessError};
use followup::ports::{CaseStore, Clock, Ports, StoreError, SystemClock};
use followup::wire::{self, Reply, Route, WireError};
use lambda_runtime::Diagnostic;
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::{error, info, warn};

pub type AwsEngine<K = SystemClock> = Engine<AwsPorts<K>>;

/// The six functions of template.yaml, one concern each (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Appointments,
    CancellationRequest,
    CallAttempt,
    PackagePayment,
    PackageExpiry,
    Cases,
}

impl Function {
    pub const ALL: [Function; 6] = [
        Function::Appointments,
        Function::CancellationRequest,
        Function::CallAttempt,
        Function::PackagePayment,
        Function::PackageExpiry,
        Function::Cases,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Appointments => "appointments",
            Function::CancellationRequest => "cancellation-request",
            Function::CallAttempt => "call-attempt",
            Function::PackagePayment => "package-payment",
            Function::PackageExpiry => "package-expiry",
            Function::Cases => "cases",
        }
    }

    /// Every AWS API action this function's code can call, on which resource: what its role
    /// must grant, and all it may grant (held to `template.yaml` by a test).
    pub fn grants(self) -> Vec<Grant> {
        use followup::adapters::aws::grants::*;
        let lists: &[&[Grant]] = match self {
            // A webhook or a timer: the webhook secret at cold start; load, commit, perform its effects.
            Function::Appointments | Function::CancellationRequest | Function::CallAttempt | Function::PackagePayment => {
                &[WEBHOOK_SECRET, READS, WRITES, TIMERS, SMS, COMMANDS]
            }
            // Also its timers, the daily sweep (subjects GSI), the re-drive (pending GSI) and the
            // timer sweep (due GSI).
            Function::PackageExpiry => &[READS, WRITES, TIMERS, SMS, COMMANDS, PENDING_QUERY, SWEEP_QUERY, DUE_QUERY],
            // The case view only reads.
            Function::Cases => &[READS],
        };
        let mut all: Vec<Grant> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        all.sort();
        all.dedup();
        all
    }

    /// The webhook route this function answers, if any.
    pub fn route(self) -> Option<Route> {
        match self {
            Function::Appointments => Some(Route::Appointments),
            Function::CancellationRequest => Some(Route::Cancellations),
            Function::CallAttempt => Some(Route::Calls),
            Function::PackagePayment => Some(Route::Packages),
            Function::PackageExpiry | Function::Cases => None,
        }
    }
}

/// What went wrong before the engine could answer; reported as a failed invocation.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The store is unavailable: the caller (Scheduler, the runtime) retries the invocation.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the case kept changing; retry")]
    Contended,
    #[error("not an event this function handles: {0}")]
    UnknownEvent(String),
    /// The webhook secret could not be read: the webhook fails rather than go unverified, and
    /// the next one reads it again.
    #[error(transparent)]
    Secret(BootError),
    /// The engine's SDK clients could not be built at the first invocation: it fails, and the
    /// next one builds them again.
    #[error(transparent)]
    Engine(BootError),
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Diagnostic {
        let error_type = match &e {
            HandlerError::Store(_) => "Retryable.StoreUnavailable",
            HandlerError::Contended => "Retryable.Contended",
            HandlerError::UnknownEvent(_) => "UnknownEvent",
            HandlerError::Secret(_) => "WebhookSecretUnavailable",
            HandlerError::Engine(_) => "EngineUnavailable",
        };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Setting(#[from] MissingSetting),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot read the webhook secret {name} from Secrets Manager: {message}")]
    Secret { name: String, message: String },
    #[error("cannot build the engine's SDK clients (DynamoDB, Scheduler, SNS): {0}")]
    Clients(String),
}

/// The engine over the AWS adapters; `clock` is the wall clock in production.
pub fn engine<K: Clock>(settings: &AwsSettings, config: &SdkConfig, policy: Policy, secret: String, clock: K) -> AwsEngine<K> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(config), &settings.table);
    let sns = aws_sdk_sns::Client::new(config);
    Engine {
        timers: SchedulerTimers::new(
            aws_sdk_scheduler::Client::new(config),
            &settings.schedule_group,
            &settings.scheduler_role_arn,
            &settings.timer_dlq_arn,
            settings.targets.clone(),
        ),
        sms: SnsSms::new(sns.clone(), store.clone(), policy.sms.sender_id.clone()),
        commands: SnsCommands::new(sns, store.clone(), &settings.ops_topic_arn, policy.calendar.clone()),
        store,
        clock,
        policy: Arc::new(policy),
        secret,
        locks: Default::default(),
    }
}

/// The policy: the file `FOLLOWUP_CONFIG` names (or the SPEC defaults), with the SMS sender id
/// the template's `SmsSenderId` parameter sets (`FOLLOWUP_SMS_SENDER_ID`), which wins.
pub fn policy(config: Option<&str>, sender_id: Option<String>) -> Result<Policy, PolicyError> {
    let mut policy = match config {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    if let Some(id) = sender_id {
        policy.sms.sender_id = id;
    }
    Ok(policy)
}

/// Settings, policy and secret from the environment the SAM template sets, checked during init;
/// the engine itself is built at the first invocation (see [`LazyEngine`]). The webhook secret is
/// read from Secrets Manager (`FOLLOWUP_WEBHOOK_SECRET_NAME`), so it is never in the function's
/// configuration: at the first webhook, not during init (see [`WebhookSecret`]); a function that
/// verifies no webhook (cases, package-expiry) never reads it. `FOLLOWUP_WEBHOOK_SECRET`, when
/// set, is used as it is (a local run).
pub fn engine_from_env(function: Function) -> Result<(LazyEngine, WebhookSecret), BootError> {
    let settings = AwsSettings::from_env()?;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let policy = policy(var("FOLLOWUP_CONFIG").as_deref(), var("FOLLOWUP_SMS_SENDER_ID"))?;
    let config = settings.sdk_config()?;
    let (secret, webhook_secret) = match (var("FOLLOWUP_WEBHOOK_SECRET"), function.route()) {
        (Some(secret), _) => (secret, WebhookSecret::in_engine()),
        (None, None) => (String::new(), WebhookSecret::in_engine()),
        (None, Some(_)) => {
            let name = var("FOLLOWUP_WEBHOOK_SECRET_NAME").ok_or(MissingSetting("FOLLOWUP_WEBHOOK_SECRET_NAME"))?;
            (String::new(), WebhookSecret::from_secrets_manager(&config, name))
        }
    };
    Ok((LazyEngine::new(settings, config, policy, secret), webhook_secret))
}

/// The engine over the AWS adapters, built at the first invocation and kept for the life of the
/// instance.
///
/// Building it is building its DynamoDB, Scheduler and SNS clients, and each SDK client parses
/// its crate's endpoint partitions (JSON, with their region regexes) when it is made: that was
/// most of what held a cold init above 1.5x a hello-world's (docs/performance.md). What can be
/// wrong in the environment (a setting, the region, the policy) is checked during init all the
/// same, before the first `GET /next`. A build that fails (a client's configuration refused) fails
/// that invocation with [`BootError::Clients`], logged and reported as `EngineUnavailable`; the
/// next invocation builds again.
pub struct LazyEngine {
    parts: EngineParts,
    engine: tokio::sync::OnceCell<AwsEngine>,
}

struct EngineParts {
    settings: AwsSettings,
    config: SdkConfig,
    policy: Policy,
    secret: String,
}

impl LazyEngine {
    pub fn new(settings: AwsSettings, config: SdkConfig, policy: Policy, secret: String) -> LazyEngine {
        LazyEngine { parts: EngineParts { settings, config, policy, secret }, engine: tokio::sync::OnceCell::new() }
    }

    /// The engine, built now if no invocation has built it yet.
    pub async fn get(&self) -> Result<&AwsEngine, BootError> {
        self.engine
            .get_or_try_init(|| async {
                let EngineParts { settings, config, policy, secret } = &self.parts;
                // The SDK reports a configuration it refuses by panicking in `Client::new`; the
                // release profile unwinds, so it is caught here and named.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    engine(settings, config, policy.clone(), secret.clone(), SystemClock)
                }))
                .map_err(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("a panic without a message");
                    BootError::Clients(message.to_string())
                })
            })
            .await
    }

    /// Whether an invocation has built the engine.
    pub fn is_built(&self) -> bool {
        self.engine.initialized()
    }
}

/// The secret a function checks webhook signatures against.
///
/// Read from Secrets Manager at the first webhook, not during init, and kept for the life of the
/// instance: the read (a client built, its endpoint rules parsed, the first call's set-up) was
/// what held a webhook function's cold init above 1.5x a hello-world's (docs/performance.md), and
/// a cold start for a timer never needs it. A failed read is kept for nobody: the webhook that met
/// it fails with [`BootError::Secret`] (logged, reported as `WebhookSecretUnavailable`), never
/// passes unverified, and the next webhook reads again.
pub struct WebhookSecret {
    source: SecretSource,
    value: tokio::sync::OnceCell<String>,
}

enum SecretSource {
    /// The engine's own secret (`FOLLOWUP_WEBHOOK_SECRET`, or none for a function without webhooks).
    Engine,
    // Boxed: an SDK configuration is many times the size of the other variant.
    SecretsManager {
        config: Box<SdkConfig>,
        name: String,
    },
}

impl WebhookSecret {
    /// The engine's own secret, known at start-up.
    pub const fn in_engine() -> WebhookSecret {
        WebhookSecret { source: SecretSource::Engine, value: tokio::sync::OnceCell::const_new() }
    }

    /// The secret `name` in Secrets Manager, read when first needed.
    pub fn from_secrets_manager(config: &SdkConfig, name: impl Into<String>) -> WebhookSecret {
        WebhookSecret {
            source: SecretSource::SecretsManager { config: Box::new(config.clone()), name: name.into() },
            value: tokio::sync::OnceCell::new(),
        }
    }

    /// The secret to check a signature against; `engine_secret` is the engine's own.
    pub async fn get<'a>(&'a self, engine_secret: &'a str) -> Result<&'a str, BootError> {
        match &self.source {
            SecretSource::Engine => Ok(engine_secret),
            SecretSource::SecretsManager { config, name } => self
                .value
                .get_or_try_init(|| async { webhook_secret(&aws_sdk_secretsmanager::Client::new(config), name).await })
                .await
                .map(String::as_str),
        }
    }

    /// Whether the secret has been read (a Secrets Manager secret, after its first webhook).
    pub fn is_read(&self) -> bool {
        self.value.initialized()
    }
}

/// The webhook secret (one, or `new,old` during a rotation) from Secrets Manager.
pub async fn webhook_secret(client: &aws_sdk_secretsmanager::Client, name: &str) -> Result<String, BootError> {
    let failed = |message: String| BootError::Secret { name: name.to_string(), message };
    let out = client
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| failed(format!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))))?;
    out.secret_string.filter(|s| !s.trim().is_empty()).ok_or_else(|| failed("the secret has no string value".into()))
}

/// The whole life of one function: JSON logs and the settings checked during init, the clients
/// and the engine built once per instance at its first invocation ([`LazyEngine`]), then every
/// invocation through [`dispatch_with`]. A boot failure (a missing setting, a bad policy) is an
/// init error Lambda reports; a panic inside an invocation is caught by the runtime and reported
/// as that invocation's error (the release profile unwinds).
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    init_logging();
    followup::metrics::enable_emf(function.name());
    let (engine, secret) = engine_from_env(function)?;
    let (engine, secret) = (Arc::new(engine), Arc::new(secret));
    if connect_at_init() {
        match engine.get().await {
            Ok(built) => open_store_connection(built).await,
            Err(e) => warn!(error = %e, "the engine could not be built during init"),
        }
    }
    info!(function = function.name(), "ready");
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Invocation>| {
        let (engine, secret) = (Arc::clone(&engine), Arc::clone(&secret));
        // Boxed: the engine's future is deep enough to overflow rustc's layout query limit inline.
        async move {
            let engine = engine.get().await.map_err(|e| {
                error!(function = function.name(), error = %e, "invocation failed: the engine could not be built");
                HandlerError::Engine(e)
            })?;
            Box::pin(dispatch_with(engine, &secret, function, event.payload)).await
        }
    }))
    .await
}

/// Whether [`run`] opens the DynamoDB connection during init (`FOLLOWUP_CONNECT_AT_INIT`: `1` or
/// `0`; unset: no).
///
/// Off, as measured by `make footprint` (appointments against moto on 127.0.0.1, medians of 30
/// cold starts, three runs): opening it moved about 2.5 ms into init (1.9 → 4.4 ms, 2.6× a
/// hello-world's 1.7 ms against 1.2×) and took 0.7–3.4 ms off the first webhook (of 18–21 ms),
/// so init and first answer together came out the same within the noise (−1.2 to +1.8 ms). On
/// AWS the connection also carries a TLS handshake; the switch lets a deployment measure there.
pub fn connect_at_init() -> bool {
    std::env::var("FOLLOWUP_CONNECT_AT_INIT").as_deref() == Ok("1")
}

/// One read of a delivery that never exists (`GetItem`, which every function's role grants):
/// the HTTPS connection, the credentials and the SDK's first-call set-up are then paid during
/// init, not by the first request. A failure is only logged; the first request meets it again.
pub async fn open_store_connection<P: Ports>(engine: &Engine<P>) {
    if let Err(e) = engine.store.delivery("init-connection").await {
        warn!(error = %e, "the store did not answer during init");
    }
}

/// JSON logs (CloudWatch); the engine masks phone numbers in every field it logs. `RUST_LOG`
/// takes a level and per-target levels (`info`, `warn,followup=debug`), read by
/// `tracing_subscriber`'s `Targets`: unlike `EnvFilter` it needs no regex engine, which keeps
/// about 150 KiB out of each zip. A value it cannot read leaves `info`.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::fmt().json().with_current_span(false).without_time().finish().with(filter).try_init();
}

/// What a function is invoked with, read once into a type. Each source has a shape of its own,
/// tried in this order: the redrive rule's constant input (`{"task": "redrive"}`), the daily
/// rule's EventBridge scheduled event (`detail-type`, `time`), the timer input Scheduler carries
/// (the `TimerSpec` the engine placed, or a bare `TimerRef` as in `events/timer.*.json`), and an
/// HTTP API request (payload v2). A payload of none of these shapes is not an invocation of ours.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    Task { task: Task },
    Scheduled(EventBridgeEvent<Value>),
    Timer(TimerSpec),
    TimerRef(TimerRef),
    Http(Box<ApiGatewayV2httpRequest>),
}

/// The housekeeping tasks a rule names in its constant input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Every few minutes: effects a crashed or throttled invocation left pending are performed
    /// (Lambda has no background loop, unlike followup-local's re-driver), and the timer sweep
    /// re-fires any timer overdue past the policy's grace (R9.3).
    Redrive,
}

impl Invocation {
    /// Reads a payload (the tests' and the local Runtime API emulator's JSON).
    pub fn read(event: Value) -> Result<Invocation, HandlerError> {
        serde_json::from_value(event).map_err(|_| {
            HandlerError::UnknownEvent("neither an HTTP API request, a housekeeping task, a scheduled event nor a timer".into())
        })
    }
}

/// One invocation of `function`, from its JSON payload.
pub async fn handle<P: Ports>(engine: &Engine<P>, function: Function, event: Value) -> Result<Value, HandlerError> {
    dispatch(engine, function, Invocation::read(event)?).await
}

/// One invocation of `function`, webhooks checked against the engine's own secret.
pub async fn dispatch<P: Ports>(engine: &Engine<P>, function: Function, invocation: Invocation) -> Result<Value, HandlerError> {
    dispatch_with(engine, &WebhookSecret::in_engine(), function, invocation).await
}

/// One invocation of `function`, webhooks checked against `secret`.
pub async fn dispatch_with<P: Ports>(
    engine: &Engine<P>,
    secret: &WebhookSecret,
    function: Function,
    invocation: Invocation,
) -> Result<Value, HandlerError> {
    let housekeeping = |what: &str| {
        (function != Function::PackageExpiry)
            .then(|| HandlerError::UnknownEvent(format!("{what} goes to package-expiry, not {}", function.name())))
    };
    match invocation {
        Invocation::Http(request) => http(engine, secret, function, &request).await,
        Invocation::Task { task: Task::Redrive } => {
            if let Some(e) = housekeeping("the redrive task") {
                return Err(e);
            }
            let performed = engine.drive_pending().await?;
            // R9.3 the safety net under Scheduler: timers lost on the way are re-fired.
            let timers = engine.timer_sweep().await?;
            info!(performed, timers, "pending effects re-driven, lost timers swept");
            Ok(json!({"performed": performed, "timers": timers}))
        }
        Invocation::Scheduled(event) => {
            if let Some(e) = housekeeping("the daily sweep") {
                return Err(e);
            }
            if event.detail_type != "Scheduled Event" {
                return Err(HandlerError::UnknownEvent(format!(
                    "an EventBridge event of type {:?}, not a scheduled one",
                    event.detail_type
                )));
            }
            // The local day that ended before the rule fired (00:05 Cairo): its Day 1 and end-of-grace
            // ticks are all due by now. A retried invocation carries the same `time`, so the same day.
            let day = engine.policy.calendar.local_date(event.time.unwrap_or_else(|| engine.clock.now())) - chrono::Duration::days(1);
            let fired = engine.expiry_sweep(day).await?;
            let performed = engine.drive_pending().await?;
            info!(day = %day, fired, performed, "daily expiry sweep");
            Ok(json!({"date": day.to_string(), "fired": fired, "performed": performed}))
        }
        Invocation::Timer(timer) => fire(engine, &timer).await,
        Invocation::TimerRef(timer) => fire(engine, &TimerSpec { timer, due_at: engine.clock.now(), playbook: None }).await,
    }
}

/// A timer from Scheduler. One that can never succeed is acknowledged, so Scheduler does not retry it for a day.
async fn fire<P: Ports>(engine: &Engine<P>, timer: &TimerSpec) -> Result<Value, HandlerError> {
    match engine.fire_timer(timer).await {
        Ok(a) => Ok(json!({"case_id": a.case_id, "duplicate": a.duplicate})),
        Err(ProcessError::Refused(e)) => {
            warn!(timer = %timer.timer.name(), code = %e.code, "timer refused; acknowledged, not retried");
            Ok(json!({"acknowledged": true, "refused": e.body()}))
        }
        Err(ProcessError::Store(e)) => Err(e.into()),
        Err(ProcessError::Contended) => Err(HandlerError::Contended),
    }
}

async fn http<P: Ports>(
    engine: &Engine<P>,
    secret: &WebhookSecret,
    function: Function,
    request: &ApiGatewayV2httpRequest,
) -> Result<Value, HandlerError> {
    let method = request.request_context.http.method.as_str();
    let path = request.raw_path.as_deref().or(request.request_context.http.path.as_deref()).unwrap_or("/");
    let path = path.trim_end_matches('/');
    let reply = match (function, method) {
        (Function::Cases, "GET") if path == "/v1/cases" => {
            engine.cases_reply(&query_pairs(request.raw_query_string.as_deref().unwrap_or(""))).await
        }
        (Function::Cases, "GET") => match path.strip_prefix("/v1/cases/") {
            Some(id) if !id.is_empty() && !id.contains('/') => engine.case_reply(&percent_decode(id)).await,
            _ => return Ok(unmatched(method, path)),
        },
        (f, "POST") if f.route().is_some_and(|r| r.path() == path) => {
            let body = match body_bytes(request) {
                Ok(b) => b,
                Err(e) => return Ok(response(e.into(), None)),
            };
            let secret = secret.get(&engine.secret).await.map_err(|e| {
                error!(function = function.name(), error = %e, "webhook not verified: its secret is unreadable");
                HandlerError::Secret(e)
            })?;
            let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
            let route = f.route().expect("checked");
            engine.webhook_signed_with(secret, route, header("x-timestamp"), header("x-signature"), &body, Utc::now().timestamp()).await
        }
        // R9.6 the HTTP API's `$default` route brings every other request here.
        _ => return Ok(unmatched(method, path)),
    };
    Ok(response(reply, None))
}

/// The methods the HTTP API serves on `path` (SPEC §5), as an `Allow` value; `None`: no such path.
///
/// `HEAD` is not among them: the case routes need SigV4 (template.yaml), and a `HEAD` would reach
/// the cases function through the `$default` route, which has no authorizer, so answering it would
/// tell anyone whether a case exists. It is a 405 like any other method the path does not serve.
fn allowed_methods(path: &str) -> Option<&'static str> {
    let path = path.trim_end_matches('/');
    if Route::from_path(path).is_some() {
        return Some("POST");
    }
    let case = path.strip_prefix("/v1/cases/").is_some_and(|id| !id.is_empty() && !id.contains('/'));
    (path == "/v1/cases" || case).then_some("GET")
}

/// R9.6 a request no route of this function serves, with the error body: a path of the API asked
/// with a method it does not serve (v3: `TRACE`, `QUERY`, `OPTIONS` and any extension method
/// too) is a 405 with `Allow`; any other request is a 404 (a webhook route asked of a function
/// that does not own it included: API Gateway never sends one there).
fn unmatched(method: &str, path: &str) -> Value {
    match allowed_methods(path) {
        // wire::unmatched's 405 names the method to use.
        Some(allow) if !allow.split(", ").any(|m| m == method) => response(wire::unmatched(method, path).into(), Some(allow)),
        _ => response(WireError::new(404, ErrorCode::NotFound, format!("no route {method} {path}")).into(), None),
    }
}

fn body_bytes(request: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, WireError> {
    let raw = request.body.as_deref().unwrap_or("");
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| WireError::new(400, ErrorCode::InvalidBody, "the body is not valid base64"))
    } else {
        Ok(raw.as_bytes().to_vec())
    }
}

/// An HTTP API (payload v2) response; `allow` is the `Allow` header of a 405.
fn response(reply: Reply, allow: Option<&str>) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(allow) = allow {
        headers["allow"] = json!(allow);
    }
    json!({
        "statusCode": reply.status,
        "headers": headers,
        "isBase64Encoded": false,
        "body": reply.body.to_string(),
    })
}

/// A query string's pairs, decoded (`+` is a space there).
fn query_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

/// A path segment, percent-decoded (`+` is a plus there, as axum's `Path` reads it locally).
fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Re-exported for tests that sign requests.
pub use wire::sign;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_id_parameter_reaches_the_sms_adapter() {
        assert_eq!(policy(None, None).unwrap().sms.sender_id, Policy::default().sms.sender_id);
        assert_eq!(policy(None, Some("AcmeHome".into())).unwrap().sms.sender_id, "AcmeHome");
        let dir = tempfile_dir();
        let file = dir.join("policy.toml");
        std::fs::write(&file, "[sms]\nsender_id = \"FromFile\"\n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(policy(Some(path), None).unwrap().sms.sender_id, "FromFile");
        assert_eq!(policy(Some(path), Some("AcmeHome".into())).unwrap().sms.sender_id, "AcmeHome", "the template's parameter wins");
    }

    fn settings() -> AwsSettings {
        let arn = |name: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
        AwsSettings {
            table: "followup".into(),
            schedule_group: "followup".into(),
            scheduler_role_arn: "arn:aws:iam::123456789012:role/scheduler".into(),
            timer_dlq_arn: "arn:aws:sqs:us-east-1:123456789012:timer-dlq".into(),
            ops_topic_arn: "arn:aws:sns:us-east-1:123456789012:ops".into(),
            targets: followup::adapters::aws::TimerTargets {
                appointments: arn("appointments"),
                cancellation_request: arn("cancellation-request"),
                package_payment: arn("package-payment"),
                package_expiry: arn("package-expiry"),
            },
            endpoint_url: Some("http://127.0.0.1:9".into()),
        }
    }

    /// The engine and its clients are built at the first invocation that asks for them, once.
    #[tokio::test]
    async fn the_engine_is_built_at_the_first_invocation_and_kept() {
        let settings = settings();
        let config = SdkConfig::builder()
            .behavior_version(followup::adapters::aws::aws_config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .http_client(followup::adapters::aws::https_client())
            .build();
        let lazy = LazyEngine::new(settings, config, Policy::default(), "s".into());
        assert!(!lazy.is_built(), "nothing is built during init");
        let first: *const AwsEngine = lazy.get().await.expect("an engine");
        assert!(lazy.is_built());
        assert!(std::ptr::eq(first, lazy.get().await.expect("the same engine")), "built once");
    }

    /// A client configuration the SDK refuses (it panics in `Client::new`) fails the invocation
    /// with a named error, and the next one tries again rather than meet a poisoned cell.
    #[tokio::test]
    async fn an_engine_that_cannot_be_built_fails_the_invocation_with_a_named_error() {
        // No behaviour version: every SDK client refuses the configuration.
        let config = SdkConfig::builder().region(aws_sdk_dynamodb::config::Region::new("us-east-1")).build();
        let lazy = LazyEngine::new(settings(), config, Policy::default(), "s".into());
        for _ in 0..2 {
            let e = lazy.get().await.err().expect("a refused configuration");
            assert!(matches!(e, BootError::Clients(_)), "{e}");
            assert!(e.to_string().contains("SDK clients") && e.to_string().contains("behavior"), "{e}");
            assert_eq!(Diagnostic::from(HandlerError::Engine(e)).error_type, "EngineUnavailable");
            assert!(!lazy.is_built());
        }
    }

    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// Each source's payload reads into its own type, whatever order the shapes are tried in; a
    /// payload of no known shape is refused.
    #[test]
    fn every_payload_reads_into_its_own_type() {
        assert!(matches!(Invocation::read(sample("task.redrive")), Ok(Invocation::Task { task: Task::Redrive })));
        let Ok(Invocation::Scheduled(e)) = Invocation::read(sample("scheduled.daily_sweep")) else { panic!("a scheduled event") };
        assert_eq!((e.detail_type.as_str(), e.time.map(|t| t.to_rfc3339())), ("Scheduled Event", Some("2026-04-09T22:05:00+00:00".into())));
        for timer in ["timer.call_attempt", "timer.expiry_day1", "timer.held_sms"] {
            assert!(matches!(Invocation::read(sample(timer)), Ok(Invocation::TimerRef(_))), "{timer}");
        }
        let spec = TimerSpec {
            timer: serde_json::from_value(sample("timer.call_attempt")).unwrap(),
            due_at: Utc::now(),
            playbook: Some(followup::domain::records::case::PlaybookName::CancellationFollowUp),
        };
        assert!(matches!(Invocation::read(serde_json::to_value(&spec).unwrap()), Ok(Invocation::Timer(s)) if s == spec));
        let request = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/v1/cases/o1-O-1", "rawQueryString": "",
            "requestContext": {"http": {"method": "GET", "path": "/v1/cases/o1-O-1", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                               "routeKey": "$default", "stage": "$default", "requestId": "r", "accountId": "1", "apiId": "a",
                               "domainName": "d", "domainPrefix": "d", "time": "02/Mar/2026:08:00:00 +0000", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        assert!(matches!(Invocation::read(request), Ok(Invocation::Http(_))));
        assert!(matches!(Invocation::read(json!({"hello": 1})), Err(HandlerError::UnknownEvent(_))));
        assert!(matches!(Invocation::read(json!({"task": "compact"})), Err(HandlerError::UnknownEvent(_))));
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("followup-lambda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// R9.6 (v3): a path of the API asked with any method it does not serve, `TRACE`, `QUERY`,
    /// `HEAD` and extension methods included, is a 405 whose `Allow` names what it serves, with
    /// the error body; a path that does not exist is a 404 without `Allow`.
    #[test]
    fn r9_6_a_method_a_path_does_not_serve_is_405_with_allow() {
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "CONNECT", "QUERY", "PURGE"];
        let paths = [
            ("/v1/appointments", "POST"),
            ("/v1/cancellations", "POST"),
            ("/v1/calls", "POST"),
            ("/v1/packages/", "POST"),
            ("/v1/cases", "GET"),
            ("/v1/cases/o1-O-501", "GET"),
        ];
        for (path, served) in paths {
            for method in methods.into_iter().filter(|m| *m != served) {
                let out = unmatched(method, path);
                let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
                assert_eq!((out["statusCode"].as_u64(), out["headers"]["allow"].as_str()), (Some(405), Some(served)), "{method} {path}");
                assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}: {body}");
                assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(method)), "{body}");
                assert!(["field", "rule"].iter().all(|k| body["error"].get(k).is_some()), "the SPEC §5 error body: {body}");
                assert_eq!(wire::unmatched(method, path).status, 405, "wire::unmatched agrees: {method} {path}");
            }
        }
        for (method, path) in
            [("GET", "/v2/nothing"), ("TRACE", "/v1/cases/a/b"), ("QUERY", ""), ("GET", "/local/sms"), ("POST", "/v1/appointment")]
        {
            let out = unmatched(method, path);
            let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
            assert_eq!((out["statusCode"].as_u64(), body["error"]["code"].as_str()), (Some(404), Some("not_found")), "{method} {path}");
            assert!(out["headers"].get("allow").is_none(), "{out}");
        }
        // A webhook route asked of a function that does not own it: API Gateway never sends one.
        assert_eq!(unmatched("POST", "/v1/calls")["statusCode"], 404);
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            query_pairs("appointment_id=A%201&x=y+z"),
            [("appointment_id".to_string(), "A 1".to_string()), ("x".into(), "y z".into())]
        );
        assert_eq!(percent_decode("o1-O%2F1"), "o1-O/1");
        assert_eq!(percent_decode("bad%2"), "bad%2");
        assert_eq!(percent_decode("o1-A+B"), "o1-A+B", "a plus in a path is a plus, as followup-local reads it");
    }
}
