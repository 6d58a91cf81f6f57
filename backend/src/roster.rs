//! Payroll rosters: the CSV an office pays from. One row per payment; columns by name, in
//! English or Chinese (`id_number`/身份证号, `recipient` (pseudonym), `amount`/金额,
//! `reference`/附言, `memo`/备注); other columns are ignored.
//!
//! ```
//! use fundtrail::roster::{read_roster, RecipientRef};
//! let csv = "身份证号,姓名,金额,附言\n11010519491231002X,张三,780,DB-0001\n";
//! let rows = read_roster(csv.as_bytes(), 2).unwrap();
//! assert_eq!(rows[0].amount_minor, 78_000);
//! assert_eq!(rows[0].recipient, RecipientRef::IdNumber("11010519491231002X".into()));
//! assert_eq!(rows[0].line, 2);
//! ```

use crate::idcard;
use crate::money::parse_amount_lenient;

/// Most payment rows one roster may hold.
pub const ROSTER_ROWS_MAX: usize = 2_000_000;
/// Longest cell, in bytes.
pub const FIELD_BYTES_MAX: usize = 256;

/// Who a row pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientRef {
    IdNumber(String),
    Pseudonym(String),
}

/// One payment to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub recipient: RecipientRef,
    pub amount_minor: i64,
    pub reference: Option<String>,
    pub memo: String,
}

/// A roster problem, located by line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct RosterError {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

fn column(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        let h = h.trim().trim_start_matches('\u{feff}').to_lowercase();
        names.iter().any(|n| h == *n)
    })
}

/// Reads and checks every row; returns all problems (up to 100), not just the first.
pub fn read_roster(
    input: impl std::io::Read,
    minor_units: u32,
) -> Result<Vec<RosterRow>, Vec<RosterError>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let err = |line: u64, column: Option<&str>, message: String| RosterError {
        line,
        column: column.map(str::to_string),
        message,
    };
    let headers = reader
        .headers()
        .map_err(|e| vec![err(1, None, format!("cannot read the header: {e}"))])?
        .clone();
    let id_col = column(
        &headers,
        &["id_number", "身份证号", "身份证号码", "证件号码"],
    );
    let pseudo_col = column(&headers, &["recipient", "pseudonym"]);
    let amount_col = column(&headers, &["amount", "金额", "发放金额"]);
    let ref_col = column(&headers, &["reference", "附言", "支付参考号"]);
    let memo_col = column(&headers, &["memo", "备注"]);
    let Some(amount_col) = amount_col else {
        return Err(vec![err(
            1,
            None,
            "the header needs an `amount` (金额) column".into(),
        )]);
    };
    if id_col.is_none() && pseudo_col.is_none() {
        return Err(vec![err(
            1,
            None,
            "the header needs an `id_number` (身份证号) or `recipient` column".into(),
        )]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(err(line, None, format!("unreadable row: {e}")));
                break;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows.len() >= ROSTER_ROWS_MAX {
            errors.push(err(
                line,
                None,
                format!("a roster holds at most {ROSTER_ROWS_MAX} rows"),
            ));
            break;
        }
        if let Some(f) = record.iter().find(|f| f.len() > FIELD_BYTES_MAX) {
            errors.push(err(
                line,
                None,
                format!(
                    "a cell is longer than {FIELD_BYTES_MAX} bytes ({}…)",
                    f.chars().take(20).collect::<String>()
                ),
            ));
            continue;
        }
        let cell = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let recipient = match (cell(id_col), cell(pseudo_col)) {
            (Some(id), _) => match idcard::validate(id) {
                Ok(id) => RecipientRef::IdNumber(id),
                Err(e) => {
                    errors.push(err(line, Some("id_number"), e.to_string()));
                    continue;
                }
            },
            (None, Some(p)) => RecipientRef::Pseudonym(p.to_string()),
            (None, None) => {
                errors.push(err(
                    line,
                    Some("id_number"),
                    "no recipient on this row".into(),
                ));
                continue;
            }
        };
        let amount_minor = match cell(Some(amount_col))
            .map(|a| parse_amount_lenient(&a.replace(',', ""), minor_units))
        {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                errors.push(err(line, Some("amount"), e.to_string()));
                continue;
            }
            None => {
                errors.push(err(line, Some("amount"), "amount is empty".into()));
                continue;
            }
        };
        rows.push(RosterRow {
            line,
            recipient,
            amount_minor,
            reference: cell(ref_col).map(str::to_string),
            memo: cell(memo_col).unwrap_or("").to_string(),
        });
        if errors.len() >= 100 {
            break;
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_row_is_named_by_line_and_column() {
        let csv = "id_number,amount\n11010519491231002X,780\n110105194912310021,780\n11010519491231002X,-5\n11010519491231002X,1.005\n";
        let errors = read_roster(csv.as_bytes(), 2).unwrap_err();
        let found: Vec<(u64, Option<&str>)> = errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                (3, Some("id_number")),
                (4, Some("amount")),
                (5, Some("amount"))
            ]
        );
        assert!(errors[0]
            .to_string()
            .starts_with("line 3, column id_number: "));
    }

    #[test]
    fn headers_are_required() {
        let errors = read_roster("name,amount\nx,1\n".as_bytes(), 2).unwrap_err();
        assert_eq!(errors[0].line, 1);
        let errors = read_roster("id_number\n11010519491231002X\n".as_bytes(), 2).unwrap_err();
        assert!(errors[0].message.contains("amount"));
    }

    #[test]
    fn thousands_separators_and_pseudonyms_are_read() {
        let rows = read_roster(
            "recipient,amount,memo\nRabc,\"1,280.50\",x\n\n".as_bytes(),
            2,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![RosterRow {
                line: 2,
                recipient: RecipientRef::Pseudonym("Rabc".into()),
                amount_minor: 128_050,
                reference: None,
                memo: "x".into()
            }]
        );
    }
}
