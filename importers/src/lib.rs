//! Bank statement parsers for Fundtrail: CSV exports of Chinese banks (GBK, preambles,
//! Chinese headers, total rows, running balances) and generic CSV, the same exports as Excel
//! workbooks (.xlsx/.xls), ISO 20022 camt.053/camt.054 and SWIFT MT940, each turned into a
//! stream of normalised [`Transaction`]s and [`Statement`] facts.
//!
//! This crate knows nothing about the database or HTTP: it reads bytes and yields values or
//! errors that name their line (or XML path). The ledger integration matches the yielded
//! transactions to disbursements and records them.
//!
//! Parsing streams: input is read through a buffer, never loaded whole (except a workbook,
//! which its format makes a random-access file; see [`excel`]), and every size is bounded by
//! [`Limits`]. A bad CSV row or MT940 transaction yields an `Err` for that row and parsing
//! continues, so a caller can list every bad row; fatal problems (malformed XML, an exceeded
//! limit, no CSV header) end the stream after their `Err`.
//!
//! Each format lives in its own module; see [`csv`], [`excel`], [`camt`] and
//! [`mt940`] for how fields are mapped.
//!
//! ```
//! use fundtrail_importers::{detect, parse, Limits, Record};
//!
//! let file = "交易日期,交易金额,对方户名,附言\n\
//!             2024-01-02,\"-1,000.00\",张三,BATCH-7/12\n\
//!             2024-01-03,12x,李四,\n";
//! let format = detect(file.as_bytes(), Some("export.csv")).unwrap();
//! let records: Vec<_> = parse(file.as_bytes(), format, Limits::default()).collect();
//!
//! let Ok(Record::Transaction(t)) = &records[0] else { panic!() };
//! assert_eq!(t.amount.to_string(), "-1000.00");
//! assert_eq!(t.currency, "CNY");
//! assert_eq!(t.reference.as_deref(), Some("BATCH-7/12"));
//!
//! let err = records[1].as_ref().unwrap_err();
//! assert_eq!(err.code.as_str(), "bad_amount");
//! assert_eq!(err.to_string(), "line 3, field amount: `12x` is not an amount");
//!
//! // The statement facts come last.
//! assert!(matches!(records[2], Ok(Record::Statement(_))));
//! ```

pub mod balance;
pub mod camt;
pub mod csv;
mod detect;
mod error;
pub mod excel;
mod io;
mod model;
pub mod mt940;

use std::io::Read;

pub use detect::{detect, DETECT_BYTES};
pub use error::{ErrorKind, ParseError};
pub use model::{
    CsvProfile, Encoding, Format, Limits, Location, Options, Record, Statement, Transaction,
};

/// A stream of parse results.
pub type Records<'a> = Box<dyn Iterator<Item = Result<Record, ParseError>> + 'a>;

/// Parses `input` in the given format, with default [`Options`] apart from `limits`.
pub fn parse<'a, R: Read + 'a>(input: R, format: Format, limits: Limits) -> Records<'a> {
    parse_with(
        input,
        format,
        &Options {
            limits,
            ..Options::default()
        },
    )
}

/// Parses `input` in the given format with explicit options (encoding, default account).
pub fn parse_with<'a, R: Read + 'a>(input: R, format: Format, options: &Options) -> Records<'a> {
    match format {
        Format::Csv(profile) => csv::parse(input, profile, options),
        Format::Excel(profile) => excel::parse(input, profile, options),
        Format::Camt053 => camt::parse(input, camt::Kind::Statement, options),
        Format::Camt054 => camt::parse(input, camt::Kind::Notification, options),
        Format::Mt940 => mt940::parse(input, options),
    }
}

/// Parses bytes held in memory and collects the results (convenient in tests).
pub fn parse_bytes(
    bytes: &[u8],
    format: Format,
    options: &Options,
) -> Vec<Result<Record, ParseError>> {
    parse_with(bytes, format, options).collect()
}

/// Detects the format from the first [`DETECT_BYTES`] of `input`, then parses all of it.
pub fn parse_auto<'a, R: Read + 'a>(
    mut input: R,
    file_name: Option<&str>,
    options: &Options,
) -> Result<(Format, Records<'a>), ParseError> {
    let (format, head) = detect_head(&mut input, file_name)?;
    let records = parse_with(std::io::Cursor::new(head).chain(input), format, options);
    Ok((format, records))
}

/// Reads the first [`DETECT_BYTES`] of `input` and detects the format from them; returns the
/// format and the bytes read, which the parse must see first (`Cursor::new(head).chain(input)`).
/// For callers that parse elsewhere (another thread) than where they detect.
pub fn detect_head<R: Read>(
    input: &mut R,
    file_name: Option<&str>,
) -> Result<(Format, Vec<u8>), ParseError> {
    let head = io::read_head(input, DETECT_BYTES).map_err(|e| error::from_io(&e))?;
    let format = detect(&head, file_name)?;
    Ok((format, head))
}
