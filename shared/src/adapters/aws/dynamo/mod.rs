//! DynamoDB case store: one table holds streams, delivery records, the subject index,
//! pending effects, the daily SMS counters and the SMS / command send log. Layout and access
//! patterns: docs/dynamodb.md.
//!
//! [`DynamoStore`] and the grants it needs here; the case store (`impl CaseStore`) in `store`, the
//! table's keys and items in `items`, the SMS / command send log in `send_log`, attribute and
//! document conversions in `helpers`.

mod helpers;
mod items;
mod send_log;
mod store;

pub(crate) use helpers::encode;
pub(crate) use send_log::Claim;

use crate::adapters::aws::grants::{grant, Grant, Resource};
use crate::adapters::aws::AwsError;
use aws_sdk_dynamodb::Client;
use chrono::Duration;
use helpers::{s, Item};
use items::{PK, SK};

/// `load` and `locate` (consistent `GetItem` of a stream or an index item), `sms_counts` (a
/// consistent `GetItem` of each number's daily counter), and reading a send-log entry.
pub const READS: &[Grant] = &[grant("dynamodb:GetItem", Resource::Table)];
/// `commit` (`TransactWriteItems` of `Put`s, the daily SMS counters' included: each needs
/// `PutItem`), marking an effect done and the send log (`PutItem`, `UpdateItem`).
pub const WRITES: &[Grant] = &[grant("dynamodb:PutItem", Resource::Table), grant("dynamodb:UpdateItem", Resource::Table)];
/// `pending_effects`: the re-drive reads the `pending` GSI.
pub const PENDING_QUERY: &[Grant] = &[grant("dynamodb:Query", Resource::PendingIndex)];
/// `subjects_with_prefix`: the daily expiry sweep reads the `subjects` GSI.
pub const SWEEP_QUERY: &[Grant] = &[grant("dynamodb:Query", Resource::SubjectsIndex)];
/// `overdue`: the timer sweep reads the `due` GSI.
pub const DUE_QUERY: &[Grant] = &[grant("dynamodb:Query", Resource::DueIndex)];

/// How long a delivery id is remembered: a repeat within this window answers as a duplicate.
pub const DELIVERY_TTL: Duration = Duration::days(90);
/// How long a done effect and a send-log entry are kept for audit before DynamoDB's TTL removes them.
const EFFECT_RETENTION: Duration = Duration::days(90);
/// How long a send-log claim shuts out other senders: longer than the longest function timeout
/// (300 s), so a claim older than this belongs to an invocation that is gone.
pub const SEND_LEASE: Duration = Duration::minutes(6);
/// A DynamoDB item is at most 400 KB; the stream doc must leave room for its keys and version.
pub const MAX_STREAM_DOC_BYTES: usize = 380 * 1024;

/// The sparse GSI of pending effects: only items with `pending` set are in it.
pub const PENDING_INDEX: &str = "pending";
/// The sparse GSI of grouped subjects (`expiry:<day>:<package id>`): partition key the subject
/// up to its second `:`, sort key the subject. Subjects with one `:` (`appointment:<id>`) stay out.
pub const SUBJECTS_INDEX: &str = "subjects";
/// The sparse GSI of snapshots waiting on a timer: partition the UTC day of the earliest one,
/// sort key its instant (R9.3's timer sweep).
pub const DUE_INDEX: &str = "due";
/// How many days back the timer sweep reads the `due` index: a timer lost longer than this
/// before the sweep ran is no longer re-driven (the sweep runs every 5 minutes).
pub const DUE_LOOKBACK_DAYS: i64 = 2;

/// The case store over one DynamoDB table (`FOLLOWUP_TABLE`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    delivery_ttl: Duration,
    send_lease: Duration,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into(), delivery_ttl: DELIVERY_TTL, send_lease: SEND_LEASE }
    }

    /// Overrides how long delivery ids are remembered (tests use a past expiry).
    pub fn with_delivery_ttl(mut self, ttl: Duration) -> Self {
        self.delivery_ttl = ttl;
        self
    }

    /// Overrides how long a send-log claim shuts out other senders (tests wait a short one out).
    pub fn with_send_lease(mut self, lease: Duration) -> Self {
        self.send_lease = lease;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, pk: String, sk: &str, operation: &'static str) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(operation, e))?;
        Ok(out.item)
    }
}
