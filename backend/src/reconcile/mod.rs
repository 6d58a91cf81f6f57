//! Reconciliation: the ledger, the bank's rows, the registry and citizens' complaints compared,
//! node by node, into a [`report::Report`] of where money is stuck, missing or misdirected.
//!
//! `engine` computes a report from a database connection (the server's, or an inspector's
//! offline copy: same state and parameters, same bytes); `jobs` runs it in the background for
//! the API; `render` writes CSV and HTML; `complaints` is the citizens' side.

pub mod complaints;
pub mod engine;
pub mod gaps;
pub mod jobs;
pub mod render;
pub mod report;

use crate::domain::{parse_date, Period};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::read::Directory;
use chrono::NaiveDate;
use report::Params;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::ToSchema;

/// Default for [`Params::hold_days_max`]: a month to pass an allocation on.
pub const HOLD_DAYS_DEFAULT: i64 = 30;
/// Default for [`Params::unconfirmed_days_max`]: the bank confirms within about two weeks.
pub const UNCONFIRMED_DAYS_DEFAULT: i64 = 15;
/// Default for [`Params::amount_tolerance`]: to the cent.
pub const AMOUNT_TOLERANCE_DEFAULT: &str = "0.00";
/// Default for [`Params::recipients_per_account_max`]: a couple or a small household.
pub const RECIPIENTS_PER_ACCOUNT_DEFAULT: i64 = 3;
/// Longest window any day threshold may name (ten years).
pub const DAYS_MAX: i64 = 3650;
/// Largest recipients-per-account threshold.
pub const RECIPIENTS_PER_ACCOUNT_LIMIT: i64 = 10_000;
/// Largest amount tolerance, in currency units.
pub const AMOUNT_TOLERANCE_LIMIT: i64 = 1_000_000;

/// What a caller asks for; everything optional, defaults documented on `Params`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Program code; omitted: every program.
    pub program: Option<String>,
    /// `2026`, `2026-Q4` or `2026-11`; omitted: every period.
    pub period: Option<String>,
    /// Root org of the subtree; omitted: the whole tree (an office: its own subtree).
    pub org: Option<String>,
    /// YYYY-MM-DD; default today (UTC).
    pub as_of: Option<String>,
    /// Default 30.
    pub hold_days_max: Option<i64>,
    /// Default 15.
    pub unconfirmed_days_max: Option<i64>,
    /// Decimal string, default "0.00".
    pub amount_tolerance: Option<String>,
    /// Default 3.
    pub recipients_per_account_max: Option<i64>,
}

impl ReconcileRequest {
    /// Checks the request against the directory and fills in defaults. `today` is the default
    /// `as_of`, passed in so a caller (and a test) decides what today is.
    pub fn resolve(&self, dir: &Directory, today: NaiveDate) -> AppResult<Params> {
        if let Some(p) = &self.program {
            if dir.program_by_code(p).is_none() {
                return Err(AppError::new(
                    ErrorCode::UnknownProgram,
                    format!("program {p} is not registered"),
                )
                .field("program"));
            }
        }
        if let Some(p) = &self.period {
            p.parse::<Period>()
                .map_err(|e| AppError::new(ErrorCode::InvalidPeriod, e).field("period"))?;
        }
        if let Some(o) = &self.org {
            if dir.org_by_code(o).is_none() {
                return Err(AppError::new(
                    ErrorCode::UnknownOrg,
                    format!("org {o} is not registered"),
                )
                .field("org"));
            }
        }
        let as_of = match &self.as_of {
            None => today,
            Some(t) => parse_date(t).ok_or_else(|| {
                AppError::invalid("as_of", format!("as_of `{t}` is not a date (YYYY-MM-DD)"))
            })?,
        };
        let days = |name: &str, v: Option<i64>, default: i64| -> AppResult<i64> {
            let v = v.unwrap_or(default);
            if !(0..=DAYS_MAX).contains(&v) {
                return Err(AppError::invalid(
                    name,
                    format!("{name} must be 0-{DAYS_MAX} days"),
                ));
            }
            Ok(v)
        };
        let recipients_max = self
            .recipients_per_account_max
            .unwrap_or(RECIPIENTS_PER_ACCOUNT_DEFAULT);
        if !(1..=RECIPIENTS_PER_ACCOUNT_LIMIT).contains(&recipients_max) {
            return Err(AppError::invalid(
                "recipients_per_account_max",
                format!("recipients_per_account_max must be 1-{RECIPIENTS_PER_ACCOUNT_LIMIT}"),
            ));
        }
        Ok(Params {
            program: self.program.clone(),
            period: self.period.clone(),
            org: self.org.clone(),
            as_of: as_of.to_string(),
            hold_days_max: days("hold_days_max", self.hold_days_max, HOLD_DAYS_DEFAULT)?,
            unconfirmed_days_max: days(
                "unconfirmed_days_max",
                self.unconfirmed_days_max,
                UNCONFIRMED_DAYS_DEFAULT,
            )?,
            amount_tolerance: normalize_tolerance(
                self.amount_tolerance
                    .as_deref()
                    .unwrap_or(AMOUNT_TOLERANCE_DEFAULT),
            )?,
            recipients_per_account_max: recipients_max,
        })
    }
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }
}

/// Writes `report` as `format`. JSON is pretty-printed with the report's fixed field order:
/// the server stores exactly these bytes, so a report computed offline compares byte for byte.
pub fn write_report(
    report: &report::Report,
    format: Format,
    lang: render::Lang,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Format::Csv => render::write_csv(report, lang, out),
        Format::Html => render::write_html(report, lang, out),
    }
}

/// The tolerance as a plain decimal with at least two decimals ("0.5" → "0.50"), so equal
/// tolerances name equal parameters in the report.
fn normalize_tolerance(text: &str) -> AppResult<String> {
    let bad = || {
        AppError::invalid(
            "amount_tolerance",
            format!("amount_tolerance `{text}` must be a decimal from 0 to {AMOUNT_TOLERANCE_LIMIT} with at most 4 decimals"),
        )
    };
    let well_formed = !text.is_empty()
        && text.len() <= 24
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.matches('.').count() <= 1;
    if !well_formed {
        return Err(bad());
    }
    let mut value = Decimal::from_str(text).map_err(|_| bad())?.normalize();
    if value.scale() > 4 || value > Decimal::from(AMOUNT_TOLERANCE_LIMIT) {
        return Err(bad());
    }
    if value.scale() < 2 {
        value.rescale(2);
    }
    Ok(value.to_string())
}

/// The tolerance in a currency's minor units (rounded down: a tolerance never grows).
pub(crate) fn tolerance_minor(text: &str, minor_units: u32) -> i64 {
    let value = Decimal::from_str(text).unwrap_or_default();
    (value * Decimal::from(10i64.pow(minor_units)))
        .trunc()
        .try_into()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_normalised_and_bounded() {
        assert_eq!(normalize_tolerance("0").unwrap(), "0.00");
        assert_eq!(normalize_tolerance("0.5").unwrap(), "0.50");
        assert_eq!(normalize_tolerance("1.2345").unwrap(), "1.2345");
        assert_eq!(normalize_tolerance("2.500").unwrap(), "2.50");
        for bad in ["", "-1", "1e3", "0.12345", "1000001", "1.2.3", "abc"] {
            assert!(normalize_tolerance(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(tolerance_minor("0.50", 2), 50);
        assert_eq!(tolerance_minor("1.2345", 2), 123);
        assert_eq!(tolerance_minor("3.00", 0), 3);
    }

    #[test]
    fn defaults_fill_in_and_bad_values_name_their_field() {
        let dir = Directory::default();
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let p = ReconcileRequest::default().resolve(&dir, today).unwrap();
        assert_eq!(p.as_of, "2026-11-24");
        assert_eq!(p.hold_days_max, HOLD_DAYS_DEFAULT);
        assert_eq!(p.unconfirmed_days_max, UNCONFIRMED_DAYS_DEFAULT);
        assert_eq!(p.amount_tolerance, "0.00");
        assert_eq!(p.recipients_per_account_max, RECIPIENTS_PER_ACCOUNT_DEFAULT);
        let field = |r: ReconcileRequest| {
            r.resolve(&dir, today)
                .unwrap_err()
                .first
                .field
                .clone()
                .unwrap_or_default()
        };
        let req = |f: fn(&mut ReconcileRequest)| {
            let mut r = ReconcileRequest::default();
            f(&mut r);
            r
        };
        assert_eq!(field(req(|r| r.program = Some("NOPE".into()))), "program");
        assert_eq!(field(req(|r| r.org = Some("NOPE".into()))), "org");
        assert_eq!(field(req(|r| r.period = Some("2026-13".into()))), "period");
        assert_eq!(field(req(|r| r.as_of = Some("2026-02-30".into()))), "as_of");
        assert_eq!(field(req(|r| r.hold_days_max = Some(-1))), "hold_days_max");
        assert_eq!(
            field(req(|r| r.unconfirmed_days_max = Some(DAYS_MAX + 1))),
            "unconfirmed_days_max"
        );
        assert_eq!(
            field(req(|r| r.recipients_per_account_max = Some(0))),
            "recipients_per_account_max"
        );
        assert_eq!(
            field(req(|r| r.amount_tolerance = Some("-0.01".into()))),
            "amount_tolerance"
        );
    }
}
