//! The CSV files an office sends: payroll rosters (one row per payment, [`read_roster`]) and
//! registration files (one row per recipient, [`read_registrations`]).
//!
//! Columns are found by their header, in English or Chinese, ignoring case, a BOM, and spaces,
//! `-` or `_` between words (`Payment Reference` is `payment_reference`):
//!
//! | roster column | header names |
//! | --- | --- |
//! | who is paid | `id_number`, 身份证号, 身份证号码, 证件号码, 身份证; or `recipient`, `pseudonym` |
//! | amount | `amount`, 金额, 发放金额 |
//! | payment reference | `reference`, `payment_reference`, `ref`, `payment_ref`, `end_to_end_id`, 附言, 参考号, 支付参考号, 付款参考号, 业务编号, 业务参考号, 交易参考号 |
//! | memo | `memo`, 备注 |
//!
//! **Ignored by design** (for the people reading the file, never for the ledger): the
//! recipient's name (`name`, 姓名), their bank account and bank (`bank_account`, 银行账号,
//! 银行卡号, 账号, 卡号, `bank_name`, 开户行, 开户银行 — a payment goes to the account in the
//! registry, never to one a roster names) and a row number (序号, `no`). Any other column is
//! *unknown*: it is named in [`Columns::unknown`] so the command can say so, never dropped in
//! silence (a `payment_reference` column once was, and references were generated instead).
//!
//! A reference column, when there is one, must be usable as it stands: a reference on every
//! row or on none, each unique within the file and one the ledger accepts (1-35 of
//! `A-Za-z0-9-_./+`). Otherwise the roster is refused with the line and column of each bad
//! cell, because generating some references and taking others would break matching the bank's
//! rows to payments by reference.
//!
//! ```
//! use fundtrail::roster::{read_roster, RecipientRef};
//! let csv = "身份证号,姓名,金额,附言,村组\n11010519491231002X,张三,780,DB-0001,一组\n";
//! let roster = read_roster(csv.as_bytes(), 2).unwrap();
//! let row = &roster.rows[0];
//! assert_eq!(row.amount_minor, 78_000);
//! assert_eq!(row.recipient, RecipientRef::IdNumber("11010519491231002X".into()));
//! assert_eq!((row.line, row.reference.as_deref()), (2, Some("DB-0001")));
//! assert_eq!(roster.columns.unknown, vec!["村组".to_string()]);
//! assert_eq!(roster.columns.ignored, vec!["姓名".to_string()]);
//! ```

use crate::domain::RecipientStatus;
use crate::idcard;
use crate::ledger::{reference_ok, REFERENCE_CHARS_MAX};
use crate::money::parse_amount_lenient;
use crate::service::recipients::NewRecipientItem;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Most payment rows one roster may hold.
pub const ROSTER_ROWS_MAX: usize = 2_000_000;
/// Longest cell, in bytes.
pub const FIELD_BYTES_MAX: usize = 256;
/// Most problems one read reports (the rest are counted by the caller's re-run).
pub const ERRORS_MAX: usize = 100;

/// A column the reader understands: its key and the header names that mean it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub names: &'static [&'static str],
}

/// The columns of a payroll roster.
pub const ROSTER_FIELDS: &[Field] = &[
    Field {
        key: "id_number",
        names: &["id_number", "身份证号", "身份证号码", "证件号码", "身份证"],
    },
    Field {
        key: "recipient",
        names: &["recipient", "pseudonym"],
    },
    Field {
        key: "amount",
        names: &["amount", "金额", "发放金额"],
    },
    Field {
        key: "reference",
        names: &[
            "reference",
            "payment_reference",
            "ref",
            "payment_ref",
            "end_to_end_id",
            "endtoendid",
            "附言",
            "参考号",
            "支付参考号",
            "付款参考号",
            "业务编号",
            "业务参考号",
            "交易参考号",
        ],
    },
    Field {
        key: "memo",
        names: &["memo", "备注"],
    },
];

/// Roster columns that are known and deliberately not read (see the module comment).
pub const ROSTER_IGNORED: &[&str] = &[
    "name",
    "姓名",
    "bank_account",
    "银行账号",
    "银行卡号",
    "账号",
    "卡号",
    "bank_name",
    "开户行",
    "开户银行",
    "序号",
    "no",
];

/// The columns of a registration file (`fundtrail recipients register`).
pub const REGISTRATION_FIELDS: &[Field] = &[
    Field {
        key: "name",
        names: &["name", "姓名"],
    },
    Field {
        key: "id_number",
        names: &["id_number", "身份证号", "身份证号码", "证件号码", "身份证"],
    },
    Field {
        key: "bank_account",
        names: &["bank_account", "银行账号", "银行卡号", "账号", "卡号"],
    },
    Field {
        key: "bank_name",
        names: &["bank_name", "开户行", "开户银行", "银行名称"],
    },
    Field {
        key: "status",
        names: &["status", "状态"],
    },
    Field {
        key: "status_date",
        names: &["status_date", "状态日期"],
    },
    Field {
        key: "entitlement",
        names: &["entitlement", "核定金额", "待遇金额"],
    },
];

/// Registration columns that are known and deliberately not read: a row number.
pub const REGISTRATION_IGNORED: &[&str] = &["序号", "no"];

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
    /// From the roster's reference column; `None` when it has none (the caller generates one).
    pub reference: Option<String>,
    pub memo: String,
}

/// A roster read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub rows: Vec<RosterRow>,
    pub columns: Columns,
}

/// One recipient to register, with its line.
#[derive(Debug, Clone)]
pub struct RegistrationRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub item: NewRecipientItem,
}

/// A registration file read and checked.
#[derive(Debug, Clone)]
pub struct Registrations {
    pub rows: Vec<RegistrationRow>,
    pub columns: Columns,
}

/// A problem in a file, located by line and column (the header as written in the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
pub struct RosterError {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

fn err(line: u64, column: Option<&str>, message: impl Into<String>) -> RosterError {
    RosterError {
        line,
        column: column.map(str::to_string),
        message: message.into(),
    }
}

/// A header as compared: no BOM, trimmed, lower case, words joined by `_`.
fn normalize(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Which header is which: the known columns found, and those ignored or not understood.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// (key, 0-based index, header as written) of each known column found.
    found: Vec<(&'static str, usize, String)>,
    /// Known columns not read, by design (as written in the file).
    pub ignored: Vec<String>,
    /// Columns not understood (as written; a column without a header as `column N`).
    pub unknown: Vec<String>,
}

impl Columns {
    /// Sorts `headers` into `fields`, `ignored` and unknown. Two columns meaning the same
    /// field are refused: which one would count is a guess.
    pub fn match_headers(
        headers: &csv::StringRecord,
        fields: &[Field],
        ignored: &[&str],
    ) -> Result<Columns, RosterError> {
        let mut out = Columns::default();
        for (i, raw) in headers.iter().enumerate() {
            let written = raw.trim_start_matches('\u{feff}').trim().to_string();
            let h = normalize(raw);
            if let Some(f) = fields
                .iter()
                .find(|f| f.names.iter().any(|n| normalize(n) == h))
            {
                if let Some((_, _, first)) = out.found.iter().find(|(k, _, _)| *k == f.key) {
                    return Err(err(
                        1,
                        Some(&written),
                        format!(
                            "columns `{first}` and `{written}` both give the {}; keep one",
                            f.key.replace('_', " ")
                        ),
                    ));
                }
                out.found.push((f.key, i, written));
            } else if ignored.iter().any(|n| normalize(n) == h) {
                out.ignored.push(written);
            } else if h.is_empty() {
                out.unknown.push(format!("column {}", i + 1));
            } else {
                out.unknown.push(written);
            }
        }
        Ok(out)
    }

    /// The 0-based index of the column for `key`.
    pub fn index(&self, key: &str) -> Option<usize> {
        self.found.iter().find(|(k, _, _)| *k == key).map(|f| f.1)
    }

    /// The header, as written, of the column for `key`.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.found
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|f| f.2.as_str())
    }
}

/// Line breaks seen so far, to number records by line. The csv crate's own positions skip
/// blank lines and count a CRLF file one line short; the bytes themselves do not.
#[derive(Default)]
struct Breaks {
    /// Offsets of the `\r` and `\n` bytes read but not yet passed (`true` for `\n`).
    ahead: VecDeque<(u64, bool)>,
    /// `\n` bytes before the last offset asked about.
    newlines: u64,
}

impl Breaks {
    /// The 1-based line of the record the csv reader places at byte `at`. That offset is the
    /// record's start or the end of the previous record's content: the line breaks (and
    /// blank lines) in between are counted too.
    fn line_at(&mut self, at: u64) -> u64 {
        while let Some(&(offset, newline)) = self.ahead.front() {
            if offset >= at {
                break;
            }
            self.newlines += u64::from(newline);
            self.ahead.pop_front();
        }
        let run = (at..)
            .zip(&self.ahead)
            .take_while(|(next, (offset, _))| offset == next);
        1 + self.newlines + run.filter(|(_, (_, newline))| *newline).count() as u64
    }
}

/// The input, noting where its line breaks are as the csv reader pulls it through.
struct Counted<R> {
    inner: R,
    offset: u64,
    breaks: Rc<RefCell<Breaks>>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' || *b == b'\r' {
                breaks
                    .ahead
                    .push_back((self.offset + i as u64, *b == b'\n'));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

type LineReader<R> = (csv::Reader<Counted<R>>, Rc<RefCell<Breaks>>);

fn line_reader<R: std::io::Read>(input: R) -> LineReader<R> {
    let breaks = Rc::new(RefCell::new(Breaks::default()));
    let counted = Counted {
        inner: input,
        offset: 0,
        breaks: Rc::clone(&breaks),
    };
    let reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(counted);
    (reader, breaks)
}

/// Reads records from `reader`, calling `row` for each non-blank one with its line; stops
/// at an unreadable row, at `rows_max` rows or after [`ERRORS_MAX`] errors.
fn each_record<R: std::io::Read>(
    (reader, breaks): &mut LineReader<R>,
    rows_max: usize,
    errors: &mut Vec<RosterError>,
    mut row: impl FnMut(u64, &csv::StringRecord, &mut Vec<RosterError>),
) {
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| breaks.borrow_mut().line_at(p.byte()))
                    .unwrap_or(0);
                errors.push(err(line, None, format!("unreadable row: {e}")));
                break;
            }
        }
        let line = record
            .position()
            .map(|p| breaks.borrow_mut().line_at(p.byte()))
            .unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rows >= rows_max {
            errors.push(err(
                line,
                None,
                format!("a file holds at most {rows_max} rows"),
            ));
            break;
        }
        rows += 1;
        if let Some(f) = record.iter().find(|f| f.len() > FIELD_BYTES_MAX) {
            errors.push(err(
                line,
                None,
                format!(
                    "a cell is longer than {FIELD_BYTES_MAX} bytes ({}…)",
                    f.chars().take(20).collect::<String>()
                ),
            ));
        } else {
            row(line, &record, errors);
        }
        if errors.len() >= ERRORS_MAX {
            break;
        }
    }
}

fn cell(record: &csv::StringRecord, index: Option<usize>) -> Option<&str> {
    index
        .and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn finish<T>(value: T, mut errors: Vec<RosterError>) -> Result<T, Vec<RosterError>> {
    if errors.is_empty() {
        return Ok(value);
    }
    errors.sort_by_key(|e| e.line);
    errors.truncate(ERRORS_MAX);
    Err(errors)
}

/// Reads and checks every row; returns all problems (up to [`ERRORS_MAX`]), not just the first.
pub fn read_roster(
    input: impl std::io::Read,
    minor_units: u32,
) -> Result<Roster, Vec<RosterError>> {
    let mut reader = line_reader(input);
    let headers = reader
        .0
        .headers()
        .map_err(|e| vec![err(1, None, format!("cannot read the header: {e}"))])?
        .clone();
    let columns =
        Columns::match_headers(&headers, ROSTER_FIELDS, ROSTER_IGNORED).map_err(|e| vec![e])?;
    let (id_col, pseudo_col) = (columns.index("id_number"), columns.index("recipient"));
    let (ref_col, memo_col) = (columns.index("reference"), columns.index("memo"));
    let Some(amount_col) = columns.index("amount") else {
        return Err(vec![err(
            1,
            None,
            "the header needs an `amount` (金额) column",
        )]);
    };
    if id_col.is_none() && pseudo_col.is_none() {
        return Err(vec![err(
            1,
            None,
            "the header needs an `id_number` (身份证号) or `recipient` column",
        )]);
    }
    let header = |key: &str| columns.header(key).map(str::to_string);
    let (id_h, pseudo_h) = (header("id_number"), header("recipient"));
    let (amount_h, ref_h) = (header("amount"), header("reference"));
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    // Reference column checks that need the whole file: first line of each reference, and
    // the rows without one.
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut blank_lines = Vec::new();
    each_record(
        &mut reader,
        ROSTER_ROWS_MAX,
        &mut errors,
        |line, record, errors| {
            let recipient = match (cell(record, id_col), cell(record, pseudo_col)) {
                (Some(id), _) => match idcard::validate(id) {
                    Ok(id) => RecipientRef::IdNumber(id),
                    Err(e) => {
                        errors.push(err(line, id_h.as_deref(), e.to_string()));
                        return;
                    }
                },
                (None, Some(p)) => RecipientRef::Pseudonym(p.to_string()),
                (None, None) => {
                    let column = id_h.as_deref().or(pseudo_h.as_deref());
                    errors.push(err(line, column, "no recipient on this row"));
                    return;
                }
            };
            let amount_minor = match cell(record, Some(amount_col))
                .map(|a| parse_amount_lenient(&a.replace(',', ""), minor_units))
            {
                Some(Ok(a)) => a,
                Some(Err(e)) => {
                    errors.push(err(line, amount_h.as_deref(), e.to_string()));
                    return;
                }
                None => {
                    errors.push(err(line, amount_h.as_deref(), "amount is empty"));
                    return;
                }
            };
            let reference = cell(record, ref_col).map(str::to_string);
            match &reference {
                None if ref_col.is_some() => blank_lines.push(line),
                None => {}
                Some(r) if !reference_ok(r) => {
                    errors.push(err(
                    line,
                    ref_h.as_deref(),
                    format!(
                        "reference `{r}` cannot be used: a reference is 1-{REFERENCE_CHARS_MAX} characters of A-Za-z0-9-_./+ (found {})",
                        r.chars().count()
                    ),
                ));
                    return;
                }
                Some(r) => {
                    if let Some(first) = seen.get(r) {
                        errors.push(err(
                        line,
                        ref_h.as_deref(),
                        format!("reference `{r}` is also on line {first}: each payment needs its own"),
                    ));
                        return;
                    }
                    seen.insert(r.clone(), line);
                }
            }
            rows.push(RosterRow {
                line,
                recipient,
                amount_minor,
                reference,
                memo: cell(record, memo_col).unwrap_or("").to_string(),
            });
        },
    );
    // Some rows with a reference and some without: generating the missing ones would mix two
    // kinds of reference in one payroll. A column blank on every row is as if absent.
    if !seen.is_empty() {
        for line in blank_lines {
            errors.push(err(
                line,
                ref_h.as_deref(),
                format!(
                    "no reference on this row, though {} row(s) of this file have one: give every row its reference, or leave the column empty",
                    seen.len()
                ),
            ));
        }
    }
    finish(Roster { rows, columns }, errors)
}

/// Reads and checks a registration file: `name`, `id_number`, `bank_account`, and optionally
/// `bank_name`, `status` (active, suspended, deceased), `status_date` and `entitlement`. The
/// server checks the rest (account shape, duplicates); its answers name items, which the
/// caller maps back to lines with [`RegistrationRow::line`].
pub fn read_registrations(input: impl std::io::Read) -> Result<Registrations, Vec<RosterError>> {
    let mut reader = line_reader(input);
    let headers = reader
        .0
        .headers()
        .map_err(|e| vec![err(1, None, format!("cannot read the header: {e}"))])?
        .clone();
    let columns = Columns::match_headers(&headers, REGISTRATION_FIELDS, REGISTRATION_IGNORED)
        .map_err(|e| vec![e])?;
    let (Some(name), Some(id), Some(account)) = (
        columns.index("name"),
        columns.index("id_number"),
        columns.index("bank_account"),
    ) else {
        return Err(vec![err(
            1,
            None,
            "the header needs name (姓名), id_number (身份证号) and bank_account (银行账号)",
        )]);
    };
    let index = |k: &str| columns.index(k);
    let (bank, status, date, entitlement) = (
        index("bank_name"),
        index("status"),
        index("status_date"),
        index("entitlement"),
    );
    let status_h = columns.header("status").map(str::to_string);
    let id_h = columns.header("id_number").map(str::to_string);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    each_record(
        &mut reader,
        ROSTER_ROWS_MAX,
        &mut errors,
        |line, record, errors| {
            let get = |i: Option<usize>| cell(record, i).map(str::to_string);
            let status = match get(status) {
                None => None,
                Some(s) => match RecipientStatus::parse(&s.to_lowercase()) {
                    Some(s) => Some(s),
                    None => {
                        errors.push(err(
                            line,
                            status_h.as_deref(),
                            format!("status `{s}` is not one of active, suspended, deceased"),
                        ));
                        return;
                    }
                },
            };
            let Some(id_number) = get(Some(id)) else {
                errors.push(err(line, id_h.as_deref(), "no ID number on this row"));
                return;
            };
            rows.push(RegistrationRow {
                line,
                item: NewRecipientItem {
                    name: get(Some(name)).unwrap_or_default(),
                    id_number,
                    bank_account: get(Some(account)).unwrap_or_default(),
                    bank_name: get(bank),
                    status,
                    status_date: get(date),
                    entitlement: get(entitlement),
                },
            });
        },
    );
    finish(Registrations { rows, columns }, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(errors: &[RosterError]) -> Vec<(u64, Option<&str>)> {
        errors
            .iter()
            .map(|e| (e.line, e.column.as_deref()))
            .collect()
    }

    #[test]
    fn every_bad_row_is_named_by_line_and_column() {
        let csv = "id_number,amount\n11010519491231002X,780\n110105194912310021,780\n11010519491231002X,-5\n11010519491231002X,1.005\n";
        let errors = read_roster(csv.as_bytes(), 2).unwrap_err();
        assert_eq!(
            located(&errors),
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
        let roster = read_roster(
            "recipient,amount,memo\nRabc,\"1,280.50\",x\n\n".as_bytes(),
            2,
        )
        .unwrap();
        assert_eq!(
            roster.rows,
            vec![RosterRow {
                line: 2,
                recipient: RecipientRef::Pseudonym("Rabc".into()),
                amount_minor: 128_050,
                reference: None,
                memo: "x".into()
            }]
        );
        assert!(roster.columns.unknown.is_empty());
    }

    #[test]
    fn unknown_columns_are_named_and_known_unused_ones_are_not() {
        let csv = "序号,Payment Reference,ID-Number,姓名,金额,村组,,phone\n1,R-1,11010519491231002X,张三,780,一组,,138\n";
        let roster = read_roster(csv.as_bytes(), 2).unwrap();
        assert_eq!(roster.columns.unknown, vec!["村组", "column 7", "phone"]);
        assert_eq!(roster.columns.ignored, vec!["序号", "姓名"]);
        assert_eq!(
            roster.columns.header("reference"),
            Some("Payment Reference")
        );
        assert_eq!(roster.rows[0].reference.as_deref(), Some("R-1"));
    }

    #[test]
    fn every_usual_name_of_a_reference_column_is_read() {
        for name in [
            "reference",
            "payment_reference",
            "ref",
            "附言",
            "参考号",
            "支付参考号",
            "业务编号",
            "交易参考号",
        ] {
            let csv = format!("id_number,amount,{name}\n11010519491231002X,780,X-1\n");
            let roster = read_roster(csv.as_bytes(), 2).unwrap();
            assert_eq!(roster.rows[0].reference.as_deref(), Some("X-1"), "{name}");
            assert!(roster.columns.unknown.is_empty(), "{name}");
        }
    }

    #[test]
    fn an_unusable_reference_column_is_refused_cell_by_cell() {
        let long = "R".repeat(REFERENCE_CHARS_MAX + 1);
        let csv = format!(
            "id_number,amount,payment_reference\n\
             11010519491231002X,1,A-1\n\
             11010519491231002X,1,A-1\n\
             11010519491231002X,1,\n\
             11010519491231002X,1,{long}\n\
             11010519491231002X,1,付款 1\n"
        );
        let errors = read_roster(csv.as_bytes(), 2).unwrap_err();
        let col = Some("payment_reference");
        assert_eq!(
            located(&errors),
            vec![(3, col), (4, col), (5, col), (6, col)]
        );
        assert!(errors[0].message.contains("also on line 2"), "{errors:?}");
        assert!(errors[1].message.contains("no reference on this row"));
        assert!(errors[2].message.contains("1-35 characters"));
        // Exactly 35 is fine; a column blank everywhere is as if absent.
        let ok = format!(
            "id_number,amount,ref\n11010519491231002X,1,{}\n",
            "R".repeat(35)
        );
        assert!(read_roster(ok.as_bytes(), 2).is_ok());
        let blank = "id_number,amount,ref\n11010519491231002X,1,\n11010519491231002X,2,\n";
        let roster = read_roster(blank.as_bytes(), 2).unwrap();
        assert!(roster.rows.iter().all(|r| r.reference.is_none()));
    }

    #[test]
    fn two_columns_for_one_field_are_refused() {
        let csv = "id_number,amount,reference,附言\n11010519491231002X,1,A,B\n";
        let errors = read_roster(csv.as_bytes(), 2).unwrap_err();
        assert_eq!(located(&errors), vec![(1, Some("附言"))]);
        assert!(errors[0].message.contains("`reference` and `附言`"));
    }

    #[test]
    fn lines_count_blank_lines_crlf_and_quoted_line_breaks() {
        let csv =
            "\u{feff}recipient,amount,memo\r\n\r\nR1,1,\"two\r\nlines\"\r\n,,\r\nR2,2,\r\n\nR3,x,";
        let errors = read_roster(csv.as_bytes(), 2).unwrap_err();
        assert_eq!(located(&errors), vec![(8, Some("amount"))]);
        let ok = read_roster(csv.replace("R3,x", "R3,3").as_bytes(), 2).unwrap();
        let lines: Vec<u64> = ok.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 6, 8]);
        // The same through a reader that hands over one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let fixed = csv.replace("R3,x", "R3,3");
        let slow = read_roster(Trickle(fixed.as_bytes()), 2).unwrap();
        assert_eq!(slow.rows, ok.rows);
    }

    #[test]
    fn registrations_keep_their_lines_and_check_the_status() {
        let csv = "姓名,身份证号,银行账号,状态,状态日期,备注\n张三,11010519491231002X,6228480000001,active,,\n\n\"李\n四\",110105194912310021,6228480000002,dead,2026-01-01,\n";
        let errors = read_registrations(csv.as_bytes()).unwrap_err();
        assert_eq!(located(&errors), vec![(4, Some("状态"))]);
        let csv = "name,id_number,bank_account,extra\nA,11010519491231002X,1,x\n\nB,110105194912310021,2,y\n";
        let read = read_registrations(csv.as_bytes()).unwrap();
        let lines: Vec<u64> = read.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4]);
        assert_eq!(read.columns.unknown, vec!["extra"]);
    }
}
