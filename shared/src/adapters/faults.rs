//! Fault injection: wrappers around each port that fail a share of calls with every kind of error
//! an adapter can see, to prove the engine loses and doubles nothing when the world misbehaves.
//!
//! The kinds: `Transient` (the call did nothing and says so), `Throttled` (the service refused
//! it for now), `Timeout` (the call *was* carried out, but its answer was lost: the caller sees an
//! error and will repeat a call that already happened) and `Permanent` (the call did nothing and
//! says it never will; effects stay pending and are tried again by the re-driver). Used by the
//! fault tests over the SQLite adapters, and one layer down ([`http`]) in the AWS SDK's HTTP
//! client, so that the SDK's own retry layer is part of what the AWS fault test exercises.

use crate::domain::effects::{Command, Sms, TimerRef, TimerSpec};
use crate::domain::subjects::snapshot::{Snapshot, SubjectKey};
use crate::ports::{CaseStore, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, SmsSender, StoreError, Timers};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One kind of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Transient,
    Throttled,
    /// Done, but the answer was lost.
    Timeout,
    Permanent,
}

/// How often to fail, shared by every wrapped port, with what each injected.
#[derive(Debug)]
pub struct Faults {
    /// Failures per 1,000 calls.
    per_mille: u64,
    state: AtomicU64,
    counts: [AtomicU64; 4],
    calls: AtomicU64,
}

impl Faults {
    /// Fails about `percent` % of calls, pseudo-randomly from `seed` (reproducible).
    pub fn new(percent: u64, seed: u64) -> Arc<Faults> {
        Arc::new(Faults { per_mille: percent * 10, state: AtomicU64::new(seed | 1), counts: Default::default(), calls: AtomicU64::new(0) })
    }

    /// No more failures from now on (to let a run settle).
    pub fn stop(&self) {
        self.state.store(0, Ordering::SeqCst);
    }

    /// The fault for this call, if any.
    fn draw(&self) -> Option<Fault> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // xorshift64*, one step per call: cheap and good enough to spread the faults.
        let next = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |x| {
                (x != 0).then(|| {
                    let mut x = x;
                    x ^= x >> 12;
                    x ^= x << 25;
                    x ^= x >> 27;
                    x
                })
            })
            .ok()?;
        let r = next.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if r % 1_000 >= self.per_mille {
            return None;
        }
        let fault = [Fault::Transient, Fault::Throttled, Fault::Timeout, Fault::Permanent][((r >> 32) % 4) as usize];
        self.counts[fault as usize].fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// Faults injected so far, by kind, and calls seen.
    pub fn injected(&self) -> ([u64; 4], u64) {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        ([c(0), c(1), c(2), c(3)], self.calls.load(Ordering::Relaxed))
    }

    /// `injected` for a person: "243 injected in 2611 <calls> (transient 61, …)".
    pub fn summary(&self, calls_of: &str) -> String {
        let (k, calls) = self.injected();
        format!(
            "{} injected in {calls} {calls_of} (transient {}, throttled {}, timeout {}, permanent {})",
            k.iter().sum::<u64>(),
            k[0],
            k[1],
            k[2],
            k[3]
        )
    }
}

/// A port whose calls fail now and then, as `faults` draws.
#[derive(Debug, Clone)]
pub struct Faulty<P> {
    pub inner: P,
    pub faults: Arc<Faults>,
}

impl<P> Faulty<P> {
    pub fn new(inner: P, faults: &Arc<Faults>) -> Self {
        Faulty { inner, faults: Arc::clone(faults) }
    }
}

fn store_error(fault: Fault, what: &str) -> StoreError {
    StoreError::Unavailable(format!("injected {fault:?} in {what}"))
}

fn effect_error(fault: Fault, what: &str) -> EffectError {
    match fault {
        Fault::Permanent => EffectError::Permanent(format!("injected {fault:?} in {what}")),
        _ => EffectError::Transient(format!("injected {fault:?} in {what}")),
    }
}

/// Runs `call` unless a fault comes first; a `Timeout` runs it and then reports the failure.
macro_rules! faulty {
    ($self:ident, $what:literal, $err:ident, $call:expr) => {{
        match $self.faults.draw() {
            None => $call.await,
            Some(Fault::Timeout) => {
                let _ = $call.await;
                Err($err(Fault::Timeout, $what).into())
            }
            Some(fault) => Err($err(fault, $what).into()),
        }
    }};
}

impl<S: CaseStore> CaseStore for Faulty<S> {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        faulty!(self, "locate", store_error, self.inner.locate(subject))
    }
    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        faulty!(self, "load", store_error, self.inner.load(key))
    }
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        faulty!(self, "delivery", store_error, self.inner.delivery(id))
    }
    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        faulty!(self, "sms_counts", store_error, self.inner.sms_counts(phones, day))
    }
    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        faulty!(self, "commit", store_error, self.inner.commit(commit))
    }
    fn keeps_inputs(&self) -> bool {
        self.inner.keeps_inputs()
    }
    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        faulty!(self, "pending_effects", store_error, self.inner.pending_effects(limit))
    }
    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        faulty!(self, "effect_done", store_error, self.inner.effect_done(id))
    }
    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        faulty!(self, "subjects_with_prefix", store_error, self.inner.subjects_with_prefix(prefix))
    }
    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        faulty!(self, "overdue", store_error, self.inner.overdue(cutoff, limit))
    }
}

impl<T: Timers> Timers for Faulty<T> {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        faulty!(self, "place", effect_error, self.inner.place(timer))
    }
    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        faulty!(self, "cancel", effect_error, self.inner.cancel(timer))
    }
}

impl<M: SmsSender> SmsSender for Faulty<M> {
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        faulty!(self, "send", effect_error, self.inner.send(effect_id, sms))
    }
}

impl<C: CommandBus> CommandBus for Faulty<C> {
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        faulty!(self, "publish", effect_error, self.inner.publish(effect_id, command))
    }
}

#[cfg(feature = "aws")]
pub mod http {
    //! The same faults inside the AWS SDK's HTTP client, below its retry layer: an SDK client built
    //! on [`faulty_http_client`] sees dropped connections, throttling and refusals in each service's
    //! own wire protocol, and answers lost after the service did the work, and retries them as it
    //! would on AWS. What the SDK gives up on reaches the adapters as their usual errors.

    use super::{Fault, Faults};
    use aws_smithy_runtime_api::client::http::{http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector};
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// What the faulty client saw: faults injected, by `(service operation, kind)`, and the body of
    /// every SNS `Publish` that reached the service (form-encoded), in order.
    #[derive(Debug, Default)]
    pub struct Tally {
        pub faults: BTreeMap<(String, Fault), u64>,
        pub published: Vec<String>,
    }

    /// `inner` with `faults` injected into its calls, and what it saw.
    pub fn faulty_http_client(inner: SharedHttpClient, faults: &Arc<Faults>) -> (SharedHttpClient, Arc<Mutex<Tally>>) {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (faults, seen) = (Arc::clone(faults), Arc::clone(&tally));
        let client = http_client_fn(move |settings, components| {
            let inner = aws_smithy_runtime_api::client::http::HttpClient::http_connector(&inner, settings, components);
            SharedHttpConnector::new(FaultyConnector { inner, faults: Arc::clone(&faults), tally: Arc::clone(&seen) })
        });
        (client, tally)
    }

    #[derive(Debug)]
    struct FaultyConnector {
        inner: SharedHttpConnector,
        faults: Arc<Faults>,
        tally: Arc<Mutex<Tally>>,
    }

    impl FaultyConnector {
        /// Sends `request` on to the service.
        fn forward(&self, call: &Call, request: HttpRequest) -> HttpConnectorFuture {
            if call.operation == "SNS.Publish" {
                let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                self.tally.lock().unwrap_or_else(|p| p.into_inner()).published.push(body);
            }
            self.inner.call(request)
        }
    }

    impl HttpConnector for FaultyConnector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let call = Call::of(&request);
            let Some(fault) = self.faults.draw() else { return self.forward(&call, request) };
            *self.tally.lock().unwrap_or_else(|p| p.into_inner()).faults.entry((call.operation.clone(), fault)).or_default() += 1;
            match fault {
                Fault::Transient => HttpConnectorFuture::ready(Err(ConnectorError::io("connection reset by peer (injected)".into()))),
                Fault::Timeout => {
                    // The service does the work; its answer never arrives.
                    let sent = self.forward(&call, request);
                    HttpConnectorFuture::new(async move {
                        let _ = sent.await;
                        Err(ConnectorError::timeout("read timed out (injected)".into()))
                    })
                }
                Fault::Throttled | Fault::Permanent => HttpConnectorFuture::ready(Ok(call.refusal(fault))),
            }
        }
    }

    /// The wire protocols of the services the adapters call.
    #[derive(Debug, Clone, Copy)]
    enum Protocol {
        /// DynamoDB, Secrets Manager: `X-Amz-Target`, errors as `{"__type"}`.
        AwsJson,
        /// Scheduler: REST paths, errors in `X-Amzn-ErrorType`.
        RestJson,
        /// SNS: form bodies with `Action=`, errors as XML.
        AwsQuery,
    }

    struct Call {
        protocol: Protocol,
        operation: String,
    }

    impl Call {
        fn of(request: &HttpRequest) -> Call {
            if let Some(target) = request.headers().get("x-amz-target") {
                // "DynamoDB_20120810.PutItem" → "DynamoDB.PutItem"
                let (service, operation) = target.split_once('.').unwrap_or((target, "?"));
                let service = service.split('_').next().unwrap_or(service);
                return Call { protocol: Protocol::AwsJson, operation: format!("{service}.{operation}") };
            }
            let body = request.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
            if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
                return Call { protocol: Protocol::AwsQuery, operation: format!("SNS.{action}") };
            }
            let resource = request.uri().split("://").nth(1).and_then(|rest| rest.split('/').nth(1)).unwrap_or("?");
            Call { protocol: Protocol::RestJson, operation: format!("Scheduler.{} /{resource}", request.method()) }
        }

        /// The service's answer refusing the call: throttled (the SDK retries it) or invalid (it does not).
        fn refusal(&self, fault: Fault) -> HttpResponse {
            let throttled = fault == Fault::Throttled;
            let (status, content_type, code, body) = match self.protocol {
                Protocol::AwsJson => {
                    let code = if throttled { "ThrottlingException" } else { "ValidationException" };
                    (400, "application/x-amz-json-1.0", code, format!(r#"{{"__type":"{code}","message":"injected"}}"#))
                }
                Protocol::RestJson => {
                    let (status, code) = if throttled { (429, "ThrottlingException") } else { (400, "ValidationException") };
                    (status, "application/json", code, r#"{"Message":"injected"}"#.to_string())
                }
                Protocol::AwsQuery => {
                    let code = if throttled { "Throttling" } else { "InvalidParameter" };
                    let body = format!(
                        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected</Message></Error>\
                         <RequestId>injected</RequestId></ErrorResponse>"
                    );
                    (400, "text/xml", code, body)
                }
            };
            let mut response = HttpResponse::new(StatusCode::try_from(status).expect("a valid status"), SdkBody::from(body));
            response.headers_mut().insert("content-type", content_type);
            response.headers_mut().insert("x-amzn-errortype", code);
            response.headers_mut().insert("x-amzn-requestid", "injected");
            response
        }
    }
}
