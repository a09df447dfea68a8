//! AWS adapters: DynamoDB case store, EventBridge Scheduler timers, SNS for SMS and commands.
//!
//! Clients are built once per instance (from `AwsSettings::sdk_config`, at a function's first
//! invocation) and lent to the adapters. Every SDK failure becomes an [`AwsError`] that keeps the service error
//! code and whether a retry can help; the ports see `StoreError` / `EffectError` from it.

mod dynamo;
mod error;
mod scheduler;
mod sns;

pub mod grants {
    //! The AWS API actions the adapters call, each on the template resource it acts on. Each list
    //! sits next to the code that makes the calls; `followup_lambda::Function::grants` composes
    //! them per function, and a test holds `template.yaml`'s policies to exactly that.
    pub use super::dynamo::{DUE_QUERY, PENDING_QUERY, READS, SWEEP_QUERY, WRITES};
    pub use super::scheduler::GRANTS as TIMERS;
    pub use super::sns::{COMMANDS, SMS};

    /// One action on one resource of the template.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
    pub struct Grant {
        pub action: &'static str,
        pub resource: Resource,
    }

    /// The template resources the functions act on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Resource {
        /// The table itself (`Table.Arn`).
        Table,
        /// The `pending` GSI.
        PendingIndex,
        /// The `subjects` GSI.
        SubjectsIndex,
        /// The `due` GSI.
        DueIndex,
        /// Schedules of the follow-up schedule group.
        Schedules,
        /// The role Scheduler assumes (passed on every `CreateSchedule`).
        SchedulerRole,
        OpsTopic,
        /// An SMS to a phone number: SNS has no resource to scope it to.
        PhoneNumbers,
        /// The webhook secret in Secrets Manager (`WebhookSecretName`).
        WebhookSecret,
    }

    /// A webhook function: its secret, once per instance, at its first webhook.
    pub const WEBHOOK_SECRET: &[Grant] = &[grant("secretsmanager:GetSecretValue", Resource::WebhookSecret)];

    pub const fn grant(action: &'static str, resource: Resource) -> Grant {
        Grant { action, resource }
    }
}

pub use dynamo::{
    DynamoStore, DELIVERY_TTL, DUE_INDEX, DUE_LOOKBACK_DAYS, MAX_STREAM_DOC_BYTES, PENDING_INDEX, SEND_LEASE, SUBJECTS_INDEX,
};
pub use error::AwsError;
pub use scheduler::{at_expression, SchedulerTimers, TimerTargets};
pub use sns::{SnsCommands, SnsSms, COMMAND_TYPE_ATTRIBUTE, EFFECT_ID_ATTRIBUTE};

use crate::ports::{Clock, Ports, SystemClock};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::env;
use std::marker::PhantomData;

/// The SDK crates, for the functions that build clients from one `SdkConfig`.
pub use {aws_config, aws_sdk_dynamodb, aws_sdk_scheduler, aws_sdk_sns};

/// The engine's ports on AWS: DynamoDB, EventBridge Scheduler, SNS for SMS and for commands; the
/// clock is the wall clock in production and a test's own under test.
pub struct AwsPorts<K = SystemClock>(PhantomData<fn() -> K>);

impl<K: Clock> Ports for AwsPorts<K> {
    type Store = DynamoStore;
    type Timers = SchedulerTimers;
    type Sms = SnsSms;
    type Commands = SnsCommands;
    type Clock = K;
}

/// Where the adapters point, read from the environment the SAM template sets.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `FOLLOWUP_TABLE`
    pub table: String,
    /// `FOLLOWUP_SCHEDULE_GROUP`
    pub schedule_group: String,
    /// `FOLLOWUP_SCHEDULER_ROLE_ARN`: the role Scheduler assumes to invoke a function.
    pub scheduler_role_arn: String,
    /// `FOLLOWUP_TIMER_DLQ_ARN`: where Scheduler puts a timer it could not deliver.
    pub timer_dlq_arn: String,
    /// `FOLLOWUP_OPS_TOPIC_ARN`
    pub ops_topic_arn: String,
    pub targets: TimerTargets,
    /// `AWS_ENDPOINT_URL`: only for tests against a local emulator; unset on AWS.
    pub endpoint_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is required")]
pub struct MissingSetting(pub &'static str);

impl AwsSettings {
    pub fn from_env() -> Result<AwsSettings, MissingSetting> {
        let var = |name: &'static str| env::var(name).ok().filter(|v| !v.is_empty()).ok_or(MissingSetting(name));
        Ok(AwsSettings {
            table: var("FOLLOWUP_TABLE")?,
            schedule_group: var("FOLLOWUP_SCHEDULE_GROUP")?,
            scheduler_role_arn: var("FOLLOWUP_SCHEDULER_ROLE_ARN")?,
            timer_dlq_arn: var("FOLLOWUP_TIMER_DLQ_ARN")?,
            ops_topic_arn: var("FOLLOWUP_OPS_TOPIC_ARN")?,
            targets: TimerTargets {
                appointments: var("FOLLOWUP_APPOINTMENTS_ARN")?,
                cancellation_request: var("FOLLOWUP_CANCELLATION_REQUEST_ARN")?,
                package_payment: var("FOLLOWUP_PACKAGE_PAYMENT_ARN")?,
                package_expiry: var("FOLLOWUP_PACKAGE_EXPIRY_ARN")?,
            },
            endpoint_url: env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()),
        })
    }

    /// The shared SDK configuration, from what Lambda sets in the environment: the region
    /// (`AWS_REGION`) and the execution role's credentials (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), with [`https_client`] for every client.
    ///
    /// Built by hand rather than by `aws_config::defaults`: the default chain's profile files,
    /// SSO, STS web identity, ECS and IMDS never apply on Lambda, and leaving them out keeps
    /// their code out of each zip (about 280 KiB of it) and their file and environment lookups
    /// out of the cold start. Each SDK client adds the rest itself: standard retries (3
    /// attempts), the connect timeout, the tokio sleep and the identity cache.
    pub fn sdk_config(&self) -> Result<aws_config::SdkConfig, MissingSetting> {
        use aws_config::environment::EnvironmentVariableCredentialsProvider;
        use aws_sdk_dynamodb::config::{Region, SharedCredentialsProvider};
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .into_iter()
            .find_map(|name| env::var(name).ok().filter(|v| !v.is_empty()))
            .ok_or(MissingSetting("AWS_REGION"))?;
        let mut config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
            .http_client(https_client());
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url);
        }
        Ok(config.build())
    }
}

/// The HTTPS client the SDK clients share: hyper with rustls over ring, trusting the Amazon
/// Trust Services roots ([`AMAZON_ROOT_CAS`]).
///
/// ring, not the SDK's default aws-lc: the same TLS 1.2/1.3 suites for about 150 KiB less in each
/// Lambda zip. The Amazon roots, not the system's: every endpoint the functions call (DynamoDB,
/// SNS, EventBridge Scheduler, Secrets Manager) chains to them, and each SDK client builds a
/// connector when it is made, so with the system's store every client re-parsed some 150 roots
/// and the first one also read them from disk: about 3 ms of each cold start, against tens of
/// microseconds for five.
///
/// The connector (the rustls configuration, the roots parsed) is built at the first request and
/// shared by every client after it ([`ConnectorAtFirstCall`]), not once per client at start-up.
pub fn https_client() -> SharedHttpClient {
    SharedHttpClient::new(ConnectorAtFirstCall(amazon_roots_client()))
}

fn amazon_roots_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
    let roots = TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_ROOT_CAS.as_bytes());
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(TlsContext::builder().with_trust_store(roots).build().expect("a TLS context takes any trust store"))
        .build_https()
}

/// The hyper client, with the SDK's check at client construction left out: for each client made,
/// hyper's builds a whole connector (TLS configuration, roots parsed) and drops it, so that a
/// system trust store is read at start-up rather than at the first request. These roots are
/// compiled in, and the connector every request uses is built at the first one and cached by
/// the inner client for all the clients that share it; a connector is built the same way either
/// way, so TLS and its verification are unchanged.
#[derive(Debug)]
struct ConnectorAtFirstCall(SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for ConnectorAtFirstCall {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Amazon Root CA 1–4 and the Starfield Services root that cross-signs them, PEM: the roots AWS
/// documents for its service endpoints, each until 2037 or later.
pub const AMAZON_ROOT_CAS: &str = include_str!("amazon-root-cas.pem");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_https_client_trusts_the_five_amazon_roots() {
        use aws_smithy_runtime_api::client::http::HttpClient as _;
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
        assert_eq!(AMAZON_ROOT_CAS.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        // hyper's check builds a connector, which parses every root (a bad one panics).
        amazon_roots_client()
            .validate_base_client_config(&RuntimeComponentsBuilder::new("test"), &aws_smithy_types::config_bag::ConfigBag::base())
            .expect("a connector");
        // The shared client skips it, so building a client builds no connector.
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .http_client(https_client())
            .build();
        let _ = aws_sdk_dynamodb::Client::new(&config);
    }
}
