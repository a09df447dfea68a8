//! Money in integer minor units and percentages in basis points; half-up rounding, never floats.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// An amount in minor units (piastres for EGP) with its ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

impl Money {
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Money { amount, currency: currency.into() }
    }
    pub fn with_amount(&self, amount: i64) -> Money {
        Money { amount, currency: self.currency.clone() }
    }
}

/// A percentage held as basis points (1% = 100 bp) so 12.5% is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "f64")]
pub struct Percent(pub u32);

impl Percent {
    pub const fn whole(p: u32) -> Self {
        Percent(p * 100)
    }
    pub fn basis_points(self) -> u32 {
        self.0
    }
    /// `amount × self`, rounded half up to the minor unit.
    pub fn of(self, amount: i64) -> i64 {
        div_half_up(amount as i128 * self.0 as i128, 10_000)
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "number", "minimum": 0, "description": "a percentage, at most two decimals (12.5)"})
    }
}

impl From<Percent> for f64 {
    fn from(p: Percent) -> f64 {
        p.0 as f64 / 100.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "{}", self.0 / 100)
        } else {
            write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    /// Accepts 15 or 12.5 (at most two decimals, 0..=1000).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        let bp = (v * 100.0).round();
        if !(0.0..=100_000.0).contains(&bp) || ((v * 100.0) - bp).abs() > 1e-6 {
            return Err(serde::de::Error::custom(format!("percent {v} must be between 0 and 1000 with at most two decimals")));
        }
        Ok(Percent(bp as u32))
    }
}

/// n ÷ d rounded half up (away from zero on a tie for non-negative n; d > 0).
pub fn div_half_up(n: i128, d: i128) -> i64 {
    assert!(d > 0, "division by a non-positive number");
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    (if r * 2 >= d { q + 1 } else { q }) as i64
}

/// Splits `total` into `parts` equal shares, the remainder on the last share (R3.7).
pub fn split_remainder_last(total: i64, parts: u32) -> Vec<i64> {
    if parts == 0 {
        return Vec::new();
    }
    let each = total.div_euclid(parts as i64);
    let mut shares = vec![each; parts as usize];
    *shares.last_mut().expect("parts > 0") += total - each * parts as i64;
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_half_up_to_the_minor_unit() {
        assert_eq!(Percent::whole(30).of(1_000), 300);
        assert_eq!(Percent::whole(15).of(333), 50); // 49.95 → 50
        assert_eq!(Percent::whole(15).of(330), 50); // 49.5 → 50 (half up)
        assert_eq!(Percent::whole(15).of(329), 49); // 49.35 → 49
        assert_eq!(Percent(1250).of(100), 13); // 12.5 → 13
        assert_eq!(Percent::whole(0).of(12_345), 0);
    }

    #[test]
    fn div_half_up_ties_go_up() {
        assert_eq!(div_half_up(5, 2), 3);
        assert_eq!(div_half_up(4, 3), 1);
        assert_eq!(div_half_up(0, 7), 0);
        assert_eq!(div_half_up(10_000, 3), 3_333);
    }

    #[test]
    fn split_puts_the_remainder_on_the_last_share() {
        assert_eq!(split_remainder_last(1_000, 3), vec![333, 333, 334]);
        assert_eq!(split_remainder_last(900, 3), vec![300, 300, 300]);
        assert_eq!(split_remainder_last(5, 1), vec![5]);
        assert!(split_remainder_last(5, 0).is_empty());
    }

    #[test]
    fn percent_parses_whole_and_decimal_values() {
        let p: Percent = serde_json::from_str("12.5").unwrap();
        assert_eq!(p, Percent(1250));
        assert_eq!(p.to_string(), "12.50");
        assert_eq!(Percent::whole(15).to_string(), "15");
        assert!(serde_json::from_str::<Percent>("-1").is_err());
        assert!(serde_json::from_str::<Percent>("1.234").is_err());
    }

    proptest::proptest! {
        #[test]
        fn shares_always_add_up(total in 0i64..10_000_000, parts in 1u32..60) {
            let s = split_remainder_last(total, parts);
            proptest::prop_assert_eq!(s.iter().sum::<i64>(), total);
            proptest::prop_assert!(s[..s.len()-1].iter().all(|x| *x == s[0]));
        }
    }
}
