//! The adapter contract against the AWS adapters (DynamoDB, Scheduler, SNS) on a local moto
//! server, plus what only the AWS side has: delivery expiry, schedule targets and the cost of
//! a webhook in DynamoDB calls.
#![cfg(feature = "aws")]

#[macro_use]
#[path = "common/contract.rs"]
mod contract;
#[path = "common/moto.rs"]
mod moto;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use contract::*;
use followup::adapters::aws::{AwsPorts, DynamoStore, SchedulerTimers, SnsCommands, SnsSms};
use followup::domain::effects::{Command, Effect, Sms, TimerRef, TimerSpec};
use followup::domain::policy::Policy;
use followup::domain::records::case::TimerKind;
use followup::domain::subjects::snapshot::SubjectKey;
use followup::engine::Engine;
use followup::ports::{
    CaseStore, Clock, CommandBus, Commit, CommitError, Delivery, EffectError, PendingEffect, SmsSender, StoreError, Timers,
};
use followup::wire::{self, Route};
use moto::{serial, Fixture};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Every AWS adapter over one fixture, so the generic contract sees one implementation.
struct Aws {
    fixture: Fixture,
    store: DynamoStore,
    timers: SchedulerTimers,
    sms: SnsSms,
    commands: SnsCommands,
}

impl Aws {
    async fn new(name: &str) -> Aws {
        let fixture = Fixture::new(name).await;
        Aws { store: fixture.store(), timers: fixture.timers(), sms: fixture.sms(), commands: fixture.commands(), fixture }
    }
}

impl CaseStore for Aws {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        self.store.locate(subject).await
    }
    async fn load(&self, key: &SubjectKey) -> Result<Option<followup::domain::subjects::snapshot::Snapshot>, StoreError> {
        self.store.load(key).await
    }
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.store.delivery(id).await
    }
    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        self.store.sms_counts(phones, day).await
    }
    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        self.store.commit(commit).await
    }
    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        self.store.pending_effects(limit).await
    }
    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        self.store.effect_done(id).await
    }
    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        self.store.subjects_with_prefix(prefix).await
    }
    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        self.store.overdue(cutoff, limit).await
    }
}

impl Timers for Aws {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        self.timers.place(timer).await
    }
    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        self.timers.cancel(timer).await
    }
}

impl SmsSender for Aws {
    async fn send(&self, effect_id: &str, sms: &Sms) -> Result<(), EffectError> {
        self.sms.send(effect_id, sms).await
    }
}

impl CommandBus for Aws {
    async fn publish(&self, effect_id: &str, command: &Command) -> Result<(), EffectError> {
        self.commands.publish(effect_id, command).await
    }
}

impl Probe for Aws {
    /// Each schedule's Input is the TimerSpec exactly; firing order is due time, then placement.
    async fn all_timers(&self) -> Vec<TimerSpec> {
        let mut timers: Vec<TimerSpec> = self
            .fixture
            .schedules()
            .await
            .into_iter()
            .map(|(_, _, input)| serde_json::from_str(&input).expect("Input is a TimerSpec"))
            .collect();
        timers.sort_by_key(|t| t.due_at);
        timers
    }
    async fn sent_sms(&self) -> Vec<Delivered> {
        moto::sent_sms().await.into_iter().map(|(to, body)| Delivered { to, body }).collect()
    }
    async fn published(&self) -> Vec<Command> {
        self.fixture.ops_messages().await.iter().map(|m| serde_json::from_str(m).expect("a command")).collect()
    }
}

macro_rules! run_against_aws {
    ($($name:ident),+ $(,)?) => {
        mod on_moto {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let _one_at_a_time = serial().await;
                    let aws = Aws::new(stringify!($name)).await;
                    super::$name(&aws).await;
                }
            )+
        }
    };
}

every_contract!(run_against_aws);

// ---- AWS specifics ------------------------------------------------------------

#[tokio::test]
async fn an_expired_delivery_no_longer_counts_as_a_repeat() {
    let _one_at_a_time = serial().await;
    let f = Fixture::new("expiry").await;
    let expired = f.store().with_delivery_ttl(Duration::seconds(-1));
    let mut s1 = followup::domain::subjects::snapshot::Snapshot::order("O1");
    s1.version = 1;
    let d = Delivery { id: "d1".into(), body_hash: "h".into(), case_id: None, accepted_at: Utc::now() };
    let c = |stream, expected| Commit {
        stream,
        expected_version: expected,
        delivery: d.clone(),
        index: vec![],
        effects: vec![],
        sms_counts: vec![],
        received: None,
    };
    expired.commit(c(s1.clone(), None)).await.expect("commit");
    assert_eq!(expired.delivery("d1").await.expect("delivery"), None, "past its expiry a record reads as absent");
    let mut s2 = s1.clone();
    s2.version = 2;
    f.store().commit(c(s2, Some(1))).await.expect("an expired record does not block the same id");
    assert_eq!(f.store().delivery("d1").await.expect("delivery").map(|d| d.id), Some("d1".into()));
}

#[tokio::test]
async fn the_stream_doc_is_stored_packed_and_an_unpacked_one_still_reads() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let _one_at_a_time = serial().await;
    let f = Fixture::new("packed").await;
    let store = f.store();
    let mut s1 = followup::domain::subjects::snapshot::Snapshot::order("O1");
    s1.version = 1;
    let d = Delivery { id: "d1".into(), body_hash: "h".into(), case_id: None, accepted_at: Utc::now() };
    store
        .commit(Commit {
            stream: s1.clone(),
            expected_version: None,
            delivery: d,
            index: vec![],
            effects: vec![],
            sms_counts: vec![],
            received: None,
        })
        .await
        .expect("commit");
    let key = |k: &str| AttributeValue::S(k.into());
    let item = store.client().get_item().table_name(store.table()).key("PK", key("S#order:O1")).key("SK", key("STREAM")).send().await;
    let item = item.expect("get").item.expect("the stream item");
    let Some(AttributeValue::B(packed)) = item.get("docz") else { panic!("no packed doc: {item:?}") };
    let json = serde_json::to_string(&s1).unwrap();
    assert_eq!(followup::adapters::packed::unpack(packed.as_ref()).unwrap(), json);
    assert!(!item.contains_key("doc"));
    assert_eq!(store.load(&s1.key).await.expect("load"), Some(s1.clone()));

    // An item written before packing holds the JSON as text.
    let mut s2 = s1.clone();
    s2.version = 2;
    let mut legacy = item.clone();
    legacy.remove("docz");
    legacy.insert("doc".into(), AttributeValue::S(serde_json::to_string(&s2).unwrap()));
    legacy.insert("version".into(), AttributeValue::N("2".into()));
    store.client().put_item().table_name(store.table()).set_item(Some(legacy)).send().await.expect("put legacy");
    assert_eq!(store.load(&s1.key).await.expect("load"), Some(s2));
}

#[tokio::test]
async fn a_commits_effects_ride_on_its_delivery_record_which_never_expires_while_they_are_pending() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let _one_at_a_time = serial().await;
    let f = Fixture::new("ride").await;
    let store = f.store();
    let key = order("O1");
    let fx = vec![Effect::SendSms(sms("one")), Effect::Emit(call_customer("o1-O1"))];
    store.commit(commit(stream_at(&key, 1), None, "d1", &[], fx)).await.expect("commit");
    let get = |pk: &str| {
        let k = |v: &str| AttributeValue::S(v.into());
        store.client().get_item().table_name(store.table()).key("PK", k(pk)).key("SK", k("DELIVERY")).send()
    };
    let item = get("D#d1").await.expect("get").item.expect("the delivery record");
    assert!(item.contains_key("pending") && item.contains_key("effects"), "{item:?}");
    assert!(!item.contains_key("expires_at"), "TTL must not take pending effects");
    // The earlier layout's per-effect items are still re-driven and marked done.
    let legacy = Effect::SendSms(sms("from before"));
    let legacy_item = [
        ("PK", AttributeValue::S("E#order:O0@1#0".into())),
        ("SK", AttributeValue::S("EFFECT".into())),
        ("doc", AttributeValue::S(serde_json::to_string(&legacy).unwrap())),
        ("pending", AttributeValue::S("P".into())),
        ("pending_order", AttributeValue::S("000000000000000#order:O0".into())),
    ];
    let mut put = store.client().put_item().table_name(store.table());
    for (name, value) in legacy_item {
        put = put.item(name, value);
    }
    put.send().await.expect("put a legacy effect");
    assert_eq!(ids(&store.pending_effects(10).await.expect("pending")), ["order:O0@1#0", "d1#0", "d1#1"]);

    store.effects_done(&["d1#0", "d1#1", "order:O0@1#0"]).await.expect("done");
    assert!(store.pending_effects(10).await.expect("pending").is_empty());
    let item = get("D#d1").await.expect("get").item.expect("the delivery record");
    assert!(item.contains_key("expires_at") && !item.contains_key("pending"), "{item:?}");
}

#[tokio::test]
async fn a_schedule_targets_the_owning_function_with_the_timer_as_input() {
    let _one_at_a_time = serial().await;
    let f = Fixture::new("targets").await;
    let timers = f.timers();
    let due = DateTime::parse_from_rfc3339("2026-03-03T07:00:00Z").unwrap().with_timezone(&Utc);
    let spec = |stream: SubjectKey, playbook: Option<&str>, kind| TimerSpec {
        timer: TimerRef { stream, case_id: None, kind, step: 1 },
        due_at: due,
        playbook: playbook.map(|p| p.parse().expect("a playbook name")),
    };
    let placed = [
        spec(SubjectKey::Order("O1".into()), Some("cancellation_follow_up"), TimerKind::CallAttempt),
        spec(SubjectKey::Package("P1".into()), Some("package_payment"), TimerKind::CallAttempt),
        spec(SubjectKey::Package("P1".into()), None, TimerKind::AutoClose),
    ];
    for t in &placed {
        timers.place(t).await.expect("place");
    }
    let got = f.schedules().await;
    let targets = moto::targets();
    let expected = [&targets.cancellation_request, &targets.package_payment, &targets.package_expiry];
    for (t, want) in placed.iter().zip(expected) {
        let (_, arn, input) = got.iter().find(|(_, _, i)| serde_json::from_str::<TimerSpec>(i).unwrap() == *t).expect("placed");
        assert_eq!(arn, want);
        assert_eq!(input, &serde_json::to_string(t).unwrap(), "the Input is the TimerSpec JSON exactly");
    }
    let sch = aws_sdk_scheduler::Client::new(&f.config);
    let one = sch.get_schedule().group_name(&f.group).name(placed[0].timer.name()).send().await.expect("GetSchedule");
    // Due in the past (the sample date): placed a minute ahead rather than never firing.
    let expression = one.schedule_expression().expect("expression");
    assert!(
        expression.starts_with("at(") && expression.as_bytes()[3..7] >= *Utc::now().format("%Y").to_string().as_bytes(),
        "{expression}"
    );
    assert_eq!(one.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(one.flexible_time_window().map(|w| w.mode().as_str()), Some("OFF"));
    let target = one.target().expect("target");
    assert_eq!(target.role_arn(), f.role_arn);
    assert_eq!(target.dead_letter_config().and_then(|d| d.arn()), Some(f.dlq_arn.as_str()));
    assert!(target.retry_policy().and_then(|r| r.maximum_retry_attempts()).is_some());
}

/// Counts DynamoDB calls by operation (the `X-Amz-Target` of each request sent).
#[derive(Debug, Clone, Default)]
struct CallCounter(Arc<Mutex<Vec<String>>>);

impl aws_sdk_dynamodb::config::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }
    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let op = ctx.request().headers().get("x-amz-target").unwrap_or_default();
        self.0.lock().unwrap().push(op.rsplit('.').next().unwrap_or(op).to_string());
        Ok(())
    }
}

impl CallCounter {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct FixedClock(DateTime<Utc>);
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"))).expect("sample event")
}

#[tokio::test]
async fn a_webhook_costs_one_read_and_one_transaction_on_the_happy_path() {
    let _one_at_a_time = serial().await;
    let counter = CallCounter::default();
    let f = Fixture::with_dynamo("cost", |b| b.interceptor(counter.clone())).await;
    let policy = Policy::default();
    let engine = Engine::<AwsPorts<FixedClock>> {
        store: f.store(),
        timers: f.timers(),
        sms: f.sms(),
        commands: f.commands(),
        clock: FixedClock(DateTime::parse_from_rfc3339("2026-03-02T10:00:00+02:00").unwrap().with_timezone(&Utc)),
        policy: Arc::new(policy),
        secret: "s".into(),
        locks: Default::default(),
    };
    let post = |route: Route, body: Vec<u8>| {
        let engine = &engine;
        async move {
            let ts = Utc::now().timestamp();
            let sig = wire::sign("s", ts, &body);
            engine.webhook(route, Some(&ts.to_string()), Some(&sig), &body, ts).await
        }
    };
    let reads = |calls: &[String]| calls.iter().filter(|c| matches!(c.as_str(), "GetItem" | "Query" | "BatchGetItem" | "Scan")).count();
    let transactions = |calls: &[String]| calls.iter().filter(|c| c.as_str() == "TransactWriteItems").count();

    // A booking opens a new order stream: one read (absent), one transaction.
    let r = post(Route::Appointments, sample("01_appointment.booked")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let calls = counter.take();
    assert_eq!((reads(&calls), transactions(&calls)), (1, 1), "appointment.booked: {calls:?}");

    // Given the cancelled first visit (its follow-up case o1-O-501 opens)…
    let r = post(Route::Cancellations, sample("05_appointment.cancelled")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    counter.take();

    // …when the call outcome arrives: one read of the stream (the case id names it), one transaction.
    let r = post(Route::Calls, sample("07_call.completed")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let calls = counter.take();
    assert_eq!((reads(&calls), transactions(&calls)), (1, 1), "call.completed: {calls:?}");

    // The same delivery again: the commit's condition catches it, then one read of the first record.
    let r = post(Route::Calls, sample("07_call.completed")).await;
    assert_eq!((r.status, r.body["duplicate"].clone()), (202, serde_json::json!(true)), "{}", r.body);
    let calls = counter.take();
    assert_eq!((reads(&calls), transactions(&calls)), (2, 1), "repeat: {calls:?}");

    // A package event: the package id names its stream directly, so the same cost.
    let r = post(Route::Packages, sample("09_package.booked")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let calls = counter.take();
    assert_eq!((reads(&calls), transactions(&calls)), (1, 1), "package.booked: {calls:?}");

    // A refusal (R7.2-style rule errors aside, here an unknown case) writes nothing.
    let r = post(Route::Calls, br#"{"id":"evt-x","type":"call.completed","occurred_at":"2026-03-02T10:00:00+02:00","data":{"case_id":"o9-O-404","call_id":"K9","agent_id":"a","outcome":"busy"}}"#.to_vec()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let calls = counter.take();
    assert_eq!(transactions(&calls), 0, "a refusal stores nothing: {calls:?}");
    assert!(!calls.iter().any(|c| c == "Scan"));
}

#[tokio::test]
async fn an_effect_another_invocation_is_sending_stays_pending_until_it_is_sent() {
    let _one_at_a_time = serial().await;
    let f = Fixture::new("inflight").await;
    let store = f.store();
    let sms = sms("hello from an in-flight send");
    let doc = serde_json::to_string(&sms).unwrap();
    // Another invocation claimed the send a moment ago and is publishing.
    let dynamo = store.client();
    dynamo
        .put_item()
        .table_name(store.table())
        .item("PK", aws_sdk_dynamodb::types::AttributeValue::S("O#sms#e1".into()))
        .item("SK", aws_sdk_dynamodb::types::AttributeValue::S("SENT".into()))
        .item("status", aws_sdk_dynamodb::types::AttributeValue::S("SENDING".into()))
        .item("doc", aws_sdk_dynamodb::types::AttributeValue::S(doc))
        .item("claimed_ms", aws_sdk_dynamodb::types::AttributeValue::N(Utc::now().timestamp_millis().to_string()))
        .send()
        .await
        .expect("claim");
    assert!(matches!(f.sms().send("e1", &sms).await, Err(EffectError::Transient(_))), "a fresh claim is left to its owner");
    assert!(moto::sent_sms().await.iter().all(|(_, body)| body != "hello from an in-flight send"));

    // The same claim, older than the lease: its owner is gone, so this sender takes over, once.
    let stale = Utc::now() - followup::adapters::aws::SEND_LEASE - Duration::seconds(1);
    dynamo
        .update_item()
        .table_name(store.table())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("O#sms#e1".into()))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("SENT".into()))
        .update_expression("SET claimed_ms = :ms")
        .expression_attribute_values(":ms", aws_sdk_dynamodb::types::AttributeValue::N(stale.timestamp_millis().to_string()))
        .send()
        .await
        .expect("age the claim");
    f.sms().send("e1", &sms).await.expect("a stale claim is taken over");
    f.sms().send("e1", &sms).await.expect("a sent SMS is dropped");
    assert_eq!(moto::sent_sms().await.iter().filter(|(_, body)| body == "hello from an in-flight send").count(), 1);
}

/// Every DynamoDB request sent, as the IAM actions it needs: one per request, and one per item of
/// a `TransactWriteItems` (IAM has no action of its own for it: each `Put` needs `PutItem`, each
/// `Update` `UpdateItem`), with the index it reads (none: the table) and the item's `PK`.
#[derive(Debug, Clone, Default)]
struct ActionLog(Arc<Mutex<Vec<Action>>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Action {
    operation: String,
    action: String,
    index: Option<String>,
    pk: Option<String>,
}

impl aws_sdk_dynamodb::config::Intercept for ActionLog {
    fn name(&self) -> &'static str {
        "ActionLog"
    }
    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_string();
        let body: serde_json::Value = serde_json::from_slice(ctx.request().body().bytes().unwrap_or_default()).unwrap_or_default();
        let pk = |v: &serde_json::Value| v.get("Key").or(v.get("Item")).and_then(|i| i["PK"]["S"].as_str()).map(str::to_owned);
        let mut log = self.0.lock().unwrap();
        match body["TransactItems"].as_array() {
            Some(items) if operation == "TransactWriteItems" => {
                for item in items {
                    let (kind, detail) = item.as_object().and_then(|o| o.iter().next()).expect("one action per item");
                    let action = match kind.as_str() {
                        "ConditionCheck" => "dynamodb:ConditionCheckItem".to_string(),
                        other => format!("dynamodb:{other}Item"),
                    };
                    log.push(Action { operation: operation.clone(), action, index: None, pk: pk(detail) });
                }
            }
            _ => {
                let index = body["IndexName"].as_str().map(str::to_owned);
                log.push(Action { action: format!("dynamodb:{operation}"), operation, index, pk: pk(&body) });
            }
        }
        Ok(())
    }
}

impl ActionLog {
    fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// SPEC §4 (v3): a decision that sends an SMS reads its number's daily count (one consistent
/// `GetItem` of `C#<phone>#<local day>`) and writes it in the same `TransactWriteItems` as the
/// snapshot; and every DynamoDB action a webhook function takes for it, the counter's included,
/// is one the grants every webhook function composes (`READS`, `WRITES`) declare, which
/// `infra/test_template.py` holds `template.yaml` to.
#[tokio::test]
async fn an_sms_decision_counts_its_number_in_its_own_transaction_with_granted_actions_only() {
    use followup::adapters::aws::grants::{Grant, Resource, READS, WRITES};
    let _one_at_a_time = serial().await;
    let log = ActionLog::default();
    let f = Fixture::with_dynamo("sms-count", |b| b.interceptor(log.clone())).await;
    log.take(); // the fixture's own CreateTable
    let engine = Engine::<AwsPorts<FixedClock>> {
        store: f.store(),
        timers: f.timers(),
        sms: f.sms(),
        commands: f.commands(),
        clock: FixedClock(DateTime::parse_from_rfc3339("2026-03-02T10:00:00+02:00").unwrap().with_timezone(&Utc)),
        policy: Arc::new(Policy::default()),
        secret: "s".into(),
        locks: Default::default(),
    };
    let post = |route: Route, body: Vec<u8>| {
        let engine = &engine;
        async move {
            let ts = Utc::now().timestamp();
            let sig = wire::sign("s", ts, &body);
            engine.webhook(route, Some(&ts.to_string()), Some(&sig), &body, ts).await
        }
    };
    let phone = "+201001234567";
    let counter = format!("C#{phone}#2026-03-02");
    let r = post(Route::Appointments, sample("01_appointment.booked")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let booked = log.take();
    assert!(booked.iter().all(|a| a.pk.as_deref() != Some(&counter)), "a decision that sends nothing reads no counter: {booked:?}");

    // R7.3 the move is confirmed by SMS: the counter is read, then written with the snapshot.
    let r = post(Route::Appointments, sample("04_appointment.rescheduled")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let moved = log.take();
    let on_counter: Vec<(&str, &str)> =
        moved.iter().filter(|a| a.pk.as_deref() == Some(&counter)).map(|a| (a.operation.as_str(), a.action.as_str())).collect();
    assert_eq!(on_counter, [("GetItem", "dynamodb:GetItem"), ("TransactWriteItems", "dynamodb:PutItem")], "{moved:?}");
    let stream_in = |a: &Action| a.operation == "TransactWriteItems" && a.pk.as_deref() == Some("S#order:O-501");
    assert!(moved.iter().any(stream_in), "the counter rides in the snapshot's transaction: {moved:?}");
    assert_eq!(moved.iter().filter(|a| a.operation == "TransactWriteItems").count(), 3, "stream, delivery, counter: {moved:?}");
    assert_eq!(moto::sent_sms().await.iter().filter(|(to, _)| to == phone).count(), 1);
    let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    assert_eq!(f.store().sms_counts(&[phone.to_string()], day).await.expect("counts"), counts(&[(phone, 1)]));

    // The counter expires after its day (TTL on `expires_at`), whatever the clock that decided.
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.into());
    let item = f.dynamo.get_item().table_name(&f.table).key("PK", key(&counter)).key("SK", key("SMS_COUNT")).send().await;
    let item = item.expect("GetItem").item.expect("the counter item");
    let expires: i64 = item["expires_at"].as_n().expect("expires_at").parse().unwrap();
    assert!(expires >= Utc::now().timestamp() + 86_400, "{item:?}");

    let granted: Vec<Grant> = [READS, WRITES].concat();
    for a in booked.iter().chain(&moved) {
        let resource = match a.index.as_deref() {
            None => Resource::Table,
            Some(index) => panic!("a webhook reads no index: {a:?} ({index})"),
        };
        assert!(granted.iter().any(|g| g.action == a.action && g.resource == resource), "{a:?} is not declared in READS or WRITES");
    }
}
