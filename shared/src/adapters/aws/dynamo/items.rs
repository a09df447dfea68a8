//! The table's keys and items: what each item holds, the transaction items a commit writes, and
//! reading items back into the store's records.

use super::helpers::{build_error, decode, encode, n, rfc3339, s, unpacked, Item};
use super::DynamoStore;
use crate::adapters::packed;
use crate::domain::ctx::SmsCount;
use crate::domain::effects::Effect;
use crate::ports::{Commit, Delivery, PendingEffect, StoreError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

/// The table's partition and sort keys.
pub(super) const PK: &str = "PK";
pub(super) const SK: &str = "SK";
/// The keys of the sparse `pending` GSI ([`PENDING_INDEX`](super::PENDING_INDEX)).
pub(super) const PENDING_PK: &str = "pending";
pub(super) const PENDING_SK: &str = "pending_order";
/// The one value of the pending GSI's partition key (a low-volume queue; see docs/dynamodb.md).
pub(super) const PENDING: &str = "P";
/// The keys of the sparse `due` GSI ([`DUE_INDEX`](super::DUE_INDEX)).
pub(super) const DUE_BUCKET: &str = "due_bucket";
pub(super) const DUE_AT: &str = "due_at";
/// The keys of the sparse `subjects` GSI ([`SUBJECTS_INDEX`](super::SUBJECTS_INDEX)).
pub(super) const SUBJECT_GROUP: &str = "subject_group";
pub(super) const SUBJECT: &str = "subject";

pub(super) const STREAM_SK: &str = "STREAM";
/// The stream item's packed snapshot (binary); items written before packing hold `doc` (JSON text).
pub(super) const STREAM_DOC: &str = "docz";
pub(super) const DELIVERY_SK: &str = "DELIVERY";
pub(super) const INDEX_SK: &str = "INDEX";
/// Effect items of the layout before a commit's effects rode on its delivery record.
pub(super) const EFFECT_SK: &str = "EFFECT";
/// On a delivery record: the commit's effects (JSON, deflated as the stream doc is), how many,
/// and those marked done so far.
const EFFECTS: &str = "effects";
pub(super) const EFFECT_COUNT: &str = "effect_count";
pub(super) const DONE_IDS: &str = "done_ids";
/// SPEC §4 (v3) one number's SMS on one local day: `C#<phone>#<day>` / `SMS_COUNT`, attribute `count`.
pub(super) const SMS_COUNT_SK: &str = "SMS_COUNT";
pub(super) const SMS_COUNT: &str = "count";
/// How long a daily counter is kept past the start of its day (UTC midnight) or its last write,
/// whichever is later: past the end of that local day in any time zone, then TTL removes it.
const SMS_COUNT_RETENTION: Duration = Duration::days(2);

impl DynamoStore {
    /// The stream item; `doc` is the snapshot's JSON, deflated ([`packed`]).
    pub(super) fn stream_put(&self, commit: &Commit, doc: Vec<u8>) -> Result<TransactWriteItem, StoreError> {
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
    pub(super) fn delivery_put(&self, commit: &Commit, now: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
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

    pub(super) fn index_put(&self, subject: &str, key: &str) -> Result<TransactWriteItem, StoreError> {
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
    pub(super) fn sms_count_put(&self, c: &SmsCount, now: DateTime<Utc>) -> Result<TransactWriteItem, StoreError> {
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

/// The partition of the `due` GSI: the UTC day of a snapshot's earliest pending timer.
pub(super) fn due_bucket(due: DateTime<Utc>) -> String {
    due.format("%Y-%m-%d").to_string()
}

/// The sort key of the `due` GSI: the due instant in milliseconds, zero-padded to sort as text.
pub(super) fn due_sort(due: DateTime<Utc>) -> String {
    format!("{:015}", due.timestamp_millis().max(0))
}

/// The partition of a subject in the `subjects` index: its text up to the second `:`
/// (`expiry:2026-04-09:` of `expiry:2026-04-09:P-77`), or none for a one-level subject.
pub(super) fn subject_group(subject: &str) -> Option<&str> {
    let (second, _) = subject.match_indices(':').nth(1)?;
    Some(&subject[..=second])
}

/// The partition key of a number's SMS counter on a local day (`C#+201001234567#2026-03-01`).
pub(super) fn sms_count_pk(phone: &str, day: NaiveDate) -> String {
    format!("C#{phone}#{day}")
}

/// The delivery an effect id names (`<delivery id>#<n>`).
pub(super) fn delivery_of(effect_id: &str) -> Option<&str> {
    effect_id.rsplit_once('#').map(|(delivery, _)| delivery).filter(|d| !d.is_empty())
}

/// The effects still pending on an item of the `pending` GSI: a delivery record's effects less
/// its `done_ids`, or an effect item of the earlier layout.
pub(super) fn pending_of(item: &Item) -> Result<Vec<PendingEffect>, StoreError> {
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
    let effects: Vec<PendingEffect> = decode(&unpacked(bytes, &what)?, &what)?;
    let done: Vec<&String> = item.get(DONE_IDS).and_then(|v| v.as_ss().ok()).map(|v| v.iter().collect()).unwrap_or_default();
    Ok(effects.into_iter().filter(|e| !done.contains(&&e.id)).collect())
}

/// The string attribute `name` of `item`, which must have one.
pub(super) fn string(item: &Item, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| StoreError::Corrupt(format!("item {:?} has no string attribute {name}", item.get(PK))))
}

/// A delivery record (`D#<id>`) as the store reads it: none once it has expired.
pub(super) fn delivery_from(id: &str, item: &Item, now: DateTime<Utc>) -> Result<Option<Delivery>, StoreError> {
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
