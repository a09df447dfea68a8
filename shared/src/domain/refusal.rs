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

crate::named_enum! {
    /// The rule ids of the SPEC (stable, cited in refusals, on timelines and in tests).
    pub enum Rule {
        R0_1 = "R0.1",
        R0_2 = "R0.2",
        R0_3 = "R0.3",
        R1_1 = "R1.1",
        R1_2 = "R1.2",
        R1_3 = "R1.3",
        R1_4 = "R1.4",
        R1_5 = "R1.5",
        R1_6 = "R1.6",
        R2_1 = "R2.1",
        R2_2 = "R2.2",
        R2_3 = "R2.3",
        R2_4 = "R2.4",
        R2_5 = "R2.5",
        R2_6 = "R2.6",
        R2_7 = "R2.7",
        R2_8 = "R2.8",
        R2_9 = "R2.9",
        R2_10 = "R2.10",
        R3_1 = "R3.1",
        R3_2 = "R3.2",
        R3_3 = "R3.3",
        R3_4 = "R3.4",
        R3_5 = "R3.5",
        R3_6 = "R3.6",
        R3_7 = "R3.7",
        R3_8 = "R3.8",
        R3_9 = "R3.9",
        R4_1 = "R4.1",
        R4_2 = "R4.2",
        R4_3 = "R4.3",
        R4_4 = "R4.4",
        R4_5 = "R4.5",
        R4_6 = "R4.6",
        R4_7 = "R4.7",
        R5_1 = "R5.1",
        R5_2 = "R5.2",
        R5_3 = "R5.3",
        R5_4 = "R5.4",
        R5_5 = "R5.5",
        R6_1 = "R6.1",
        R6_2 = "R6.2",
        R6_3 = "R6.3",
        R6_4 = "R6.4",
        R7_1 = "R7.1",
        R7_2 = "R7.2",
        R7_3 = "R7.3",
        R8_1 = "R8.1",
        R8_2 = "R8.2",
        R8_3 = "R8.3",
        R9_1 = "R9.1",
        R9_2 = "R9.2",
        R9_3 = "R9.3",
        R9_4 = "R9.4",
        R9_5 = "R9.5",
        R9_6 = "R9.6",
        R9_7 = "R9.7",
    }
}

impl From<Rule> for String {
    fn from(rule: Rule) -> String {
        rule.as_str().to_string()
    }
}

/// Why an input is refused; nothing is stored and nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<Rule>,
}

impl Refusal {
    pub fn not_found(code: ErrorCode, message: impl Into<String>, field: &str) -> Self {
        Refusal { kind: RefusalKind::NotFound, code, message: message.into(), field: Some(field.into()), rule: None }
    }
    pub fn rule(rule: Rule, message: impl Into<String>, field: Option<&str>) -> Self {
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
    pub fn conflict_rule(code: ErrorCode, rule: Rule, message: impl Into<String>, field: Option<&str>) -> Self {
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
