//! SWIFT MT940 customer statements.
//!
//! **Structure.** Fields are read line by line: `:20:` starts a statement, `:25:` names the
//! account, `:28C:` (or `:28:`) numbers it, `:60F:`/`:60M:` and `:62F:`/`:62M:` are the
//! opening and closing balances, each `:61:` is a transaction and the `:86:` fields right
//! after it are its information (Rabobank writes several; they are joined by `\n`). A `:86:`
//! without a transaction before it describes the statement and is skipped, as are `:64:`,
//! `:65:` and other fields. A line `-` (or `-}`, a SWIFT `{` block header, or a new `:20:`)
//! ends a statement; lines outside fields (bank headers such as `ABNANL2A` / `940`) are
//! ignored, so a file may hold any number of statements. A field's continuation lines are
//! kept as written, trailing spaces included.
//!
//! **Character set.** SWIFT allows only a small ASCII set, but banks put names with accents
//! or Chinese characters into `:86:`. Each line is decoded as UTF-8 when it is valid UTF-8,
//! else as Windows-1252 (a Latin-1 superset): MT940 comes from European-style core banking
//! systems, where the legacy code page is Latin-1, and decoding per line keeps the parser
//! streaming. Chinese exports in GB18030 arrive as CSV, not MT940.
//!
//! **`:61:`**, `6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]` then `[34x]` on the next line:
//! value date `YYMMDD` (years 80-99 are 19xx, others 20xx); optional entry date `MMDD`, in
//! the year that puts it closest to the value date (a December value date with a January
//! entry date rolls over); mark `D`, `C`, `RD` (reversal of a debit: a credit entry) or `RC`
//! (reversal of a credit: a debit entry), so `reversal` is set and the amount is negative
//! for `D` and `RC`; optional funds code letter (`DR` is a debit with funds code `R`, never a
//! reversal); amount with a decimal comma, at most 15 characters; transaction type `N`, `F`
//! or `S` and 3 letters or digits; customer reference up to `//` or the line's end; bank
//! reference after `//` (the transaction's `bank_txn_id`); the next line(s), supplementary
//! details. Lenient where banks deviate: letters in either case, spaces between the
//! subfields (ASN leaves the entry date blank), a line break before the amount (Sparkassen),
//! references longer than SWIFT's 16 characters (ASN writes an IBAN). `NONREF`, `EREF`,
//! `NOTPROVIDED` or nothing as a reference mean none. Anything else that does not fit is a
//! `malformed_mt940` error naming the `:61:` line and what could not be read.
//!
//! **`:86:`** is read in one of three layouts, chosen by how it starts:
//!
//! * German `?NN` subfields (DK/GVC layout, a 3-digit business code then `?`): `?00`
//!   posting text, `?20`-`?29` and `?60`-`?63` purpose, `?31` account, `?32`+`?33` name
//!   (`?10`, `?30`, `?34` are not kept). Inside the purpose, the SEPA keywords `EREF+`,
//!   `KREF+`, `MREF+`, `CRED+`, `DEBT+`, `SVWZ+`, `ABWA+`, `ABWE+`, `IBAN+`, `BIC+`, `COAM+`,
//!   `OAMT+` each run to the next. Counterparty account = `?31`, else `IBAN+`; name =
//!   `?32` + `?33`; reference = `EREF+`; remittance = `SVWZ+`, or the whole purpose when it
//!   has no keywords. A `?` not followed by two digits is text.
//! * SWIFT `/TAG/value/` code words (ABN AMRO, ING, Rabobank), starting with one of them: a
//!   value runs to the next known code word, so it may contain `/`. `/EREF/` is the
//!   reference; `/TRTP/` the transaction type; `/REMI/` the remittance (also `/REMI/USTD//
//!   text/` and `/REMI/STRD/CUR/reference/`; `/CDTRREF/` when there is no `/REMI/`);
//!   `/CNTP/account/BIC/name/city/`, `/CRNM/` and `/CACT/` name the counterparty; else
//!   `/NAME/` and `/IBAN/` after `/BENM/` (beneficiary, preferred for debits) or `/ORDP/`
//!   (ordering party, preferred for credits), else directly in the field (ABN AMRO); those
//!   after `/ULTD/`, `/ULTC/`, `/ULTB/`, `/ULTE/` (ultimate parties) are not the
//!   counterparty. Rabobank writes the account of a `/BENM/` or `/ORDP/` party alone on the
//!   second line of `:61:`; that is read as the counterparty account when `:86:` has none.
//! * Anything else is free text.
//!
//! In both structured layouts the lines are joined with nothing inserted, since banks wrap
//! them at a fixed width mid-word (`CONTRA ACCOUN` / `T HOLDER`) and even mid-keyword
//! (`S?25VWZ+`); `NOTPROVIDED` as a value means none.
//!
//! **Transaction.** Booking date = entry date, else value date. Reference = the `:61:`
//! customer reference, else (placeholder) the end-to-end reference of `:86:`. `text` = for
//! a structured `:86:`, the transaction type (`/TRTP/`, `?00`) and the remittance joined by
//! ` | `; for free text, the whole `:86:` (lines joined by `\n`); when `:86:` gives none,
//! the supplementary details (unless read as the account). Structured layouts keep the
//! counterparty's name and account out of `text`: bank rows store those only masked
//! (ARCHITECTURE.md, "Personal data stays sealed"), and the whole file is kept encrypted.
//!
//! A bad field yields an error naming its line, and parsing continues with the next field.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

mod field61;
mod field86;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::error::{from_io, quote, ErrorKind, ParseError};
use crate::io::{read_line_bounded, Limited};
use crate::model::{Location, Options, Record, Statement, Transaction};

use field61::{comma_amount, parse_61, yymmdd, Line61};
use field86::interpret_86;

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

/// A `:61:` waiting for the `:86:` fields that may follow it.
struct Pending {
    line: u64,
    parsed: Result<Line61, ParseError>,
    info: Option<String>,
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

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// One word of letters and digits, as long as an account number can be (IBAN: 34).
fn is_account_token(s: &str) -> bool {
    (5..=34).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
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
        // Content keeps its trailing spaces: a line wrapped at a fixed width may end in the
        // space between two words of a value.
        if let Some((tag, content)) = split_tag(&text) {
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
            if truncated || field.content.len() + 1 + text.len() > max {
                field.too_long = true;
            } else {
                field.content.push('\n');
                field.content.push_str(&text);
            }
        }
    }

    fn flush_field(&mut self) {
        let Some(field) = self.field.take() else {
            return;
        };
        let loc = Location::Line(field.line);
        let max = self.options.limits.field_bytes_max;
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
            .at(loc.clone())
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
                // Without a transaction it is information about the whole statement.
                if let Some(p) = self.pending.as_mut() {
                    match p.info.as_mut() {
                        None => p.info = Some(field.content),
                        // Rabobank (older layouts) writes several `:86:` for one `:61:`.
                        Some(info) if info.len() + 1 + field.content.len() <= max => {
                            info.push('\n');
                            info.push_str(&field.content);
                        }
                        Some(_) => {
                            p.parsed = Err(ParseError::new(
                                ErrorKind::FieldTooLong,
                                format!("the field is longer than {max} bytes"),
                            )
                            .at(loc)
                            .field("86"));
                        }
                    }
                }
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
            let debit = l.amount < Decimal::ZERO;
            let info = p
                .info
                .as_deref()
                .map(|i| interpret_86(i, debit))
                .unwrap_or_default();
            // Rabobank names the party in `:86:` (`/BENM//NAME/…`) and writes its account
            // alone on the second line of `:61:`.
            let (account_86, supplementary) = match (info.account, l.supplementary) {
                (None, Some(s)) if info.party_tag && is_account_token(&s) => (Some(s), None),
                (a, s) => (a, s),
            };
            Ok(Transaction {
                location: loc.clone(),
                account,
                booking_date: l.entry_date.unwrap_or(l.value_date),
                value_date: Some(l.value_date),
                amount: l.amount,
                currency,
                counterparty_name: info.name,
                counterparty_account: account_86,
                // The customer reference is the owner's own; a placeholder there (already
                // dropped) gives way to the end-to-end reference of `:86:`.
                reference: l.customer_ref.or(info.reference),
                bank_txn_id: l.bank_ref,
                text: info.text.or(supplementary),
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

    #[test]
    fn latin1_lines_are_decoded() {
        assert_eq!(decode_line(b"M\xfcller"), "Müller");
        assert_eq!(decode_line("Müller".as_bytes()), "Müller");
    }
}
