//! Attribute and document conversions, and telling a write its condition refused from a failure.

use crate::adapters::aws::AwsError;
use crate::adapters::packed;
use crate::ports::StoreError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

/// A `PutItem` or `UpdateItem` its condition refused (the item absent, or not in the state asked for).
pub(super) fn refused<E: ConditionFailed, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().is_some_and(ConditionFailed::condition_failed)
}

/// The service error of a conditional write, which says whether the condition was what failed.
pub(super) trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::from(AwsError::invalid("building a DynamoDB request", e.to_string()))
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

/// A packed document ([`packed`]) as the JSON text it holds; `what` names it in the error.
pub(super) fn unpacked(bytes: &Blob, what: &str) -> Result<String, StoreError> {
    packed::unpack(bytes.as_ref()).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(doc: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}
