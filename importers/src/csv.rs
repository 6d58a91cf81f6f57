//! CSV exports: a generic English profile and the exports of Chinese banks (ICBC, ABC, CMB
//! and look-alikes).
//!
//! The file is decoded to UTF-8 while streaming (GB18030 when the first 64 KiB are not valid
//! UTF-8, see [`crate::Encoding`]) and read line by line, so that every row knows its exact
//! line (a quoted cell may span lines: a row ends when its quotes are balanced). The header
//! row is found by its names after skipping preamble lines (ICBC puts the card number and account
//! type above the header; a `卡号:` / `账号:` preamble cell becomes the account). All profiles
//! share one table of header names, so a Chinese export from another bank with the usual
//! headers works too; the profile decides the default currency (CNY for Chinese banks).
//!
//! Rows that are blank, or whose first cell is a total (`人民币合计`, `合计`, `总计`), are
//! skipped. A bad row yields one error naming its line and field, and parsing continues.
//! Cells are trimmed of spaces and tabs (ICBC pads every cell), and `-` / `--` mean "empty".

use std::io::{BufReader, Chain, Cursor, Read};

use chrono::NaiveDate;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use rust_decimal::Decimal;

use crate::error::{from_io, quote, ErrorKind, ParseError};
use crate::io::{looks_utf8, read_head, read_line_bounded, ymd, Limited};
use crate::model::{CsvProfile, Encoding, Location, Options, Record, Statement, Transaction};

/// How many bytes are inspected to choose between UTF-8 and GB18030.
const SNIFF_BYTES: usize = 64 * 1024;
/// How many rows may precede the header.
const PREAMBLE_ROWS_MAX: u32 = 100;

type Decoded<R> = DecodeReaderBytes<Chain<Cursor<Vec<u8>>, Limited<R>>, Vec<u8>>;

/// Parses a CSV export; see the module documentation.
pub(crate) fn parse<'a, R: Read + 'a>(
    input: R,
    profile: CsvProfile,
    options: &Options,
) -> Box<dyn Iterator<Item = Result<Record, ParseError>> + 'a> {
    Box::new(CsvIter::new(input, profile, options))
}

/// Decides the encoding from the first bytes of a file.
pub(crate) fn sniff_encoding(head: &[u8], complete: bool) -> &'static encoding_rs::Encoding {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if looks_utf8(body, complete) {
        encoding_rs::UTF_8
    } else {
        encoding_rs::GB18030
    }
}

// ---------------------------------------------------------------------------------------
// Header recognition
// ---------------------------------------------------------------------------------------

/// Header names per field, normalised by [`norm_header`]; earlier names win.
const DATE: &[&str] = &[
    "交易日期",
    "记账日期",
    "入账日期",
    "日期",
    "date",
    "bookingdate",
    "transactiondate",
    // ABC's 交易时间 is only a time of day, so it is last: it is used when there is no date
    // column at all (some exports put a date-time there).
    "交易时间",
];
const VALUE_DATE: &[&str] = &["起息日", "起息日期", "valuedate"];
const SIGNED_AMOUNT: &[&str] = &["交易金额", "金额", "发生额", "amount"];
/// (income, expense) column pairs; ICBC's booked amounts (记账金额, account currency) come
/// before its transaction amounts (交易金额, transaction currency).
const SPLIT_AMOUNT: &[(&str, &str)] = &[
    ("记账金额(收入)", "记账金额(支出)"),
    ("交易金额(收入)", "交易金额(支出)"),
    ("收入金额", "支出金额"),
    ("收入", "支出"),
    ("贷方发生额", "借方发生额"),
    ("贷方金额", "借方金额"),
    ("存入金额", "支取金额"),
    ("credit", "debit"),
];
/// A debit/credit marker beside an unsigned amount (借/贷, 支/收, D/C).
const DIRECTION: &[&str] = &[
    "借贷标志",
    "借贷方向",
    "借贷",
    "收支标志",
    "收/支",
    "收支",
    "交易方向",
    "debitcredit",
    "direction",
];
const CURRENCY: &[&str] = &["记账币种", "币种", "货币", "交易币种", "currency"];
const CP_NAME: &[&str] = &[
    "对方户名",
    "对方账户名",
    "对方账户名称",
    "对方名称",
    "对方单位",
    "counterpartyname",
    "counterparty",
];
const CP_ACCOUNT: &[&str] = &[
    "对方账号",
    "对方卡号/账号",
    "对方账户",
    "对方卡号",
    "对方帐号",
    "counterpartyaccount",
];
/// A cell holding name and account together, e.g. `张三 66666666666666`.
const CP_COMBINED: &[&str] = &["对手信息"];
const REFERENCE: &[&str] = &["附言", "交易附言", "客户摘要", "用途", "reference"];
const TEXT: &[&str] = &[
    "摘要",
    "交易摘要",
    "备注",
    "交易说明",
    "text",
    "description",
];
const BANK_TXN_ID: &[&str] = &[
    "交易流水号",
    "流水号",
    "日志号",
    "交易序号",
    "banktxnid",
    "transactionid",
];
const ACCOUNT: &[&str] = &["本方账号", "账号", "卡号", "account"];
/// Preamble keys (`卡号: 1234****9876`) that name the statement's account.
const PREAMBLE_ACCOUNT: &[&str] = &["卡号", "账号", "帐号", "账户", "银行账号", "account"];

/// Normalises a header cell: no whitespace, `_` or `-`; ASCII lower case; ASCII parentheses.
fn norm_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-' && *c != '\u{feff}')
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Where an amount comes from.
#[derive(Debug, Clone)]
enum AmountSource {
    Signed(usize),
    Split {
        income: Option<usize>,
        expense: Option<usize>,
    },
}

/// Column indexes of a recognised header.
#[derive(Debug, Clone)]
struct Header {
    names: Vec<String>,
    date: usize,
    value_date: Option<usize>,
    amounts: Vec<AmountSource>,
    direction: Option<usize>,
    currency: Vec<usize>,
    cp_name: Option<usize>,
    cp_account: Option<usize>,
    cp_combined: Option<usize>,
    reference: Option<usize>,
    text: Option<usize>,
    bank_txn_id: Option<usize>,
    account: Option<usize>,
}

fn find(names: &[String], aliases: &[&str]) -> Option<usize> {
    aliases
        .iter()
        .find_map(|a| names.iter().position(|n| n == a))
}

fn find_all(names: &[String], aliases: &[&str]) -> Vec<usize> {
    aliases
        .iter()
        .filter_map(|a| names.iter().position(|n| n == a))
        .collect()
}

impl Header {
    /// Recognises a header row: it needs a date column and an amount column (or pair).
    fn recognise(cells: &[String]) -> Option<Header> {
        let names: Vec<String> = cells.iter().map(|c| norm_header(c)).collect();
        let date = find(&names, DATE)?;
        let mut amounts = Vec::new();
        if let Some(i) = find(&names, SIGNED_AMOUNT) {
            amounts.push(AmountSource::Signed(i));
        }
        for (inc, exp) in SPLIT_AMOUNT {
            let income = names.iter().position(|n| n == inc);
            let expense = names.iter().position(|n| n == exp);
            if income.is_some() || expense.is_some() {
                amounts.push(AmountSource::Split { income, expense });
            }
        }
        if amounts.is_empty() {
            return None;
        }
        Some(Header {
            date,
            value_date: find(&names, VALUE_DATE),
            amounts,
            direction: find(&names, DIRECTION),
            currency: find_all(&names, CURRENCY),
            cp_name: find(&names, CP_NAME),
            cp_account: find(&names, CP_ACCOUNT),
            cp_combined: find(&names, CP_COMBINED),
            reference: find(&names, REFERENCE),
            text: find(&names, TEXT),
            bank_txn_id: find(&names, BANK_TXN_ID),
            account: find(&names, ACCOUNT),
            names,
        })
    }

    /// The bank profile a recognised header belongs to.
    fn profile(&self) -> CsvProfile {
        let has = |n: &str| self.names.iter().any(|x| x == n);
        let icbc = has("钞/汇") || has("记账金额(收入)") || has("交易金额(收入)");
        let abc = has("对手信息") && (has("日志号") || has("交易附言") || has("本次余额"));
        let cmb = has("联机余额") || has("客户摘要");
        let chinese = self.names.iter().any(|n| !n.is_ascii());
        match (icbc, abc, cmb) {
            (true, false, false) => CsvProfile::Icbc,
            (false, true, false) => CsvProfile::Abc,
            (false, false, true) => CsvProfile::Cmb,
            _ if chinese => CsvProfile::Chinese,
            _ => CsvProfile::Generic,
        }
    }

    /// The normalised field a column feeds, or its header for columns that are not read.
    fn field_name(&self, index: usize) -> String {
        let candidates: [(Option<usize>, &'static str); 11] = [
            (self.direction, "direction"),
            (Some(self.date), "booking_date"),
            (self.value_date, "value_date"),
            (self.cp_name, "counterparty_name"),
            (self.cp_account, "counterparty_account"),
            (self.cp_combined, "counterparty"),
            (self.reference, "reference"),
            (self.text, "text"),
            (self.bank_txn_id, "bank_txn_id"),
            (self.account, "account"),
            (self.currency.first().copied(), "currency"),
        ];
        for (i, name) in candidates {
            if i == Some(index) {
                return name.to_string();
            }
        }
        let is_amount = self.amounts.iter().any(|a| match a {
            AmountSource::Signed(i) => *i == index,
            AmountSource::Split { income, expense } => {
                *income == Some(index) || *expense == Some(index)
            }
        });
        if is_amount {
            "amount".to_string()
        } else {
            self.names.get(index).cloned().unwrap_or_default()
        }
    }
}

/// Recognises the profile of a header line from the first bytes of a file (for `detect`).
pub(crate) fn detect_profile(head: &[u8], complete: bool) -> Option<CsvProfile> {
    let enc = sniff_encoding(head, complete);
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let (text, _) = enc.decode_without_bom_handling(body);
    let mut cells = Vec::new();
    let mut rows = 0;
    let mut record = String::new();
    for line in text.lines() {
        if !record.is_empty() {
            record.push('\n');
        }
        record.push_str(line);
        if !quotes_balanced(&record) {
            continue;
        }
        split_record(&record, &mut cells);
        record.clear();
        if let Some(h) = Header::recognise(&cells) {
            return Some(h.profile());
        }
        rows += 1;
        if rows >= PREAMBLE_ROWS_MAX {
            break;
        }
    }
    None
}

/// True when a (possibly multi-line) row has no open quote. Escaped quotes are doubled, so
/// an even count means every quoted cell is closed.
fn quotes_balanced(record: &str) -> bool {
    record.bytes().filter(|&b| b == b'"').count() % 2 == 0
}

/// Splits one row into cells (RFC 4180: `,` separates, `"` quotes, `""` is a quote inside
/// quotes; a quote inside an unquoted cell is kept as is).
fn split_record(record: &str, cells: &mut Vec<String>) {
    cells.clear();
    let mut cell = String::new();
    let mut chars = record.chars().peekable();
    let mut in_quotes = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cell.push(c);
            }
        } else if c == ',' {
            cells.push(std::mem::take(&mut cell));
            at_start = true;
            continue;
        } else if c == '"' && at_start {
            in_quotes = true;
        } else {
            cell.push(c);
        }
        at_start = false;
    }
    cells.push(cell);
}

// ---------------------------------------------------------------------------------------
// Cell readers
// ---------------------------------------------------------------------------------------

/// Trims padding and maps the "no value" markers to `None`.
fn clean(s: &str) -> Option<&str> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    match t {
        "" | "-" | "--" | "—" | "/" => None,
        _ => Some(t),
    }
}

/// Reads a date cell: `2023-05-02`, `2023/05/02`, `2023.05.02`, `20230502`,
/// `2023年05月02日`, optionally followed by a time (`2023-05-02 10:11:12`, `...T10:11`).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    let date_part = match t.find(|c: char| c.is_whitespace()) {
        Some(i) => &t[..i],
        None => t,
    };
    let date_part = match date_part.find('T') {
        Some(i) if i >= 8 => &date_part[..i],
        _ => date_part,
    };
    if !date_part
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | '年' | '月' | '日'))
    {
        return None;
    }
    let groups: Vec<&str> = date_part
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    match groups.as_slice() {
        [g] if g.len() == 8 => ymd(
            g[..4].parse().ok()?,
            g[4..6].parse().ok()?,
            g[6..].parse().ok()?,
        ),
        [y, m, d] if y.len() == 4 && m.len() <= 2 && d.len() <= 2 => {
            ymd(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
        }
        _ => None,
    }
}

/// Reads an amount cell: thousands separators, `+`/`-`, `(1.00)` and `¥` are understood.
/// `Ok(None)` means the cell is empty.
pub(crate) fn parse_amount(s: &str) -> Result<Option<Decimal>, ()> {
    let Some(t) = clean(s) else { return Ok(None) };
    let mut body: String = t
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, ',' | '¥' | '￥'))
        .collect();
    let mut negative = false;
    if body.starts_with('(') && body.ends_with(')') && body.len() > 2 {
        negative = true;
        body = body[1..body.len() - 1].to_string();
    }
    let digits = if let Some(rest) = body.strip_prefix('-') {
        negative = !negative;
        rest
    } else {
        body.strip_prefix('+').unwrap_or(&body)
    };
    let mut dots = 0;
    for c in digits.chars() {
        match c {
            '0'..='9' => {}
            '.' => dots += 1,
            _ => return Err(()),
        }
    }
    if dots > 1 || !digits.chars().any(|c| c.is_ascii_digit()) {
        return Err(());
    }
    let value: Decimal = digits.parse().map_err(|_| ())?;
    Ok(Some(if negative { -value } else { value }))
}

/// Reads a debit/credit marker: `Some(true)` for money leaving the account.
fn parse_direction(s: &str) -> Option<bool> {
    let lower = s.to_ascii_lowercase();
    if s.starts_with(['借', '支', '出']) || matches!(lower.as_str(), "d" | "dr" | "debit") {
        Some(true)
    } else if s.starts_with(['贷', '收', '入']) || matches!(lower.as_str(), "c" | "cr" | "credit")
    {
        Some(false)
    } else {
        None
    }
}

/// Maps currency cells to ISO codes.
fn parse_currency(s: &str) -> Option<String> {
    let code = match s {
        "人民币" | "人民币元" | "RMB" | "rmb" => "CNY",
        "美元" => "USD",
        "港币" | "港元" => "HKD",
        "欧元" => "EUR",
        "日元" => "JPY",
        "英镑" => "GBP",
        "澳元" => "AUD",
        "加元" => "CAD",
        other if other.len() == 3 && other.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Some(other.to_ascii_uppercase())
        }
        _ => return None,
    };
    Some(code.to_string())
}

/// Splits `北京住房公积金管理中心1111111111` / `张三 66666666666666` / `12341234123412341`
/// into name and account: a trailing run of at least 6 digits (or `*`) is the account.
fn split_counterparty(s: &str) -> (Option<String>, Option<String>) {
    let tail_len: usize = s
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == '*')
        .count();
    let tail_start = s.len() - tail_len; // the tail is ASCII, so chars = bytes
    let tail = &s[tail_start..];
    if tail_len >= 6 && tail.chars().any(|c| c.is_ascii_digit()) {
        let name = s[..tail_start].trim();
        let name = (!name.is_empty()).then(|| name.to_string());
        (name, Some(tail.to_string()))
    } else {
        (Some(s.to_string()), None)
    }
}

/// A preamble cell `卡号: 1234****9876` gives the account.
fn preamble_account(rec: &[String]) -> Option<String> {
    rec.iter().find_map(|cell| {
        let (key, value) = cell.split_once([':', '：'])?;
        let key = norm_header(key);
        if PREAMBLE_ACCOUNT.contains(&key.as_str()) {
            clean(value).map(str::to_string)
        } else {
            None
        }
    })
}

fn is_total_row(cells: &[Option<&str>]) -> bool {
    cells.iter().flatten().next().is_some_and(|first| {
        first.contains("合计") || first.contains("总计") || first.eq_ignore_ascii_case("total")
    })
}

// ---------------------------------------------------------------------------------------
// The row iterator
// ---------------------------------------------------------------------------------------

struct CsvIter<R: Read> {
    reader: Option<BufReader<Decoded<R>>>,
    line_no: u64,
    line: Vec<u8>,
    text: String,
    profile: CsvProfile,
    options: Options,
    fatal: Option<ParseError>,
    header: Option<Header>,
    header_line: u64,
    preamble_rows: u32,
    preamble_account: Option<String>,
    rows: u64,
    record: Vec<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// `None` = no row yet; `Some(None)` = rows disagree.
    currency: Option<Option<String>>,
    /// The rows' own account column, the same way: a file with an account column but no
    /// preamble is a statement of the account its rows name.
    row_account: Option<Option<String>>,
    done: bool,
}

impl<R: Read> CsvIter<R> {
    fn new(input: R, profile: CsvProfile, options: &Options) -> Self {
        let limits = options.limits;
        // Lines are bounded by `read_line_bounded`; this only bounds the total.
        let mut limited = Limited::new(input, limits.file_bytes_max, usize::MAX, b"\n");
        let mut iter = CsvIter {
            reader: None,
            profile,
            options: options.clone(),
            fatal: None,
            header: None,
            header_line: 0,
            preamble_rows: 0,
            preamble_account: None,
            rows: 0,
            record: Vec::new(),
            line_no: 0,
            line: Vec::new(),
            text: String::new(),
            from: None,
            row_account: None,
            to: None,
            currency: None,
            done: false,
        };
        let head = match read_head(&mut limited, SNIFF_BYTES) {
            Ok(h) => h,
            Err(e) => {
                iter.fatal = Some(from_io(&e));
                return iter;
            }
        };
        let encoding = match options.encoding {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Gb18030 => encoding_rs::GB18030,
            Encoding::Auto => sniff_encoding(&head, head.len() < SNIFF_BYTES),
        };
        let decoded = DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .strip_bom(true)
            .build(Cursor::new(head).chain(limited));
        iter.reader = Some(BufReader::new(decoded));
        iter
    }

    /// Reads the next row into `self.record` and returns its first line (`None` at the end).
    /// Errors come with whether they end the stream.
    fn read_row(&mut self) -> Result<Option<u64>, (ParseError, bool)> {
        let max = self.options.limits.field_bytes_max;
        let line_max = max.saturating_mul(64).max(64 * 1024);
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        self.text.clear();
        let mut start = None;
        loop {
            let read = read_line_bounded(reader, &mut self.line, line_max).map_err(|e| {
                let here = Location::Line(self.line_no + 1);
                (from_io(&e).at_opt(Some(here)), true)
            })?;
            let Some(truncated) = read else {
                return match start {
                    None => Ok(None),
                    Some(l) => Err((
                        ParseError::new(
                            ErrorKind::MalformedCsv,
                            "a quoted cell is still open at the end of the file",
                        )
                        .at(Location::Line(l)),
                        true,
                    )),
                };
            };
            self.line_no += 1;
            let first = *start.get_or_insert(self.line_no);
            if truncated || self.text.len() + self.line.len() > line_max {
                return Err((
                    ParseError::new(
                        ErrorKind::TooLarge,
                        format!("the row is longer than {line_max} bytes"),
                    )
                    .at(Location::Line(first)),
                    false,
                ));
            }
            if first != self.line_no {
                self.text.push('\n');
            }
            // The decoder only produces UTF-8; lossy conversion cannot lose anything here.
            self.text.push_str(&String::from_utf8_lossy(&self.line));
            if quotes_balanced(&self.text) {
                split_record(&self.text, &mut self.record);
                return Ok(Some(first));
            }
        }
    }

    fn fail(&mut self, e: ParseError) -> Option<Result<Record, ParseError>> {
        self.done = true;
        Some(Err(e))
    }

    fn finish(&mut self) -> Option<Result<Record, ParseError>> {
        self.done = true;
        if self.header.is_none() {
            return Some(Err(ParseError::new(
                ErrorKind::BadHeader,
                "no header row with a date and an amount column was found",
            )));
        }
        Some(Ok(Record::Statement(Statement {
            location: Location::Line(self.header_line),
            account: self
                .default_account()
                .or_else(|| self.row_account.clone().flatten())
                .unwrap_or_default(),
            statement_id: None,
            currency: self.currency.clone().flatten(),
            from_date: self.from,
            to_date: self.to,
            opening_balance: None,
            closing_balance: None,
        })))
    }

    fn default_account(&self) -> Option<String> {
        self.preamble_account
            .clone()
            .or_else(|| self.options.account.clone())
    }

    fn row(&self, header: &Header, line: u64) -> Option<Result<Transaction, ParseError>> {
        let loc = Location::Line(line);
        let cells: Vec<Option<&str>> = self.record.iter().map(|c| clean(c)).collect();
        if cells.iter().all(Option::is_none) || is_total_row(&cells) {
            return None;
        }
        let max = self.options.limits.field_bytes_max;
        for (i, c) in cells.iter().enumerate() {
            if c.is_some_and(|c| c.len() > max) {
                return Some(Err(ParseError::new(
                    ErrorKind::FieldTooLong,
                    format!("the cell is longer than {max} bytes"),
                )
                .at(loc)
                .field(header.field_name(i))));
            }
        }
        let get = |i: Option<usize>| i.and_then(|i| cells.get(i).copied().flatten());
        let err = |code, field: &str, msg: String| {
            Some(Err(ParseError::new(code, msg).at(loc.clone()).field(field)))
        };

        let Some(date_cell) = get(Some(header.date)) else {
            return err(
                ErrorKind::MissingField,
                "booking_date",
                "the date is empty".into(),
            );
        };
        let Some(booking_date) = parse_date(date_cell) else {
            return err(
                ErrorKind::BadDate,
                "booking_date",
                format!("{} is not a date", quote(date_cell)),
            );
        };
        let value_date = match get(header.value_date) {
            None => None,
            Some(v) => match parse_date(v) {
                Some(d) => Some(d),
                None => {
                    return err(
                        ErrorKind::BadDate,
                        "value_date",
                        format!("{} is not a date", quote(v)),
                    )
                }
            },
        };

        let mut amount = None;
        for source in &header.amounts {
            let read = |i: Option<usize>| -> Result<Option<Decimal>, String> {
                match get(i) {
                    None => Ok(None),
                    Some(v) => {
                        parse_amount(v).map_err(|()| format!("{} is not an amount", quote(v)))
                    }
                }
            };
            let value = match source {
                AmountSource::Signed(i) => read(Some(*i)),
                AmountSource::Split { income, expense } => match (read(*income), read(*expense)) {
                    (Err(m), _) | (_, Err(m)) => Err(m),
                    (Ok(Some(a)), Ok(Some(b))) if !a.is_zero() && !b.is_zero() => {
                        Err(format!("both income {a} and expense {b} are filled in"))
                    }
                    (Ok(Some(a)), Ok(Some(b))) if a.is_zero() => Ok(Some(-b)),
                    (Ok(Some(a)), _) => Ok(Some(a)),
                    (Ok(None), Ok(b)) => Ok(b.map(|b| -b)),
                },
            };
            match value {
                Err(m) => return err(ErrorKind::BadAmount, "amount", m),
                Ok(Some(v)) => {
                    amount = Some(v);
                    break;
                }
                Ok(None) => {}
            }
        }
        let Some(mut amount) = amount else {
            return err(
                ErrorKind::MissingField,
                "amount",
                "no amount in this row".into(),
            );
        };
        if let Some(marker) = get(header.direction) {
            match parse_direction(marker) {
                Some(true) => amount = -amount.abs(),
                Some(false) => {}
                None => {
                    return err(
                        ErrorKind::BadAmount,
                        "direction",
                        format!(
                            "{} is neither debit (借/支) nor credit (贷/收)",
                            quote(marker)
                        ),
                    )
                }
            }
        }

        let currency = match header.currency.iter().find_map(|&i| get(Some(i))) {
            Some(c) => match parse_currency(c) {
                Some(c) => c,
                None => {
                    return err(
                        ErrorKind::BadCurrency,
                        "currency",
                        format!("{} is not a currency", quote(c)),
                    )
                }
            },
            None => match self.profile.default_currency() {
                Some(c) => c.to_string(),
                None => {
                    return err(
                        ErrorKind::MissingField,
                        "currency",
                        "no currency in this row".into(),
                    )
                }
            },
        };

        let mut counterparty_name = get(header.cp_name).map(str::to_string);
        let mut counterparty_account = get(header.cp_account).map(str::to_string);
        if let Some(combined) = get(header.cp_combined) {
            let (name, account) = split_counterparty(combined);
            counterparty_name = counterparty_name.or(name);
            counterparty_account = counterparty_account.or(account);
        }
        // ABC writes 0000000000 as the journal number of interest bookings: it identifies
        // nothing, and two such rows must not look like one transaction.
        let bank_txn_id = get(header.bank_txn_id)
            .filter(|id| !id.chars().all(|c| c == '0'))
            .map(str::to_string);
        let account = get(header.account)
            .map(str::to_string)
            .or_else(|| self.default_account())
            .unwrap_or_default();

        let text = get(header.text).map(str::to_string);
        Some(Ok(Transaction {
            location: loc,
            account,
            booking_date,
            value_date,
            amount,
            currency,
            counterparty_name,
            counterparty_account,
            reference: get(header.reference).map(str::to_string),
            bank_txn_id,
            return_reason: return_marker(amount, text.as_deref()),
            text,
            reversal: false,
        }))
    }
}

/// Words Chinese banks put in the 摘要 of a payment they send back (退汇: returned remittance).
const RETURN_MARKERS: [&str; 4] = ["退汇", "退回", "退票", "退款"];

/// CSV exports carry no ISO return reason; a credit whose text says it is a returned payment
/// is one, and the marker word stands in for the reason code.
fn return_marker(amount: Decimal, text: Option<&str>) -> Option<String> {
    if amount <= Decimal::ZERO {
        return None;
    }
    let text = text?;
    RETURN_MARKERS
        .iter()
        .find(|m| text.contains(*m))
        .map(|m| m.to_string())
}

impl<R: Read> Iterator for CsvIter<R> {
    type Item = Result<Record, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.fatal.take() {
            return self.fail(e);
        }
        loop {
            let line = match self.read_row() {
                Ok(Some(line)) => line,
                Ok(None) => return self.finish(),
                Err((e, true)) => return self.fail(e),
                Err((e, false)) => return Some(Err(e)),
            };
            // Taken out for the row and put back: a clone per row costs a parse-only pass ~10%.
            let Some(header) = self.header.take() else {
                if let Some(h) = Header::recognise(&self.record) {
                    if self.profile == CsvProfile::Generic && h.profile() != CsvProfile::Generic {
                        // Chinese headers imply RMB even if the caller chose Generic.
                        self.profile = h.profile();
                    }
                    self.header = Some(h);
                    self.header_line = line;
                    continue;
                }
                if self.preamble_account.is_none() {
                    self.preamble_account = preamble_account(&self.record);
                }
                self.preamble_rows += 1;
                if self.preamble_rows >= PREAMBLE_ROWS_MAX {
                    return self.fail(ParseError::new(
                        ErrorKind::BadHeader,
                        format!(
                            "no header row with a date and an amount column in the first {PREAMBLE_ROWS_MAX} rows"
                        ),
                    ));
                }
                continue;
            };
            let result = if self.record.iter().any(|c| c.contains('\u{fffd}')) {
                // The decoder replaced bytes that are invalid in the file's encoding.
                Some(Err(ParseError::new(
                    ErrorKind::BadEncoding,
                    "the row contains bytes that are not valid in the file's encoding",
                )
                .at(Location::Line(line))))
            } else {
                self.row(&header, line)
            };
            self.header = Some(header);
            let Some(result) = result else {
                continue;
            };
            self.rows += 1;
            if self.rows > self.options.limits.rows_max {
                return self.fail(
                    ParseError::new(
                        ErrorKind::TooLarge,
                        format!("more than {} rows", self.options.limits.rows_max),
                    )
                    .at(Location::Line(line)),
                );
            }
            return Some(result.map(|t| {
                self.from = Some(self.from.map_or(t.booking_date, |d| d.min(t.booking_date)));
                self.to = Some(self.to.map_or(t.booking_date, |d| d.max(t.booking_date)));
                self.row_account = match self.row_account.take() {
                    None => Some(Some(t.account.clone())),
                    Some(Some(a)) if a == t.account => Some(Some(a)),
                    Some(_) => Some(None),
                };
                self.currency = match self.currency.take() {
                    None => Some(Some(t.currency.clone())),
                    Some(Some(c)) if c == t.currency => Some(Some(c)),
                    Some(_) => Some(None),
                };
                Record::Transaction(t)
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_whose_text_says_returned_carries_the_marker_as_its_reason() {
        let credit = Decimal::new(78000, 2);
        assert_eq!(
            return_marker(credit, Some("退汇-账户已销户")).as_deref(),
            Some("退汇")
        );
        assert_eq!(
            return_marker(credit, Some("跨行汇款退回")).as_deref(),
            Some("退回")
        );
        // A debit is never a return; nor is a credit with other words or none.
        assert_eq!(return_marker(-credit, Some("退汇")), None);
        assert_eq!(return_marker(credit, Some("拨款")), None);
        assert_eq!(return_marker(credit, None), None);
    }

    #[test]
    fn dates_in_all_shapes() {
        let d = ymd(2023, 5, 2);
        for s in [
            "2023-05-02",
            "2023/05/02",
            "20230502",
            "2023.5.2",
            "2023年05月02日",
            "2023-05-02 10:11:12",
            "2023-05-02T10:11:12",
            " 2023-05-02     \t",
        ] {
            assert_eq!(parse_date(s), d, "{s}");
        }
        for s in [
            "2023-02-30",
            "05/02/2023",
            "2023-05",
            "abc",
            "",
            "2023-05-02x",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn amounts_in_all_shapes() {
        let d = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(parse_amount("1,234.56  \t"), Ok(d("1234.56")));
        assert_eq!(parse_amount("+10000.00"), Ok(d("10000.00")));
        assert_eq!(parse_amount("-1,000.00"), Ok(d("-1000.00")));
        assert_eq!(parse_amount("(5.00)"), Ok(d("-5.00")));
        assert_eq!(parse_amount("¥13.40"), Ok(d("13.40")));
        assert_eq!(parse_amount("-"), Ok(None));
        assert_eq!(parse_amount("   "), Ok(None));
        assert_eq!(parse_amount("1,2x"), Err(()));
        assert_eq!(parse_amount("xx,yyyy.zz"), Err(()));
        assert_eq!(parse_amount("1.2.3"), Err(()));
        assert_eq!(parse_amount("+"), Err(()));
    }

    #[test]
    fn counterparty_cells_split_into_name_and_account() {
        let s = |a: &str| Some(a.to_string());
        assert_eq!(
            split_counterparty("张三 66666666666666"),
            (s("张三"), s("66666666666666"))
        );
        assert_eq!(
            split_counterparty("北京住房公积金管理中心1111111111"),
            (s("北京住房公积金管理中心"), s("1111111111"))
        );
        assert_eq!(
            split_counterparty("12341234123412341"),
            (None, s("12341234123412341"))
        );
        assert_eq!(
            split_counterparty("张三 1234****9876"),
            (s("张三"), s("1234****9876"))
        );
        assert_eq!(split_counterparty("ABC公司2023"), (s("ABC公司2023"), None));
    }
}
