//! What an HTTP request is answered with: the reply, the status of each refusal the shell
//! gives, the case query read from a query string, and the answer to a request no route takes.

use super::{views, Route, WireError};
use crate::domain::ErrorCode;
use crate::ports::StoreError;
use serde_json::Value;
use tracing::warn;

/// An HTTP-shaped answer, so the local server and the Lambda functions share one mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// 200 with a view.
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body }
    }

    /// The 202 of an accepted input.
    pub fn accepted(case_id: Option<&str>, duplicate: bool, echo: bool) -> Reply {
        Reply { status: 202, body: views::accepted(case_id, duplicate, echo) }
    }
}

impl From<WireError> for Reply {
    fn from(e: WireError) -> Self {
        Reply { status: e.status, body: e.body() }
    }
}

impl From<StoreError> for Reply {
    fn from(e: StoreError) -> Self {
        warn!(error = %e, "storage failure");
        WireError::unavailable().into()
    }
}

/// The refusals the shell itself gives (the domain's come as a `Refusal`).
impl WireError {
    /// 503: the store did not answer; the sender retries.
    pub fn unavailable() -> Self {
        WireError::new(503, ErrorCode::Unavailable, "storage is unavailable; retry later")
    }

    /// 503: other writers kept committing the stream first; the sender retries.
    pub fn contended() -> Self {
        WireError::new(503, ErrorCode::Contended, "the case is busy; retry")
    }

    /// 409: a delivery id already accepted, now with another body.
    pub fn delivery_conflict(id: &str) -> Self {
        WireError::new(409, ErrorCode::DeliveryConflict, format!("delivery {id:?} was already accepted with another body")).at("id")
    }

    /// 422: an appointment id names one appointment of one order.
    pub fn subject_taken(subject: &str) -> Self {
        WireError::new(422, ErrorCode::AlreadyBooked, format!("{subject} belongs to another order")).at("data.appointment_id")
    }

    /// R9.7 an event cannot have happened after now: `ahead_secs` past the clock, more than the
    /// `tolerance_secs` a sender's clock may run ahead.
    pub fn ahead_of_clock(ahead_secs: i64, tolerance_secs: u32) -> Self {
        WireError::new(
            400,
            ErrorCode::InvalidField,
            format!(
                "occurred_at is {ahead_secs} s ahead of the clock; an event is reported after it happens (at most {tolerance_secs} s ahead)"
            ),
        )
        .at("occurred_at")
        .cite("R9.7")
    }

    /// 404 of `GET /v1/cases/{case_id}`.
    pub fn unknown_case(case_id: &str) -> Self {
        WireError::new(404, ErrorCode::UnknownCase, format!("case_id {case_id:?} names no case")).at("case_id")
    }
}

/// Which cases `GET /v1/cases?…` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseQuery {
    Appointment(String),
    Order(String),
    Package(String),
}

impl CaseQuery {
    /// The first `appointment_id`, `order_id` or `package_id` among a query string's decoded pairs.
    pub fn from_params(params: &[(String, String)]) -> Result<CaseQuery, WireError> {
        let query = params.iter().find_map(|(k, v)| match k.as_str() {
            "appointment_id" => Some(CaseQuery::Appointment(v.clone())),
            "order_id" => Some(CaseQuery::Order(v.clone())),
            "package_id" => Some(CaseQuery::Package(v.clone())),
            _ => None,
        });
        query.ok_or_else(|| {
            WireError::new(400, ErrorCode::MissingField, "give one of appointment_id, order_id or package_id").at("appointment_id")
        })
    }
}

/// R9.6 the answer to a request no route takes, with the error body: 405 for a path the
/// contract serves with another method, 404 for any other (on Lambda also a path another
/// function serves).
pub fn unmatched(method: &str, path: &str) -> WireError {
    let path = path.trim_end_matches('/');
    let case = path.strip_prefix("/v1/cases/").is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let allowed = if Route::ALL.iter().any(|r| r.path() == path) {
        Some("POST")
    } else if path == "/v1/cases" || case {
        Some("GET")
    } else {
        None
    };
    match allowed {
        Some(m) if m != method => WireError::new(405, ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {path}; use {m}")),
        _ => WireError::new(404, ErrorCode::NotFound, format!("no route {method} {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r9_6_unmatched_requests_are_404_or_405_with_a_code() {
        assert_eq!(
            (unmatched("GET", "/v1/appointments").status, unmatched("GET", "/v1/appointments").code),
            (405, ErrorCode::MethodNotAllowed)
        );
        assert_eq!(unmatched("DELETE", "/v1/cases/o1-O1").status, 405);
        assert_eq!(unmatched("POST", "/v1/cases").status, 405);
        assert_eq!((unmatched("GET", "/v2/nothing").status, unmatched("GET", "/v2/nothing").code), (404, ErrorCode::NotFound));
        assert_eq!(unmatched("GET", "/v1/cases/a/b").status, 404);
    }
}
