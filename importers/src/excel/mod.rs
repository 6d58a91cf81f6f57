//! Excel statements: `.xlsx` (Office Open XML) and `.xls` (Excel 97–2003), read with
//! [calamine](https://docs.rs/calamine) and then exactly like CSV: the same column profiles,
//! preamble, header detection, total rows and running balance ([`crate::csv`]'s row logic
//! takes each sheet row as a row of cells).
//!
//! Only one sheet is read: the first whose first 100 rows hold a recognisable header row
//! (usually the first sheet). Locations are [`Location::Line`](crate::Location::Line) with
//! the **sheet's 1-based row number**, the number Excel shows at the row's left, so a clerk
//! can find the row.
//!
//! Cells keep their type. A number in an amount column is a binary float: it becomes money
//! from its shortest round-trip text (`1234.56`), rounded to cents only when within 1e-9 of
//! a whole number of cents (a formula's residue), else it is a `bad_amount`; money is never
//! computed in floats. Dates may be date cells, Excel serial numbers or text; text cells are
//! read as the CSV parser reads them.
//!
//! **Why not streamed:** both containers need random access (a ZIP archive's directory is at
//! its end; an OLE2 file is a FAT of sectors), so the file is read into memory first, up to
//! [`Limits::file_bytes_max`](crate::Limits) and never more than [`WORKBOOK_BYTES_MAX`]
//! (256 MiB, well above any statement export). Then every size is bounded again: an `.xlsx`
//! may unpack to at most [`UNPACKED_BYTES_MAX`] and its sheet is read cell by cell, never
//! as a whole; an `.xls` is checked record by record before calamine builds its sheets in
//! memory (at most [`XLS_CELLS_MAX`] cells), and calamine is handed a clean compound file
//! holding only the workbook stream. Rows wider than [`COLUMNS_MAX`] are refused.
//!
//! The workbook is read on a helper thread that hands records over a bounded channel, so
//! that the records stream (calamine's cell reader borrows the workbook, which an iterator
//! cannot own alongside it) and so that a fault inside calamine ends the stream with an
//! error instead of taking the caller down.

mod xls;
mod xlsx;

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime};

use crate::csv::{Cell, Rows, PREAMBLE_ROWS_MAX};
use crate::error::{from_io, ErrorKind, ParseError};
use crate::io::ymd;
use crate::model::{CsvProfile, Options, Record};

/// The largest workbook read into memory, whatever [`crate::Limits`] allows.
pub const WORKBOOK_BYTES_MAX: u64 = 256 << 20;
/// The most an `.xlsx` may unpack to, all its parts together (a ZIP bomb's guard).
pub const UNPACKED_BYTES_MAX: u64 = 1 << 30;
/// The most cells calamine may hold for an `.xls`'s sheets, counted as it allocates them:
/// each sheet's `DIMENSIONS` plus twice the span of its cells (values and formulas). A full
/// 65,536-row sheet of 40 columns fits; the peak is then about 300 MB.
pub const XLS_CELLS_MAX: u64 = 8 << 20;
/// The widest row read; statement exports have a few dozen columns.
pub const COLUMNS_MAX: usize = 256;

/// Records handed over at a time by the reading thread.
const CHANNEL_RECORDS: usize = 256;

/// An Excel container, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkbookKind {
    /// A ZIP archive (`.xlsx` if it holds a workbook).
    Xlsx,
    /// An OLE2 compound file (`.xls` if it holds a `Workbook` stream).
    Xls,
}

/// The container the bytes start with, if either.
pub(crate) fn workbook_kind(head: &[u8]) -> Option<WorkbookKind> {
    if head.starts_with(b"PK\x03\x04") {
        Some(WorkbookKind::Xlsx)
    } else if head.starts_with(&xls::CFB_MAGIC) {
        Some(WorkbookKind::Xls)
    } else {
        None
    }
}

type Item = Result<Record, ParseError>;

/// Parses a workbook; see the module documentation.
pub(crate) fn parse<'a, R: Read + 'a>(
    input: R,
    profile: CsvProfile,
    options: &Options,
) -> Box<dyn Iterator<Item = Item> + 'a> {
    let pending = |e| {
        Box::new(ExcelIter {
            rx: None,
            worker: None,
            pending: Some(e),
        })
    };
    let bytes = match read_bounded(input, options.limits.file_bytes_max) {
        Ok(b) => b,
        Err(e) => return pending(e),
    };
    let Some(kind) = workbook_kind(&bytes) else {
        return pending(ParseError::new(
            ErrorKind::UnknownFormat,
            "not an Excel workbook (neither a .xlsx ZIP archive nor a .xls OLE2 file)",
        ));
    };
    let (tx, rx) = sync_channel(CHANNEL_RECORDS);
    let options = options.clone();
    let spawned = std::thread::Builder::new()
        .name("excel-statement".into())
        .spawn(move || {
            let mut driver = Driver::new(profile, options, tx);
            match kind {
                WorkbookKind::Xlsx => xlsx::read(bytes, &mut driver),
                WorkbookKind::Xls => xls::read(bytes, &mut driver),
            }
        });
    match spawned {
        Ok(worker) => Box::new(ExcelIter {
            rx: Some(rx),
            worker: Some(worker),
            pending: None,
        }),
        Err(e) => pending(from_io(&e)),
    }
}

/// Reads all of `input`, refusing more than the limit (and [`WORKBOOK_BYTES_MAX`]).
fn read_bounded<R: Read>(input: R, file_bytes_max: u64) -> Result<Vec<u8>, ParseError> {
    let max = file_bytes_max.min(WORKBOOK_BYTES_MAX);
    let mut bytes = Vec::new();
    input
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| from_io(&e))?;
    if bytes.len() as u64 > max {
        return Err(ParseError::new(
            ErrorKind::TooLarge,
            format!("file is larger than {max} bytes (a workbook is read into memory whole)"),
        ));
    }
    Ok(bytes)
}

/// The receiving end of the reading thread.
struct ExcelIter {
    rx: Option<Receiver<Item>>,
    worker: Option<JoinHandle<()>>,
    /// An error found before reading began.
    pending: Option<ParseError>,
}

impl Iterator for ExcelIter {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        let rx = self.rx.as_ref()?;
        if let Ok(item) = rx.recv() {
            return Some(item);
        }
        self.rx = None;
        match self.worker.take()?.join() {
            Ok(()) => None,
            // calamine panicked on this file (the thread's panic message went to stderr).
            Err(_) => Some(Err(ParseError::new(
                ErrorKind::UnknownFormat,
                "the workbook is damaged: the spreadsheet reader failed on it",
            ))),
        }
    }
}

/// What a sheet reader does after a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with this sheet.
    More,
    /// This sheet has no header: try the next.
    NextSheet,
    /// The stream has ended (fatal error, or nobody is listening any more).
    Stop,
}

/// Feeds sheet rows to the shared row logic and hands its records to the channel.
pub(crate) struct Driver {
    profile: CsvProfile,
    options: Options,
    rows: Rows,
    tx: SyncSender<Item>,
}

impl Driver {
    fn new(profile: CsvProfile, options: Options, tx: SyncSender<Item>) -> Driver {
        Driver {
            rows: Rows::new(profile, &options),
            profile,
            options,
            tx,
        }
    }

    /// Starts reading a sheet afresh (a preamble of an earlier sheet does not carry over).
    pub(crate) fn start_sheet(&mut self) {
        self.rows = Rows::new(self.profile, &self.options);
    }

    /// One sheet row, `line` being its 1-based row number.
    pub(crate) fn row(&mut self, cells: &[Cell], line: u64) -> Flow {
        match self.rows.push(cells, line) {
            Ok(()) if self.drain() => Flow::More,
            Ok(()) => Flow::Stop,
            // The preamble limit: maybe another sheet is the statement.
            Err(_) if !self.rows.has_header() => Flow::NextSheet,
            Err(e) => {
                self.fail(e);
                Flow::Stop
            }
        }
    }

    /// The sheet has ended; true if it was the statement (the stream is then complete).
    pub(crate) fn end_sheet(&mut self) -> bool {
        if !self.rows.has_header() {
            return false;
        }
        self.rows.finish();
        self.drain();
        true
    }

    /// No sheet had a header.
    pub(crate) fn no_statement(&mut self) {
        self.fail(ParseError::new(
            ErrorKind::BadHeader,
            format!(
                "no sheet has a header row with a date and an amount column in its first \
                 {PREAMBLE_ROWS_MAX} rows"
            ),
        ));
    }

    /// Ends the stream with `e`, after what is queued.
    pub(crate) fn fail(&mut self, e: ParseError) {
        if self.drain() {
            let _ = self.tx.send(Err(e));
        }
    }

    /// Hands over the queued records; false once the receiver is gone.
    fn drain(&mut self) -> bool {
        while let Some(item) = self.rows.pop() {
            if self.tx.send(item).is_err() {
                return false;
            }
        }
        true
    }
}

/// A calamine cell (xlsx, borrowed from the workbook) as a row cell.
pub(crate) fn cell_ref<'a>(d: &'a DataRef<'_>) -> Cell<'a> {
    match d {
        DataRef::Int(i) => Cell::Int(*i),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s),
        DataRef::SharedString(s) => Cell::Text(s),
        DataRef::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }),
        DataRef::DateTime(dt) => date_cell(dt),
        DataRef::Error(e) => Cell::Text(error_text(e)),
        DataRef::Empty => Cell::Empty,
    }
}

/// A calamine cell (xls, owned by the sheet) as a row cell.
pub(crate) fn cell_data(d: &Data) -> Cell<'_> {
    match d {
        Data::Int(i) => Cell::Int(*i),
        Data::Float(f) => Cell::Number(*f),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s),
        Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(dt) => date_cell(dt),
        Data::Error(e) => Cell::Text(error_text(e)),
        Data::Empty => Cell::Empty,
    }
}

/// A date-formatted cell; calamine applies the workbook's 1900 or 1904 date system.
fn date_cell(dt: &ExcelDateTime) -> Cell<'static> {
    let serial = dt.as_f64();
    // calamine clamps serials outside Excel's range to its first or last day; such a cell
    // is no date.
    let day = (dt.is_datetime() && (0.0..2_958_466.0).contains(&serial))
        .then(|| dt.to_ymd_hms_milli())
        .and_then(|(y, m, d, ..)| ymd(i32::from(y), u32::from(m), u32::from(d)));
    Cell::Date(serial, day)
}

/// The text Excel shows for an error cell (an amount `#VALUE!` is then a `bad_amount`).
fn error_text(e: &CellErrorType) -> &'static str {
    match e {
        CellErrorType::Div0 => "#DIV/0!",
        CellErrorType::NA => "#N/A",
        CellErrorType::Name => "#NAME?",
        CellErrorType::Null => "#NULL!",
        CellErrorType::Num => "#NUM!",
        CellErrorType::Ref => "#REF!",
        CellErrorType::Value => "#VALUE!",
        CellErrorType::GettingData => "#DATA!",
    }
}
