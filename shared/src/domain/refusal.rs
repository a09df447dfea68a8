//! Why an input is refused: the typed error codes of the wire contract and the domain's refusals.

crate::named_enum! {
    /// Every `error.code` the engine answers with (SPEC §5); `docs/design.md` lists them all.
    pub enum ErrorCode {
        /// 401 missing, wrong or stale signature.
        Unauthorized = "unauthorized",
        /// 413 body over 64 KiB.
        PayloadTooLarge = "payload_too_large",
        /// 400 not JSON.
        InvalidJson = "invalid_json",
        /// 400 the envelope is not `{id, type, occurred_at, data}`.
        InvalidEnvelope = "invalid_envelope",
        /// 400 a body that is not the route's (e.g. `/local/clock`).
        InvalidBody = "invalid_body",
        /// 400 an event type this route does not take.
        UnknownType = "unknown_type",
        MissingField = "missing_field",
        InvalidField = "invalid_field",
        /// 404 unknown route.
        NotFound = "not_found",
        /// 405 a route that exists, with another method.
        MethodNotAllowed = "method_not_allowed",
        /// 404 `/local/clock` without the virtual clock.
        NoVirtualClock = "no_virtual_clock",
        UnknownAppointment = "unknown_appointment",
        UnknownCase = "unknown_case",
        UnknownPackage = "unknown_package",
        UnknownVisit = "unknown_visit",
        /// 404 a timer for a subject that does not exist.
        UnknownSubject = "unknown_subject",
        /// 409 the same delivery id with another body.
        DeliveryConflict = "delivery_conflict",
        /// 422 a rule refuses it (`rule` names it).
        RuleViolation = "rule_violation",
        /// 422 the appointment or package id is already booked.
        AlreadyBooked = "already_booked",
        /// 422 the appointment is no longer booked.
        AppointmentClosed = "appointment_closed",
        /// 422 a resolution kind the case's playbook has no step for.
        ResolutionNotApplicable = "resolution_not_applicable",
        /// 422 the package is cancelled or deactivated.
        PackageClosed = "package_closed",
        /// 422 the visit is completed, forfeited or cancelled free.
        VisitClosed = "visit_closed",
        /// 503 the store cannot be reached.
        Unavailable = "unavailable",
        /// 503 the case kept changing under concurrent deliveries.
        Contended = "contended",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// 400: the input is malformed for this purpose.
    Invalid,
    /// 404: unknown subject or case.
    NotFound,
    /// 422: a rule refuses it.
    Rule,
}

/// Why an input is refused; nothing is stored and nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<&'static str>,
}

impl Refusal {
    pub fn not_found(code: ErrorCode, message: impl Into<String>, field: &str) -> Self {
        Refusal { kind: RefusalKind::NotFound, code, message: message.into(), field: Some(field.into()), rule: None }
    }
    pub fn rule(rule: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        Refusal {
            kind: RefusalKind::Rule,
            code: ErrorCode::RuleViolation,
            message: message.into(),
            field: field.map(Into::into),
            rule: Some(rule),
        }
    }
    pub fn conflict(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> Self {
        Refusal { kind: RefusalKind::Rule, code, message: message.into(), field: field.map(Into::into), rule: None }
    }
    /// A conflict with what is held, citing the rule it breaks.
    pub fn conflict_rule(code: ErrorCode, rule: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        Refusal { rule: Some(rule), ..Refusal::conflict(code, message, field) }
    }
    pub fn invalid(code: ErrorCode, message: impl Into<String>, field: &str) -> Self {
        Refusal { kind: RefusalKind::Invalid, code, message: message.into(), field: Some(field.into()), rule: None }
    }
    pub fn unknown_case(case_id: &str) -> Self {
        Refusal::not_found(ErrorCode::UnknownCase, format!("case_id {case_id:?} names no case"), "data.case_id")
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn docs_list_every_error_code() {
        let design = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/design.md")).unwrap();
        for code in ErrorCode::ALL {
            assert!(design.contains(&format!("`{code}`")), "docs/design.md does not list error code `{code}`");
        }
    }
}
