//! Format detection from the first bytes of a file.

use crate::csv::detect_profile;
use crate::error::{ErrorKind, ParseError};
use crate::excel::{workbook_kind, WorkbookKind};
use crate::model::{CsvProfile, Format};

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
/// An Excel workbook by its container: a ZIP archive (`PK\x03\x04`) whose first entries
/// are an Office package's (`[Content_Types].xml`, `xl/`) or whose name ends in `.xlsx`, or
/// an OLE2 compound file (`D0 CF 11 E0 A1 B1 1A E1`, Excel 97–2003 `.xls`). Its header
/// cells are compressed or scattered in the container, so the profile is left to the parse:
/// `Format::Excel(CsvProfile::Generic)`.
///
/// ```
/// use fundtrail_importers::{detect, CsvProfile, Format};
/// let head = "交易日期,交易金额,对方户名\n2024-01-02,-10.00,张三\n";
/// assert_eq!(detect(head.as_bytes(), None).unwrap(), Format::Csv(CsvProfile::Chinese));
/// ```
pub fn detect(head: &[u8], file_name: Option<&str>) -> Result<Format, ParseError> {
    let complete = head.len() < DETECT_BYTES;
    let head = &head[..head.len().min(DETECT_BYTES)];
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match workbook_kind(head) {
        Some(WorkbookKind::Xls) => return Ok(Format::Excel(CsvProfile::Generic)),
        Some(WorkbookKind::Xlsx) => {
            let office = contains(head, b"[Content_Types].xml") || contains(head, b"xl/");
            if office || matches!(ext.as_deref(), Some("xlsx" | "xlsm")) {
                return Ok(Format::Excel(CsvProfile::Generic));
            }
            return Err(ParseError::new(
                ErrorKind::UnknownFormat,
                "a ZIP archive, but not an Excel workbook (no xl/ part among its first entries)",
            ));
        }
        None => {}
    }
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = &body[start..];

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
        Some("xlsx" | "xls") => " (an Excel file name, but neither a ZIP nor an OLE2 file)",
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
