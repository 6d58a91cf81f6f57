//! `.xlsx`: the ZIP's declared sizes are checked, then each sheet is read cell by cell
//! (calamine's cell reader), never as a dense range: a sheet that names cell XFD1048576 costs
//! nothing.

use std::io::Cursor;

use calamine::{DataRef, Reader, Xlsx, XlsxError};

use super::{cell_ref, Driver, Flow, COLUMNS_MAX, UNPACKED_BYTES_MAX};
use crate::csv::Cell;
use crate::error::{ErrorKind, ParseError};

/// More parts than an Office package of a statement ever has.
const ENTRIES_MAX: usize = 10_000;

pub(super) fn read(bytes: Vec<u8>, driver: &mut Driver) {
    if let Err(e) = check_package(&bytes) {
        return driver.fail(e);
    }
    let mut book = match Xlsx::new(Cursor::new(bytes)) {
        Ok(b) => b,
        Err(e) => return driver.fail(unreadable(&e)),
    };
    for name in book.sheet_names() {
        let mut cells = match book.worksheet_cells_reader(&name) {
            Ok(r) => r,
            // A chart sheet or a missing part: not the statement.
            Err(XlsxError::NotAWorksheet(_) | XlsxError::WorksheetNotFound(_)) => continue,
            Err(e) => return driver.fail(unreadable(&e)),
        };
        driver.start_sheet();
        let mut row: Vec<DataRef> = Vec::new();
        let mut row_no: Option<u32> = None;
        let flow = loop {
            let next = match cells.next_cell() {
                Ok(c) => c,
                Err(e) => {
                    driver.fail(malformed(&name, &e));
                    return;
                }
            };
            let position = next.as_ref().map(|c| c.get_position());
            // A row ends where the next begins (or the sheet does).
            if let Some(n) = row_no.filter(|&n| position.map(|p| p.0) != Some(n)) {
                let row_cells: Vec<Cell> = row.iter().map(cell_ref).collect();
                let flow = driver.row(&row_cells, u64::from(n) + 1);
                row.clear();
                if flow != Flow::More {
                    break flow;
                }
            }
            let Some(cell) = next else {
                break Flow::More;
            };
            let (r, c) = cell.get_position();
            row_no = Some(r);
            let c = c as usize;
            if c >= COLUMNS_MAX {
                if *cell.get_value() == DataRef::Empty {
                    continue;
                }
                driver.fail(
                    ParseError::new(
                        ErrorKind::TooLarge,
                        format!("sheet `{name}` has a value beyond column {COLUMNS_MAX}"),
                    )
                    .at(crate::model::Location::Line(u64::from(r) + 1)),
                );
                return;
            }
            if row.len() <= c {
                row.resize(c + 1, DataRef::Empty);
            }
            row[c] = cell.get_value().clone();
        };
        match flow {
            Flow::Stop => return,
            Flow::NextSheet => continue,
            Flow::More => {
                if driver.end_sheet() {
                    return;
                }
            }
        }
    }
    driver.no_statement();
}

/// Refuses packages that would unpack to too much (the sizes the ZIP directory declares are
/// the most its reader will inflate).
fn check_package(bytes: &[u8]) -> Result<(), ParseError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        ParseError::new(
            ErrorKind::UnknownFormat,
            format!("not a readable .xlsx workbook (ZIP: {e})"),
        )
    })?;
    if zip.len() > ENTRIES_MAX {
        return Err(ParseError::new(
            ErrorKind::TooLarge,
            format!("the workbook has more than {ENTRIES_MAX} parts"),
        ));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| {
            ParseError::new(
                ErrorKind::UnknownFormat,
                format!("not a readable .xlsx workbook (ZIP: {e})"),
            )
        })?;
        total = total.saturating_add(entry.size());
    }
    if total > UNPACKED_BYTES_MAX {
        return Err(ParseError::new(
            ErrorKind::TooLarge,
            format!("the workbook unpacks to more than {UNPACKED_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

fn unreadable(e: &XlsxError) -> ParseError {
    ParseError::new(
        ErrorKind::UnknownFormat,
        format!("not a readable .xlsx workbook: {e}"),
    )
}

fn malformed(sheet: &str, e: &XlsxError) -> ParseError {
    ParseError::new(
        ErrorKind::MalformedXml,
        format!("sheet `{sheet}` of the workbook is damaged: {e}"),
    )
}
