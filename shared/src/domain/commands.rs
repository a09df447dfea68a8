//! The commands of SPEC §3 as types: what the engine tells the dashboard and agents to do.
//!
//! On the wire a command is `{type, case_id, at, data}` (SPEC §5). Each variant of
//! [`CommandBody`] is one `type` with its `data`; the JSON Schema of every command is generated
//! from these types into `docs/commands.schema.json` (a test keeps it current).

use crate::domain::events::{CancelledBy, CompletionOutcome, PaymentMethod};
use crate::domain::money::{Money, Percent};
use crate::domain::records::case::{CallOutcome, SubjectIds};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A command as published: the body with the case it is about and when it was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub body: CommandBody,
    /// Null for commands about a subject rather than a case (R6, R7.3).
    pub case_id: Option<String>,
    pub at: DateTime<Utc>,
}

crate::named_enum! {
    /// R4 which call of the payment chase a call task is.
    pub enum CallStage {
        /// R4.1 / R4.2 / R4.3.
        First = "first",
        /// R4.4.
        DayBefore = "day_before",
        /// R4.5.
        Final = "final",
    }
}

crate::named_enum! {
    /// Why the engine cancels a package (R4.4).
    pub enum PackageCancelReason {
        /// Still unpaid at the deadline, or not reached on the day before (R4.4).
        NotPaid = "not_paid",
        /// The customer declined the package on the call.
        Declined = "declined",
    }
}

/// The schema of a command on the wire, for `docs/commands.schema.json`.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(title = "Command", description = "A command to the dashboard or agents (SPEC §3, §5): {type, case_id, at, data}.")]
struct CommandSchema {
    #[serde(flatten)]
    body: CommandBody,
    case_id: Option<String>,
    at: DateTime<Utc>,
}

/// The JSON Schema of every command, as committed in `docs/commands.schema.json`.
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(CommandSchema)).expect("a schema is JSON")
}

/// The date-times of commands leave in the business offset, as every time the engine writes.
pub type LocalTime = String;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum CommandBody {
    /// The call task of SPEC §2: call the customer now.
    CallCustomer(CallCustomer),
    /// R0.2, R1.4, R1.6, R3.8.
    CancelAppointment(CancelAppointment),
    /// R1.5 move the appointment to the agreed window.
    UpdateAppointment(Window),
    /// R1.5.
    NotifyTechnician(NotifyTechnician),
    /// R1.5 links for windows before `before` stop working.
    RevokeStfLinks(RevokeStfLinks),
    /// R2.4.
    CreateAppointmentRequest(CreateAppointmentRequest),
    /// R2.6, R2.8.
    CancelOrder(Reason),
    /// R2.7, R3.5, R3.8.
    CreateVisit(CreateVisit),
    /// R2.8, R3.6.
    OpenComplaint(Reason),
    /// R2.3 (v2) registers a coupon with the dashboard so it can be honoured.
    IssueCoupon(IssueCoupon),
    /// R3.2, R3.3.
    Escalate(Escalate),
    /// R3.4, R3.6.
    ConvertOrderToComplete(Reason),
    /// R3.7.
    BlockTechnicianDays(BlockTechnicianDays),
    /// R4.2 card.
    SendPaymentLink(PaymentRequest),
    /// R4.2 cash.
    RequestCashCollection(PaymentRequest),
    /// R4.4.
    CancelPackage(CancelPackage),
    /// R4.4.
    CancelPackageVisits(CancelPackage),
    /// R5.4.
    DeactivatePackage(DeactivatePackage),
    /// R6.3.
    CompleteVisit(CompleteVisit),
    /// R6.4.
    RefundPackage(RefundPackage),
    /// R8.3 the summary of a reported call.
    InteractionSummary(InteractionSummary),
}

impl CommandBody {
    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandBody::CallCustomer(_) => "call_customer",
            CommandBody::CancelAppointment(_) => "cancel_appointment",
            CommandBody::UpdateAppointment(_) => "update_appointment",
            CommandBody::NotifyTechnician(_) => "notify_technician",
            CommandBody::RevokeStfLinks(_) => "revoke_stf_links",
            CommandBody::CreateAppointmentRequest(_) => "create_appointment_request",
            CommandBody::CancelOrder(_) => "cancel_order",
            CommandBody::CreateVisit(_) => "create_visit",
            CommandBody::OpenComplaint(_) => "open_complaint",
            CommandBody::IssueCoupon(_) => "issue_coupon",
            CommandBody::Escalate(_) => "escalate",
            CommandBody::ConvertOrderToComplete(_) => "convert_order_to_complete",
            CommandBody::BlockTechnicianDays(_) => "block_technician_days",
            CommandBody::SendPaymentLink(_) => "send_payment_link",
            CommandBody::RequestCashCollection(_) => "request_cash_collection",
            CommandBody::CancelPackage(_) => "cancel_package",
            CommandBody::CancelPackageVisits(_) => "cancel_package_visits",
            CommandBody::DeactivatePackage(_) => "deactivate_package",
            CommandBody::CompleteVisit(_) => "complete_visit",
            CommandBody::RefundPackage(_) => "refund_package",
            CommandBody::InteractionSummary(_) => "interaction_summary",
        }
    }

    /// The `data` object, as published.
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut o)) => o.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Command", 4)?;
        st.serialize_field("type", self.body.kind())?;
        st.serialize_field("case_id", &self.case_id)?;
        st.serialize_field("at", &self.at)?;
        st.serialize_field("data", &self.body.data())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(flatten)]
            body: CommandBody,
            case_id: Option<String>,
            at: DateTime<Utc>,
        }
        let w = Wire::deserialize(d)?;
        Ok(Command { body: w.body, case_id: w.case_id, at: w.at })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallCustomer {
    #[serde(flatten)]
    pub subject: SubjectIds,
    /// E.164.
    pub phone: String,
    pub customer_name: String,
    pub reason: String,
    pub due: LocalTime,
    /// The attempt of the sequence this call is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// R4 which call of the payment chase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<CallStage>,
    /// R2.3 the coupon to mention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
    /// R1.2 the self-scheduling link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stf_link: Option<String>,
    /// R1.5 the hint to offer the soonest available time first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// R3.1 what the completed visit found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_outcome: Option<CompletionOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_material: Option<bool>,
    /// R3.7 the painting quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub painting: Option<PaintingQuote>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CancelAppointment {
    pub appointment_id: String,
    pub order_id: String,
    pub by: CancelledBy,
    pub reason: String,
    /// R3.8 the start of the visit being replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<LocalTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Window {
    #[serde(flatten)]
    pub subject: SubjectIds,
    pub window_start: LocalTime,
    pub window_end: LocalTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotifyTechnician {
    #[serde(flatten)]
    pub subject: SubjectIds,
    /// Null when no technician is assigned yet.
    pub technician_id: Option<String>,
    pub window_start: LocalTime,
    pub window_end: LocalTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RevokeStfLinks {
    #[serde(flatten)]
    pub subject: SubjectIds,
    /// Links for windows before this instant stop working.
    pub before: LocalTime,
    pub stf_link: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateAppointmentRequest {
    #[serde(flatten)]
    pub subject: SubjectIds,
    pub not_before: NaiveDate,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    #[serde(flatten)]
    pub subject: SubjectIds,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateVisit {
    #[serde(flatten)]
    pub subject: SubjectIds,
    pub window_start: LocalTime,
    pub window_end: LocalTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
    /// R3.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_material: Option<bool>,
    /// R3.8 the appointment this visit replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_appointment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_number: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueCoupon {
    /// Unique per appointment.
    pub code: String,
    pub percent: Percent,
    /// The last day it can be used.
    pub valid_until: NaiveDate,
    pub order_id: String,
    pub customer_id: String,
    /// The cancelled appointment that earned it.
    pub appointment_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Escalate {
    #[serde(flatten)]
    pub subject: SubjectIds,
    /// Who takes it: `shift_leader`.
    pub to: String,
    /// Which SLA was breached: `first_call_sla` (R3.2) or `cost_sla` (R3.3).
    pub sla: String,
    pub reason: String,
}

/// R3.7 the painting quote, in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaintingQuote {
    pub currency: String,
    pub days: u32,
    pub total_price: i64,
    pub price_per_day: Vec<i64>,
    pub material_price: i64,
    pub material_quotation: i64,
    pub tax: i64,
    pub material_total: i64,
    pub material_day1: i64,
    pub material_rest: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockTechnicianDays {
    #[serde(flatten)]
    pub subject: SubjectIds,
    /// Every working day of the job.
    pub days: Vec<NaiveDate>,
    /// Local `HH:MM`.
    pub window_start: String,
    pub window_end: String,
    pub painting: PaintingQuote,
    pub price_per_day: Vec<Money>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentRequest {
    pub package_id: String,
    pub amount: Money,
    pub payment_method: PaymentMethod,
    pub phone: String,
    /// The first visit's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_before: Option<LocalTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CancelPackage {
    pub package_id: String,
    pub reason: PackageCancelReason,
    /// `cancel_package_visits`: the visits still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeactivatePackage {
    pub package_id: String,
    pub reason: String,
    pub forfeited_visits: u32,
    pub visit_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompleteVisit {
    pub package_id: String,
    pub visit_id: String,
    pub window_start: LocalTime,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefundPackage {
    pub package_id: String,
    pub reason: String,
    pub visits: u32,
    pub remaining_visits: u32,
    pub value_per_visit: Money,
    pub remaining_value: Money,
    pub fee_percent: Percent,
    pub fee: Money,
    pub refund: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionSummary {
    #[serde(flatten)]
    pub subject: SubjectIds,
    pub call_id: String,
    pub agent_id: String,
    pub outcome: CallOutcome,
    /// R8.2 the most important topic; null when the call carried none (R9.5).
    pub primary_topic: Option<String>,
    pub other_topics: Vec<String>,
    pub notes: Vec<String>,
    pub requested_follow_up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_type_case_id_at_data() {
        let c = Command {
            body: CommandBody::CancelOrder(Reason { subject: SubjectIds::appointment("A1", "O1"), reason: "customer_unreached".into() }),
            case_id: Some("o1-O1".into()),
            at: DateTime::parse_from_rfc3339("2026-03-04T07:10:00Z").unwrap().with_timezone(&Utc),
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"type":"cancel_order","case_id":"o1-O1","at":"2026-03-04T07:10:00Z","data":{"appointment_id":"A1","order_id":"O1","reason":"customer_unreached"}}"#
        );
        assert_eq!(serde_json::from_str::<Command>(&text).unwrap(), c);
    }

    #[test]
    fn the_committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/commands.schema.json");
        let current = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("FOLLOWUP_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "docs/commands.schema.json is stale: run FOLLOWUP_WRITE_SCHEMA=1 cargo test -p followup-shared schema"
        );
    }
}
