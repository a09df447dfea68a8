//! The local AWS emulator for tests: one moto server per test binary on a free loopback
//! port, dummy static credentials, and a fresh table / schedule group / ops topic per test.
//!
//! Included (`#[path]`) by every AWS test binary. Tests take `serial()` first: moto's state
//! is global, so each test resets it and runs alone. The server exits with the test binary
//! (it watches its parent). Python comes from `FOLLOWUP_MOTO_PYTHON` or the workspace's
//! `.venv` that `make test` creates.
#![allow(dead_code)]

use aws_config::SdkConfig;
use followup::adapters::aws::{AwsSettings, DynamoStore, SchedulerTimers, SnsCommands, SnsSms, TimerTargets};
use followup::domain::policy::Policy;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    pub endpoint: String,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FOLLOWUP_MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    above(".venv/bin/python")
        .unwrap_or_else(|| panic!("no .venv with moto found above {}; run `make test`, which creates it", env!("CARGO_MANIFEST_DIR")))
}

/// `relative` in the nearest directory above this crate that has it (the repository's root).
fn above(relative: &str) -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().map(|dir| dir.join(relative)).find(|candidate| candidate.is_file())
}

/// Starts moto once for this test binary and waits until it answers.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        // moto serving DynamoDB requests one at a time (its backend is not safe under concurrent
        // requests); it exits when the test binary does, however that ends.
        let server = above("infra/local/moto_server.py").expect("infra/local/moto_server.py above this crate");
        let child = Command::new(python())
            .arg(&server)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", server.display()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {addr} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { endpoint: format!("http://{addr}"), _child: Mutex::new(child) }
    })
}

/// One AWS test at a time in this binary, on a freshly reset emulator.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    let m = moto();
    reqwest::Client::new()
        .post(format!("{}/moto-api/reset", m.endpoint))
        .send()
        .await
        .expect("moto reset")
        .error_for_status()
        .expect("moto reset");
    guard
}

pub async fn sdk_config() -> SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static-test");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto().endpoint)
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .credentials_provider(creds)
        .http_client(followup::adapters::aws::https_client())
        .load()
        .await
}

pub fn targets() -> TimerTargets {
    let f = |name: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:followup-{name}");
    TimerTargets {
        appointments: f("appointments"),
        cancellation_request: f("cancellation-request"),
        package_payment: f("package-payment"),
        package_expiry: f("package-expiry"),
    }
}

/// The resources of one test, created as `template.yaml` creates them.
pub struct Fixture {
    pub config: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub table: String,
    pub group: String,
    pub topic_arn: String,
    pub queue_url: String,
    pub role_arn: String,
    pub dlq_arn: String,
}

impl Fixture {
    pub async fn new(name: &str) -> Fixture {
        Fixture::with_dynamo(name, |b| b).await
    }

    /// `customize` may add interceptors to the DynamoDB client (call counting).
    pub async fn with_dynamo(
        name: &str,
        customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> Fixture {
        let name: String = name.replace('_', "-").chars().take(40).collect();
        let name = name.as_str();
        let config = sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::from_conf(customize(aws_sdk_dynamodb::config::Builder::from(&config)).build());
        let table = format!("followup-{name}");
        create_table(&dynamo, &table).await;
        let group = format!("followup-{name}");
        aws_sdk_scheduler::Client::new(&config).create_schedule_group().name(&group).send().await.expect("CreateScheduleGroup");
        let sns = aws_sdk_sns::Client::new(&config);
        let topic_arn = sns.create_topic().name(format!("followup-ops-{name}")).send().await.expect("CreateTopic").topic_arn.expect("arn");
        let queue = format!("followup-ops-{name}");
        let created = sqs("CreateQueue", serde_json::json!({"QueueName": queue})).await;
        let queue_url = created["QueueUrl"].as_str().expect("QueueUrl").to_string();
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("Subscribe");
        Fixture {
            config,
            dynamo,
            table,
            group,
            topic_arn,
            queue_url,
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/followup-scheduler"),
            dlq_arn: format!("arn:aws:sqs:{REGION}:{ACCOUNT}:followup-timer-dlq"),
        }
    }

    /// The functions' settings, as template.yaml's environment would name these resources.
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            table: self.table.clone(),
            schedule_group: self.group.clone(),
            scheduler_role_arn: self.role_arn.clone(),
            timer_dlq_arn: self.dlq_arn.clone(),
            ops_topic_arn: self.topic_arn.clone(),
            targets: targets(),
            endpoint_url: Some(moto().endpoint.clone()),
        }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo.clone(), &self.table)
    }

    pub fn timers(&self) -> SchedulerTimers {
        SchedulerTimers::new(aws_sdk_scheduler::Client::new(&self.config), &self.group, &self.role_arn, &self.dlq_arn, targets())
    }

    pub fn sms(&self) -> SnsSms {
        SnsSms::new(aws_sdk_sns::Client::new(&self.config), self.store(), Policy::default().sms.sender_id)
    }

    pub fn commands(&self) -> SnsCommands {
        SnsCommands::new(aws_sdk_sns::Client::new(&self.config), self.store(), &self.topic_arn, Policy::default().calendar)
    }

    /// Every schedule of the group as (creation time, Input), oldest first.
    pub async fn schedules(&self) -> Vec<(aws_sdk_scheduler::primitives::DateTime, String, String)> {
        let client = aws_sdk_scheduler::Client::new(&self.config);
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = client.list_schedules().group_name(&self.group).set_next_token(next).send().await.expect("ListSchedules");
            for s in page.schedules() {
                let name = s.name().expect("name");
                let got = client.get_schedule().group_name(&self.group).name(name).send().await.expect("GetSchedule");
                let input = got.target().and_then(|t| t.input()).expect("Input").to_string();
                out.push((got.creation_date.expect("CreationDate"), got.target().map(|t| t.arn().to_string()).unwrap_or_default(), input));
            }
            next = page.next_token;
            if next.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.0.secs().cmp(&b.0.secs()).then(a.0.subsec_nanos().cmp(&b.0.subsec_nanos())));
        out
    }

    /// Every message delivered to the ops queue so far, in order (raw SNS delivery).
    pub async fn ops_messages(&self) -> Vec<String> {
        self.ops_deliveries().await.into_iter().map(|(body, _)| body).collect()
    }

    /// Every message delivered to the ops queue so far, in order, with its `effect_id` attribute.
    pub async fn ops_deliveries(&self) -> Vec<(String, Option<String>)> {
        let mut all = Vec::new();
        loop {
            let got = sqs(
                "ReceiveMessage",
                serde_json::json!({"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 300,
                                   "MessageAttributeNames": ["All"]}),
            )
            .await;
            let Some(messages) = got["Messages"].as_array().filter(|m| !m.is_empty()).cloned() else { break };
            all.extend(messages.iter().map(|m| {
                let effect_id =
                    m["MessageAttributes"][followup::adapters::aws::EFFECT_ID_ATTRIBUTE]["StringValue"].as_str().map(str::to_owned);
                (m["Body"].as_str().unwrap_or_default().to_string(), effect_id)
            }));
        }
        all
    }
}

/// Every SMS moto has "sent", in order: `(phone number, message)`.
pub async fn sent_sms() -> Vec<(String, String)> {
    let data: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/moto-api/data.json", moto().endpoint))
        .send()
        .await
        .expect("moto data.json")
        .json()
        .await
        .expect("data.json is JSON");
    data["sns"]["SMS"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| {
                    (m["phone_number"].as_str().unwrap_or_default().to_string(), m["message"].as_str().unwrap_or_default().to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One SQS JSON-protocol call to moto (the tests read the ops topic through a queue).
async fn sqs(action: &str, body: serde_json::Value) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .post(&moto().endpoint)
        .header("Content-Type", "application/x-amz-json-1.0")
        .header("X-Amz-Target", format!("AmazonSQS.{action}"))
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/sqs/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("SQS {action}: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "SQS {action}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// The table as template.yaml declares it: PK/SK strings, the sparse `pending`, `subjects` and `due` GSIs.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::*;
    let attr = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap();
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("PK"))
        .attribute_definitions(attr("SK"))
        .attribute_definitions(attr("pending"))
        .attribute_definitions(attr("pending_order"))
        .attribute_definitions(attr("subject_group"))
        .attribute_definitions(attr("subject"))
        .attribute_definitions(attr("due_bucket"))
        .attribute_definitions(attr("due_at"))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("pending")
                .key_schema(key("pending", KeyType::Hash))
                .key_schema(key("pending_order", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("subjects")
                .key_schema(key("subject_group", KeyType::Hash))
                .key_schema(key("subject", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::Include).non_key_attributes("stream_key").build())
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("due")
                .key_schema(key("due_bucket", KeyType::Hash))
                .key_schema(key("due_at", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");
}
