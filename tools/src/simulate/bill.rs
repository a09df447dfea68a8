//! List prices, the Lambda memory sizes of `template.yaml`, and the monthly bill of a run.
//!
//! Prices are us-east-1 list prices without free tiers, as published when this was written
//! (`PRICES_AS_OF`); every one is a flag (`--price-…`), since AWS changes them and the
//! deployment's region may differ. The three bills share what any design pays (the HTTP API,
//! Lambda, the command publishes, the SMS) and differ in what holds the state and the waits:
//! DynamoDB and Scheduler here, state transitions on Step Functions Standard, operations on
//! Lambda durable functions.

use serde::Serialize;
use std::collections::BTreeMap;

/// When the default prices below were read off the AWS pricing pages.
pub const PRICES_AS_OF: &str = "2025-06-01";
/// Lambda on arm64 (the template's architecture), per GB-second.
pub const LAMBDA_ARM64_GB_SECOND_USD: f64 = 0.000_013_333_4;
/// Lambda on x86_64, per GB-second, for a template that says so.
pub const LAMBDA_X86_GB_SECOND_USD: f64 = 0.000_016_666_7;
pub const LAMBDA_PER_MILLION_REQUESTS_USD: f64 = 0.20;
/// API Gateway HTTP API, first 300 million requests a month.
pub const HTTP_API_PER_MILLION_USD: f64 = 1.00;
/// DynamoDB on demand (prices of 2024-11-01): write and read request units.
pub const DYNAMODB_PER_MILLION_WRITE_UNITS_USD: f64 = 0.625;
pub const DYNAMODB_PER_MILLION_READ_UNITS_USD: f64 = 0.125;
/// EventBridge Scheduler, per million scheduled invocations (API calls are free).
pub const SCHEDULER_PER_MILLION_INVOCATIONS_USD: f64 = 1.00;
/// SNS standard topic publishes (the ops topic), per million.
pub const SNS_PER_MILLION_PUBLISHES_USD: f64 = 0.50;
/// Step Functions Standard, per state transition ($0.025 per 1,000).
pub const SFN_PER_TRANSITION_USD: f64 = 0.025 / 1_000.0;
/// Lambda durable functions, per operation ($8 per million).
pub const DURABLE_PER_MILLION_OPERATIONS_USD: f64 = 8.00;
/// SMS to Egypt through SNS, per segment: a round placeholder, not checked against AWS's
/// current rate for EG, which moves with carrier fees and sender-id registration. Pass the
/// contracted rate with `--sms-price`; it dominates the bill either way.
pub const SMS_EGYPT_PER_SEGMENT_USD: f64 = 0.10;
/// Lambda bills duration in 1 ms steps.
const BILLED_MS_STEP: f64 = 1.0;

#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    pub as_of: &'static str,
    pub lambda_gb_second: f64,
    pub lambda_per_million_requests: f64,
    pub http_api_per_million: f64,
    pub dynamodb_per_million_write_units: f64,
    pub dynamodb_per_million_read_units: f64,
    pub scheduler_per_million_invocations: f64,
    pub sns_per_million_publishes: f64,
    pub sfn_per_transition: f64,
    pub durable_per_million_operations: f64,
    pub sms_per_segment: f64,
}

impl Prices {
    pub fn list(arm64: bool) -> Prices {
        Prices {
            as_of: PRICES_AS_OF,
            lambda_gb_second: if arm64 { LAMBDA_ARM64_GB_SECOND_USD } else { LAMBDA_X86_GB_SECOND_USD },
            lambda_per_million_requests: LAMBDA_PER_MILLION_REQUESTS_USD,
            http_api_per_million: HTTP_API_PER_MILLION_USD,
            dynamodb_per_million_write_units: DYNAMODB_PER_MILLION_WRITE_UNITS_USD,
            dynamodb_per_million_read_units: DYNAMODB_PER_MILLION_READ_UNITS_USD,
            scheduler_per_million_invocations: SCHEDULER_PER_MILLION_INVOCATIONS_USD,
            sns_per_million_publishes: SNS_PER_MILLION_PUBLISHES_USD,
            sfn_per_transition: SFN_PER_TRANSITION_USD,
            durable_per_million_operations: DURABLE_PER_MILLION_OPERATIONS_USD,
            sms_per_segment: SMS_EGYPT_PER_SEGMENT_USD,
        }
    }
}

/// The deployment as `template.yaml` sizes it.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The functions of `template.yaml`, by their binary names.
pub const FUNCTIONS: [&str; 6] = ["appointments", "cancellation-request", "call-attempt", "package-payment", "package-expiry", "cases"];

/// `MemorySize` of each function: its own, else the `Globals` one; and whether it runs on arm64.
pub fn template_sizes(template: &str) -> (BTreeMap<&'static str, u32>, bool) {
    let lines: Vec<&str> = template.lines().collect();
    let memory = |l: &str| l.trim().strip_prefix("MemorySize:").and_then(|v| v.trim().parse::<u32>().ok());
    // The Globals block runs until the next top-level key.
    let globals = lines.iter().position(|l| *l == "Globals:");
    let global_block =
        globals.map(|g| lines[g + 1..].iter().take_while(|l| l.is_empty() || l.starts_with(' ')).copied().collect::<Vec<_>>());
    let default_mb = global_block.as_ref().and_then(|b| b.iter().find_map(|l| memory(l))).unwrap_or(128);
    let arm64 = global_block.as_ref().is_some_and(|b| b.iter().any(|l| l.contains("Architectures") && l.contains("arm64")));
    let mut sizes = BTreeMap::new();
    for f in FUNCTIONS {
        // A function's resource block holds `Binary: <name>`; it ends at the next resource (two-space key).
        let own = lines.iter().position(|l| l.trim() == format!("Binary: {f}")).and_then(|at| {
            let start = lines[..at].iter().rposition(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))?;
            let end = lines[start + 1..]
                .iter()
                .position(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
                .map_or(lines.len(), |e| start + 1 + e);
            lines[start..end].iter().find_map(|l| memory(l))
        });
        sizes.insert(f, own.unwrap_or(default_mb));
    }
    (sizes, arm64)
}

/// One function's invocations in the run, with the handler time measured for each.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Invocations {
    pub count: u64,
    pub memory_mb: u32,
    /// Sum of measured handler times.
    pub measured_ms: f64,
    /// Sum of billed durations (each rounded up to the next 1 ms).
    pub billed_ms: f64,
    pub gb_seconds: f64,
}

impl Invocations {
    pub fn add(&mut self, ms: f64, times: u64) {
        self.count += times;
        self.measured_ms += ms * times as f64;
        let billed = (ms / BILLED_MS_STEP).ceil().max(1.0) * BILLED_MS_STEP;
        self.billed_ms += billed * times as f64;
        self.gb_seconds = self.billed_ms / 1000.0 * self.memory_mb as f64 / 1024.0;
    }
}

/// One line of a bill.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub item: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    pub lines: Vec<Line>,
    pub total_usd: f64,
}

impl Bill {
    pub fn of(lines: Vec<Line>) -> Bill {
        let total_usd = lines.iter().map(|l| l.usd).sum();
        Bill { lines, total_usd }
    }
}

/// What every design pays: the webhooks' HTTP API, the Lambda work, the command publishes.
pub fn shared_lines(p: &Prices, http_requests: u64, lambda: &BTreeMap<&'static str, Invocations>, sns: u64) -> Vec<Line> {
    let requests: u64 = lambda.values().map(|i| i.count).sum();
    let gb_s: f64 = lambda.values().map(|i| i.gb_seconds).sum();
    vec![
        Line {
            item: "API Gateway HTTP API requests",
            quantity: http_requests as f64,
            unit: "requests",
            usd: http_requests as f64 / 1e6 * p.http_api_per_million,
        },
        Line {
            item: "Lambda requests",
            quantity: requests as f64,
            unit: "invocations",
            usd: requests as f64 / 1e6 * p.lambda_per_million_requests,
        },
        Line { item: "Lambda compute", quantity: gb_s, unit: "GB-seconds", usd: gb_s * p.lambda_gb_second },
        Line {
            item: "SNS publishes (commands)",
            quantity: sns as f64,
            unit: "publishes",
            usd: sns as f64 / 1e6 * p.sns_per_million_publishes,
        },
    ]
}

/// What a month used, as the three designs price it.
pub struct Usage<'a> {
    pub http_requests: u64,
    pub lambda: &'a BTreeMap<&'static str, Invocations>,
    pub sns_publishes: u64,
    /// On the table and on its GSIs.
    pub write_units: u64,
    /// By the inputs and by the fixed-rate rules.
    pub read_units: f64,
    pub scheduler_invocations: u64,
    pub sfn_transitions: u64,
    pub durable_operations: u64,
}

/// The month's bill in each design: this one (DynamoDB and Scheduler hold the state and the
/// waits), Step Functions Standard, Lambda durable functions.
pub struct Designs {
    pub this: Bill,
    pub step_functions: Bill,
    pub durable: Bill,
}

pub fn designs(p: &Prices, u: &Usage) -> Designs {
    let shared = shared_lines(p, u.http_requests, u.lambda, u.sns_publishes);
    let mut this = shared.clone();
    this.push(Line {
        item: "DynamoDB write request units",
        quantity: u.write_units as f64,
        unit: "WRU",
        usd: u.write_units as f64 / 1e6 * p.dynamodb_per_million_write_units,
    });
    this.push(Line {
        item: "DynamoDB read request units",
        quantity: u.read_units,
        unit: "RRU",
        usd: u.read_units / 1e6 * p.dynamodb_per_million_read_units,
    });
    this.push(Line {
        item: "EventBridge Scheduler invocations",
        quantity: u.scheduler_invocations as f64,
        unit: "invocations",
        usd: u.scheduler_invocations as f64 / 1e6 * p.scheduler_per_million_invocations,
    });
    let mut sfn = shared.clone();
    sfn.push(Line {
        item: "Step Functions Standard transitions",
        quantity: u.sfn_transitions as f64,
        unit: "transitions",
        usd: u.sfn_transitions as f64 * p.sfn_per_transition,
    });
    let mut durable = shared;
    durable.push(Line {
        item: "Lambda durable functions operations",
        quantity: u.durable_operations as f64,
        unit: "operations",
        usd: u.durable_operations as f64 / 1e6 * p.durable_per_million_operations,
    });
    Designs { this: Bill::of(this), step_functions: Bill::of(sfn), durable: Bill::of(durable) }
}

/// Dollars with cents, or more digits below a dollar so small lines still show.
pub fn usd(v: f64) -> String {
    if v.abs() >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_sizes_every_function() {
        let (sizes, arm64) = template_sizes(TEMPLATE);
        assert!(arm64);
        assert_eq!(sizes.len(), FUNCTIONS.len());
        assert!(sizes.values().all(|&mb| mb >= 128));
    }

    #[test]
    fn a_function_block_overrides_the_global_size() {
        let t = "Globals:\n  Function:\n    MemorySize: 256\nResources:\n  A:\n    Metadata:\n      BuildProperties:\n        Binary: appointments\n    Properties:\n      MemorySize: 512\n  B:\n    Metadata:\n      BuildProperties:\n        Binary: cases\n";
        let (sizes, _) = template_sizes(t);
        assert_eq!(sizes["appointments"], 512);
        assert_eq!(sizes["cases"], 256);
    }

    #[test]
    fn billed_duration_rounds_up_to_the_millisecond() {
        let mut i = Invocations { memory_mb: 1024, ..Default::default() };
        i.add(0.2, 10);
        assert_eq!(i.billed_ms, 10.0);
        assert!((i.gb_seconds - 0.01).abs() < 1e-12);
    }
}
