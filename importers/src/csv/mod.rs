//! CSV exports: a generic English profile and the exports of Chinese banks (ICBC, ABC, CMB
//! and look-alikes).
//!
//! The file is decoded to UTF-8 while streaming (GB18030 when the first 64 KiB are not valid
//! UTF-8, see [`crate::Encoding`]) and read line by line, so that every row knows its exact
//! line (a quoted cell may span lines: a row ends when its quotes are balanced). The header
//! row is found by its names after skipping preamble lines (ICBC puts the card number and account
//! type above the header; a `卡号:` / `账号:` preamble cell becomes the account, and a period
//! such as `起止日期: 2026-11-01 至 2026-11-30` the statement's first and last day). All
//! profiles share one table of header names, so a Chinese export from another bank with the
//! usual headers works too; the profile decides the default currency (CNY for Chinese banks).
//!
//! Rows that are blank, or whose first cell is a total (`人民币合计`, `合计`, `总计`), are
//! skipped. A bad row yields one error naming its line and field, and parsing continues.
//! Cells are trimmed of spaces and tabs (ICBC pads every cell), and `-` / `--` mean "empty".
//!
//! A running balance column (余额, 本次余额, 联机余额, 账户余额, `balance`) is checked row by
//! row: a row whose balance is not the balance before it plus its amount yields a
//! `statement_unbalanced` error at its line (field `balance`) besides its transaction, and
//! the statement's opening balance (before the oldest row) and closing balance (after the
//! newest) come from the chain's ends, in whichever order the file lists its rows (see
//! `chain.rs` for how the order is found). A break is known once its booking day's rows
//! have been read, so its error may come a few records after its row's transaction.
//!
//! The same row logic reads spreadsheets ([`crate::excel`]): a source hands rows of
//! cells to one `Rows` state machine and passes on what it yields.

mod cells;
mod chain;
mod header;
mod rows;

use std::io::{BufReader, Chain, Cursor, Read};

use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

pub(crate) use cells::Cell;
pub(crate) use rows::{Rows, PREAMBLE_ROWS_MAX};

use crate::error::{from_io, ErrorKind, ParseError};
use crate::io::{looks_utf8, read_head, read_line_bounded, Limited};
use crate::model::{CsvProfile, Encoding, Location, Options, Record};
use header::Header;

/// How many bytes are inspected to choose between UTF-8 and GB18030.
const SNIFF_BYTES: usize = 64 * 1024;

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
// The line reader
// ---------------------------------------------------------------------------------------

struct CsvIter<R: Read> {
    reader: Option<BufReader<Decoded<R>>>,
    line_no: u64,
    line: Vec<u8>,
    text: String,
    field_bytes_max: usize,
    record: Vec<String>,
    rows: Rows,
    /// A fatal error, handed out after what the rows before it yielded.
    fatal: Option<ParseError>,
    done: bool,
}

impl<R: Read> CsvIter<R> {
    fn new(input: R, profile: CsvProfile, options: &Options) -> Self {
        let limits = options.limits;
        // Lines are bounded by `read_line_bounded`; this only bounds the total.
        let mut limited = Limited::new(input, limits.file_bytes_max, usize::MAX, b"\n");
        let mut iter = CsvIter {
            reader: None,
            line_no: 0,
            line: Vec::new(),
            text: String::new(),
            field_bytes_max: limits.field_bytes_max,
            record: Vec::new(),
            rows: Rows::new(profile, options),
            fatal: None,
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
        let max = self.field_bytes_max;
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
}

impl<R: Read> Iterator for CsvIter<R> {
    type Item = Result<Record, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.rows.pop() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if let Some(e) = self.fatal.take() {
                self.done = true;
                return Some(Err(e));
            }
            let pushed = match self.read_row() {
                Ok(Some(line)) => {
                    if self.rows.has_header() && self.record.iter().any(|c| c.contains('\u{fffd}'))
                    {
                        // The decoder replaced bytes that are invalid in the file's encoding.
                        let e = ParseError::new(
                            ErrorKind::BadEncoding,
                            "the row contains bytes that are not valid in the file's encoding",
                        )
                        .at(Location::Line(line));
                        self.rows.push_error(e, line)
                    } else {
                        self.rows.push(&self.record, line)
                    }
                }
                Ok(None) => {
                    self.rows.finish();
                    self.done = true;
                    Ok(())
                }
                Err((e, true)) => Err(e),
                Err((e, false)) => {
                    let line = self.line_no;
                    self.rows.push_error(e, line)
                }
            };
            if let Err(e) = pushed {
                self.fatal = Some(e);
            }
        }
    }
}
