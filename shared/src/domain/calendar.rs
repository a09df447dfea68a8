//! The business calendar: time zone (tzdata, DST included), working hours, days off and holidays.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The calendar as written in the policy file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    pub timezone: String,
    pub work_start: String,
    pub work_end: String,
    pub days_off: Vec<String>,
    pub holidays: Vec<NaiveDate>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            timezone: "Africa/Cairo".into(),
            work_start: "09:00".into(),
            work_end: "21:00".into(),
            days_off: vec!["Fri".into()],
            holidays: Vec::new(),
        }
    }
}

/// The resolved calendar every playbook reads its days and hours from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CalendarConfig", into = "CalendarConfig")]
pub struct Calendar {
    tz: Tz,
    work_start: NaiveTime,
    work_end: NaiveTime,
    days_off: Vec<Weekday>,
    holidays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar::try_from(CalendarConfig::default()).expect("the default calendar is valid")
    }
}

impl TryFrom<CalendarConfig> for Calendar {
    type Error = String;
    fn try_from(c: CalendarConfig) -> Result<Self, String> {
        let tz: Tz = c.timezone.parse().map_err(|_| unsupported_zone(&c.timezone))?;
        let hm = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("{s:?} is not a time of day HH:MM"));
        let (work_start, work_end) = (hm(&c.work_start)?, hm(&c.work_end)?);
        if work_start >= work_end {
            return Err("working hours must start before they end".into());
        }
        let days_off = c
            .days_off
            .iter()
            .map(|d| d.parse::<Weekday>().map_err(|_| format!("{d:?} is not a weekday")))
            .collect::<Result<Vec<_>, _>>()?;
        if days_off.len() >= 7 {
            return Err("at least one day of the week must be a working day".into());
        }
        Ok(Calendar { tz, work_start, work_end, days_off, holidays: c.holidays.into_iter().collect() })
    }
}

/// The IANA zones the binaries carry, as the regular expression the build filtered tzdata by
/// (`CHRONO_TZ_TIMEZONE_FILTER` in `.cargo/config.toml`): Africa (Egypt is `Africa/Cairo`), the
/// Gulf and the Levant, and UTC. A build without it carries every zone.
pub const SUPPORTED_ZONES: Option<&str> = option_env!("CHRONO_TZ_TIMEZONE_FILTER");

fn unsupported_zone(name: &str) -> String {
    match SUPPORTED_ZONES {
        Some(zones) => format!("time zone {name:?} is not one this build carries: the calendar takes an IANA zone matching {zones}"),
        None => format!("unknown time zone {name:?}"),
    }
}

impl From<Calendar> for CalendarConfig {
    fn from(c: Calendar) -> Self {
        CalendarConfig {
            timezone: c.tz.name().to_string(),
            work_start: c.work_start.format("%H:%M").to_string(),
            work_end: c.work_end.format("%H:%M").to_string(),
            days_off: c.days_off.iter().map(|d| format!("{d:?}")).collect(),
            holidays: c.holidays.into_iter().collect(),
        }
    }
}

impl Calendar {
    pub fn tz(&self) -> Tz {
        self.tz
    }
    pub fn work_start(&self) -> NaiveTime {
        self.work_start
    }
    pub fn work_end(&self) -> NaiveTime {
        self.work_end
    }

    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        self.local(at).date()
    }

    /// RFC 3339 with the business offset: how every time leaves the engine.
    pub fn rfc3339(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.tz).to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !self.days_off.contains(&d.weekday()) && !self.holidays.contains(&d)
    }

    pub fn is_holiday(&self, d: NaiveDate) -> bool {
        self.holidays.contains(&d)
    }

    /// The first working day strictly after `d` ("next day" in the SOPs).
    pub fn next_working_day(&self, d: NaiveDate) -> NaiveDate {
        self.nth_working_day_after(d, 1)
    }

    /// The n-th working day strictly after `d` (n = 0 gives `d` itself).
    pub fn nth_working_day_after(&self, d: NaiveDate, n: u32) -> NaiveDate {
        let mut day = d;
        for _ in 0..n {
            day = day.succ_opt().expect("date in range");
            while !self.is_working_day(day) {
                day = day.succ_opt().expect("date in range");
            }
        }
        day
    }

    /// The instant of a local wall-clock time. In a DST gap the first valid
    /// instant after it; in a repeated hour the earlier of the two.
    pub fn at(&self, d: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
        let mut local = d.and_time(t);
        loop {
            match self.tz.from_local_datetime(&local) {
                LocalResult::Single(x) => return x.with_timezone(&Utc),
                LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
                LocalResult::None => local += Duration::minutes(1),
            }
        }
    }

    /// Start of working hours on day `d`.
    pub fn opening(&self, d: NaiveDate) -> DateTime<Utc> {
        self.at(d, self.work_start)
    }

    /// Whether `at` falls on a working day inside working hours [start, end).
    pub fn in_working_hours(&self, at: DateTime<Utc>) -> bool {
        let l = self.local(at);
        self.is_working_day(l.date()) && l.time() >= self.work_start && l.time() < self.work_end
    }

    /// `at` itself inside working hours, otherwise the next working-hours start
    /// (how a call task's due time is placed).
    pub fn working_moment(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        if self.in_working_hours(at) {
            return at;
        }
        let l = self.local(at);
        if self.is_working_day(l.date()) && l.time() < self.work_start {
            return self.opening(l.date());
        }
        self.opening(self.next_working_day(l.date()))
    }

    /// Adds whole working days to an instant, keeping its local time of day;
    /// the start instant is first moved into working hours. Used where a lead
    /// time counts "only working days" (R3.5).
    pub fn add_working_hours_days(&self, at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let start = self.working_moment(at);
        let l = self.local(start);
        self.at(self.nth_working_day_after(l.date(), days), l.time())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::default()
    }
    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn friday_is_skipped() {
        // 2026-03-05 is a Thursday.
        assert_eq!(cal().next_working_day(d("2026-03-05")), d("2026-03-07"));
        assert!(!cal().is_working_day(d("2026-03-06")));
        assert_eq!(cal().nth_working_day_after(d("2026-03-05"), 2), d("2026-03-08"));
    }

    #[test]
    fn a_configured_holiday_is_skipped() {
        let c = CalendarConfig { holidays: vec![d("2026-03-07")], ..CalendarConfig::default() };
        let cal = Calendar::try_from(c).unwrap();
        assert_eq!(cal.next_working_day(d("2026-03-05")), d("2026-03-08"));
        assert_eq!(cal.working_moment(t("2026-03-05T22:00:00+02:00")), t("2026-03-08T09:00:00+02:00"));
    }

    #[test]
    fn winter_and_summer_offsets_come_from_tzdata() {
        assert_eq!(cal().opening(d("2026-01-10")), t("2026-01-10T07:00:00Z"));
        assert_eq!(cal().opening(d("2026-07-11")), t("2026-07-11T06:00:00Z"));
    }

    #[test]
    fn spring_dst_change_day() {
        // Egypt moves to summer time at 00:00 on the last Friday of April (2026-04-24):
        // 00:00–01:00 does not exist that night.
        let cal = cal();
        assert_eq!(cal.opening(d("2026-04-23")), t("2026-04-23T07:00:00Z"));
        assert_eq!(cal.opening(d("2026-04-25")), t("2026-04-25T06:00:00Z"));
        assert_eq!(cal.at(d("2026-04-24"), NaiveTime::from_hms_opt(0, 0, 0).unwrap()), t("2026-04-23T22:00:00Z"));
        // Thursday 22:00 local → Saturday 09:00 summer time (Friday is off).
        assert_eq!(cal.working_moment(t("2026-04-23T22:00:00+02:00")), t("2026-04-25T09:00:00+03:00"));
    }

    #[test]
    fn autumn_dst_change_day() {
        // Summer time ends at 24:00 on the last Thursday of October (2026-10-29):
        // 23:00–24:00 that night happens twice.
        let cal = cal();
        assert_eq!(cal.opening(d("2026-10-29")), t("2026-10-29T06:00:00Z"));
        assert_eq!(cal.opening(d("2026-10-31")), t("2026-10-31T07:00:00Z"));
        let twice = cal.at(d("2026-10-29"), NaiveTime::from_hms_opt(23, 30, 0).unwrap());
        assert_eq!(twice, t("2026-10-29T23:30:00+03:00"));
        assert_eq!(cal.next_working_day(d("2026-10-29")), d("2026-10-31"));
    }

    #[test]
    fn due_times_outside_working_hours_move_to_nine() {
        let cal = cal();
        // Before opening on a working day → same day 09:00.
        assert_eq!(cal.working_moment(t("2026-03-05T07:30:00+02:00")), t("2026-03-05T09:00:00+02:00"));
        // Inside → unchanged.
        assert_eq!(cal.working_moment(t("2026-03-05T15:10:00+02:00")), t("2026-03-05T15:10:00+02:00"));
        // 21:00 is closed → next working day.
        assert_eq!(cal.working_moment(t("2026-03-05T21:00:00+02:00")), t("2026-03-07T09:00:00+02:00"));
        // On a Friday → Saturday 09:00.
        assert_eq!(cal.working_moment(t("2026-03-06T12:00:00+02:00")), t("2026-03-07T09:00:00+02:00"));
    }

    #[test]
    fn times_leave_with_the_business_offset() {
        assert_eq!(cal().rfc3339(t("2026-03-05T07:00:00Z")), "2026-03-05T09:00:00+02:00");
    }

    #[test]
    fn only_the_zones_the_build_carries_are_taken() {
        let zone = |name: &str| Calendar::try_from(CalendarConfig { timezone: name.into(), ..CalendarConfig::default() });
        for name in ["Africa/Cairo", "Egypt", "Africa/Casablanca", "Asia/Riyadh", "Asia/Dubai", "UTC"] {
            assert_eq!(zone(name).unwrap().tz().name(), name);
        }
        assert!(SUPPORTED_ZONES.is_some(), "built without CHRONO_TZ_TIMEZONE_FILTER (.cargo/config.toml)");
        let refused = zone("Europe/Paris").unwrap_err();
        assert!(refused.contains("\"Europe/Paris\" is not one this build carries"), "{refused}");
    }

    #[test]
    fn bad_config_is_refused() {
        let c = CalendarConfig { timezone: "Mars/Olympus".into(), ..CalendarConfig::default() };
        assert!(Calendar::try_from(c).is_err());
        let c = CalendarConfig { work_start: "22:00".into(), ..CalendarConfig::default() };
        assert!(Calendar::try_from(c).is_err());
    }
}
