//! The flags of `followup-local simulate`, each with its default: the month's size, the rates
//! that shape it and the prices it is billed at.

use super::bill::{self, Prices};
use super::traffic::Rates;
use chrono::NaiveDate;
use clap::Args;
use followup::domain::policy::Policy;
use std::fmt;
use std::path::PathBuf;

const RATES: &str = "Rates (shares in 0..1)";
const PRICES: &str = "Prices (USD)";

/// `followup-local simulate [options]`; a flag given twice takes its last value.
#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct SimulateArgs {
    /// Appointments booked in the month
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    appointments: u32,
    /// Packages booked in the month
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    packages: u32,
    /// Days the bookings spread over
    #[arg(long, value_name = "N", default_value_t = 30)]
    days: u64,
    /// Random seed; the same seed replays the same month
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// First day of the month, local
    #[arg(long, value_name = "YYYY-MM-DD", default_value_t = first_day())]
    start: NaiveDate,
    /// Run the month on a SQLite store there, kept afterwards (must not hold one yet) [default: an in-memory store]
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Streams decided at once
    #[arg(long, value_name = "N", default_value_t = 32)]
    concurrency: u64,
    /// Print one JSON document instead of the report
    #[arg(long)]
    json: bool,
    /// Policy TOML the month runs under [default: FOLLOWUP_CONFIG, else the SPEC's figures]
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// A second policy TOML: the same month (same traffic, same customers) under both, side by side with the difference
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page (inline CSS and SVG charts)
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Replay the inputs `followup-local export` wrote (JSON lines) instead of generating traffic;
    /// call reports and re-opens in it are left out: the simulated agent answers the policy's own calls
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Multiple of this traffic the capacity figures are scaled to
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    scale: f64,
    /// AWS Region whose default quotas the capacity figures are held to
    #[arg(long, value_name = "REGION", default_value = super::quotas::DEFAULT_REGION)]
    region: String,

    #[command(flatten)]
    rates: RateArgs,
    #[command(flatten)]
    prices: PriceArgs,
}

/// The rates of [`Rates`], as flags; the defaults are `Rates::default()`.
#[derive(Debug, Args)]
#[command(next_help_heading = RATES)]
struct RateArgs {
    /// Appointments cancelled before their visit
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().cancel)]
    cancel: f64,
    /// Of cancellations, by the customer
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().cancel_by_customer)]
    cancel_by_customer: f64,
    /// Of cancellations, by ops (the rest are no-shows)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().cancel_by_ops)]
    cancel_by_ops: f64,
    /// Customers who cancel and want a follow-up call (R2.1)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().wants_follow_up)]
    wants_follow_up: f64,
    /// Cancellations with availability unsure (R2.4)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().unsure)]
    unsure: f64,
    /// Appointments booked without a technician (R0.1)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().unassigned)]
    unassigned: f64,
    /// Of those, never assigned (R0.2)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().never_assigned)]
    never_assigned: f64,
    /// Appointments moved by the customer (R7)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().reschedule)]
    reschedule: f64,
    /// Appointments with a reschedule request (R1)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().reschedule_request)]
    reschedule_request: f64,
    /// Completed visits that need a second visit (R3.1)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().second_visit)]
    second_visit: f64,
    /// Completed visits that quote a painting job (R3.1, R3.7)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().painting)]
    painting: f64,
    /// Appointments that already carry a discount (no coupon, R2.3)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().discounted)]
    discounted: f64,
    /// Calls not reached, per attempt; the last repeats
    #[arg(long, value_name = "R1,R2,..", value_parser = shares, default_value_t = Shares(Rates::default().no_answer))]
    no_answer: Shares,
    /// Reached calls that rebook (else the customer declines)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().rebook)]
    rebook: f64,
    /// Packages booked unpaid (R4.1)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().unpaid)]
    unpaid: f64,
    /// Of unpaid packages, paid before R4.4's day-before call
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().paid_late)]
    paid_late: f64,
    /// Of paid packages, with visits left at expiry (R5.2)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().visits_left)]
    visits_left: f64,
    /// Visits per package (1 to 30)
    #[arg(long, value_name = "N", default_value_t = Rates::default().visits.into())]
    visits: u64,
    /// Minutes between a call task falling due and its reported outcome
    #[arg(long, value_name = "N", default_value_t = Rates::default().call_delay_minutes.unsigned_abs())]
    call_delay_minutes: u64,
    /// Package visits the customer cancels (R6)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().visit_cancel)]
    visit_cancel: f64,
    /// Package visits the customer moves (R6.1, R6.2)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().visit_reschedule)]
    visit_reschedule: f64,
    /// Cases left waiting on the customer that an agent re-opens (R2.10, R3.9)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().reopen)]
    reopen: f64,
    /// Dashboard case views per call task (at most 20)
    #[arg(long, value_name = "N", default_value_t = Rates::default().case_views.into())]
    case_views: u64,
    /// Call reports never delivered (R9.1)
    #[arg(long, value_name = "R", value_parser = share, default_value_t = Rates::default().report_lost)]
    report_lost: f64,
}

/// The prices of [`Prices`], as flags; the defaults are the list prices, Lambda's for the
/// template's architecture.
#[derive(Debug, Args)]
#[command(next_help_heading = PRICES)]
struct PriceArgs {
    /// Per SMS segment, Egypt
    #[arg(long, value_name = "P", default_value_t = list().sms_per_segment)]
    sms_price: f64,
    /// Lambda, per GB-second
    #[arg(long, value_name = "P", default_value_t = list().lambda_gb_second)]
    price_lambda_gb_second: f64,
    /// Lambda, per million requests
    #[arg(long, value_name = "P", default_value_t = list().lambda_per_million_requests)]
    price_lambda_per_million_requests: f64,
    /// API Gateway HTTP API, per million requests
    #[arg(long, value_name = "P", default_value_t = list().http_api_per_million)]
    price_http_api_per_million: f64,
    /// DynamoDB on demand, per million write units
    #[arg(long, value_name = "P", default_value_t = list().dynamodb_per_million_write_units)]
    price_dynamodb_per_million_write_units: f64,
    /// DynamoDB on demand, per million read units
    #[arg(long, value_name = "P", default_value_t = list().dynamodb_per_million_read_units)]
    price_dynamodb_per_million_read_units: f64,
    /// EventBridge Scheduler, per million invocations
    #[arg(long, value_name = "P", default_value_t = list().scheduler_per_million_invocations)]
    price_scheduler_per_million_invocations: f64,
    /// SNS, per million publishes
    #[arg(long, value_name = "P", default_value_t = list().sns_per_million_publishes)]
    price_sns_per_million_publishes: f64,
    /// Step Functions Standard, per state transition
    #[arg(long, value_name = "P", default_value_t = list().sfn_per_transition)]
    price_sfn_per_transition: f64,
    /// Lambda durable functions, per million operations
    #[arg(long, value_name = "P", default_value_t = list().durable_per_million_operations)]
    price_durable_per_million_operations: f64,
}

/// A month as the flags describe it, each figure in its range.
pub(super) struct Options {
    pub appointments: u32,
    pub packages: u32,
    pub days: i64,
    pub seed: u64,
    pub start: NaiveDate,
    pub data_dir: Option<PathBuf>,
    pub concurrency: usize,
    pub json: bool,
    /// The policies the month runs under, each with its name: one, or two to compare.
    pub policies: Vec<(String, Policy)>,
    pub html: Option<PathBuf>,
    pub replay: Option<PathBuf>,
    pub scale: f64,
    pub region: String,
    /// A progress bar on stderr while the month runs.
    pub progress: bool,
    pub rates: Rates,
    pub prices: Prices,
}

impl Options {
    /// Whether the run measures the decide-only floor: a single month does, printed beside its
    /// time; a `--compare` does not (it compares two policies, and two floors would only add
    /// their time and the memory of every input kept for them).
    pub fn measures_floor(&self) -> bool {
        self.policies.len() == 1
    }
}

impl SimulateArgs {
    /// The options of the run; refused when shares of one whole add up to more than it.
    pub(super) fn options(self) -> anyhow::Result<Options> {
        let rates = self.rates.rates();
        for (sum, flags) in [
            (rates.cancel + rates.reschedule + rates.reschedule_request, "--cancel + --reschedule + --reschedule-request"),
            (rates.cancel_by_customer + rates.cancel_by_ops, "--cancel-by-customer + --cancel-by-ops"),
            (rates.second_visit + rates.painting, "--second-visit + --painting"),
            (rates.visit_cancel + rates.visit_reschedule, "--visit-cancel + --visit-reschedule"),
        ] {
            anyhow::ensure!(sum <= 1.0 + 1e-9, "{flags} exceed 1");
        }
        let load = |path: &PathBuf| -> anyhow::Result<(String, Policy)> {
            let name = path.display().to_string();
            Ok((name.clone(), Policy::load(&name)?))
        };
        let first = match &self.policy {
            Some(path) => load(path)?,
            None => match std::env::var("FOLLOWUP_CONFIG") {
                Ok(path) if !path.is_empty() => load(&PathBuf::from(path))?,
                _ => ("the SPEC's figures".to_owned(), Policy::default()),
            },
        };
        let mut policies = vec![first];
        if let Some(path) = &self.compare {
            anyhow::ensure!(self.data_dir.is_none(), "--compare runs two stores: leave out --data-dir");
            policies.push(load(path)?);
        }
        anyhow::ensure!(self.scale > 0.0 && self.scale.is_finite(), "--scale must be a positive number");
        // A replay's inputs carry no stream the batches could keep apart reliably: one at a time.
        let concurrency = if self.replay.is_some() { 1 } else { (self.concurrency as usize).max(1) };
        Ok(Options {
            policies,
            html: self.html,
            replay: self.replay,
            scale: self.scale,
            region: self.region,
            progress: true,
            appointments: self.appointments,
            packages: self.packages,
            days: (self.days as i64).max(1),
            seed: self.seed,
            start: self.start,
            data_dir: self.data_dir,
            concurrency,
            json: self.json,
            rates,
            prices: self.prices.prices(),
        })
    }
}

impl RateArgs {
    fn rates(self) -> Rates {
        Rates {
            cancel: self.cancel,
            cancel_by_customer: self.cancel_by_customer,
            cancel_by_ops: self.cancel_by_ops,
            wants_follow_up: self.wants_follow_up,
            unsure: self.unsure,
            unassigned: self.unassigned,
            never_assigned: self.never_assigned,
            reschedule: self.reschedule,
            reschedule_request: self.reschedule_request,
            second_visit: self.second_visit,
            painting: self.painting,
            discounted: self.discounted,
            no_answer: self.no_answer.0,
            rebook: self.rebook,
            unpaid: self.unpaid,
            paid_late: self.paid_late,
            visits_left: self.visits_left,
            visit_cancel: self.visit_cancel,
            visit_reschedule: self.visit_reschedule,
            reopen: self.reopen,
            case_views: (self.case_views as u32).min(20),
            visits: (self.visits as u32).clamp(1, 30),
            call_delay_minutes: self.call_delay_minutes as i64,
            report_lost: self.report_lost,
        }
    }
}

impl PriceArgs {
    fn prices(self) -> Prices {
        Prices {
            as_of: bill::PRICES_AS_OF,
            lambda_gb_second: self.price_lambda_gb_second,
            lambda_per_million_requests: self.price_lambda_per_million_requests,
            http_api_per_million: self.price_http_api_per_million,
            dynamodb_per_million_write_units: self.price_dynamodb_per_million_write_units,
            dynamodb_per_million_read_units: self.price_dynamodb_per_million_read_units,
            scheduler_per_million_invocations: self.price_scheduler_per_million_invocations,
            sns_per_million_publishes: self.price_sns_per_million_publishes,
            sfn_per_transition: self.price_sfn_per_transition,
            durable_per_million_operations: self.price_durable_per_million_operations,
            sms_per_segment: self.sms_price,
        }
    }
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date")
}

/// The list prices, with Lambda's for the architecture `template.yaml` deploys on.
fn list() -> Prices {
    Prices::list(bill::template_sizes(bill::TEMPLATE).1)
}

fn share(value: &str) -> Result<f64, String> {
    let v = value.parse::<f64>().map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a share in 0..1"))
    }
}

/// Shares, comma-separated.
#[derive(Debug, Clone)]
struct Shares(Vec<f64>);

impl fmt::Display for Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shares: Vec<String> = self.0.iter().map(f64::to_string).collect();
        f.write_str(&shares.join(","))
    }
}

fn shares(value: &str) -> Result<Shares, String> {
    value
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v)))
        .collect::<Option<Vec<_>>>()
        .map(Shares)
        .ok_or_else(|| format!("{value:?}: give shares in 0..1, comma-separated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn options(flags: &[&str]) -> anyhow::Result<Options> {
        let cli = Cli::try_parse_from(std::iter::once("simulate").chain(flags.iter().copied()))?;
        cli.args.options()
    }

    #[test]
    fn no_flag_gives_the_default_month() {
        let o = options(&[]).expect("defaults");
        assert_eq!((o.appointments, o.packages, o.days, o.seed, o.concurrency), (100_000, 20_000, 30, 1, 32));
        assert_eq!(o.start, first_day());
        assert!(o.data_dir.is_none() && !o.json);
        assert_eq!(serde_json::to_value(&o.rates).unwrap(), serde_json::to_value(Rates::default()).unwrap());
        assert_eq!(serde_json::to_value(&o.prices).unwrap(), serde_json::to_value(list()).unwrap());
    }

    #[test]
    fn figures_are_held_to_their_ranges_and_the_last_of_a_flag_given_twice_wins() {
        let o = options(&["--days", "0", "--concurrency", "0", "--visits", "99", "--case-views", "50", "--seed", "4", "--seed", "5"])
            .expect("options");
        assert_eq!((o.days, o.concurrency, o.rates.visits, o.rates.case_views, o.seed), (1, 1, 30, 20, 5));
        let o = options(&["--no-answer", " 0.2, 0.9 ,1", "--price-sfn-per-transition", "0.5", "--sms-price", "0.05"]).expect("options");
        assert_eq!(o.rates.no_answer, vec![0.2, 0.9, 1.0]);
        assert_eq!((o.prices.sfn_per_transition, o.prices.sms_per_segment), (0.5, 0.05));
    }

    #[test]
    fn a_share_out_of_range_or_shares_over_one_whole_are_refused() {
        assert!(options(&["--cancel", "2"]).is_err());
        assert!(options(&["--no-answer", "0.5,x"]).is_err());
        let over = options(&["--cancel", "0.9", "--reschedule", "0.2"]).err().expect("refused").to_string();
        assert!(over.contains("exceed 1"), "{over}");
        assert!(options(&["--frob", "1"]).is_err());
    }
}
