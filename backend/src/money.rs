//! Money as integer minor units, read from and written to exact decimal strings.
//!
//! Amounts travel as strings with exactly the currency's number of decimals (`"780.00"` for
//! CNY). Being strict about the form keeps signed bytes reproducible: the server stores minor
//! units and must be able to write back the very string the client signed.
//!
//! ```
//! use fundtrail::money::{format_minor, parse_amount};
//! assert_eq!(parse_amount("1234.50", 2), Ok(123_450));
//! assert_eq!(format_minor(123_450, 2), "1234.50");
//! assert!(parse_amount("1234.5", 2).is_err()); // must be written "1234.50"
//! ```

use crate::error::ErrorCode;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The largest single amount accepted, in minor units (10^15: ten trillion yuan). Sums of
/// such amounts over a whole ledger still fit comfortably in an i64.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

/// Why an amount string was refused. Each maps to a stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("`{0}` is not a decimal number such as 780.00")]
    NotADecimal(String),
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount has more than {minor_units} decimal places")]
    TooPrecise { minor_units: u32 },
    #[error("amount exceeds the maximum of {}", format_minor(AMOUNT_MINOR_MAX, *minor_units))]
    TooLarge { minor_units: u32 },
    #[error(
        "amount must be written as `{expected}` (exactly {minor_units} decimals, no leading zeros)"
    )]
    NotCanonical { expected: String, minor_units: u32 },
}

impl AmountError {
    /// The stable API error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            AmountError::NotADecimal(_) => ErrorCode::InvalidAmount,
            AmountError::NotPositive => ErrorCode::AmountNotPositive,
            AmountError::TooPrecise { .. } => ErrorCode::AmountTooPrecise,
            AmountError::TooLarge { .. } => ErrorCode::AmountTooLarge,
            AmountError::NotCanonical { .. } => ErrorCode::AmountNotCanonical,
        }
    }
}

/// Parses a positive amount written with exactly `minor_units` decimals into minor units.
pub fn parse_amount(text: &str, minor_units: u32) -> Result<i64, AmountError> {
    let minor = parse_amount_lenient(text, minor_units)?;
    let expected = format_minor(minor, minor_units);
    if expected != text {
        return Err(AmountError::NotCanonical {
            expected,
            minor_units,
        });
    }
    Ok(minor)
}

/// Parses a positive amount with at most `minor_units` decimals ("780", "780.5" are fine).
/// For human input (CSV rosters, CLI flags); signed bytes use [`parse_amount`].
pub fn parse_amount_lenient(text: &str, minor_units: u32) -> Result<i64, AmountError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(AmountError::NotPositive);
    }
    let well_formed = !trimmed.is_empty()
        && trimmed.len() <= 40
        && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.')
        && trimmed.matches('.').count() <= 1
        && !trimmed.starts_with('.')
        && !trimmed.ends_with('.');
    if !well_formed {
        return Err(AmountError::NotADecimal(text.to_string()));
    }
    // More integer digits than the largest amount has is too large, whatever follows; this
    // also keeps the scaling below far from Decimal's 28-digit limit.
    let integer_digits = trimmed
        .split('.')
        .next()
        .unwrap_or("")
        .trim_start_matches('0')
        .len();
    if integer_digits > 16 {
        return Err(AmountError::TooLarge { minor_units });
    }
    let value = Decimal::from_str(trimmed).map_err(|_| AmountError::TooLarge { minor_units })?;
    if value.is_zero() {
        return Err(AmountError::NotPositive);
    }
    if value.normalize().scale() > minor_units {
        return Err(AmountError::TooPrecise { minor_units });
    }
    let scaled = value
        .checked_mul(Decimal::from(10i64.pow(minor_units)))
        .ok_or(AmountError::TooLarge { minor_units })?;
    let minor: i64 = scaled
        .trunc()
        .try_into()
        .map_err(|_| AmountError::TooLarge { minor_units })?;
    if minor > AMOUNT_MINOR_MAX {
        return Err(AmountError::TooLarge { minor_units });
    }
    Ok(minor)
}

/// Writes minor units as a decimal string with exactly `minor_units` decimals.
pub fn format_minor(minor: i64, minor_units: u32) -> String {
    Decimal::new(minor, minor_units).to_string()
}

/// The amount as a `Decimal`, for arithmetic that reads better in currency units.
pub fn to_decimal(minor: i64, minor_units: u32) -> Decimal {
    Decimal::new(minor, minor_units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_amounts_exactly() {
        assert_eq!(parse_amount("0.01", 2), Ok(1));
        assert_eq!(parse_amount("780.00", 2), Ok(78_000));
        assert_eq!(parse_amount("100", 0), Ok(100));
        assert_eq!(parse_amount("10000000000000.00", 2), Ok(AMOUNT_MINOR_MAX));
    }

    #[test]
    fn refuses_each_bad_form_with_its_code() {
        let code = |s: &str| parse_amount(s, 2).unwrap_err().code().as_str();
        assert_eq!(code("-1.00"), "amount_not_positive");
        assert_eq!(code("0.00"), "amount_not_positive");
        assert_eq!(code("1.005"), "amount_too_precise");
        assert_eq!(code("1.5"), "amount_not_canonical");
        assert_eq!(code("01.50"), "amount_not_canonical");
        assert_eq!(code("1e3"), "invalid_amount");
        assert_eq!(code("1,000.00"), "invalid_amount");
        assert_eq!(code(""), "invalid_amount");
        assert_eq!(code("NaN"), "invalid_amount");
        assert_eq!(code("10000000000000.01"), "amount_too_large");
        assert_eq!(
            code("99999999999999999999999999999999.00"),
            "amount_too_large"
        );
    }

    #[test]
    fn lenient_parse_accepts_short_forms_but_not_extra_precision() {
        assert_eq!(parse_amount_lenient(" 780 ", 2), Ok(78_000));
        assert_eq!(parse_amount_lenient("780.5", 2), Ok(78_050));
        assert_eq!(parse_amount_lenient("780.500", 2), Ok(78_050));
        assert_eq!(
            parse_amount_lenient("780.501", 2)
                .unwrap_err()
                .code()
                .as_str(),
            "amount_too_precise"
        );
    }

    #[test]
    fn formats_with_fixed_scale() {
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(123_456, 0), "123456");
        assert_eq!(format_minor(78_000, 2), "780.00");
    }
}
