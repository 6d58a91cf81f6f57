//! Field `:61:`, the statement line: `6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]` on the first line,
//! `[34x]` supplementary details on the next; see the module documentation of
//! [`crate::mt940`] for what is read and how leniently.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::error::quote;
use crate::io::ymd;

/// SWIFT `15d`: at most 15 characters, decimal comma included.
const AMOUNT_CHARS_MAX: usize = 15;

/// The parts of a `:61:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line61 {
    pub(crate) value_date: NaiveDate,
    pub(crate) entry_date: Option<NaiveDate>,
    /// `RC` or `RD`.
    pub(crate) reversal: bool,
    /// Signed: negative for `D` and for `RC` (a reversed credit is a debit entry).
    pub(crate) amount: Decimal,
    /// Kept for the tests: nothing downstream needs it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) funds_code: Option<char>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) transaction_type: String,
    /// Without placeholders (see [`is_placeholder`]).
    pub(crate) customer_ref: Option<String>,
    pub(crate) bank_ref: Option<String>,
    pub(crate) supplementary: Option<String>,
}

/// References that mean "none": banks fill the mandatory `16x` with these.
pub(crate) fn is_placeholder(s: &str) -> bool {
    let t = s.trim();
    t.is_empty()
        || ["NONREF", "EREF", "NOTPROVIDED"]
            .iter()
            .any(|p| t.eq_ignore_ascii_case(p))
}

fn two(s: &str, at: usize) -> Option<u32> {
    s.get(at..at + 2)?.parse().ok()
}

/// `YYMMDD`; years 80-99 are 19xx, others 20xx.
pub(crate) fn yymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy = two(s, 0)? as i32;
    let year = if yy >= 80 { 1900 + yy } else { 2000 + yy };
    ymd(year, two(s, 2)?, two(s, 4)?)
}

/// The `MMDD` entry date in the year that puts it closest to the value date.
fn entry_date(mmdd: &str, value: NaiveDate) -> Option<NaiveDate> {
    let (m, d) = (two(mmdd, 0)?, two(mmdd, 2)?);
    [value.year() - 1, value.year(), value.year() + 1]
        .into_iter()
        .filter_map(|y| ymd(y, m, d))
        .min_by_key(|c| (*c - value).num_days().abs())
}

/// Reads an amount with a decimal comma (`1111,10`, `5,`, `000000000025,00`).
pub(crate) fn comma_amount(s: &str) -> Option<Decimal> {
    if s.matches(',').count() > 1
        || !s.bytes().all(|b| b.is_ascii_digit() || b == b',')
        || !s.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    let t = s.replace(',', ".");
    let t = t.strip_suffix('.').unwrap_or(&t);
    t.parse().ok()
}

/// A position in the field; it only ever steps over ASCII bytes, so it is always a char
/// boundary and slicing at it cannot panic.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip(&mut self, bytes: &[u8]) {
        while self.peek().is_some_and(|b| bytes.contains(&b)) {
            self.pos += 1;
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<&'a str> {
        let t = self.s.get(self.pos..self.pos + n)?;
        t.bytes().all(|b| b.is_ascii_digit()).then(|| {
            self.pos += n;
            t
        })
    }

    /// The letter `c` in either case.
    fn letter(&mut self, c: u8) -> bool {
        let hit = self.peek().map(|b| b.to_ascii_uppercase()) == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }
}

/// Parses a `:61:` field (both lines); the error names what could not be read.
pub(crate) fn parse_61(content: &str) -> Result<Line61, String> {
    let shown = content.lines().next().unwrap_or("").trim();
    let bad = |what: &str| format!("{} has no valid {what}", quote(shown));
    let mut c = Cursor { s: content, pos: 0 };
    // Banks pad subfields with spaces (and ASN leaves the entry date blank), so spaces
    // between the fixed-width subfields are skipped.
    c.skip(b" ");
    let value_date = c
        .digits(6)
        .and_then(yymmdd)
        .ok_or_else(|| bad("value date (YYMMDD)"))?;
    c.skip(b" ");
    let entry_date = match c.digits(4) {
        Some(mmdd) => Some(entry_date(mmdd, value_date).ok_or_else(|| bad("entry date (MMDD)"))?),
        None => None,
    };
    c.skip(b" ");
    let reversal = c.letter(b'R');
    let debit = if c.letter(b'D') {
        true
    } else if c.letter(b'C') {
        false
    } else {
        return Err(bad("debit/credit mark (D, C, RD or RC)"));
    };
    c.skip(b" ");
    // A letter here is the funds code, never part of the mark: `DR` is a debit with funds
    // code R, a reversal is always written `RD`/`RC`.
    let funds_code = match c.peek() {
        Some(b) if b.is_ascii_alphabetic() => {
            c.pos += 1;
            Some(char::from(b.to_ascii_uppercase()))
        }
        _ => None,
    };
    // Some Sparkassen break the line before the amount.
    c.skip(b" \n");
    let start = c.pos;
    c.skip(b"0123456789,");
    let raw_amount = content.get(start..c.pos).unwrap_or("");
    if raw_amount.len() > AMOUNT_CHARS_MAX {
        return Err(bad("amount (at most 15 characters)"));
    }
    let amount = comma_amount(raw_amount).ok_or_else(|| bad("amount"))?;
    c.skip(b" ");
    let transaction_type = c
        .rest()
        .get(..4)
        .filter(|t| {
            let b = t.as_bytes();
            matches!(
                b.first().map(u8::to_ascii_uppercase),
                Some(b'N' | b'F' | b'S')
            ) && b.iter().skip(1).all(u8::is_ascii_alphanumeric)
        })
        .ok_or_else(|| bad("transaction type (N, F or S and 3 characters)"))?
        .to_ascii_uppercase();
    c.pos += 4;
    let (line, next) = match c.rest().split_once('\n') {
        Some((a, b)) => (a, Some(b)),
        None => (c.rest(), None),
    };
    // Longer references than SWIFT's 16 characters are kept: ASN writes an IBAN there.
    let (customer, bank) = match line.split_once("//") {
        Some((a, b)) => (a, Some(b)),
        None => (line, None),
    };
    let keep = |s: &str| (!is_placeholder(s)).then(|| s.trim().to_string());
    let negative = debit != reversal;
    Ok(Line61 {
        value_date,
        entry_date,
        reversal,
        amount: if negative { -amount } else { amount },
        funds_code,
        transaction_type,
        customer_ref: keep(customer),
        bank_ref: bank.and_then(keep),
        supplementary: next
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        ymd(y, m, day).unwrap()
    }

    #[test]
    fn every_subfield() {
        let l = parse_61("2312291229RD1234,5NTRFPAY-2023-77//BANK123\nsupplement").unwrap();
        assert_eq!(l.value_date, d(2023, 12, 29));
        assert_eq!(l.entry_date, Some(d(2023, 12, 29)));
        assert!(l.reversal);
        assert_eq!(
            l.amount,
            "1234.5".parse::<Decimal>().unwrap(),
            "RD: credit entry"
        );
        assert_eq!(l.funds_code, None);
        assert_eq!(l.transaction_type, "NTRF");
        assert_eq!(l.customer_ref.as_deref(), Some("PAY-2023-77"));
        assert_eq!(l.bank_ref.as_deref(), Some("BANK123"));
        assert_eq!(l.supplementary.as_deref(), Some("supplement"));
        let l = parse_61("231229RC1,00NTRFX").unwrap();
        assert_eq!(
            l.amount,
            "-1".parse::<Decimal>().unwrap(),
            "RC: debit entry"
        );
    }

    #[test]
    fn funds_code_is_not_a_reversal() {
        let l = parse_61("1811271127DR119,35NDDTNONREF").unwrap();
        assert!(!l.reversal);
        assert_eq!(l.funds_code, Some('R'));
        assert_eq!(l.amount, "-119.35".parse::<Decimal>().unwrap());
        assert_eq!(l.customer_ref, None);
        let l = parse_61("091001RDK5,00NMSCX").unwrap();
        assert!(l.reversal);
        assert_eq!(l.funds_code, Some('K'));
        assert_eq!(l.amount, "5".parse::<Decimal>().unwrap());
    }

    #[test]
    fn entry_date_rolls_over_the_year() {
        let l = parse_61("2312310102D1,00NTRFX").unwrap();
        assert_eq!(l.entry_date, Some(d(2024, 1, 2)));
        let l = parse_61("2401021231C1,00NTRFX").unwrap();
        assert_eq!(l.entry_date, Some(d(2023, 12, 31)));
        let l = parse_61("240102C1,NTRFX").unwrap();
        assert_eq!(l.entry_date, None);
        assert_eq!(l.amount, Decimal::ONE);
    }

    #[test]
    fn lenient_where_banks_deviate() {
        let l = parse_61("200101    d65,00ntrfnonref").unwrap();
        assert_eq!(l.entry_date, None);
        assert_eq!(l.amount, "-65".parse::<Decimal>().unwrap());
        assert_eq!(l.transaction_type, "NTRF");
        assert_eq!(l.customer_ref, None);
        let l = parse_61("1811271127DR\n119,35NDDTNONREF").unwrap();
        assert_eq!(l.amount, "-119.35".parse::<Decimal>().unwrap());
        assert_eq!(l.supplementary, None);
    }

    #[test]
    fn bad_fields_are_refused() {
        for s in [
            "",
            "231301D1,00NTRF",
            "2312291332D1,00NTRF",
            "231229X1,00NTRF",
            "231229R1,00NTRF",
            "231229D,NTRF",
            "231229D1,0,0NTRF",
            "231229D1234567890123,45NTRF",
            "231229D1,00",
            "231229D1,00XTRF",
            "231229D1,00N-RF",
            "23122ä9D1,00NTRF",
        ] {
            assert!(parse_61(s).is_err(), "{s}");
        }
    }
}
