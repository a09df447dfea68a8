//! Every number of the SPEC as a policy default, overridable from a TOML file (`FOLLOWUP_CONFIG`).

use crate::domain::calendar::Calendar;
use crate::domain::money::Percent;
use crate::domain::sms::TemplateId;
use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// The whole operating policy. Defaults are the SPEC figures; a TOML file may
/// override any field, and unknown keys are refused so a typo never passes silently.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Its time zone must be one the build carries (`calendar::SUPPORTED_ZONES`).
    pub calendar: Calendar,
    pub sms: SmsPolicy,
    pub money: MoneyPolicy,
    pub cancellation_follow_up: CancellationFollowUpPolicy,
    pub appointment_watch: AppointmentWatchPolicy,
    pub reschedule_outreach: RescheduleOutreachPolicy,
    pub second_visit: SecondVisitPolicy,
    pub reschedule: ReschedulePolicy,
    pub package_payment: PackagePaymentPolicy,
    pub package_expiry: PackageExpiryPolicy,
    pub package_visits: PackageVisitPolicy,
    pub timers: TimerPolicy,
    pub events: EventPolicy,
    pub console: ConsolePolicy,
}

/// The team lead's console (followup-local `/console`): when an outstanding call task counts as
/// overdue, and how far ahead and back the SLA page looks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsolePolicy {
    /// A call task out this many minutes with no report is overdue.
    pub task_overdue_minutes: u32,
    /// SLA and deadline timers due within this many hours are listed as coming.
    pub sla_horizon_hours: u32,
    /// Breaches of the last this many hours are listed.
    pub breach_lookback_hours: u32,
}
impl Default for ConsolePolicy {
    fn default() -> Self {
        ConsolePolicy { task_overdue_minutes: 60, sla_horizon_hours: 24, breach_lookback_hours: 24 * 7 }
    }
}

/// R9.7 (v3) how far ahead of the clock an event's `occurred_at` may be (the sender's clock may
/// run a little fast; further ahead is a 400).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventPolicy {
    pub future_tolerance_secs: u32,
}
impl Default for EventPolicy {
    fn default() -> Self {
        EventPolicy { future_tolerance_secs: 300 }
    }
}

/// R9.3 the safety net under the one-shot timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimerPolicy {
    /// A pending timer this many minutes past its due time is re-fired by the timer sweep (as the
    /// same delivery, so one that did fire is a harmless duplicate).
    pub sweep_grace_minutes: u32,
}
impl Default for TimerPolicy {
    fn default() -> Self {
        TimerPolicy { sweep_grace_minutes: 10 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("policy file {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

impl Policy {
    pub fn from_toml(text: &str) -> Result<Policy, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn load(path: &str) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.into(), source })?;
        Policy::from_toml(&text).map_err(|message| PolicyError::Invalid { path: path.into(), message })
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsPolicy {
    /// Substituted into every template (SPEC §4).
    pub hotline: String,
    /// SNS sender id on AWS.
    pub sender_id: String,
    /// SPEC §4 (v2) numbers (E.164) that never get an SMS.
    pub suppressed: Vec<String>,
    /// SPEC §4 (v2) at most this many SMS to one number in one local day.
    pub daily_cap: u32,
    /// SPEC §4 (v2) promotional templates: sent only inside `promo_start`–`promo_end` local, never
    /// on `promo_days_off` or a calendar holiday; outside that they wait for the next allowed time.
    pub promotional: Vec<TemplateId>,
    pub promo_start: NaiveTime,
    pub promo_end: NaiveTime,
    pub promo_days_off: Vec<Weekday>,
}
impl Default for SmsPolicy {
    fn default() -> Self {
        SmsPolicy {
            hotline: "19125".into(),
            sender_id: "Filkhedma".into(),
            suppressed: Vec::new(),
            daily_cap: 5,
            promotional: vec![TemplateId::DiscountOffer],
            promo_start: hm(9, 0),
            promo_end: hm(21, 0),
            promo_days_off: vec![Weekday::Fri, Weekday::Sat],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoneyPolicy {
    pub currency: String,
}
impl Default for MoneyPolicy {
    fn default() -> Self {
        MoneyPolicy { currency: "EGP".into() }
    }
}

/// R2.x — follow-up of a cancelled first visit (seed 001, offers of seed 000).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CancellationFollowUpPolicy {
    /// R2.3 coupon on a customer or ops cancellation without an existing discount.
    pub discount: Percent,
    /// R2.3 how long a coupon stays valid when no appointment request extends it.
    pub coupon_valid_days: u32,
    /// R2.4 an "unsure" customer gets an appointment request this many days after the cancellation day.
    pub unsure_request_after_days: u32,
    /// R2.5 number of follow-up attempts, one per working day after the cancellation day.
    pub attempts: u32,
    /// R2.5 local time of each attempt's call task.
    pub attempt_time: NaiveTime,
    /// R2.9 a ticket not resolved this many days after opening is closed.
    pub close_after_days: u32,
    /// R2.10 re-open allowed from this many days after the appointment day.
    pub reopen_after_days: u32,
}
impl Default for CancellationFollowUpPolicy {
    fn default() -> Self {
        CancellationFollowUpPolicy {
            discount: Percent::whole(15),
            coupon_valid_days: 30,
            unsure_request_after_days: 28,
            attempts: 2,
            attempt_time: hm(9, 0),
            close_after_days: 7,
            reopen_after_days: 30,
        }
    }
}

/// R0.x — unassigned appointment watch (seed 000).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppointmentWatchPolicy {
    /// R0.1 the STATUS_UPDATE SMS goes this many minutes before `window_start` (exact, no working hours).
    pub status_update_before_minutes: u32,
    /// R0.2 an appointment still unassigned this many minutes before `window_start` is cancelled.
    pub auto_cancel_before_minutes: u32,
}
impl Default for AppointmentWatchPolicy {
    fn default() -> Self {
        AppointmentWatchPolicy { status_update_before_minutes: 180, auto_cancel_before_minutes: 60 }
    }
}

/// R1.x — voicemail / busy / no-answer outreach (seed 000).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RescheduleOutreachPolicy {
    /// R1.3 local time of the next-working-day attempt.
    pub second_attempt_time: NaiveTime,
    /// R1.4 an unresolved outreach cancels the appointment this many minutes before `window_start`.
    pub cancel_before_minutes: u32,
    /// R1.1–R1.3 call attempts (same day, then next working day).
    pub attempts: u32,
}
impl Default for RescheduleOutreachPolicy {
    fn default() -> Self {
        RescheduleOutreachPolicy { second_attempt_time: hm(9, 0), cancel_before_minutes: 60, attempts: 2 }
    }
}

/// R3.x — second visit after inspection, incomplete work or painting (seed 001).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecondVisitPolicy {
    /// R3.1 the case opens this many minutes after `appointment.completed`.
    pub open_after_minutes: u32,
    /// R3.2 the first call outcome is due this many hours after opening.
    pub first_call_sla_hours: u32,
    /// R3.3 the cost is told within this many hours of opening.
    pub cost_sla_hours: u32,
    /// R3.4 call attempts (at opening, then the next working day).
    pub attempts: u32,
    /// R3.4 local time of the next-working-day attempt.
    pub attempt_time: NaiveTime,
    /// R3.5 lead time after the material price is confirmed (whole working days of 24 h).
    pub material_lead_hours: u32,
    /// R3.5 the most material days ops may note.
    pub max_material_days: u32,
    /// R3.7 material quotation markup on the material price.
    pub material_markup: Percent,
    /// R3.7 added to the material quotation when the customer asks for a tax invoice.
    pub tax_invoice: Percent,
    /// R3.7 share of the material the technician collects on day 1.
    pub material_upfront: Percent,
    /// R3.8 a time change this close to the visit start replaces the visit.
    pub late_change_minutes: u32,
    /// R3.9 (as R2.9) an unresolved ticket is closed this many days after opening.
    pub close_after_days: u32,
    /// R3.9 (as R2.10) re-open allowed from this many days after the appointment day.
    pub reopen_after_days: u32,
}
impl Default for SecondVisitPolicy {
    fn default() -> Self {
        SecondVisitPolicy {
            open_after_minutes: 60,
            first_call_sla_hours: 8,
            cost_sla_hours: 48,
            attempts: 2,
            attempt_time: hm(9, 0),
            material_lead_hours: 24,
            max_material_days: 2,
            material_markup: Percent::whole(10),
            tax_invoice: Percent::whole(29),
            material_upfront: Percent::whole(50),
            late_change_minutes: 90,
            close_after_days: 7,
            reopen_after_days: 30,
        }
    }
}

/// R7.x — reschedule policy (seed 002).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReschedulePolicy {
    pub fee_within_hours: u32,
    /// Minor units; 0 means "inform only".
    pub fee_amount: i64,
    pub max_reschedules: u32,
}
impl Default for ReschedulePolicy {
    fn default() -> Self {
        ReschedulePolicy { fee_within_hours: 24, fee_amount: 0, max_reschedules: 3 }
    }
}

/// R4.x — unpaid package chase (seed 004).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackagePaymentPolicy {
    /// R4.4 local time of the call on the day before the first visit.
    pub day_before_call_time: NaiveTime,
    /// R4.4 still unpaid at this local time that day → the package is cancelled.
    pub payment_deadline_time: NaiveTime,
    /// R4.5 local time of the final call on the next working day.
    pub final_call_time: NaiveTime,
}
impl Default for PackagePaymentPolicy {
    fn default() -> Self {
        PackagePaymentPolicy { day_before_call_time: hm(9, 0), payment_deadline_time: hm(21, 0), final_call_time: hm(9, 0) }
    }
}

/// R5.x — expired package grace period (seed 004).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackageExpiryPolicy {
    /// R5.1 validity in calendar months; Day 1 after expiry = start_date + this.
    pub validity_months: u32,
    /// R5.1 / R5.4 grace days after expiry; deactivation at the start of the day after.
    pub grace_days: u32,
    /// R5.3 day of grace of the second call (Day 1 is the first).
    pub second_call_day: u32,
    /// R5.2 / R5.3 local time of the Day 1 tick and of the calls.
    pub call_time: NaiveTime,
    /// R5.4 local time on the day after grace when the package is deactivated ("Day 15 00:00").
    pub deactivate_time: NaiveTime,
}
impl Default for PackageExpiryPolicy {
    fn default() -> Self {
        PackageExpiryPolicy { validity_months: 1, grace_days: 14, second_call_day: 6, call_time: hm(9, 0), deactivate_time: hm(0, 0) }
    }
}

/// R6.x — package visit changes and cancellation refunds (seed 004).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackageVisitPolicy {
    /// R6.1 a change at least this many hours before the visit start is free.
    pub free_change_hours: u32,
    /// R6.4 fee on the remaining value of a package cancelled after payment.
    pub cancellation_fee: Percent,
}
impl Default for PackageVisitPolicy {
    fn default() -> Self {
        PackageVisitPolicy { free_change_hours: 24, cancellation_fee: Percent::whole(30) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_figures() {
        let p = Policy::default();
        assert_eq!(p.cancellation_follow_up.discount, Percent::whole(15));
        assert_eq!(p.cancellation_follow_up.close_after_days, 7);
        assert_eq!(p.sms.hotline, "19125");
        assert_eq!(p.calendar.work_start(), hm(9, 0));
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let p = Policy::from_toml(
            r#"
            [calendar]
            holidays = ["2026-04-25"]
            [sms]
            hotline = "16000"
            [cancellation_follow_up]
            discount = 12.5
            attempt_time = "10:30:00"
            "#,
        )
        .unwrap();
        assert_eq!(p.sms.hotline, "16000");
        assert_eq!(p.cancellation_follow_up.discount, Percent(1250));
        assert_eq!(p.cancellation_follow_up.attempt_time, hm(10, 30));
        assert_eq!(p.cancellation_follow_up.attempts, 2);
        assert!(!p.calendar.is_working_day("2026-04-25".parse().unwrap()));
        assert_eq!(p.calendar.tz(), chrono_tz::Africa::Cairo);
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        assert!(Policy::from_toml("[sms]\nhotlin = \"1\"").is_err());
        assert!(Policy::from_toml("[calendar]\ntimezone = \"Nowhere\"").is_err());
        // The binaries carry only the zones of .cargo/config.toml's CHRONO_TZ_TIMEZONE_FILTER.
        let refused = Policy::from_toml("[calendar]\ntimezone = \"America/New_York\"").unwrap_err();
        assert!(refused.contains("is not one this build carries"), "{refused}");
    }
}
