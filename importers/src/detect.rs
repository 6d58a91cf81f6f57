//! Format detection from the first bytes of a file.

use crate::csv::detect_profile;
use crate::error::{ErrorKind, ParseError};
use crate::model::Format;

/// How many bytes [`detect`] looks at (more are ignored).
pub const DETECT_BYTES: usize = 8 * 1024;

/// Detects the format of a statement from its first bytes (a few KiB; see
/// [`DETECT_BYTES`]) and, as a tie-breaker, its file name.
///
/// XML is camt.053 or camt.054 by its message element (`BkToCstmrStmt`,
/// `BkToCstmrDbtCdtNtfctn`) or namespace; MT940 by its `:20:` and `:25:`/`:60F:`/`:61:`
/// fields or a SWIFT `{1:` block; CSV by a header row that one of the profiles recognises
/// (after up to 100 preamble rows, in UTF-8 or GB18030).
///
/// ```
/// use fundtrail_importers::{detect, CsvProfile, Format};
/// let head = "交易日期,交易金额,对方户名\n2024-01-02,-10.00,张三\n";
/// assert_eq!(detect(head.as_bytes(), None).unwrap(), Format::Csv(CsvProfile::Chinese));
/// ```
pub fn detect(head: &[u8], file_name: Option<&str>) -> Result<Format, ParseError> {
    let complete = head.len() < DETECT_BYTES;
    let head = &head[..head.len().min(DETECT_BYTES)];
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = &body[start..];
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());

    if body.starts_with(b"<") {
        if contains(body, b"BkToCstmrStmt") || contains(body, b"camt.053") {
            return Ok(Format::Camt053);
        }
        if contains(body, b"BkToCstmrDbtCdtNtfctn") || contains(body, b"camt.054") {
            return Ok(Format::Camt054);
        }
        return Err(ParseError::new(
            ErrorKind::UnknownFormat,
            "XML, but neither a camt.053 statement nor a camt.054 notification",
        ));
    }
    if looks_mt940(body) {
        return Ok(Format::Mt940);
    }
    if let Some(profile) = detect_profile(body, complete) {
        return Ok(Format::Csv(profile));
    }
    let hint = match ext.as_deref() {
        Some("csv") => " (a .csv file, but no header row with a date and an amount column)",
        Some("xml") => " (a .xml file, but it does not start with an XML element)",
        Some("sta" | "940" | "mt940") => " (an MT940 file name, but no :20: and :25: fields)",
        _ => "",
    };
    Err(ParseError::new(
        ErrorKind::UnknownFormat,
        format!("not a recognised bank statement format{hint}"),
    ))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn looks_mt940(body: &[u8]) -> bool {
    let mut tag20 = false;
    let mut other = false;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_prefix(b"{4:").unwrap_or(line);
        if line.starts_with(b":20:") {
            tag20 = true;
        } else if line.starts_with(b":25:")
            || line.starts_with(b":60F:")
            || line.starts_with(b":61:")
        {
            other = true;
        }
    }
    (tag20 && other) || (body.starts_with(b"{1:") && contains(body, b":20:"))
}
