//! Reading one cell: dates, amounts, debit/credit markers, currencies, counterparties, and the
//! facts a preamble states. Cells come as text (CSV) or typed (a spreadsheet's numbers and
//! dates); every reader takes a [`Cell`], so both sources go through the same code.

use std::borrow::Cow;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::header::{norm_header, PREAMBLE_ACCOUNT};
use crate::io::ymd;

/// One cell of a row, as its source holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// No value.
    Empty,
    /// Text (every CSV cell; spreadsheet text cells).
    Text(&'a str),
    /// A spreadsheet number (a binary float: see [`money_from_float`]).
    Number(f64),
    /// A spreadsheet integer.
    Int(i64),
    /// A spreadsheet cell formatted as a date: its serial number, and the day it denotes
    /// (`None` when the serial is no valid day).
    Date(f64, Option<NaiveDate>),
}

impl<'a> Cell<'a> {
    /// The cell as a person reads it: numbers in their shortest exact form, dates as
    /// `YYYY-MM-DD`.
    pub(crate) fn text(&self) -> Cow<'a, str> {
        match self {
            Cell::Empty => Cow::Borrowed(""),
            Cell::Text(s) => Cow::Borrowed(s),
            // `Display` of f64 is the shortest text that reads back as the same float, and
            // never uses an exponent.
            Cell::Number(f) => Cow::Owned(format!("{f}")),
            Cell::Int(i) => Cow::Owned(i.to_string()),
            Cell::Date(_, Some(d)) => Cow::Owned(d.to_string()),
            Cell::Date(serial, None) => Cow::Owned(format!("{serial}")),
        }
    }

    /// The cell's text with padding trimmed, `None` when it means "no value" (see [`clean`]).
    pub(crate) fn cleaned(&self) -> Option<Cow<'a, str>> {
        match self.text() {
            Cow::Borrowed(s) => clean(s).map(Cow::Borrowed),
            Cow::Owned(s) => clean(&s).map(|t| Cow::Owned(t.to_string())),
        }
    }
}

/// What a row is made of: CSV's strings or a spreadsheet's typed cells (generic, so that a
/// CSV row goes through without being copied into cells first).
pub(crate) trait AsCell {
    fn as_cell(&self) -> Cell<'_>;
}

impl AsCell for String {
    fn as_cell(&self) -> Cell<'_> {
        Cell::Text(self)
    }
}

impl AsCell for Cell<'_> {
    fn as_cell(&self) -> Cell<'_> {
        *self
    }
}

/// Trims padding and maps the "no value" markers to `None`.
pub(crate) fn clean(s: &str) -> Option<&str> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    match t {
        "" | "-" | "--" | "—" | "/" => None,
        _ => Some(t),
    }
}

/// Reads a date cell: text as [`parse_date`] reads it, a date-formatted spreadsheet cell, or a
/// spreadsheet number that is either `20230502` written as a number or a 1900-system serial.
pub(crate) fn cell_date(cell: &Cell, text: &str) -> Option<NaiveDate> {
    match *cell {
        Cell::Date(_, d) => d,
        Cell::Number(f) => number_date(f),
        Cell::Int(i) => number_date(i as f64),
        Cell::Empty | Cell::Text(_) => parse_date(text),
    }
}

/// A plain number in a date column. `20230502` is far above the last serial Excel knows
/// (2958465 = 9999-12-31), so the two readings never overlap.
fn number_date(f: f64) -> Option<NaiveDate> {
    if f.fract() == 0.0 && (10_000_101.0..=99_991_231.0).contains(&f) {
        let n = f as u32;
        return ymd((n / 10_000) as i32, n / 100 % 100, n % 100);
    }
    serial_1900(f)
}

/// Excel's 1900 date system: serial 1 is 1900-01-01, and serial 60 is the 1900-02-29 that
/// Lotus 1-2-3 invented and Excel kept, so later serials are one day ahead.
fn serial_1900(f: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&f) {
        return None;
    }
    let days = f.floor() as i64;
    let (base, days) = match days {
        60 => return None,
        d if d < 60 => (ymd(1899, 12, 31)?, d),
        d => (ymd(1899, 12, 30)?, d),
    };
    base.checked_add_signed(chrono::Duration::days(days))
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

/// Reads an amount cell. Text as [`parse_amount`] reads it; spreadsheet numbers exactly (see
/// [`money_from_float`]); a date-formatted cell is no amount. `Ok(None)` means empty.
pub(crate) fn cell_amount(cell: &Cell, text: Option<&str>) -> Result<Option<Decimal>, ()> {
    match *cell {
        Cell::Number(f) => money_from_float(f).map(Some).ok_or(()),
        Cell::Int(i) => {
            let mut d = Decimal::from(i);
            d.rescale(2);
            Ok(Some(d))
        }
        Cell::Date(..) => Err(()),
        Cell::Empty | Cell::Text(_) => match text {
            None => Ok(None),
            Some(t) => parse_amount(t),
        },
    }
}

/// The money a spreadsheet number stands for, without float arithmetic: the float's shortest
/// round-trip text (`1234.56`, `0.30000000000000004`) read as a decimal, then rounded to
/// cents only if it is within 1e-9 of a whole number of cents (what a sum or a product in a
/// formula leaves behind). Anything else (`12.345`, NaN, 1e30) is not an amount.
pub(crate) fn money_from_float(f: f64) -> Option<Decimal> {
    if !f.is_finite() {
        return None;
    }
    let exact: Decimal = format!("{f}").parse().ok()?;
    let mut cents = exact.round_dp(2);
    if (exact - cents).abs() > Decimal::new(1, 9) {
        return None;
    }
    if cents.is_zero() {
        // -0.0 would print as `-0.00`.
        cents = Decimal::ZERO;
    }
    cents.rescale(2);
    Some(cents)
}

/// Reads an amount cell: thousands separators, `+`/`-`, `(1.00)` and `¥` are understood.
/// `Ok(None)` means the cell is empty.
pub(crate) fn parse_amount(s: &str) -> Result<Option<Decimal>, ()> {
    let Some(t) = clean(s) else { return Ok(None) };
    // Whitespace, separators and currency signs are ignored wherever they are.
    let kept = |c: &char| !c.is_whitespace() && !matches!(c, ',' | '¥' | '￥');
    let mut body = t.chars().filter(kept).peekable();
    let parens = t.chars().find(kept) == Some('(')
        && t.chars().rev().find(kept) == Some(')')
        && t.chars().filter(kept).nth(2).is_some();
    let mut negative = false;
    if parens {
        negative = true;
        body.next();
    }
    match body.peek() {
        Some('-') => {
            negative = !negative;
            body.next();
        }
        Some('+') => {
            body.next();
        }
        _ => {}
    }
    // Cents as an integer and a scale: no allocation, no float (one row has several amounts).
    let (mut mantissa, mut digits, mut scale, mut dot) = (0i128, 0u32, 0u32, false);
    while let Some(c) = body.next() {
        match c {
            ')' if parens && body.peek().is_none() => break,
            '0'..='9' => {
                digits += 1;
                if digits > 27 {
                    return Err(()); // more digits than any amount (Decimal keeps 28)
                }
                mantissa = mantissa * 10 + i128::from(c as u8 - b'0');
                if dot {
                    scale += 1;
                }
            }
            '.' if !dot => dot = true,
            _ => return Err(()),
        }
    }
    if digits == 0 {
        return Err(());
    }
    let value = Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| ())?;
    Ok(Some(if negative { -value } else { value }))
}

/// Reads a debit/credit marker: `Some(true)` for money leaving the account.
pub(crate) fn parse_direction(s: &str) -> Option<bool> {
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
pub(crate) fn parse_currency(s: &str) -> Option<String> {
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
pub(crate) fn split_counterparty(s: &str) -> (Option<String>, Option<String>) {
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
pub(crate) fn preamble_account<S: AsRef<str>>(row: &[S]) -> Option<String> {
    row.iter().find_map(|cell| {
        let (key, value) = cell.as_ref().split_once([':', '：'])?;
        let key = norm_header(key);
        if PREAMBLE_ACCOUNT.contains(&key.as_str()) {
            clean(value).map(str::to_string)
        } else {
            None
        }
    })
}

/// Preamble keys before a `FROM 至 TO` range (`起止日期: 2026-11-01 至 2026-11-30`;
/// `查询起止日期` contains `起止日期`).
const PERIOD_RANGE: &[&str] = &["起止日期", "查询期间", "查询区间", "交易期间", "账单期间"];
/// Preamble keys before the first and the last day (`起始日期: … 终止日期: …`).
const PERIOD_FROM: &[&str] = &["起始日期", "开始日期"];
const PERIOD_TO: &[&str] = &["终止日期", "结束日期", "截止日期"];

/// The period a preamble row states, as (first day, last day); either may be missing.
pub(crate) fn preamble_period<S: AsRef<str>>(row: &[S]) -> (Option<NaiveDate>, Option<NaiveDate>) {
    // Joined, so that `起始日期: A` and `终止日期: B` may be one cell or two.
    let line: String = row.iter().map(|c| c.as_ref()).collect::<Vec<_>>().join(" ");
    for key in PERIOD_RANGE {
        if let Some(rest) = after_key(&line, key) {
            let (from, rest) = date_token(rest);
            let rest = rest.trim_start();
            let Some(sep) = rest.chars().next().filter(|c| "至到~～-—–".contains(*c)) else {
                continue;
            };
            let (to, _) = date_token(&rest[sep.len_utf8()..]);
            return (from, to);
        }
    }
    let find = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| after_key(&line, k).and_then(|rest| date_token(rest).0))
    };
    (find(PERIOD_FROM), find(PERIOD_TO))
}

/// The text after `key` and its colon, if the line has it.
fn after_key<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)?;
    Some(
        line[at + key.len()..]
            .trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '：'),
    )
}

/// Reads the date at the start of `s` (up to the first character a date cannot contain) and
/// returns it with the rest.
fn date_token(s: &str) -> (Option<NaiveDate>, &str) {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | '年' | '月' | '日')))
        .map_or(s.len(), |(i, _)| i);
    (parse_date(&s[..end]), &s[end..])
}

/// A row whose first non-empty cell is a total (`人民币合计`, `合计`, `总计`, `Total`).
pub(crate) fn is_total_row(cells: &[Option<Cow<str>>]) -> bool {
    cells.iter().flatten().next().is_some_and(|first| {
        first.contains("合计") || first.contains("总计") || first.eq_ignore_ascii_case("total")
    })
}

/// Words Chinese banks put in the 摘要 of a payment they send back (退汇: returned remittance).
const RETURN_MARKERS: [&str; 4] = ["退汇", "退回", "退票", "退款"];

/// CSV exports carry no ISO return reason; a credit whose text says it is a returned payment
/// is one, and the marker word stands in for the reason code.
pub(crate) fn return_marker(amount: Decimal, text: Option<&str>) -> Option<String> {
    if amount <= Decimal::ZERO {
        return None;
    }
    let text = text?;
    RETURN_MARKERS
        .iter()
        .find(|m| text.contains(*m))
        .map(|m| m.to_string())
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
    fn spreadsheet_numbers_in_a_date_column() {
        let date = |c: Cell| cell_date(&c, &c.text());
        assert_eq!(date(Cell::Number(45236.0)), ymd(2023, 11, 6));
        assert_eq!(
            date(Cell::Number(45236.75)),
            ymd(2023, 11, 6),
            "a time of day"
        );
        assert_eq!(date(Cell::Number(20231106.0)), ymd(2023, 11, 6));
        assert_eq!(date(Cell::Int(20231106)), ymd(2023, 11, 6));
        assert_eq!(date(Cell::Number(1.0)), ymd(1900, 1, 1));
        assert_eq!(date(Cell::Number(59.0)), ymd(1900, 2, 28));
        assert_eq!(date(Cell::Number(60.0)), None, "Lotus' 1900-02-29");
        assert_eq!(date(Cell::Number(61.0)), ymd(1900, 3, 1));
        assert_eq!(date(Cell::Number(2958465.0)), ymd(9999, 12, 31));
        for bad in [0.0, -1.0, 2958466.0, f64::NAN, f64::INFINITY, 20231131.0] {
            assert_eq!(date(Cell::Number(bad)), None, "{bad}");
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
        assert_eq!(parse_amount("(1,000.50)"), Ok(d("-1000.50")));
        assert_eq!(parse_amount("-(5)"), Err(()));
        assert_eq!(parse_amount("( 5 )"), Ok(d("-5")));
        assert_eq!(parse_amount("()"), Err(()));
        assert_eq!(parse_amount(".5"), Ok(d("0.5")));
        assert_eq!(parse_amount("5."), Ok(d("5")));
        assert_eq!(
            parse_amount("0012.50").map(|a| a.map(|a| a.to_string())),
            Ok(Some("12.50".into()))
        );
        assert_eq!(parse_amount("1234567890123456789012345678"), Err(()));
    }

    #[test]
    fn spreadsheet_floats_become_exact_cents() {
        let m = |f: f64| money_from_float(f).map(|d| d.to_string());
        assert_eq!(m(1234.56).as_deref(), Some("1234.56"));
        assert_eq!(m(-13.4).as_deref(), Some("-13.40"));
        assert_eq!(m(32000.0).as_deref(), Some("32000.00"));
        assert_eq!(m(0.1 + 0.2).as_deref(), Some("0.30"), "a formula's residue");
        assert_eq!(m(-0.0).as_deref(), Some("0.00"));
        assert_eq!(m(1e-30).as_deref(), Some("0.00"));
        assert_eq!(m(99999999999.99).as_deref(), Some("99999999999.99"));
        for bad in [12.345, 0.001, 1e30, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(m(bad), None, "{bad}");
        }
        let int = cell_amount(&Cell::Int(-7), None).unwrap().unwrap();
        assert_eq!(int.to_string(), "-7.00");
        assert_eq!(
            cell_amount(&Cell::Date(45000.0, ymd(2023, 3, 15)), None),
            Err(())
        );
    }

    #[test]
    fn preamble_periods() {
        let p = |cells: &[&str]| preamble_period(cells);
        let nov = (ymd(2026, 11, 1), ymd(2026, 11, 30));
        assert_eq!(p(&["起止日期: 2026-11-01 至 2026-11-30"]), nov);
        assert_eq!(p(&["查询起止日期：20261101 至 20261130"]), nov);
        assert_eq!(p(&["查询期间: 2026-11-01 ~ 2026-11-30"]), nov);
        assert_eq!(p(&["起始日期: 2026-11-01", "终止日期: 2026-11-30"]), nov);
        assert_eq!(p(&["起始日期:2026/11/01 终止日期:2026/11/30"]), nov);
        assert_eq!(p(&["起始日期: 2026-11-01"]), (ymd(2026, 11, 1), None));
        assert_eq!(p(&["卡号: 1234****9876"]), (None, None));
        assert_eq!(p(&["起止日期: soon"]), (None, None));
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
