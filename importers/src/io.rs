//! Byte-level helpers shared by the parsers: a reader that enforces size limits, bounded
//! line reading, and the number/date readers that several formats share.

use std::io::{self, BufRead, Read};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::error::{ErrorKind, LimitHit, ParseError};

/// Reader that fails once more than `file_max` bytes were read, or once more than `gap_max`
/// bytes pass without one of the `delims` bytes.
///
/// The gap bound is what keeps csv/quick-xml buffers small: they buffer a whole line or XML
/// token, so bounding the distance between newlines (CSV, MT940) or angle brackets (XML)
/// bounds their memory even for hostile input.
pub(crate) struct Limited<R> {
    inner: R,
    read: u64,
    file_max: u64,
    since_delim: usize,
    gap_max: usize,
    delims: &'static [u8],
}

impl<R: Read> Limited<R> {
    pub(crate) fn new(inner: R, file_max: u64, gap_max: usize, delims: &'static [u8]) -> Self {
        Limited {
            inner,
            read: 0,
            file_max,
            since_delim: 0,
            gap_max,
            delims,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.file_max {
            return Err(limit_error(ParseError::new(
                ErrorKind::TooLarge,
                format!("file is larger than {} bytes", self.file_max),
            )));
        }
        for &b in &buf[..n] {
            if self.delims.contains(&b) {
                self.since_delim = 0;
            } else {
                self.since_delim += 1;
                if self.since_delim > self.gap_max {
                    let what = if self.delims.contains(&b'<') {
                        "XML token"
                    } else {
                        "line"
                    };
                    return Err(limit_error(ParseError::new(
                        ErrorKind::TooLarge,
                        format!("a {what} is longer than {} bytes", self.gap_max),
                    )));
                }
            }
        }
        Ok(n)
    }
}

fn limit_error(e: ParseError) -> io::Error {
    io::Error::other(LimitHit(e))
}

/// Reads up to `max` bytes (fewer only at end of input).
pub(crate) fn read_head<R: Read>(r: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(max.min(64 * 1024));
    r.by_ref().take(max as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Reads one line (without `\n` / `\r\n`) into `buf`, keeping at most `max` bytes.
///
/// Returns `None` at end of input, else whether the line was cut short.
pub(crate) fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut truncated = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let content = if done { &chunk[..used - 1] } else { chunk };
        let room = max.saturating_sub(buf.len());
        if content.len() > room {
            truncated = true;
        }
        buf.extend_from_slice(&content[..content.len().min(room)]);
        r.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(truncated))
}

/// True if `bytes` is UTF-8, allowing a sequence cut off at the end when more input follows.
pub(crate) fn looks_utf8(bytes: &[u8], complete: bool) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    }
}

/// Reads a plain decimal (`8.85`, `2700`, optionally signed), as used in XML.
pub(crate) fn parse_plain_decimal(s: &str) -> Option<Decimal> {
    let t = s.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let mut dots = 0;
    for c in digits.chars() {
        match c {
            '0'..='9' => {}
            '.' => dots += 1,
            _ => return None,
        }
    }
    if dots > 1 || !digits.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<Decimal>().ok()
}

/// Reads `YYYY-MM-DD` at the start of `s` (the date part of an ISO date-time as written,
/// i.e. the bank's local date, which is the date a person reads in the file).
pub(crate) fn parse_iso_date_prefix(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    let d = t.get(..10)?;
    if t.len() > 10 && !t[10..].starts_with(['T', ' ', '+', '-', 'Z']) {
        return None;
    }
    NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()
}

/// Builds a date from numbers, rejecting impossible ones.
pub(crate) fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}
