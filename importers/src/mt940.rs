//! SWIFT MT940 customer statements.
//!
//! Fields are read line by line: `:20:` starts a statement, `:25:` names the account,
//! `:28C:` (or `:28:`) numbers it, `:60F:`/`:60M:` and `:62F:`/`:62M:` are the opening and
//! closing balances, each `:61:` is a transaction and a following `:86:` is its free text.
//! A line `-` (or `-}`, or a new `:20:`) ends a statement; lines outside statements (bank
//! headers such as `ABNANL2A` / `940`, SWIFT `{1:...}` blocks) are ignored, so a file may
//! hold any number of statements.
//!
//! Character set: SWIFT allows only a small ASCII set, but banks put names with accents or
//! Chinese characters into `:86:`. Each line is decoded as UTF-8 when it is valid UTF-8, else
//! as Windows-1252 (a Latin-1 superset): MT940 comes from European-style core banking
//! systems, where the legacy code page is Latin-1, and decoding per line keeps the parser
//! streaming. Chinese exports in GB18030 arrive as CSV, not MT940.
//!
//! `:61:` layout: value date `YYMMDD` (years 80-99 are 19xx, others 20xx), optional entry
//! date `MMDD` (its year is the one that puts it closest to the value date, so a December
//! value date with a January entry date rolls over), mark `D`/`C`/`RD`/`RC` (`R` =
//! reversal), optional funds code letter (so `DR` is a debit with funds code `R`, not a
//! reversal), amount with a decimal comma, transaction type (`N`/`F`/`S` + 3 characters),
//! customer reference, optional `//` bank reference, optional second line of supplementary
//! details. The booking date is the entry date, else the value date; `NONREF` means no
//! reference.
//!
//! `:86:` is kept as text (lines joined by `\n`). Two structured layouts are also read for
//! counterparty and reference: the German `?`-subfield layout (`?20`-`?29` purpose, `?31`
//! account, `?32`/`?33` name, `EREF+` end-to-end reference) and the `/KEY/value` layout
//! (`/NAME/`, `/IBAN/`, `/EREF/`, `/REMI/`).
//!
//! A bad field yields an error naming its line, and parsing continues with the next field.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::error::{from_io, quote, ErrorKind, ParseError};
use crate::io::{read_line_bounded, ymd, Limited};
use crate::model::{Location, Options, Record, Statement, Transaction};

/// Parses an MT940 file; see the module documentation.
pub(crate) fn parse<'a, R: Read + 'a>(
    input: R,
    options: &Options,
) -> Box<dyn Iterator<Item = Result<Record, ParseError>> + 'a> {
    let limits = options.limits;
    // Lines are read with a bound already; this only bounds the total.
    let limited = Limited::new(input, limits.file_bytes_max, usize::MAX, b"\n");
    Box::new(Mt940Iter {
        reader: BufReader::new(limited),
        options: options.clone(),
        line_no: 0,
        line: Vec::new(),
        field: None,
        stmt: None,
        pending: None,
        out: VecDeque::new(),
        rows: 0,
        done: false,
    })
}

struct Field {
    tag: String,
    content: String,
    line: u64,
    too_long: bool,
}

#[derive(Default)]
struct Stmt {
    line: u64,
    reference: Option<String>,
    account: Option<String>,
    number: Option<String>,
    currency: Option<String>,
    opening: Option<Balance>,
    closing: Option<Balance>,
}

struct Balance {
    amount: Decimal,
    date: NaiveDate,
    currency: String,
}

/// A `:61:` waiting for its `:86:`.
struct Pending {
    line: u64,
    parsed: Result<Line61, ParseError>,
    info: Option<String>,
}

/// The parts of a `:61:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line61 {
    pub(crate) value_date: NaiveDate,
    pub(crate) entry_date: Option<NaiveDate>,
    pub(crate) reversal: bool,
    /// Signed: negative for debits.
    pub(crate) amount: Decimal,
    pub(crate) transaction_type: String,
    pub(crate) customer_ref: Option<String>,
    pub(crate) bank_ref: Option<String>,
    pub(crate) supplementary: Option<String>,
}

struct Mt940Iter<R: BufRead> {
    reader: R,
    options: Options,
    line_no: u64,
    line: Vec<u8>,
    field: Option<Field>,
    stmt: Option<Stmt>,
    pending: Option<Pending>,
    out: VecDeque<Result<Record, ParseError>>,
    rows: u64,
    done: bool,
}

/// Decodes a line: UTF-8 if valid, else Windows-1252 (see the module documentation).
fn decode_line(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// Splits `:61:rest` into tag and content.
fn split_tag(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(':')?;
    let end = rest.find(':')?;
    let tag = &rest[..end];
    let ok = tag.is_ascii()
        && (2..=3).contains(&tag.len())
        && tag[..2].chars().all(|c| c.is_ascii_digit())
        && tag[2..].chars().all(|c| c.is_ascii_uppercase());
    ok.then(|| (tag, &rest[end + 1..]))
}

fn two(s: &str, at: usize) -> Option<u32> {
    s.get(at..at + 2)?.parse().ok()
}

fn yymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 6 || !s.chars().all(|c| c.is_ascii_digit()) {
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

/// Reads an amount with a decimal comma (`1111,10`, `5,`).
fn comma_amount(s: &str) -> Option<Decimal> {
    if s.is_empty()
        || s.matches(',').count() > 1
        || !s.chars().all(|c| c.is_ascii_digit() || c == ',')
        || !s.chars().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    let t = s.replace(',', ".");
    let t = t.strip_suffix('.').unwrap_or(&t);
    t.parse().ok()
}

/// Parses a balance field (`C190825EUR1111,10`).
fn parse_balance(content: &str) -> Result<Balance, String> {
    let c = content.trim();
    let bad = || {
        format!(
            "{} is not a balance (D/C, YYMMDD, currency, amount)",
            quote(c)
        )
    };
    let sign = match c.get(..1) {
        Some("C") => Decimal::ONE,
        Some("D") => Decimal::NEGATIVE_ONE,
        _ => return Err(bad()),
    };
    let date = c.get(1..7).and_then(yymmdd).ok_or_else(bad)?;
    let currency = c
        .get(7..10)
        .filter(|s| s.chars().all(|c| c.is_ascii_uppercase()));
    let currency = currency.ok_or_else(bad)?.to_string();
    let amount = c.get(10..).and_then(comma_amount).ok_or_else(bad)?;
    Ok(Balance {
        amount: amount * sign,
        date,
        currency,
    })
}

/// Parses a `:61:` field (both lines).
pub(crate) fn parse_61(content: &str) -> Result<Line61, String> {
    let (first, second) = match content.split_once('\n') {
        Some((a, b)) => (a, Some(b)),
        None => (content, None),
    };
    let s = first.trim_end();
    let bad = |what: &str| format!("{} has no valid {what}", quote(s));
    let value_date = s
        .get(..6)
        .and_then(yymmdd)
        .ok_or_else(|| bad("value date"))?;
    let mut pos = 6;
    let mut entry = None;
    if let Some(mmdd) = s
        .get(6..10)
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()))
    {
        entry = Some(entry_date(mmdd, value_date).ok_or_else(|| bad("entry date"))?);
        pos = 10;
    }
    let rest = s.get(pos..).unwrap_or("");
    let (reversal, debit, rest) = if let Some(r) = rest.strip_prefix("RD") {
        (true, true, r)
    } else if let Some(r) = rest.strip_prefix("RC") {
        (true, false, r)
    } else if let Some(r) = rest.strip_prefix('D') {
        (false, true, r)
    } else if let Some(r) = rest.strip_prefix('C') {
        (false, false, r)
    } else {
        return Err(bad("debit/credit mark (D, C, RD, RC)"));
    };
    // Optional funds code: the third letter of the currency code.
    let rest = match rest.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => &rest[1..],
        _ => rest,
    };
    let amount_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ','))
        .unwrap_or(rest.len());
    let amount = comma_amount(&rest[..amount_len]).ok_or_else(|| bad("amount"))?;
    let rest = &rest[amount_len..];
    let transaction_type = rest
        .get(..4)
        .filter(|t| {
            t.starts_with(['N', 'F', 'S']) && t[1..].chars().all(|c| c.is_ascii_alphanumeric())
        })
        .ok_or_else(|| bad("transaction type (N, F or S and 3 characters)"))?
        .to_string();
    let refs = &rest[4..];
    let (customer, bank) = match refs.split_once("//") {
        Some((c, b)) => (c, Some(b)),
        None => (refs, None),
    };
    let clean = |s: &str| {
        let t = s.trim();
        (!t.is_empty() && !t.eq_ignore_ascii_case("NONREF")).then(|| t.to_string())
    };
    Ok(Line61 {
        value_date,
        entry_date: entry,
        reversal,
        amount: if debit { -amount } else { amount },
        transaction_type,
        customer_ref: clean(customer),
        bank_ref: bank.and_then(clean),
        supplementary: second.and_then(clean),
    })
}

/// What a `:86:` says beyond its text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Info86 {
    pub(crate) text: Option<String>,
    pub(crate) reference: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) account: Option<String>,
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Finds the SEPA `EREF+` value inside a purpose text.
fn eref(purpose: &str) -> Option<String> {
    const KEYS: &[&str] = &[
        "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "IBAN+", "BIC+", "COAM+",
        "OAMT+",
    ];
    let start = purpose.find("EREF+")? + 5;
    let tail = &purpose[start..];
    let end = KEYS
        .iter()
        .filter_map(|k| tail.find(k))
        .min()
        .unwrap_or(tail.len());
    non_empty(tail[..end].to_string()).filter(|r| !r.eq_ignore_ascii_case("NOTPROVIDED"))
}

/// Interprets a `:86:` field; see the module documentation.
pub(crate) fn interpret_86(info: &str) -> Info86 {
    let joined: String = info.split('\n').collect();
    let b = joined.as_bytes();
    // German layout: 3-digit code, then `?NN` subfields.
    if b.len() > 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b'?' {
        let mut purpose = String::new();
        let mut posting = String::new();
        let mut name = String::new();
        let mut account = None;
        for part in joined[3..].split('?').skip(1) {
            let (code, value) = match (part.get(..2), part.get(2..)) {
                (Some(c), Some(v)) if c.chars().all(|c| c.is_ascii_digit()) => (c, v),
                _ => continue,
            };
            match code.parse::<u8>().unwrap_or(u8::MAX) {
                0 => posting.push_str(value),
                20..=29 | 60..=63 => purpose.push_str(value),
                31 => account = non_empty(value.to_string()),
                32 | 33 => name.push_str(value),
                _ => {}
            }
        }
        return Info86 {
            reference: eref(&purpose),
            text: non_empty(purpose).or_else(|| non_empty(posting)),
            name: non_empty(name),
            account,
        };
    }
    // `/KEY/value` layout (ABN AMRO, Rabobank, SWIFT structured).
    if joined.starts_with('/') {
        const KEYS: &[&str] = &[
            "TRTP",
            "IBAN",
            "BIC",
            "NAME",
            "REMI",
            "EREF",
            "CSID",
            "MARF",
            "ORDP",
            "BENM",
            "ADDR",
            "RTRN",
            "ISDT",
            "CDTRREF",
            "CDTRREFTP",
            "PREF",
            "NRTX",
            "ID",
            "CD",
            "ISSR",
        ];
        let mut marks: Vec<(usize, &str)> = Vec::new();
        for k in KEYS {
            let pat = format!("/{k}/");
            let mut from = 0;
            while let Some(i) = joined[from..].find(&pat) {
                marks.push((from + i, k));
                from += i + pat.len();
            }
        }
        marks.sort_unstable();
        let value = |key: &str| -> Option<String> {
            let idx = marks.iter().position(|(_, k)| *k == key)?;
            let start = marks[idx].0 + key.len() + 2;
            let end = marks
                .iter()
                .skip(idx + 1)
                .map(|(p, _)| *p)
                .find(|p| *p >= start)
                .unwrap_or(joined.len());
            let v = joined.get(start..end)?.trim_matches('/');
            non_empty(v.strip_prefix("USTD//").unwrap_or(v).to_string())
        };
        if !marks.is_empty() {
            return Info86 {
                reference: value("EREF").filter(|r| !r.eq_ignore_ascii_case("NOTPROVIDED")),
                text: value("REMI").or_else(|| non_empty(info.to_string())),
                name: value("NAME"),
                account: value("IBAN"),
            };
        }
    }
    Info86 {
        text: non_empty(info.to_string()),
        ..Info86::default()
    }
}

impl<R: BufRead> Mt940Iter<R> {
    fn step(&mut self) {
        let max = self.options.limits.field_bytes_max;
        let read = match read_line_bounded(&mut self.reader, &mut self.line, max) {
            Ok(r) => r,
            Err(e) => {
                self.out.push_back(Err(
                    from_io(&e).at_opt(Some(Location::Line(self.line_no + 1)))
                ));
                self.done = true;
                return;
            }
        };
        let Some(truncated) = read else {
            self.flush_field();
            self.finish_statement();
            self.done = true;
            return;
        };
        self.line_no += 1;
        let text = decode_line(&self.line);
        let trimmed = text.trim_end();
        if let Some((tag, content)) = split_tag(trimmed) {
            self.flush_field();
            self.field = Some(Field {
                tag: tag.to_string(),
                content: content.to_string(),
                line: self.line_no,
                too_long: truncated,
            });
        } else if trimmed == "-" || trimmed.starts_with("-}") {
            self.flush_field();
            self.finish_statement();
        } else if trimmed.starts_with('{') {
            // SWIFT block headers start a new message.
            self.flush_field();
            self.finish_statement();
        } else if let Some(field) = self.field.as_mut() {
            if truncated || field.content.len() + 1 + trimmed.len() > max {
                field.too_long = true;
            } else {
                field.content.push('\n');
                field.content.push_str(trimmed);
            }
        }
    }

    fn flush_field(&mut self) {
        let Some(field) = self.field.take() else {
            return;
        };
        let loc = Location::Line(field.line);
        if field.tag != "86" {
            self.finish_pending();
        }
        if field.too_long {
            let e = ParseError::new(
                ErrorKind::FieldTooLong,
                format!(
                    "the field is longer than {} bytes",
                    self.options.limits.field_bytes_max
                ),
            )
            .at(loc)
            .field(field.tag.clone());
            match (field.tag.as_str(), self.pending.as_mut()) {
                ("86", Some(p)) => p.parsed = Err(e),
                ("61", _) => {
                    self.rows += 1;
                    self.check_rows();
                    self.out.push_back(Err(e));
                }
                _ => self.out.push_back(Err(e)),
            }
            return;
        }
        if field.tag == "20" {
            self.finish_statement();
        }
        let stmt = self.stmt.get_or_insert_with(|| Stmt {
            line: field.line,
            ..Stmt::default()
        });
        let content = field.content.trim().to_string();
        let bad = |msg: String| {
            ParseError::new(ErrorKind::MalformedMt940, msg)
                .at(Location::Line(field.line))
                .field(field.tag.clone())
        };
        match field.tag.as_str() {
            "20" => stmt.reference = non_empty(content),
            "25" => stmt.account = non_empty(content),
            "28C" | "28" => stmt.number = non_empty(content),
            "60F" | "60M" | "62F" | "62M" => match parse_balance(&content) {
                Ok(b) => {
                    if field.tag.starts_with("60") {
                        stmt.currency.get_or_insert_with(|| b.currency.clone());
                        stmt.opening.get_or_insert(b);
                    } else {
                        stmt.closing = Some(b);
                    }
                }
                Err(m) => self.out.push_back(Err(bad(m))),
            },
            "61" => {
                self.rows += 1;
                self.check_rows();
                self.pending = Some(Pending {
                    line: field.line,
                    parsed: parse_61(&field.content).map_err(bad),
                    info: None,
                });
            }
            "86" => {
                if let Some(p) = self.pending.as_mut() {
                    if p.info.is_none() {
                        p.info = Some(field.content);
                    }
                }
                // Otherwise it is information about the whole statement.
            }
            _ => {}
        }
    }

    fn check_rows(&mut self) {
        if self.rows > self.options.limits.rows_max {
            self.out.push_back(Err(ParseError::new(
                ErrorKind::TooLarge,
                format!("more than {} transactions", self.options.limits.rows_max),
            )
            .at(Location::Line(self.line_no))));
            self.done = true;
        }
    }

    fn finish_pending(&mut self) {
        let Some(p) = self.pending.take() else { return };
        let loc = Location::Line(p.line);
        let result = p.parsed.and_then(|l| {
            let stmt = self.stmt.as_ref();
            let missing = |field: &str, what: &str| {
                ParseError::new(
                    ErrorKind::MissingField,
                    format!("the statement has no {what} before this transaction"),
                )
                .at(loc.clone())
                .field(field)
            };
            let account = stmt
                .and_then(|s| s.account.clone())
                .or_else(|| self.options.account.clone())
                .ok_or_else(|| missing("25", "account (:25:)"))?;
            let currency = stmt
                .and_then(|s| s.currency.clone())
                .ok_or_else(|| missing("60F", "opening balance (:60F:) giving the currency"))?;
            let info = p.info.as_deref().map(interpret_86).unwrap_or_default();
            Ok(Transaction {
                location: loc.clone(),
                account,
                booking_date: l.entry_date.unwrap_or(l.value_date),
                value_date: Some(l.value_date),
                amount: l.amount,
                currency,
                counterparty_name: info.name,
                counterparty_account: info.account,
                reference: l.customer_ref.or(info.reference),
                bank_txn_id: l.bank_ref,
                text: info.text.or(l.supplementary),
                reversal: l.reversal,
                return_reason: None,
            })
        });
        self.out.push_back(result.map(Record::Transaction));
    }

    fn finish_statement(&mut self) {
        self.finish_pending();
        let Some(stmt) = self.stmt.take() else { return };
        let account = stmt
            .account
            .clone()
            .or_else(|| self.options.account.clone());
        let Some(account) = account else {
            self.out.push_back(Err(ParseError::new(
                ErrorKind::MissingField,
                "the statement has no account (:25:)",
            )
            .at(Location::Line(stmt.line))
            .field("25")));
            return;
        };
        self.out.push_back(Ok(Record::Statement(Statement {
            location: Location::Line(stmt.line),
            account,
            statement_id: stmt.number.or(stmt.reference),
            currency: stmt.currency,
            from_date: stmt.opening.as_ref().map(|b| b.date),
            to_date: stmt.closing.as_ref().map(|b| b.date),
            opening_balance: stmt.opening.as_ref().map(|b| b.amount),
            closing_balance: stmt.closing.as_ref().map(|b| b.amount),
        })));
    }
}

impl<R: BufRead> Iterator for Mt940Iter<R> {
    type Item = Result<Record, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.out.is_empty() && !self.done {
            self.step();
        }
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        ymd(y, m, day).unwrap()
    }

    #[test]
    fn line_61_with_reversal_and_bank_reference() {
        let l = parse_61("2312291229RC1234,5NTRFPAY-2023-77//BANK123\nsupplement").unwrap();
        assert_eq!(l.value_date, d(2023, 12, 29));
        assert_eq!(l.entry_date, Some(d(2023, 12, 29)));
        assert!(l.reversal);
        assert_eq!(l.amount, "1234.5".parse::<Decimal>().unwrap());
        assert_eq!(l.transaction_type, "NTRF");
        assert_eq!(l.customer_ref.as_deref(), Some("PAY-2023-77"));
        assert_eq!(l.bank_ref.as_deref(), Some("BANK123"));
        assert_eq!(l.supplementary.as_deref(), Some("supplement"));
    }

    #[test]
    fn line_61_funds_code_is_not_a_reversal() {
        let l = parse_61("1811271127DR119,35NDDTNONREF").unwrap();
        assert!(!l.reversal);
        assert_eq!(l.amount, "-119.35".parse::<Decimal>().unwrap());
        assert_eq!(l.customer_ref, None);
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
    fn bad_61_fields_are_refused() {
        for s in [
            "",
            "231301D1,00NTRF",
            "231229X1,00NTRF",
            "231229D,NTRF",
            "231229D1,0,0NTRF",
            "231229D1,00",
            "231229D1,00XTRF",
        ] {
            assert!(parse_61(s).is_err(), "{s}");
        }
    }

    #[test]
    fn german_structured_86() {
        let i = interpret_86(
            "166?00GUTSCHRIFT?100599?20EREF+PAY-42?21SVWZ+Sozialhilfe Mai?30HYVEDEMMXXX\n?31DE02120300000000202051?32MAX MUSTER?33MANN",
        );
        assert_eq!(i.reference.as_deref(), Some("PAY-42"));
        assert_eq!(i.text.as_deref(), Some("EREF+PAY-42SVWZ+Sozialhilfe Mai"));
        assert_eq!(i.name.as_deref(), Some("MAX MUSTERMANN"));
        assert_eq!(i.account.as_deref(), Some("DE02120300000000202051"));
    }

    #[test]
    fn slash_structured_86() {
        let i = interpret_86(
            "/TRTP/SEPA OVERBOEKING/IBAN/NL44RABO0123456789/BIC/RABONL2U/NAME/J\nANSEN/REMI/Bijstand mei/EREF/NOTPROVIDED",
        );
        assert_eq!(i.name.as_deref(), Some("JANSEN"));
        assert_eq!(i.account.as_deref(), Some("NL44RABO0123456789"));
        assert_eq!(i.text.as_deref(), Some("Bijstand mei"));
        assert_eq!(i.reference, None);
    }

    #[test]
    fn latin1_lines_are_decoded() {
        assert_eq!(decode_line(b"M\xfcller"), "Müller");
        assert_eq!(decode_line("Müller".as_bytes()), "Müller");
    }
}
