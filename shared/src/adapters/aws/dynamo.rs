//! DynamoDB case store: one table holds streams, delivery records, the subject index,
//! pending effects, the daily SMS counters and the SMS / command send log. Layout and access
//! patterns: docs/dynamodb.md.

use super::error::AwsError;
use crate::adapters::packed;
use crate::domain::case::mask_phone;
use crate::domain::ctx::SmsCount;
use crate::domain::effects::Effect;
use crate::domain::snapshot::{Snapshot, SubjectKey};
use crate::ports::{CaseStore, Commit, CommitError, Delivery, PendingEffect, StoreError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

use super::grants::{grant, Grant, Resource};

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
/// The stream item's packed snapshot (binary); items written before packing hold `doc` (JSON text).
const STREAM_DOC: &str = "docz";
/// TransactWriteItems takes at most 100 actions.
const MAX_TRANSACTION_ITEMS: usize = 100;

pub(crate) const PK: &str = "PK";
pub(crate) const SK: &str = "SK";
/// The send log's claim holder.
const CLAIM_ID: &str = "claim_id";
/// The sparse GSI of pending effects: only items with `pending` set are in it.
pub const PENDING_INDEX: &str = "pending";
const PENDING_PK: &str = "pending";
const PENDING_SK: &str = "pending_order";
/// The one value of the pending GSI's partition key (a low-volume queue; see docs/dynamodb.md).
const PENDING: &str = "P";
/// The sparse GSI of grouped subjects (`expiry:<day>:<package id>`): partition key the subject
/// up to its second `:`, sort key the subject. Subjects with one `:` (`appointment:<id>`) stay out.
pub const SUBJECTS_INDEX: &str = "subjects";
/// The sparse GSI of snapshots waiting on a timer: partition the UTC day of the earliest one,
/// sort key its instant (R9.3's timer sweep).
pub const DUE_INDEX: &str = "due";
const DUE_BUCKET: &str = "due_bucket";
const DUE_AT: &str = "due_at";
/// How many days back the timer sweep reads the `due` index: a timer lost longer than this
/// before the sweep ran is no longer re-driven (the sweep runs every 5 minutes).
pub const DUE_LOOKBACK_DAYS: i64 = 2;
const SUBJECT_GROUP: &str = "subject_group";
const SUBJECT: &str = "subject";

const STREAM_SK: &str = "STREAM";
const DELIVERY_SK: &str = "DELIVERY";
const INDEX_SK: &str = "INDEX";
/// Effect items of the layout before a commit's effects rode on its delivery record.
const EFFECT_SK: &str = "EFFECT";
/// On a delivery record: the commit's effects (JSON, deflated as the stream doc is), how many,
/// and those marked done so far.
const EFFECTS: &str = "effects";
const EFFECT_COUNT: &str = "effect_count";
const DONE_IDS: &str = "done_ids";
const SENT_SK: &str = "SENT";
/// SPEC §4 (v3) one number's SMS on one local day: `C#<phone>#<day>` / `SMS_COUNT`, attribute `count`.
const SMS_COUNT_SK: &str = "SMS_COUNT";
const SMS_COUNT: &str = "count";
/// How long a daily counter is kept past the start of its day (UTC midnight) or its last write,
/// whichever is later: past the end of that local day in any time zone, then TTL removes it.
const SMS_COUNT_RETENTION: Duration = Duration::days(2);

/// Positions of the fixed items inside the commit transaction.
const STREAM_POS: usize = 0;
const DELIVERY_POS: usize = 1;

type Item = HashMap<String, AttributeValue>;

/// The answer of [`DynamoStore::claim_send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This caller sends; the token releases the claim if the send surely did not happen.
    Mine(ClaimToken),
    /// Sent before: drop the repeat.
    Sent,
    /// Another invocation is sending it now: leave the effect pending and look again later.
    InFlight,
}

/// Who holds a send-log claim: unique per claim, so a `PutItem` the SDK repeated after a lost
/// answer recognises its own claim instead of taking it for another invocation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimToken(String);

impl ClaimToken {
    fn new() -> ClaimToken {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        // RandomState is seeded from the OS once per process: with the time and a counter, unique.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
        h.write_i64(Utc::now().timestamp_nanos_opt().unwrap_or_default());
        ClaimToken(format!("{:016x}{:08x}", h.finish(), std::process::id()))
    }
}

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

    /// Claims a send of `effect_id` on `channel` in the send log.
    ///
    /// A claim left `SENDING` longer than the lease ([`SEND_LEASE`]; a crash between the send and
    /// `mark_sent`) is claimed again: a send is at least once, and exactly once whenever the
    /// send log could be written. A younger claim is another invocation sending right now (the
    /// re-driver met an effect still being performed): the caller leaves the effect pending.
    /// A claim released by [`DynamoStore::release_send`] (the send surely failed) is free at once.
    pub(crate) async fn claim_send(&self, channel: &str, effect_id: &str, doc: &str) -> Result<Claim, AwsError> {
        let now = Utc::now();
        let pk = format!("O#{channel}#{effect_id}");
        let token = ClaimToken::new();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(&pk))
            .item(SK, s(SENT_SK))
            .item("status", s("SENDING"))
            .item("doc", s(doc))
            .item("claimed_at", s(rfc3339(now)))
            .item("claimed_ms", n(now.timestamp_millis()))
            .item(CLAIM_ID, s(&token.0))
            .item("expires_at", n((now + EFFECT_RETENTION).timestamp()))
            .condition_expression(
                "attribute_not_exists(#pk) OR #status = :released \
                 OR (#status <> :sent AND (attribute_not_exists(#ms) OR #ms <= :stale))",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ms", "claimed_ms")
            .expression_attribute_values(":sent", s("SENT"))
            .expression_attribute_values(":released", s("RELEASED"))
            .expression_attribute_values(":stale", n((now - self.send_lease).timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Mine(token)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                let item = self.get(pk, SENT_SK, "GetItem send-log").await?.unwrap_or_default();
                Ok(if item.get("status") == Some(&s("SENT")) {
                    Claim::Sent
                } else if item.get(CLAIM_ID) == Some(&s(&token.0)) {
                    // The SDK repeated a PutItem whose answer was lost: the claim is ours.
                    Claim::Mine(token)
                } else {
                    Claim::InFlight
                })
            }
            Err(e) => Err(AwsError::from_sdk("PutItem send-log", e)),
        }
    }

    /// Gives a claim back after a send that surely did not happen (the service refused it), so
    /// the next attempt need not wait out the lease. A claim since taken by another is left alone.
    pub(crate) async fn release_send(&self, channel: &str, effect_id: &str, token: &ClaimToken) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(format!("O#{channel}#{effect_id}")))
            .key(SK, s(SENT_SK))
            .update_expression("SET #status = :released")
            .condition_expression("#status = :sending AND #claim = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#claim", CLAIM_ID)
            .expression_attribute_values(":released", s("RELEASED"))
            .expression_attribute_values(":sending", s("SENDING"))
            .expression_attribute_values(":token", s(&token.0))
            .send()
            .await;
        match result {
            Err(e) if !e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(AwsError::from_sdk("UpdateItem send-log", e))
            }
            _ => Ok(()),
        }
    }

    pub(crate) async fn mark_sent(&self, channel: &str, effect_id: &str, message_id: Option<&str>) -> Result<(), AwsError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(format!("O#{channel}#{effect_id}")))
            .key(SK, s(SENT_SK))
            .update_expression("SET #status = :sent, sent_at = :at, message_id = :mid")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", s("SENT"))
            .expression_attribute_values(":at", s(rfc3339(Utc::now())));
        update = update.expression_attribute_values(":mid", message_id.map(s).unwrap_or(AttributeValue::Null(true)));
        update.send().await.map(drop).map_err(|e| AwsError::from_sdk("UpdateItem send-log", e))
    }

    /// An update that takes delivery `delivery` out of the `pending` GSI with its expiry set;
    /// with `Some(n)`, only if the record carries exactly `n` effects (the caller names them all).
    fn finish_delivery(
        &self,
        delivery: &str,
        all_of: Option<usize>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let now = Utc::now();
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(format!("D#{delivery}")))
            .key(SK, s(DELIVERY_SK))
            .expression_attribute_names("#p", PENDING_PK)
            .expression_attribute_names("#o", PENDING_SK)
            .expression_attribute_values(":at", s(rfc3339(now)))
            .expression_attribute_values(":exp", n((now + self.delivery_ttl).timestamp()));
        match all_of {
            Some(count) => update
                .condition_expression("#count = :n")
                .expression_attribute_names("#count", EFFECT_COUNT)
                .expression_attribute_values(":n", n(count)),
            None => update.condition_expression("attribute_exists(#p)"),
        }
    }

    /// An effect item of the layout before effects rode on their delivery record (`E#<id>`):
    /// one may still be pending in a table written by an earlier version.
    async fn legacy_effect_done(&self, id: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(format!("E#{id}")))
            .key(SK, s(EFFECT_SK))
            .update_expression("REMOVE #p, #o SET done_at = :at, expires_at = :exp")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#p", PENDING_PK)
            .expression_attribute_names("#o", PENDING_SK)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":at", s(rfc3339(now)))
            .expression_attribute_values(":exp", n((now + EFFECT_RETENTION).timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Not an effect of this store: nothing is pending under that id.
            Err(e) if refused(&e) => Ok(()),
            Err(e) => Err(AwsError::from_sdk("UpdateItem effect done", e).into()),
        }
    }

    /// The stream item; `doc` is the snapshot's JSON, deflated ([`packed`]).
    fn stream_put(&self, commit: &Commit, doc: Vec<u8>) -> Result<TransactWriteItem, StoreError> {
        let key = commit.stream.key.to_string();
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(format!("S#{key}")))
            .item(SK, s(STREAM_SK))
            .item("version", n(commit.stream.version))
            .item(STREAM_DOC, AttributeValue::B(Blob::new(doc)))
            .item("updated_at", s(rfc3339(commit.delivery.accepted_at)));
        // The snapshot's earliest pending timer, for the sparse `due` GSI (absent: no timer).
        if let Some(due) = commit.stream.next_due() {
            put = put.item(DUE_BUCKET, s(due_bucket(due))).item(DUE_AT, s(due_sort(due)));
        }
        put = match commit.expected_version {
            None => put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", PK),
            Some(v) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(v)),
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build())
    }

    /// The delivery record, carrying the commit's effects while any is pending (docs/dynamodb.md):
    /// then it is in the `pending` GSI and has no `expires_at`, so TTL never takes a pending effect.
    fn delivery_put(&self, commit: &Commit, now: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
        let d = &commit.delivery;
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(format!("D#{}", d.id)))
            .item(SK, s(DELIVERY_SK))
            .item("body_hash", s(&d.body_hash))
            .item("accepted_at", s(rfc3339(d.accepted_at)))
            .item("status", s("COMPLETED"))
            // An expired record TTL has not removed yet counts as absent, as `delivery` reads it.
            .condition_expression("attribute_not_exists(#pk) OR #expires_at <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":now", n(now.timestamp()));
        if let Some(case_id) = &d.case_id {
            put = put.item("case_id", s(case_id));
        }
        if commit.effects.is_empty() {
            // From the wall clock, not `accepted_at`: a virtual or skewed clock must not expire a record at once.
            put = put.item("expires_at", n((now + self.delivery_ttl).timestamp()));
        } else {
            if let Some(stray) = commit.effects.iter().find(|e| delivery_of(&e.id) != Some(d.id.as_str())) {
                return Err(StoreError::Corrupt(format!("effect {} is not named after its delivery {}", stray.id, d.id)));
            }
            // Oldest first: commit time, then the stream's own order for commits within one millisecond.
            let order = format!("{:015}#{}#{:020}", d.accepted_at.timestamp_millis().max(0), commit.stream.key, commit.stream.version);
            put = put
                .item(EFFECTS, AttributeValue::B(Blob::new(packed::pack(&encode(&commit.effects, "effects")?))))
                .item(EFFECT_COUNT, n(commit.effects.len()))
                .item(PENDING_PK, s(PENDING))
                .item(PENDING_SK, s(order));
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build())
    }

    fn index_put(&self, subject: &str, key: &str) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(format!("X#{subject}")))
            .item(SK, s(INDEX_SK))
            .item("stream_key", s(key))
            .condition_expression("attribute_not_exists(#pk) OR #stream_key = :k")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#stream_key", "stream_key")
            .expression_attribute_values(":k", s(key));
        if let Some(group) = subject_group(subject) {
            put = put.item(SUBJECT_GROUP, s(group)).item(SUBJECT, s(subject));
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build())
    }

    /// SPEC §4 (v3) a number's daily SMS counter as the decision leaves it, on the condition that
    /// the table still holds the count the decision was made with (none yet for `held` 0): of
    /// two decisions sending to one number at once, one commits and the other is a `Conflict`.
    fn sms_count_put(&self, c: &SmsCount, now: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
        let day_start = c.day.and_time(NaiveTime::MIN).and_utc();
        let put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(sms_count_pk(&c.phone, c.day)))
            .item(SK, s(SMS_COUNT_SK))
            .item(SMS_COUNT, n(c.count))
            .item("expires_at", n((now.max(day_start) + SMS_COUNT_RETENTION).timestamp()));
        let put = if c.held == 0 {
            put.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", PK)
        } else {
            put.condition_expression("#count = :held")
                .expression_attribute_names("#count", SMS_COUNT)
                .expression_attribute_values(":held", n(c.held))
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build())
    }
}

impl CaseStore for DynamoStore {
    async fn locate(&self, subject: &str) -> Result<Option<SubjectKey>, StoreError> {
        let Some(item) = self.get(format!("X#{subject}"), INDEX_SK, "GetItem index").await? else {
            return Ok(None);
        };
        let key = string(&item, "stream_key")?;
        SubjectKey::parse(&key)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?} points at {key:?}, not a stream key")))
    }

    async fn load(&self, key: &SubjectKey) -> Result<Option<Snapshot>, StoreError> {
        let Some(item) = self.get(format!("S#{key}"), STREAM_SK, "GetItem stream").await? else {
            return Ok(None);
        };
        let what = format!("stream {key}");
        let doc = match item.get(STREAM_DOC) {
            Some(AttributeValue::B(bytes)) => packed::unpack(bytes.as_ref()).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?,
            // Written before stream documents were packed.
            _ => string(&item, "doc")?,
        };
        decode(&doc, &what).map(Some)
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let Some(item) = self.get(format!("D#{id}"), DELIVERY_SK, "GetItem delivery").await? else {
            return Ok(None);
        };
        delivery_from(id, &item, Utc::now())
    }

    /// One consistent `GetItem` per number (a decision asks about the customers of its one
    /// stream: one number, rarely two), so the count read is the one the commit's condition sees.
    async fn sms_counts(&self, phones: &[String], day: NaiveDate) -> Result<BTreeMap<String, u32>, StoreError> {
        let mut counts = BTreeMap::new();
        for phone in phones {
            if counts.contains_key(phone) {
                continue;
            }
            if let Some(item) = self.get(sms_count_pk(phone, day), SMS_COUNT_SK, "GetItem SMS count").await? {
                let count = item.get(SMS_COUNT).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u32>().ok());
                let count =
                    count.ok_or_else(|| StoreError::Corrupt(format!("the SMS count of {} on {day} is not a count", mask_phone(phone))))?;
                counts.insert(phone.clone(), count);
            }
        }
        Ok(counts)
    }

    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        let now = Utc::now();
        let key = commit.stream.key.to_string();
        let doc = encode(&commit.stream, "stream")?;
        let token = request_token(&key, &commit, &doc);
        let doc = packed::pack(&doc);
        if doc.len() > MAX_STREAM_DOC_BYTES {
            return Err(StoreError::Corrupt(format!(
                "stream {key} packs to {} bytes; a DynamoDB item holds at most {MAX_STREAM_DOC_BYTES}",
                doc.len()
            ))
            .into());
        }
        let mut subjects: Vec<&str> = Vec::new();
        for subject in &commit.index {
            if !subjects.contains(&subject.as_str()) {
                subjects.push(subject);
            }
        }
        // One transaction may not write an item twice; a decision counts each number once.
        for (i, c) in commit.sms_counts.iter().enumerate() {
            if commit.sms_counts[..i].iter().any(|o| o.phone == c.phone && o.day == c.day) {
                return Err(StoreError::Corrupt(format!(
                    "a commit of {key} counts the SMS of {} on {} twice",
                    mask_phone(&c.phone),
                    c.day
                ))
                .into());
            }
        }
        let mut items = Vec::with_capacity(2 + subjects.len() + commit.sms_counts.len());
        items.push(self.stream_put(&commit, doc)?);
        items.push(self.delivery_put(&commit, now)?);
        for subject in &subjects {
            items.push(self.index_put(subject, &key)?);
        }
        // After the index items: counter `j` is item `2 + subjects + j`.
        let counts_pos = items.len();
        for c in &commit.sms_counts {
            items.push(self.sms_count_put(c, now)?);
        }
        // Counters are the numbers the decision sends to, all its stream's customers (one, rarely
        // two), so a commit stays far below the limit; one that would not is refused whole.
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Corrupt(format!(
                "a commit of {key} needs {} writes; one DynamoDB transaction takes at most {MAX_TRANSACTION_ITEMS}",
                items.len()
            ))
            .into());
        }
        let result = self.client.transact_write_items().set_transact_items(Some(items)).client_request_token(token).send().await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let reasons: Vec<Option<String>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
            }
            _ => return Err(StoreError::from(AwsError::from_sdk("TransactWriteItems commit", err)).into()),
        };
        let failed = |pos: usize| reasons.get(pos).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed");
        // The same precedence as every store: a repeated delivery first, then the version and the
        // daily SMS counts (another decision moved them: reload and decide again), then the index.
        if failed(DELIVERY_POS) {
            return match self.delivery(&commit.delivery.id).await? {
                Some(first) => Err(CommitError::DuplicateDelivery(first)),
                // Expired between the check and this read: deciding again sorts it out.
                None => Err(CommitError::Conflict),
            };
        }
        if failed(STREAM_POS) || (counts_pos..counts_pos + commit.sms_counts.len()).any(failed) {
            return Err(CommitError::Conflict);
        }
        if let Some(i) = (0..subjects.len()).find(|i| failed(2 + i)) {
            return Err(CommitError::SubjectTaken(subjects[i].to_string()));
        }
        let codes: Vec<&str> = reasons.iter().filter_map(|c| c.as_deref()).filter(|c| *c != "None").collect();
        if codes.iter().all(|c| *c == "TransactionConflict") {
            // Another transaction was writing one of these items at that moment: reload and decide again.
            return Err(CommitError::Conflict);
        }
        Err(StoreError::from(AwsError::from_sdk("TransactWriteItems commit", err)).into())
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        while found.len() < limit {
            let page = i32::try_from(limit - found.len()).unwrap_or(i32::MAX).min(1_000);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", PENDING_PK)
                .expression_attribute_values(":p", s(PENDING))
                .limit(page)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Query pending", e))?;
            for item in out.items() {
                found.extend(pending_of(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn effect_done(&self, id: &str) -> Result<(), StoreError> {
        self.effects_done(&[id]).await
    }

    /// One `UpdateItem` per delivery when the ids are all of its effects (the engine's happy
    /// path): the record leaves the `pending` GSI and gets its expiry. Otherwise the ids are
    /// added to its `done_ids`, and the record leaves the GSI once they cover every effect.
    async fn effects_done(&self, ids: &[&str]) -> Result<(), StoreError> {
        let mut by_delivery: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> = Default::default();
        for id in ids {
            match delivery_of(id) {
                Some(delivery) => by_delivery.entry(delivery).or_default().insert(id),
                // Not an effect id of this store: nothing is pending under it.
                None => continue,
            };
        }
        for (delivery, ids) in by_delivery {
            let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
            let all = self
                .finish_delivery(delivery, Some(ids.len()))
                .expression_attribute_names("#done", DONE_IDS)
                .update_expression("REMOVE #p, #o SET done_at = :at, expires_at = :exp ADD #done :ids")
                .expression_attribute_values(":ids", AttributeValue::Ss(ids.clone()))
                .send()
                .await;
            match all {
                Ok(_) => continue,
                Err(e) if !refused(&e) => {
                    return Err(AwsError::from_sdk("UpdateItem effects done", e).into());
                }
                Err(_) => {}
            }
            // Some of the delivery's effects: record these; the last ones take it out of the index.
            let some = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(format!("D#{delivery}")))
                .key(SK, s(DELIVERY_SK))
                .update_expression("ADD #done :ids")
                .condition_expression("attribute_exists(#count)")
                .expression_attribute_names("#done", DONE_IDS)
                .expression_attribute_names("#count", EFFECT_COUNT)
                .expression_attribute_values(":ids", AttributeValue::Ss(ids.clone()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            let item = match some {
                Ok(out) => out.attributes.unwrap_or_default(),
                Err(e) if refused(&e) => {
                    // No record carries them: effects of the earlier layout, one item each.
                    for id in &ids {
                        self.legacy_effect_done(id).await?;
                    }
                    continue;
                }
                Err(e) => return Err(AwsError::from_sdk("UpdateItem effects done", e).into()),
            };
            let done = item.get(DONE_IDS).and_then(|v| v.as_ss().ok()).map_or(0, Vec::len);
            let count = item.get(EFFECT_COUNT).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<usize>().ok());
            if count.is_some_and(|c| done >= c) && item.contains_key(PENDING_PK) {
                let last = self
                    .finish_delivery(delivery, None)
                    .update_expression("REMOVE #p, #o SET done_at = :at, expires_at = :exp")
                    .send()
                    .await;
                match last {
                    Ok(_) => {}
                    Err(e) if refused(&e) => {}
                    Err(e) => return Err(AwsError::from_sdk("UpdateItem effects done", e).into()),
                }
            }
        }
        Ok(())
    }

    /// A `Query` of the `subjects` index: one partition per group, so the prefix must name one
    /// (`expiry:<day>:`). The index is eventually consistent: a package booked a moment ago may be
    /// missing, which the daily sweep tolerates because the package's own timer is already placed.
    /// One `Query` of the `due` GSI per UTC day from `DUE_LOOKBACK_DAYS` before `cutoff` to it.
    async fn overdue(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<SubjectKey>, StoreError> {
        let mut found = Vec::new();
        for back in (0..=DUE_LOOKBACK_DAYS).rev() {
            let bucket = due_bucket(cutoff - Duration::days(back));
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(DUE_INDEX)
                    .key_condition_expression("#b = :b AND #d <= :d")
                    .expression_attribute_names("#b", DUE_BUCKET)
                    .expression_attribute_names("#d", DUE_AT)
                    .expression_attribute_values(":b", s(&bucket))
                    .expression_attribute_values(":d", s(due_sort(cutoff)))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("Query due", e))?;
                for item in out.items() {
                    let pk = string(item, PK)?;
                    let key = pk
                        .strip_prefix("S#")
                        .and_then(SubjectKey::parse)
                        .ok_or_else(|| StoreError::Corrupt(format!("{pk:?} in the due index")))?;
                    found.push(key);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    async fn subjects_with_prefix(&self, prefix: &str) -> Result<Vec<(String, SubjectKey)>, StoreError> {
        let group = subject_group(prefix).ok_or_else(|| {
            StoreError::from(AwsError::invalid("subjects_with_prefix", format!("{prefix:?} names no subject group (`<name>:<key>:`)")))
        })?;
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SUBJECTS_INDEX)
                .key_condition_expression("#g = :g AND begins_with(#s, :p)")
                .expression_attribute_names("#g", SUBJECT_GROUP)
                .expression_attribute_names("#s", SUBJECT)
                .expression_attribute_values(":g", s(group))
                .expression_attribute_values(":p", s(prefix))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Query subjects", e))?;
            for item in out.items() {
                let (subject, key) = (string(item, SUBJECT)?, string(item, "stream_key")?);
                let stream = SubjectKey::parse(&key)
                    .ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?} points at {key:?}, not a stream key")))?;
                found.push((subject, stream));
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(found)
    }
}

/// The partition of the `due` GSI: the UTC day of a snapshot's earliest pending timer.
fn due_bucket(due: DateTime<Utc>) -> String {
    due.format("%Y-%m-%d").to_string()
}

/// The sort key of the `due` GSI: the due instant in milliseconds, zero-padded to sort as text.
fn due_sort(due: DateTime<Utc>) -> String {
    format!("{:015}", due.timestamp_millis().max(0))
}

/// The partition of a subject in the `subjects` index: its text up to the second `:`
/// (`expiry:2026-04-09:` of `expiry:2026-04-09:P-77`), or none for a one-level subject.
fn subject_group(subject: &str) -> Option<&str> {
    let (second, _) = subject.match_indices(':').nth(1)?;
    Some(&subject[..=second])
}

/// Identical requests only (the SDK retrying a commit whose answer was lost) share a token,
/// so such a retry succeeds instead of reporting its own delivery as a duplicate.
fn request_token(key: &str, commit: &Commit, doc: &str) -> String {
    let mut h = Sha256::new();
    for part in [key, &commit.stream.version.to_string(), &commit.delivery.id, &commit.delivery.body_hash, doc] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for e in &commit.effects {
        h.update(e.id.as_bytes());
        h.update([0]);
    }
    // A decision made again after another moved a count may differ from the first in its counts
    // alone: it must not share the first one's token (DynamoDB would refuse the changed request).
    for c in &commit.sms_counts {
        for part in [c.phone.as_str(), &c.day.to_string(), &c.held.to_string(), &c.count.to_string()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    hex::encode(h.finalize())[..36].to_string()
}

/// The partition key of a number's SMS counter on a local day (`C#+201001234567#2026-03-01`).
fn sms_count_pk(phone: &str, day: NaiveDate) -> String {
    format!("C#{phone}#{day}")
}

/// An `UpdateItem` its condition refused (the item absent, or not in the state asked for).
fn refused<R>(e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>) -> bool {
    e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
}

/// The delivery an effect id names (`<delivery id>#<n>`).
fn delivery_of(effect_id: &str) -> Option<&str> {
    effect_id.rsplit_once('#').map(|(delivery, _)| delivery).filter(|d| !d.is_empty())
}

/// The effects still pending on an item of the `pending` GSI: a delivery record's effects less
/// its `done_ids`, or an effect item of the earlier layout.
fn pending_of(item: &Item) -> Result<Vec<PendingEffect>, StoreError> {
    let pk = string(item, PK)?;
    if let Some(id) = pk.strip_prefix("E#") {
        let effect: Effect = decode(&string(item, "doc")?, &format!("effect {id}"))?;
        return Ok(vec![PendingEffect { id: id.to_string(), effect }]);
    }
    let delivery = pk.strip_prefix("D#").ok_or_else(|| StoreError::Corrupt(format!("{pk:?} in the pending index")))?;
    let what = format!("effects of delivery {delivery}");
    let Some(AttributeValue::B(bytes)) = item.get(EFFECTS) else {
        return Err(StoreError::Corrupt(format!("{what}: missing")));
    };
    let effects: Vec<PendingEffect> =
        decode(&packed::unpack(bytes.as_ref()).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?, &what)?;
    let done: Vec<&String> = item.get(DONE_IDS).and_then(|v| v.as_ss().ok()).map(|v| v.iter().collect()).unwrap_or_default();
    Ok(effects.into_iter().filter(|e| !done.contains(&&e.id)).collect())
}

fn delivery_from(id: &str, item: &Item, now: DateTime<Utc>) -> Result<Option<Delivery>, StoreError> {
    // DynamoDB's TTL deletes within days of expiry, not at it: an expired record is read as gone.
    if let Some(exp) = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()) {
        if exp <= now.timestamp() {
            return Ok(None);
        }
    }
    let accepted_at = string(item, "accepted_at")?;
    let accepted_at = DateTime::parse_from_rfc3339(&accepted_at)
        .map_err(|e| StoreError::Corrupt(format!("delivery {id}: accepted_at {accepted_at:?}: {e}")))?
        .with_timezone(&Utc);
    Ok(Some(Delivery {
        id: id.to_string(),
        body_hash: string(item, "body_hash")?,
        case_id: item.get("case_id").and_then(|v| v.as_s().ok()).cloned(),
        accepted_at,
    }))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn string(item: &Item, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| StoreError::Corrupt(format!("item {:?} has no string attribute {name}", item.get(PK))))
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::from(AwsError::invalid("building a DynamoDB request", e.to_string()))
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

fn decode<T: DeserializeOwned>(doc: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_group_is_the_text_up_to_the_second_colon() {
        assert_eq!(subject_group("expiry:2026-04-09:P-77"), Some("expiry:2026-04-09:"));
        assert_eq!(subject_group("expiry:2026-04-09:"), Some("expiry:2026-04-09:"));
        assert_eq!(subject_group("appointment:A-1"), None);
        assert_eq!(subject_group("expiry"), None);
    }

    #[test]
    fn an_expired_delivery_reads_as_absent() {
        let now = Utc::now();
        let mut item = Item::new();
        item.insert("body_hash".into(), s("h"));
        item.insert("accepted_at".into(), s("2026-03-01T09:00:00Z"));
        item.insert("expires_at".into(), n(now.timestamp() + 10));
        assert!(delivery_from("d", &item, now).unwrap().is_some());
        item.insert("expires_at".into(), n(now.timestamp()));
        assert_eq!(delivery_from("d", &item, now).unwrap(), None);
    }
}
