//! Fault injection on the AWS adapters, on moto. Every HTTP call the SDK makes for the engine goes
//! through a client that fails 10 % of them (a dropped connection, throttling in the service's own
//! protocol, an answer lost after the service did the work, a refusal), below the SDK's retry
//! layer: the SDK retries what it would retry on AWS (standard mode, 3 attempts, as the functions
//! run; only the back-off is shortened), and what it gives up on reaches the engine. The
//! workload of the SQLite fault test runs through the Lambda handler: webhooks as API Gateway
//! requests (5xx is sent again, as the dashboard does), timers as Scheduler invokes them (an
//! error is retried, as Scheduler does), and the 5-minute re-drive rule.
//!
//! Afterwards nothing is pending, every open case waits on schedules that exist, every SMS and
//! command went out, and a send went out twice only where the SDK repeated a `Publish` whose
//! answer was lost (the at-least-once window; counted and printed, with the faults and retries).

#[path = "../../../shared/tests/common/moto.rs"]
mod moto;
#[path = "../../../shared/tests/common/workload.rs"]
mod workload;

use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use followup::adapters::aws::{SnsCommands, SnsSms};
use followup::adapters::faults::http::{faulty_http_client, Tally};
use followup::adapters::faults::{Fault, Faults};
use followup::domain::effects::{Sms, TimerSpec};
use followup::domain::policy::Policy;
use followup::domain::subjects::snapshot::SubjectKey;
use followup::ports::{CaseStore, Clock};
use followup::wire::Route;
use followup_lambda::{engine, handle, AwsEngine, Function};
use moto::{serial, Fixture};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "fault-secret";
const LEASE: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);
impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Run {
    f: Fixture,
    e: AwsEngine<TestClock>,
    clock: TestClock,
    retries: u64,
    seq: u64,
    /// Each schedule's target and Input, by name.
    inputs: BTreeMap<String, (String, String)>,
}

fn function_of(route: Route) -> Function {
    match route {
        Route::Appointments => Function::Appointments,
        Route::Cancellations => Function::CancellationRequest,
        Route::Calls => Function::CallAttempt,
        Route::Packages => Function::PackagePayment,
    }
}

impl Run {
    /// Posts through API Gateway like a sender that retries until it gets an answer other than 5xx.
    async fn post(&mut self, route: Route, mut envelope: Value) -> u16 {
        self.seq += 1;
        envelope["id"] = json!(format!("d-{}", self.seq));
        envelope["occurred_at"] = json!(self.clock.now().to_rfc3339());
        let body = envelope.to_string();
        for _ in 0..50 {
            let ts = Utc::now().timestamp();
            let sig = followup_lambda::sign(SECRET, ts, body.as_bytes());
            let request = json!({
                "version": "2.0", "routeKey": format!("POST {}", route.path()), "rawPath": route.path(), "rawQueryString": "",
                "headers": {"content-type": "application/json", "x-timestamp": ts.to_string(), "x-signature": sig},
                "requestContext": {"http": {"method": "POST", "path": route.path(), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                            "userAgent": "test"}, "routeKey": format!("POST {}", route.path()), "stage": "$default",
                                   "requestId": "r", "accountId": moto::ACCOUNT, "apiId": "api", "domainName": "example.invalid",
                                   "domainPrefix": "example", "time": "02/Mar/2026:08:00:00 +0000", "timeEpoch": 0},
                "body": body, "isBase64Encoded": false,
            });
            let reply = handle(&self.e, function_of(route), request).await.expect("an HTTP answer");
            let status = reply["statusCode"].as_u64().expect("statusCode") as u16;
            if status < 500 {
                return status;
            }
            self.retries += 1;
        }
        panic!("{envelope} never got through")
    }

    /// Plays Scheduler: invokes each schedule due by `upto` with its Input until the function
    /// succeeds (Scheduler's retry policy), then deletes it (ActionAfterCompletion: DELETE).
    async fn pump(&mut self, upto: DateTime<Utc>) {
        let targets = moto::targets();
        let scheduler = aws_sdk_scheduler::Client::new(&self.f.config);
        // Each schedule is read once (its Input never changes); a listing per step finds the new ones.
        let mut names = BTreeSet::new();
        let mut next = None;
        loop {
            let page = scheduler.list_schedules().group_name(&self.f.group).set_next_token(next).send().await.expect("ListSchedules");
            names.extend(page.schedules().iter().filter_map(|s| s.name().map(str::to_owned)));
            next = page.next_token;
            if next.is_none() {
                break;
            }
        }
        self.inputs.retain(|name, _| names.contains(name));
        for name in names {
            if !self.inputs.contains_key(&name) {
                let got = scheduler.get_schedule().group_name(&self.f.group).name(&name).send().await.expect("GetSchedule");
                let target = got.target().expect("a target");
                self.inputs.insert(name, (target.arn().to_string(), target.input().expect("Input").to_string()));
            }
        }
        let mut due: Vec<(TimerSpec, String, String)> = self
            .inputs
            .values()
            .map(|(arn, input)| (serde_json::from_str::<TimerSpec>(input).expect("Input"), arn.clone(), input.clone()))
            .filter(|(t, _, _)| t.due_at <= upto)
            .collect();
        due.sort_by_key(|(t, _, _)| t.due_at);
        for (timer, arn, input) in due {
            let function = match arn.as_str() {
                a if a == targets.appointments => Function::Appointments,
                a if a == targets.cancellation_request => Function::CancellationRequest,
                a if a == targets.package_payment => Function::PackagePayment,
                a if a == targets.package_expiry => Function::PackageExpiry,
                other => panic!("a schedule targets {other}"),
            };
            *self.clock.0.lock().unwrap() = timer.due_at.max(self.clock.now());
            let mut tries = 0;
            while handle(&self.e, function, serde_json::from_str(&input).unwrap()).await.is_err() {
                self.retries += 1;
                tries += 1;
                assert!(tries < 50, "{} never succeeded", timer.timer.name());
            }
            // A schedule the engine cancelled meanwhile is gone already.
            let _ = scheduler.delete_schedule().group_name(&self.f.group).name(timer.timer.name()).send().await;
        }
        *self.clock.0.lock().unwrap() = upto.max(self.clock.now());
    }

    /// The 5-minute rule: pending effects re-driven, lost timers swept. A failed run is the next one's work.
    async fn redrive(&mut self) {
        if handle(&self.e, Function::PackageExpiry, json!({"task": "redrive"})).await.is_err() {
            self.retries += 1;
        }
    }
}

/// Every item of the table whose key starts with `prefix`, read without faults.
async fn items(f: &Fixture, prefix: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = f
            .dynamo
            .scan()
            .table_name(&f.table)
            .filter_expression("begins_with(PK, :p)")
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .set_exclusive_start_key(next)
            .send()
            .await
            .expect("Scan");
        out.extend(page.items.unwrap_or_default());
        next = page.last_evaluated_key;
        if next.is_none() {
            return out;
        }
    }
}

fn text(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_else(|| panic!("{name} in {item:?}"))
}

fn tally_of(tally: &Mutex<Tally>, pick: impl Fn(&str, Fault) -> bool) -> u64 {
    tally.lock().unwrap().faults.iter().filter(|((op, kind), _)| pick(op, *kind)).map(|(_, n)| n).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_ten_percent_faults_in_every_aws_call_every_effect_happens_and_no_case_is_stuck() {
    let _one = serial().await;
    let f = Fixture::new("faults").await;
    let faults = Faults::new(10, 0xfa17);
    let (http, tally) = faulty_http_client(followup::adapters::aws::https_client(), &faults);
    // The functions' SDK retry settings (standard, 3 attempts); a short back-off keeps the test quick.
    let retry = RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(5));
    let config = f.config.to_builder().http_client(http).retry_config(retry).build();
    let settings = f.settings();
    let start = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+02:00").unwrap().with_timezone(&Utc);
    let clock = TestClock(Arc::new(Mutex::new(start)));
    let mut e = engine(&settings, &config, Policy::default(), SECRET.into(), clock.clone());
    // A send whose outcome is unknown holds its claim for the lease; a short one is waited out below.
    let log = e.store.clone().with_send_lease(chrono::Duration::from_std(LEASE).unwrap());
    let sns = aws_sdk_sns::Client::new(&config);
    e.sms = SnsSms::new(sns.clone(), log.clone(), e.policy.sms.sender_id.clone());
    e.commands = SnsCommands::new(sns, log, &settings.ops_topic_arn, e.policy.calendar.clone());
    let mut run = Run { f, e, clock, retries: 0, seq: 0, inputs: BTreeMap::new() };

    let mut accepted = 0;
    for (route, envelope) in workload::workload(start) {
        if run.post(route, envelope).await == 202 {
            accepted += 1;
        }
    }
    for step in 1..=workload::STEPS {
        if workload::reports_at(step) {
            for report in workload::call_reports(step) {
                if run.post(Route::Calls, report).await == 202 {
                    accepted += 1;
                }
            }
        }
        run.pump(start + workload::STEP * step as i32).await;
        run.redrive().await;
    }
    let (by_kind, _) = faults.injected();
    let injected = faults.summary("AWS calls");
    faults.stop();
    // The last retries, with no more faults, once the claims of sends with unknown outcomes lapse.
    tokio::time::sleep(LEASE).await;
    for _ in 0..3 {
        run.pump(run.clock.now()).await;
        run.redrive().await;
    }
    let f = &run.f;

    // Nothing left pending; every send in the send log went out.
    let store = followup::adapters::aws::DynamoStore::new(f.dynamo.clone(), &f.table);
    assert!(store.pending_effects(10).await.unwrap().is_empty(), "effects still pending");
    let log = items(f, "O#").await;
    // A send-log entry not marked SENT is a send the log could not record; its message is counted below.
    let unmarked = log.iter().filter(|i| text(i, "status") != "SENT").count();

    // Each SMS of the log reached SNS; beyond that, only where an answer to Publish was lost.
    let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
    for item in log.iter().filter(|i| text(i, "PK").starts_with("O#sms#")) {
        let sms: Sms = serde_json::from_str(&text(item, "doc")).expect("an SMS doc");
        *want.entry((sms.to, sms.body)).or_default() += 1;
    }
    // What reached SNS, as the wire carried it (moto's own record takes long to read).
    let published = tally.lock().unwrap().published.clone();
    let mut got: BTreeMap<(String, String), i64> = BTreeMap::new();
    for body in &published {
        let fields: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        if let (Some(to), Some(message)) = (fields.get("PhoneNumber"), fields.get("Message")) {
            *got.entry((to.clone(), message.clone())).or_default() += 1;
        }
    }
    for (sms, n) in &want {
        assert!(got.get(sms).copied().unwrap_or(0) >= *n, "an SMS was lost: {sms:?}");
    }
    assert_eq!(got.keys().collect::<BTreeSet<_>>(), want.keys().collect::<BTreeSet<_>>(), "an SMS nobody asked for");
    let doubled_sms: i64 = want.iter().map(|(sms, n)| got[sms] - n).sum();

    // Each command of the log reached the ops topic, under its effect id.
    let commands: BTreeMap<String, String> =
        log.iter().filter_map(|i| text(i, "PK").strip_prefix("O#cmd#").map(|id| (id.to_string(), text(i, "doc")))).collect();
    let mut delivered: BTreeMap<String, i64> = BTreeMap::new();
    for (body, effect_id) in f.ops_deliveries().await {
        let effect_id = effect_id.expect("every command carries its effect id");
        assert_eq!(commands.get(&effect_id), Some(&body), "the command of {effect_id}");
        *delivered.entry(effect_id).or_default() += 1;
    }
    assert_eq!(delivered.keys().collect::<BTreeSet<_>>(), commands.keys().collect::<BTreeSet<_>>(), "every command went out");
    let doubled_commands: i64 = delivered.values().map(|n| n - 1).sum();
    // A send goes out twice only if the answer to its Publish was lost (the SDK or a later attempt
    // repeats it), or if its success could be recorded neither in the send log nor as effect done.
    let lost_answers = tally_of(&tally, |op, kind| op == "SNS.Publish" && kind == Fault::Timeout) as i64;
    let log_faults = tally_of(&tally, |op, _| op == "DynamoDB.UpdateItem") as i64;
    assert!(
        doubled_sms + doubled_commands <= lost_answers + log_faults,
        "{doubled_sms} + {doubled_commands} doubled; {lost_answers} Publish answers lost, {log_faults} send-log faults"
    );

    // No case is stuck: an open case waits on schedules that exist.
    let schedules: BTreeSet<String> =
        f.schedules().await.into_iter().map(|(_, _, input)| serde_json::from_str::<TimerSpec>(&input).unwrap().timer.name()).collect();
    let mut cases = 0;
    for item in items(f, "S#").await {
        let key = SubjectKey::parse(text(&item, "PK").trim_start_matches("S#")).expect("a stream key");
        let snapshot = store.load(&key).await.unwrap().expect("the stream");
        cases += workload::assert_none_stuck(&snapshot, &schedules);
    }

    let by_operation = tally.lock().unwrap().faults.clone();
    println!(
        "faults: {injected}; {} retries by the senders, \
         Scheduler and the re-drive on top of the SDK's own; {accepted} events accepted, {} SMS and {} commands, \
         {doubled_sms} SMS and {doubled_commands} commands doubled ({lost_answers} Publish answers lost), {unmarked} sends the log could not mark; \
         {cases} cases, none stuck",
        run.retries,
        want.values().sum::<i64>(),
        commands.len(),
    );
    for ((operation, kind), n) in &by_operation {
        println!("  {operation:<32} {kind:?} {n}");
    }
    assert!(by_kind.iter().all(|&n| n > 0), "every kind of fault was injected: {by_kind:?}");
    for service in ["DynamoDB.", "SNS.Publish", "Scheduler."] {
        assert!(by_operation.keys().any(|(op, _)| op.starts_with(service)), "no fault reached {service}");
    }
}
