//! The wire contract of SPEC §5: routes, signature, envelope, validation, error bodies, views and replies.
//!
//! Each concern has a file of its own; every public item is re-exported here, so callers name
//! it `wire::X` whichever file holds it.

mod envelope;
mod reply;
mod signature;
mod validate;
mod views;

pub use crate::domain::events::Route;
pub use envelope::{check_size, parse_event};
pub use reply::{unmatched, CaseQuery, Reply};
pub use signature::{body_hash, secrets, sign, verify_signature};
pub use views::{accepted, case_view, cases_view, command_view, sms_view};

use crate::domain::{ErrorCode, Refusal, RefusalKind};
use serde_json::{json, Value};

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Accepted distance between `X-Timestamp` and the real wall clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
pub const DEFAULT_LOCAL_SECRET: &str = "local-dev-secret";
/// The largest money amount taken, in minor units: far above any job, and far enough below
/// i64::MAX that markups, tax and sums of the money rules never overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// The longest painting job taken, in days (its per-day prices and blocked days are listed).
pub const MAX_PAINTING_DAYS: u32 = 365;

impl Route {
    pub const ALL: [Route; 4] = [Route::Appointments, Route::Cancellations, Route::Calls, Route::Packages];

    pub fn path(self) -> &'static str {
        match self {
            Route::Appointments => "/v1/appointments",
            Route::Cancellations => "/v1/cancellations",
            Route::Calls => "/v1/calls",
            Route::Packages => "/v1/packages",
        }
    }

    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.path() == path.trim_end_matches('/'))
    }
}

/// A refused request: status and the SPEC error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct WireError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<String>,
}

impl WireError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        WireError { status, code, message: message.into(), field: None, rule: None }
    }
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// The rule the refusal cites.
    pub fn cite(mut self, rule: &str) -> Self {
        self.rule = Some(rule.into());
        self
    }
    fn bad(code: ErrorCode, message: impl Into<String>, field: impl Into<String>) -> Self {
        WireError::new(400, code, message).at(field)
    }
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "field": self.field, "rule": self.rule}})
    }
}

impl From<Refusal> for WireError {
    fn from(r: Refusal) -> Self {
        let status = match r.kind {
            RefusalKind::Invalid => 400,
            RefusalKind::NotFound => 404,
            RefusalKind::Rule => 422,
        };
        WireError { status, code: r.code, message: r.message, field: r.field, rule: r.rule.map(Into::into) }
    }
}
