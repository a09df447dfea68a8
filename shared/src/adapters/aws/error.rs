//! One typed error for every AWS call, classified once: retryable or not.

use crate::ports::{EffectError, StoreError};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::error::Error as StdError;

/// Service error codes that say "try again later" rather than "this request is wrong".
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "InternalServerError",
    "InternalServerException",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionInProgressException",
    "KMSThrottlingException",
    "Throttled",
];

/// A failed AWS call: which operation, the service error code if any, and whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub retryable: bool,
    /// The call surely did nothing: the service answered with a refusal, or the request never
    /// left. Otherwise (a timeout, a dropped connection, an unreadable answer) it may have been done.
    pub surely_not_done: bool,
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AwsError {
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let message = DisplayErrorContext(&err).to_string();
        let (code, retryable, surely_not_done) = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (None, true, false),
            SdkError::ServiceError(e) => {
                let code = e.err().code().map(str::to_owned);
                let transient = code.as_deref().is_some_and(|c| TRANSIENT_CODES.contains(&c));
                (code, transient, true)
            }
            SdkError::ConstructionFailure(_) => (err.code().map(str::to_owned), false, true),
            _ => (err.code().map(str::to_owned), false, false),
        };
        AwsError { operation, code, retryable, surely_not_done, message, source: Some(Box::new(err)) }
    }

    /// A request this adapter could not even build (a programming error, never retried).
    pub fn invalid(operation: &'static str, message: impl Into<String>) -> AwsError {
        AwsError { operation, code: None, retryable: false, surely_not_done: true, message: message.into(), source: None }
    }
}

impl From<AwsError> for StoreError {
    fn from(e: AwsError) -> StoreError {
        // The engine answers 503 and the caller (dashboard, Scheduler) retries.
        StoreError::Unavailable(e.to_string())
    }
}

impl From<AwsError> for EffectError {
    fn from(e: AwsError) -> EffectError {
        if e.retryable {
            EffectError::Transient(e.to_string())
        } else {
            EffectError::Permanent(e.to_string())
        }
    }
}
