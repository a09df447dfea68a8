//! The case store over DynamoDB (`impl CaseStore for DynamoStore`): reads, the commit transaction, effects marked done, and the sweeps' queries.

use super::helpers::{decode, encode, n, refused, rfc3339, s, unpacked, Item};
use super::items::{
    delivery_from, delivery_of, due_bucket, due_sort, pending_of, sms_count_pk, string, subject_group, DELIVERY_SK, DONE_IDS, DUE_AT,
    DUE_BUCKET, EFFECT_COUNT, EFFECT_SK, INDEX_SK, PENDING, PENDING_PK, PENDING_SK, PK, SK, SMS_COUNT, SMS_COUNT_SK, STREAM_DOC, STREAM_SK,
    SUBJECT, SUBJECT_GROUP,
};
use super::{DynamoStore, DUE_INDEX, DUE_LOOKBACK_DAYS, EFFECT_RETENTION, MAX_STREAM_DOC_BYTES, PENDING_INDEX, SUBJECTS_INDEX};
use crate::adapters::aws::AwsError;
use crate::adapters::packed;
use crate::domain::records::case::mask_phone;
use crate::domain::subjects::snapshot::{Snapshot, SubjectKey};
use crate::ports::{CaseStore, Commit, CommitError, Delivery, PendingEffect, StoreError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// TransactWriteItems takes at most 100 actions.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Positions of the fixed items inside the commit transaction.
const STREAM_POS: usize = 0;
const DELIVERY_POS: usize = 1;

impl DynamoStore {
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
            Some(AttributeValue::B(bytes)) => unpacked(bytes, &what)?,
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

    /// A `Query` of the `subjects` index: one partition per group, so the prefix must name one
    /// (`expiry:<day>:`). The index is eventually consistent: a package booked a moment ago may be
    /// missing, which the daily sweep tolerates because the package's own timer is already placed.
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
