//! The SMS / command send log: one item per sent effect, claimed before the send and marked after it,
//! so the SNS adapters send each effect once whenever the log can be written.

use super::helpers::{n, refused, rfc3339, s};
use super::items::{PK, SK};
use super::{DynamoStore, EFFECT_RETENTION};
use crate::adapters::aws::AwsError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

/// The send log's claim holder.
const CLAIM_ID: &str = "claim_id";
/// The sort key of a send-log item (`O#<channel>#<effect id>`), whose `status` is `SENDING`, `SENT` or `RELEASED`.
const SENT_SK: &str = "SENT";

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

impl DynamoStore {
    /// Claims a send of `effect_id` on `channel` in the send log.
    ///
    /// A claim left `SENDING` longer than the lease ([`SEND_LEASE`](super::SEND_LEASE); a crash between the send and
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
            Err(e) if refused(&e) => {
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
            Err(e) if !refused(&e) => Err(AwsError::from_sdk("UpdateItem send-log", e)),
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
}
