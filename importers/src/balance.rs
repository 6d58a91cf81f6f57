//! Statements that prove themselves: each section's transactions must add up from its stated
//! opening balance to its stated closing balance.
//!
//! A real bank's statement always adds up, so one that does not was misread (by us or by the
//! bank's export) or was edited. [`Checked`] wraps any record stream and, after each
//! section's transactions, yields a [`ErrorKind::Unbalanced`] error (`statement_unbalanced`)
//! naming the section, the stated balances and the sum found, just before the section's
//! [`Record::Statement`]. Sections that state no opening or no closing balance (camt.054
//! notifications, CSV exports without a balance column) cannot be checked and pass through;
//! so do sections in which a row could not be read (that row's own error says why, and a sum
//! missing a row would only add noise).
//!
//! It is explicit at the call site rather than built into [`crate::parse`], so that a caller
//! that wants the raw parse (a parse-only benchmark, a test of the parser) gets it.
//!
//! ```
//! use fundtrail_importers::{balance::Checked, parse_bytes, Format, Options, Record};
//!
//! let file = ":20:S1\n:25:NL01BANK0123456789\n:28C:7/1\n:60F:C261101EUR100,00\n\
//!             :61:2611021102D30,00NTRFNONREF\n:62F:C261102EUR80,00\n-\n";
//! let records = parse_bytes(file.as_bytes(), Format::Mt940, &Options::default());
//! let checked: Vec<_> = Checked::new(records.into_iter()).collect();
//!
//! let err = checked[1].as_ref().unwrap_err();
//! assert_eq!(err.code.as_str(), "statement_unbalanced");
//! assert!(err.message.contains("opening 100.00 + -30.00 = 70.00"), "{}", err.message);
//! assert!(err.message.contains("closing 80.00 stated (a difference of 10.00)"));
//! assert!(matches!(checked[2], Ok(Record::Statement(_))));
//! ```

use rust_decimal::Decimal;

use crate::error::{ErrorKind, ParseError};
use crate::model::{Location, Record, Statement};

/// A record stream with each section's balances checked; see the module documentation.
pub struct Checked<I> {
    inner: I,
    section: Section,
    /// The statement record held back while its error is handed out first.
    held: Option<Record>,
}

/// What has been seen of the section being read.
#[derive(Default)]
struct Section {
    sum: Decimal,
    rows: u64,
    unreadable: bool,
    first: Option<Location>,
    last: Option<Location>,
}

impl<I: Iterator<Item = Result<Record, ParseError>>> Checked<I> {
    /// Wraps `inner`.
    pub fn new(inner: I) -> Checked<I> {
        Checked {
            inner,
            section: Section::default(),
            held: None,
        }
    }
}

impl<I: Iterator<Item = Result<Record, ParseError>>> Iterator for Checked<I> {
    type Item = Result<Record, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(held) = self.held.take() {
            return Some(Ok(held));
        }
        let item = self.inner.next()?;
        match &item {
            Ok(Record::Transaction(t)) => {
                let s = &mut self.section;
                // A sum past Decimal's range is no balance any bank states: treat as unreadable.
                match s.sum.checked_add(t.amount) {
                    Some(sum) => s.sum = sum,
                    None => s.unreadable = true,
                }
                s.rows += 1;
                if s.first.is_none() {
                    s.first = Some(t.location.clone());
                }
                s.last = Some(t.location.clone());
            }
            // Only row-level errors: the balance check's own are never fed back in.
            Err(_) => self.section.unreadable = true,
            Ok(Record::Statement(statement)) => {
                let section = std::mem::take(&mut self.section);
                if let Some(err) = unbalanced(statement, &section) {
                    self.held = item.ok();
                    return Some(Err(err));
                }
            }
        }
        Some(item)
    }
}

/// The error for a section whose transactions do not lead from its opening to its closing.
fn unbalanced(s: &Statement, section: &Section) -> Option<ParseError> {
    let (Some(opening), Some(closing)) = (s.opening_balance, s.closing_balance) else {
        return None;
    };
    if section.unreadable {
        return None;
    }
    let found = opening.checked_add(section.sum)?;
    if found == closing {
        return None;
    }
    let difference = closing.checked_sub(found)?;
    let name = match (&s.statement_id, s.account.is_empty()) {
        (Some(id), false) => format!("statement {id} of account {}", s.account),
        (Some(id), true) => format!("statement {id}"),
        (None, false) => format!("the statement of account {}", s.account),
        (None, true) => "the statement".to_string(),
    };
    let rows = match (&section.first, &section.last) {
        (Some(Location::Line(a)), Some(Location::Line(b))) if a == b => format!("line {a}"),
        (Some(Location::Line(a)), Some(Location::Line(b))) => format!("lines {a}-{b}"),
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "no transactions".to_string(),
    };
    let plural = if section.rows == 1 { "" } else { "s" };
    Some(
        ParseError::new(
            ErrorKind::Unbalanced,
            format!(
                "{name} does not add up: {} transaction{plural} ({rows}) lead from opening \
                 {} + {} = {}, but closing {} stated (a difference of {})",
                section.rows,
                money(opening),
                money(section.sum),
                money(found),
                money(closing),
                money(difference),
            ),
        )
        .at(s.location.clone())
        .field("closing_balance"),
    )
}

/// At least two decimals, as statements print money (`80` → `80.00`).
fn money(d: Decimal) -> String {
    if d.scale() >= 2 {
        d.to_string()
    } else {
        let mut d = d;
        d.rescale(2);
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Transaction;
    use chrono::NaiveDate;

    fn txn(line: u64, amount: &str) -> Result<Record, ParseError> {
        Ok(Record::Transaction(Transaction {
            location: Location::Line(line),
            account: "A".into(),
            booking_date: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            value_date: None,
            amount: amount.parse().unwrap(),
            currency: "CNY".into(),
            counterparty_name: None,
            counterparty_account: None,
            reference: None,
            bank_txn_id: None,
            text: None,
            reversal: false,
            return_reason: None,
        }))
    }

    fn stmt(opening: Option<&str>, closing: Option<&str>) -> Result<Record, ParseError> {
        Ok(Record::Statement(Statement {
            location: Location::Line(1),
            account: "A".into(),
            statement_id: Some("7/1".into()),
            currency: Some("CNY".into()),
            from_date: None,
            to_date: None,
            opening_balance: opening.map(|o| o.parse().unwrap()),
            closing_balance: closing.map(|c| c.parse().unwrap()),
        }))
    }

    fn codes(items: Vec<Result<Record, ParseError>>) -> Vec<String> {
        Checked::new(items.into_iter())
            .map(|r| match r {
                Ok(Record::Transaction(_)) => "t".to_string(),
                Ok(Record::Statement(_)) => "s".to_string(),
                Err(e) => e.code.as_str().to_string(),
            })
            .collect()
    }

    #[test]
    fn a_section_that_adds_up_passes_unchanged() {
        let items = vec![
            txn(2, "-30.00"),
            txn(3, "10.5"),
            stmt(Some("100"), Some("80.50")),
        ];
        assert_eq!(codes(items), ["t", "t", "s"]);
    }

    #[test]
    fn each_section_is_summed_on_its_own() {
        let items = vec![
            txn(2, "-30.00"),
            stmt(Some("100"), Some("70")),
            txn(5, "-1"),
            stmt(Some("70"), Some("70")),
        ];
        assert_eq!(codes(items), ["t", "s", "t", "statement_unbalanced", "s"]);
    }

    #[test]
    fn the_error_names_the_section_its_lines_and_the_figures() {
        let items = vec![
            txn(4, "-30.00"),
            txn(9, "-20.00"),
            stmt(Some("100.00"), Some("60.00")),
        ];
        let err = Checked::new(items.into_iter())
            .find_map(Result::err)
            .expect("unbalanced");
        assert_eq!(err.location, Some(Location::Line(1)));
        assert_eq!(err.field.as_deref(), Some("closing_balance"));
        assert_eq!(
            err.message,
            "statement 7/1 of account A does not add up: 2 transactions (lines 4-9) lead from \
             opening 100.00 + -50.00 = 50.00, but closing 60.00 stated (a difference of 10.00)"
        );
    }

    #[test]
    fn unstated_balances_and_unreadable_rows_are_not_checked() {
        let bad = Err(ParseError::new(ErrorKind::BadAmount, "x"));
        assert_eq!(codes(vec![txn(2, "-1"), stmt(None, Some("5"))]), ["t", "s"]);
        assert_eq!(
            codes(vec![txn(2, "-1"), bad, stmt(Some("0"), Some("5"))]),
            ["t", "bad_amount", "s"]
        );
        // The next section is checked again.
        assert_eq!(
            codes(vec![
                stmt(Some("0"), Some("0")),
                txn(3, "1"),
                stmt(Some("0"), Some("0"))
            ]),
            ["s", "t", "statement_unbalanced", "s"]
        );
    }
}
