//! The default AWS quotas the capacity figures are held to, by Region: one table, the same as
//! docs/performance.md's (a test holds the two together).
//!
//! Read from the AWS service quotas documentation pages on `QUOTAS_AS_OF`; a figure marked
//! `checked: false` was not on the stored copy of its page for the Region and is the page's
//! figure for Regions it does not list, to be checked in the account's Service Quotas console.

/// When the table was read off the AWS documentation.
pub const QUOTAS_AS_OF: &str = "2026-12-07";

/// The Region the capacity figures use unless `--region` says otherwise.
pub const DEFAULT_REGION: &str = "me-central-1";

/// One quota, per Region.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Quota {
    /// The figure of the capacity report it bounds.
    pub measure: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    /// The Regions the page lists with the same figure, and that figure.
    pub listed: (&'static [&'static str], f64),
    /// Every other Region.
    pub other: f64,
    pub source: &'static str,
    /// Whether the figure for Regions outside `listed` was on the page as read.
    pub checked: bool,
}

impl Quota {
    pub fn in_region(&self, region: &str) -> f64 {
        if self.listed.0.contains(&region) {
            self.listed.1
        } else {
            self.other
        }
    }
}

/// The Scheduler's primary Regions, as its quota page lists them.
const SCHEDULER_PRIMARY: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "sa-east-1",
];
const SCHEDULER_PAGE: &str = "https://docs.aws.amazon.com/scheduler/latest/UserGuide/scheduler-quotas.html";
const LAMBDA_PAGE: &str = "https://docs.aws.amazon.com/lambda/latest/dg/limits.html";
const DYNAMODB_PAGE: &str = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html";
const SNS_PAGE: &str = "https://docs.aws.amazon.com/general/latest/gr/sns.html";
const SMS_PAGE: &str = "https://docs.aws.amazon.com/sms-voice/latest/userguide/quotas.html";

/// Every quota the capacity report holds a peak to.
pub const QUOTAS: [Quota; 7] = [
    Quota {
        measure: "create_schedule_per_second",
        name: "EventBridge Scheduler CreateSchedule request rate",
        unit: "requests/s",
        listed: (SCHEDULER_PRIMARY, 5000.0),
        other: 250.0,
        source: SCHEDULER_PAGE,
        checked: true,
    },
    Quota {
        measure: "scheduler_invocations_per_second",
        name: "EventBridge Scheduler invocations throttle limit",
        unit: "invocations/s",
        listed: (SCHEDULER_PRIMARY, 1000.0),
        other: 250.0,
        source: SCHEDULER_PAGE,
        checked: false,
    },
    Quota {
        measure: "live_schedules",
        name: "EventBridge Scheduler number of schedules",
        unit: "schedules",
        listed: (&[], 0.0),
        other: 10_000_000.0,
        source: SCHEDULER_PAGE,
        checked: true,
    },
    Quota {
        measure: "lambda_concurrent_executions",
        name: "Lambda concurrent executions (account, per Region)",
        unit: "executions",
        listed: (&[], 0.0),
        other: 1000.0,
        source: LAMBDA_PAGE,
        checked: true,
    },
    Quota {
        measure: "dynamodb_write_units_per_partition_key",
        name: "DynamoDB write units per partition, per second",
        unit: "WCU/s",
        listed: (&[], 0.0),
        other: 1000.0,
        source: DYNAMODB_PAGE,
        checked: true,
    },
    Quota {
        measure: "sns_publishes_per_second",
        name: "SNS Publish (standard topic) API rate",
        unit: "requests/s",
        listed: (&["us-east-1"], 30_000.0),
        other: 1500.0,
        source: SNS_PAGE,
        checked: false,
    },
    Quota {
        measure: "sms_per_second",
        name: "SMS messages per second (account)",
        unit: "messages/s",
        listed: (&[], 0.0),
        other: 20.0,
        source: SMS_PAGE,
        checked: false,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/performance.md carries the same table: each quota's name, its figure in the
    /// default Region, its source page and the date it was read.
    #[test]
    fn docs_performance_md_carries_this_table() {
        let doc = include_str!("../../../docs/performance.md");
        assert!(doc.contains(QUOTAS_AS_OF), "docs/performance.md gives the date the quotas were read");
        for q in QUOTAS {
            let figure = q.in_region(DEFAULT_REGION);
            let row = doc
                .lines()
                .find(|l| l.starts_with('|') && l.contains(q.name))
                .unwrap_or_else(|| panic!("docs/performance.md has no row for {}", q.name));
            let cells: Vec<String> = row.split('|').map(|c| c.trim().replace(',', "")).collect();
            assert!(cells.iter().any(|c| c.parse::<f64>().ok() == Some(figure)), "{} is {figure} in {DEFAULT_REGION}: {row}", q.name);
            assert!(row.contains(q.source), "{}'s row names its source {}: {row}", q.name, q.source);
        }
    }
}
