//! Parse errors with a stable machine-readable code and the place they occurred.

use std::fmt;

use crate::model::Location;

/// What went wrong, with a stable snake_case name (see [`ErrorKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is none of the supported formats, or not the one asked for.
    UnknownFormat,
    /// Bytes that are not valid in the file's character encoding.
    BadEncoding,
    /// No recognisable CSV header row.
    BadHeader,
    /// A date that cannot be read.
    BadDate,
    /// An amount that cannot be read.
    BadAmount,
    /// A currency that is neither an ISO code nor a known Chinese name.
    BadCurrency,
    /// A required value is absent.
    MissingField,
    /// The file, a line or the row count is over its limit.
    TooLarge,
    /// One field is longer than [`crate::Limits::field_bytes_max`].
    FieldTooLong,
    /// CSV syntax the reader cannot make sense of.
    MalformedCsv,
    /// XML that is not well-formed, or not camt-shaped.
    MalformedXml,
    /// An MT940 field that does not follow the SWIFT layout.
    MalformedMt940,
    /// A statement section whose transactions do not add up from its stated opening
    /// balance to its stated closing balance (or whose running balance jumps).
    Unbalanced,
    /// Reading the input failed.
    Io,
}

impl ErrorKind {
    /// The stable snake_case name, e.g. `bad_amount`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownFormat => "unknown_format",
            ErrorKind::BadEncoding => "bad_encoding",
            ErrorKind::BadHeader => "bad_header",
            ErrorKind::BadDate => "bad_date",
            ErrorKind::BadAmount => "bad_amount",
            ErrorKind::BadCurrency => "bad_currency",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::FieldTooLong => "field_too_long",
            ErrorKind::MalformedCsv => "malformed_csv",
            ErrorKind::MalformedXml => "malformed_xml",
            ErrorKind::MalformedMt940 => "malformed_mt940",
            ErrorKind::Unbalanced => "statement_unbalanced",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with the input, naming where it is.
///
/// Displays as `line 7, field amount: `1,2x` is not an amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line or XML path, when known.
    pub location: Option<Location>,
    /// The normalised field name (`amount`, `booking_date`, `61`, `Amt` ...), when one field
    /// is at fault.
    pub field: Option<String>,
    /// Machine-readable kind.
    pub code: ErrorKind,
    /// Human-readable explanation (quotes the offending value, shortened).
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(code: ErrorKind, message: impl Into<String>) -> Self {
        ParseError {
            location: None,
            field: None,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub(crate) fn at_opt(mut self, location: Option<Location>) -> Self {
        if self.location.is_none() {
            self.location = location;
        }
        self
    }

    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.location, &self.field) {
            (Some(l), Some(fl)) => write!(f, "{l}, field {fl}: {}", self.message),
            (Some(l), None) => write!(f, "{l}: {}", self.message),
            (None, Some(fl)) => write!(f, "field {fl}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// Quotes a value for an error message, shortened so that messages stay one line.
pub(crate) fn quote(value: &str) -> String {
    const MAX: usize = 60;
    let mut s: String = value.chars().take(MAX).collect();
    if value.chars().count() > MAX {
        s.push('…');
    }
    format!("`{s}`")
}

/// Payload of an `io::Error` raised by [`crate::io::Limited`] so that the limit survives
/// being wrapped by csv, quick-xml or encoding_rs_io and comes back as a clear error.
#[derive(Debug)]
pub(crate) struct LimitHit(pub(crate) ParseError);

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LimitHit {}

/// Turns a read error into a parse error, unwrapping limit violations.
pub(crate) fn from_io(e: &std::io::Error) -> ParseError {
    if let Some(hit) = e.get_ref().and_then(|r| r.downcast_ref::<LimitHit>()) {
        return hit.0.clone();
    }
    ParseError::new(ErrorKind::Io, format!("reading the input failed: {e}"))
}
