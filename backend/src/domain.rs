//! Domain vocabulary: roles, entry kinds, recipient status, periods, and the clock.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialized name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored name.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What an org is, which decides what it may write.
    Role {
        Admin => "admin",
        FinanceBureau => "finance_bureau",
        LocalOffice => "local_office",
        Inspector => "inspector",
    }
}

string_enum! {
    /// The kinds of ledger entry.
    EntryKind {
        Budget => "budget",
        Allocation => "allocation",
        Disbursement => "disbursement",
        Reversal => "reversal",
        Confirmation => "confirmation",
        Return => "return",
    }
}

string_enum! {
    /// A recipient's standing in the registry, as civil registries and offices report it.
    RecipientStatus {
        Active => "active",
        Suspended => "suspended",
        Deceased => "deceased",
    }
}

string_enum! {
    /// How a program divides its fiscal year into payment periods.
    Granularity {
        Month => "month",
        Quarter => "quarter",
        Year => "year",
    }
}

impl EntryKind {
    /// Kinds that hold money others may draw on.
    pub fn is_drawable(self) -> bool {
        matches!(self, EntryKind::Budget | EntryKind::Allocation)
    }
    /// Kinds a `reversal` may void.
    pub fn is_reversible(self) -> bool {
        matches!(
            self,
            EntryKind::Budget | EntryKind::Allocation | EntryKind::Disbursement
        )
    }
}

/// A payment period: a fiscal year (`2026`), a quarter (`2026-Q4`) or a month (`2026-11`).
///
/// ```
/// use fundtrail::domain::Period;
/// let year: Period = "2026".parse().unwrap();
/// let nov: Period = "2026-11".parse().unwrap();
/// assert!(year.contains(&nov));
/// assert!("2026-Q4".parse::<Period>().unwrap().contains(&nov));
/// assert!(!"2026-Q3".parse::<Period>().unwrap().contains(&nov));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Year(i32),
    Quarter(i32, u32),
    Month(i32, u32),
}

impl Period {
    pub fn year(&self) -> i32 {
        match *self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    pub fn granularity(&self) -> Granularity {
        match self {
            Period::Year(_) => Granularity::Year,
            Period::Quarter(..) => Granularity::Quarter,
            Period::Month(..) => Granularity::Month,
        }
    }

    /// The months (1..=12) this period covers.
    fn months(&self) -> std::ops::RangeInclusive<u32> {
        match *self {
            Period::Year(_) => 1..=12,
            Period::Quarter(_, q) => (q - 1) * 3 + 1..=q * 3,
            Period::Month(_, m) => m..=m,
        }
    }

    /// Whether `other` lies wholly within this period.
    pub fn contains(&self, other: &Period) -> bool {
        self.year() == other.year()
            && self.months().start() <= other.months().start()
            && other.months().end() <= self.months().end()
    }

    /// Whether a payment period may be this one for a program of `granularity`: as fine as
    /// the program's periods or coarser (budgets are often yearly, payroll monthly).
    pub fn fits(&self, granularity: Granularity) -> bool {
        let rank = |g: Granularity| match g {
            Granularity::Year => 0,
            Granularity::Quarter => 1,
            Granularity::Month => 2,
        };
        rank(self.granularity()) <= rank(granularity)
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Period, String> {
        let bad = || format!("`{s}` is not a period (use 2026, 2026-Q4 or 2026-11)");
        let year_of = |y: &str| -> Result<i32, String> {
            if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            y.parse::<i32>().map_err(|_| bad()).and_then(|y| {
                if (2000..=2200).contains(&y) {
                    Ok(y)
                } else {
                    Err(bad())
                }
            })
        };
        match s.split_once('-') {
            None => Ok(Period::Year(year_of(s)?)),
            Some((y, rest)) => {
                let year = year_of(y)?;
                if let Some(q) = rest.strip_prefix('Q') {
                    match q {
                        "1" | "2" | "3" | "4" => {
                            Ok(Period::Quarter(year, q.parse().map_err(|_| bad())?))
                        }
                        _ => Err(bad()),
                    }
                } else if rest.len() == 2 && rest.bytes().all(|b| b.is_ascii_digit()) {
                    let m: u32 = rest.parse().map_err(|_| bad())?;
                    if (1..=12).contains(&m) {
                        Ok(Period::Month(year, m))
                    } else {
                        Err(bad())
                    }
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y}"),
            Period::Quarter(y, q) => write!(f, "{y}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y}-{m:02}"),
        }
    }
}

/// Microseconds since the Unix epoch, UTC: how every time is stored.
pub type Micros = i64;

/// Now, in microseconds.
pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

/// Formats stored microseconds as the canonical RFC 3339 text: `2026-11-24T20:06:35.123456Z`.
pub fn format_micros(micros: Micros) -> String {
    Utc.timestamp_micros(micros)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_else(|| format!("invalid-time({micros})"))
}

/// Parses RFC 3339 text to microseconds.
pub fn parse_time(text: &str) -> Option<Micros> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// The latest business date an entry recorded at `recorded_at` may carry: its date in the
/// easternmost time zone (UTC+14), so no office anywhere is refused today's date.
pub fn latest_value_date(recorded_at: Micros) -> NaiveDate {
    Utc.timestamp_micros(recorded_at + 14 * 3_600_000_000)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// Parses `YYYY-MM-DD` strictly (exactly that form, so it round-trips into signed bytes).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text[r].parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?).filter(|d| d.year() >= 1900)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_print_and_nest() {
        for s in ["2026", "2026-Q1", "2026-Q4", "2026-01", "2026-12"] {
            assert_eq!(s.parse::<Period>().unwrap().to_string(), s);
        }
        for bad in [
            "26",
            "2026-13",
            "2026-00",
            "2026-Q5",
            "2026-1",
            "2026-11-01",
            "",
            "1999",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad} parsed");
        }
        let q4: Period = "2026-Q4".parse().unwrap();
        assert!(q4.contains(&"2026-10".parse().unwrap()));
        assert!(!q4.contains(&"2026-09".parse().unwrap()));
        assert!(!q4.contains(&"2026".parse().unwrap()));
        assert!(!q4.contains(&"2025-Q4".parse().unwrap()));
        assert!("2026".parse::<Period>().unwrap().fits(Granularity::Month));
        assert!(!"2026-11"
            .parse::<Period>()
            .unwrap()
            .fits(Granularity::Quarter));
    }

    #[test]
    fn times_format_canonically() {
        assert_eq!(
            format_micros(1_764_014_795_123_456),
            "2025-11-24T20:06:35.123456Z"
        );
        assert_eq!(
            parse_time("2025-11-24T20:06:35.123456Z"),
            Some(1_764_014_795_123_456)
        );
        assert_eq!(
            parse_time("2025-11-25T04:06:35.123456+08:00"),
            Some(1_764_014_795_123_456)
        );
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-2-3"), None);
        assert!(parse_date("2026-02-03").is_some());
    }
}
