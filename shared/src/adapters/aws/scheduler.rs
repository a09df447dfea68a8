//! Timers as one-time EventBridge Scheduler schedules that invoke the function owning the case.

use super::error::AwsError;
use crate::domain::effects::{TimerRef, TimerSpec};
use crate::domain::playbooks::PlaybookName;
use crate::domain::subjects::snapshot::SubjectKey;
use crate::ports::{EffectError, Timers};
use aws_sdk_scheduler::types::{ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target};
use aws_sdk_scheduler::Client;
use chrono::{DateTime, Duration, DurationRound, Utc};

/// Scheduler keeps retrying a failed invocation for this long, then puts the event in the DLQ.
const MAX_EVENT_AGE_SECS: i32 = 24 * 60 * 60;
const MAX_RETRY_ATTEMPTS: i32 = 185;
/// Scheduler invokes with one-minute precision; a due time already past is placed this far ahead.
const LEAD: Duration = Duration::seconds(60);

/// `place` and `cancel`: one-time schedules in the group, created with the scheduler role.
pub const GRANTS: &[super::grants::Grant] = {
    use super::grants::{grant, Resource};
    &[
        grant("scheduler:CreateSchedule", Resource::Schedules),
        grant("scheduler:DeleteSchedule", Resource::Schedules),
        grant("iam:PassRole", Resource::SchedulerRole),
    ]
};

/// The ARN of each function that owns timers (SPEC §5: "the function that owns the case").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerTargets {
    pub appointments: String,
    pub cancellation_request: String,
    pub package_payment: String,
    pub package_expiry: String,
}

impl TimerTargets {
    /// Routes by the playbook the timer was placed for; subject timers (no playbook) by their subject.
    pub fn for_timer(&self, timer: &TimerSpec) -> &str {
        match timer.playbook {
            Some(PlaybookName::CancellationFollowUp) => &self.cancellation_request,
            Some(PlaybookName::AppointmentWatch | PlaybookName::RescheduleOutreach | PlaybookName::SecondVisitFollowUp) => {
                &self.appointments
            }
            Some(PlaybookName::PackagePayment) => &self.package_payment,
            Some(PlaybookName::PackageExpiry) => &self.package_expiry,
            None => match timer.timer.stream {
                SubjectKey::Order(_) => &self.appointments,
                SubjectKey::Package(_) => &self.package_expiry,
            },
        }
    }
}

/// `Timers` over one schedule group (`FOLLOWUP_SCHEDULE_GROUP`).
#[derive(Debug, Clone)]
pub struct SchedulerTimers {
    client: Client,
    group: String,
    role_arn: String,
    dlq_arn: String,
    targets: TimerTargets,
}

impl SchedulerTimers {
    pub fn new(
        client: Client,
        group: impl Into<String>,
        role_arn: impl Into<String>,
        dlq_arn: impl Into<String>,
        targets: TimerTargets,
    ) -> Self {
        SchedulerTimers { client, group: group.into(), role_arn: role_arn.into(), dlq_arn: dlq_arn.into(), targets }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    fn target(&self, timer: &TimerSpec) -> Result<Target, AwsError> {
        let input = serde_json::to_string(timer).map_err(|e| AwsError::invalid("CreateSchedule", format!("encoding the timer: {e}")))?;
        Target::builder()
            .arn(self.targets.for_timer(timer))
            .role_arn(&self.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder().maximum_event_age_in_seconds(MAX_EVENT_AGE_SECS).maximum_retry_attempts(MAX_RETRY_ATTEMPTS).build(),
            )
            .dead_letter_config(DeadLetterConfig::builder().arn(&self.dlq_arn).build())
            .build()
            .map_err(|e| AwsError::invalid("CreateSchedule", e.to_string()))
    }
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the second (a timer never fires early),
/// and never in the past.
pub fn at_expression(due_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let second = Duration::seconds(1);
    let ceil = |t: DateTime<Utc>| {
        let floor = t.duration_trunc(second).unwrap_or(t);
        if floor < t {
            floor + second
        } else {
            floor
        }
    };
    let at = ceil(due_at).max(ceil(now) + LEAD);
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

impl Timers for SchedulerTimers {
    async fn place(&self, timer: &TimerSpec) -> Result<(), EffectError> {
        let name = timer.timer.name();
        let result = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.group)
            .schedule_expression(at_expression(timer.due_at, Utc::now()))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .map_err(|e| AwsError::invalid("CreateSchedule", e.to_string()))?,
            )
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(self.target(timer)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The name is derived from the case step: it exists, so this timer is already placed.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => Ok(()),
            Err(e) => Err(AwsError::from_sdk("CreateSchedule", e).into()),
        }
    }

    async fn cancel(&self, timer: &TimerRef) -> Result<(), EffectError> {
        let result = self.client.delete_schedule().name(timer.name()).group_name(&self.group).send().await;
        match result {
            Ok(_) => Ok(()),
            // Fired (and deleted after completion) or never placed.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(AwsError::from_sdk("DeleteSchedule", e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::case::TimerKind;
    use chrono::TimeZone;

    fn spec(stream: SubjectKey, playbook: Option<&str>) -> TimerSpec {
        TimerSpec {
            timer: TimerRef { stream, case_id: None, kind: TimerKind::CallAttempt, step: 1 },
            due_at: Utc::now(),
            playbook: playbook.map(|p| p.parse().expect("a playbook name")),
        }
    }

    #[test]
    fn timers_fire_into_the_function_that_owns_the_playbook() {
        let t = TimerTargets {
            appointments: "A".into(),
            cancellation_request: "C".into(),
            package_payment: "P".into(),
            package_expiry: "E".into(),
        };
        let order = || SubjectKey::Order("O1".into());
        let package = || SubjectKey::Package("P1".into());
        assert_eq!(t.for_timer(&spec(order(), Some("cancellation_follow_up"))), "C");
        for p in ["appointment_watch", "reschedule_outreach", "second_visit_follow_up"] {
            assert_eq!(t.for_timer(&spec(order(), Some(p))), "A");
        }
        assert_eq!(t.for_timer(&spec(package(), Some("package_payment"))), "P");
        assert_eq!(t.for_timer(&spec(package(), Some("package_expiry"))), "E");
        assert_eq!(t.for_timer(&spec(order(), None)), "A");
        assert_eq!(t.for_timer(&spec(package(), None)), "E");
    }

    #[test]
    fn at_expressions_are_utc_seconds_rounded_up_and_never_past() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
        let due = Utc.with_ymd_and_hms(2026, 3, 2, 7, 0, 0).unwrap();
        assert_eq!(at_expression(due, now), "at(2026-03-02T07:00:00)");
        assert_eq!(at_expression(due + Duration::milliseconds(1), now), "at(2026-03-02T07:00:01)");
        assert_eq!(at_expression(now - Duration::hours(3), now), "at(2026-03-01T08:01:00)");
    }
}
