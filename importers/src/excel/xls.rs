//! `.xls` (BIFF8 in an OLE2 compound file). calamine builds every sheet as a dense range when
//! it opens the workbook, and trusts the file's sector chains and sheet dimensions; a small
//! hostile file could make it loop or reserve terabytes. So before calamine sees anything:
//!
//! 1. the `Workbook` stream is extracted here, every sector chain bounded and acyclic;
//! 2. its records are checked where calamine would allocate: the `DIMENSIONS` records and the
//!    span of the cell records of each sheet, at most [`XLS_CELLS_MAX`] cells in all;
//! 3. calamine is given a fresh compound file that holds only that stream.

use std::io::Cursor;

use calamine::{Reader, Xls};

use super::{cell_data, Driver, Flow, COLUMNS_MAX, XLS_CELLS_MAX};
use crate::csv::Cell;
use crate::error::{ErrorKind, ParseError};

/// The first bytes of an OLE2 compound file.
pub(crate) const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
const FREE: u32 = 0xFFFF_FFFF;
const FAT_SECTOR: u32 = 0xFFFF_FFFD;
const DIFAT_SECTOR: u32 = 0xFFFF_FFFC;
const NO_STREAM: u32 = 0xFFFF_FFFF;
/// Streams shorter than this live in the mini stream (64-byte sectors).
const MINI_CUTOFF: usize = 4096;

pub(super) fn read(bytes: Vec<u8>, driver: &mut Driver) {
    let stream = match workbook_stream(&bytes).and_then(|s| check_records(&s).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return driver.fail(e),
    };
    drop(bytes);
    let clean = single_stream_file(&stream);
    drop(stream);
    let mut book = match Xls::new(Cursor::new(clean)) {
        Ok(b) => b,
        Err(e) => {
            return driver.fail(ParseError::new(
                ErrorKind::UnknownFormat,
                format!("not a readable .xls workbook: {e}"),
            ))
        }
    };
    for name in book.sheet_names() {
        let Ok(range) = book.worksheet_range(&name) else {
            continue;
        };
        driver.start_sheet();
        let (first_row, first_col) = range.start().unwrap_or((0, 0));
        let mut flow = Flow::More;
        for (i, cells) in range.rows().enumerate() {
            // Columns past the limit were refused by `check_records`; this only keeps the
            // row's width bounded whatever calamine does.
            let width = cells
                .len()
                .min(COLUMNS_MAX.saturating_sub(first_col as usize));
            let row: Vec<Cell> = cells[..width].iter().map(cell_data).collect();
            flow = driver.row(&row, u64::from(first_row) + i as u64 + 1);
            if flow != Flow::More {
                break;
            }
        }
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

fn damaged(what: &str) -> ParseError {
    ParseError::new(
        ErrorKind::UnknownFormat,
        format!("not a readable .xls workbook: {what}"),
    )
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

// ---------------------------------------------------------------------------------------
// Reading the compound file
// ---------------------------------------------------------------------------------------

/// The sectors of a compound file; a chain is followed for at most as many steps as the file
/// has sectors, so a loop ends in an error, not in memory.
struct Sectors<'a> {
    file: &'a [u8],
    size: usize,
    count: usize,
    fat: Vec<u32>,
}

impl<'a> Sectors<'a> {
    fn sector(&self, id: u32) -> Result<&'a [u8], ParseError> {
        let id = id as usize;
        if id >= self.count {
            return Err(damaged("a sector number beyond the end of the file"));
        }
        let start = (id + 1) * self.size;
        let end = (start + self.size).min(self.file.len());
        Ok(&self.file[start..end])
    }

    /// The sector ids of the chain from `start`; a loop or a number out of range is an error.
    fn chain(&self, table: &[u32], start: u32, limit: usize) -> Result<Vec<u32>, ParseError> {
        let mut ids = Vec::new();
        let mut id = start;
        while id != END_OF_CHAIN {
            if ids.len() >= limit || id as usize >= table.len() {
                return Err(damaged("a broken sector chain"));
            }
            ids.push(id);
            id = table[id as usize];
        }
        Ok(ids)
    }

    /// The bytes of a regular chain, up to `len` (all of them if `None`).
    fn read(&self, start: u32, len: Option<usize>) -> Result<Vec<u8>, ParseError> {
        let ids = self.chain(&self.fat, start, self.count)?;
        let mut out = Vec::with_capacity(len.unwrap_or(ids.len() * self.size));
        for id in ids {
            out.extend_from_slice(self.sector(id)?);
            if len.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        if let Some(l) = len {
            if out.len() < l {
                return Err(damaged("a stream shorter than its stated size"));
            }
            out.truncate(l);
        }
        Ok(out)
    }
}

/// The `Workbook` (BIFF8) or `Book` (BIFF5) stream of a compound file.
fn workbook_stream(file: &[u8]) -> Result<Vec<u8>, ParseError> {
    if file.len() < 512 || file[..8] != CFB_MAGIC {
        return Err(damaged("no OLE2 header"));
    }
    let field16 = |at| u16_at(file, at).unwrap_or(0);
    let field32 = |at| u32_at(file, at).unwrap_or(0);
    let size = match field16(30) {
        9 => 512,
        12 => 4096,
        _ => return Err(damaged("an unknown sector size")),
    };
    if field16(32) != 6 {
        return Err(damaged("an unknown mini sector size"));
    }
    let count = (file.len().saturating_sub(size)).div_ceil(size);
    let mut sectors = Sectors {
        file,
        size,
        count,
        fat: Vec::new(),
    };

    // Which sectors hold the FAT: 109 in the header, the rest in a chain of DIFAT sectors
    // (each ending in the next one's number).
    let mut fat_ids: Vec<u32> = (0..109).filter_map(|i| u32_at(file, 76 + 4 * i)).collect();
    let mut next = field32(68);
    let mut hops = 0;
    // Enough DIFAT sectors to list a FAT for every sector of the file, and no more.
    let hops_max = count / (size / 4) + 2;
    while next != END_OF_CHAIN && next != FREE {
        hops += 1;
        if hops > hops_max {
            return Err(damaged("a broken DIFAT chain"));
        }
        let sector = sectors.sector(next)?;
        let words: Vec<u32> = sector
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let Some((&last, entries)) = words.split_last() else {
            return Err(damaged("a short DIFAT sector"));
        };
        fat_ids.extend_from_slice(entries);
        next = last;
    }
    let mut fat = Vec::new();
    for id in fat_ids.into_iter().filter(|&id| (id as usize) < count) {
        let sector = sectors.sector(id)?;
        fat.extend(
            sector
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
        );
        if fat.len() > count.saturating_mul(2) + 1024 {
            return Err(damaged("a FAT larger than the file"));
        }
    }
    sectors.fat = fat;

    let directory = sectors.read(field32(48), None)?;
    let entries: Vec<&[u8]> = directory.chunks_exact(128).collect();
    let name_of = |e: &[u8]| {
        let len = usize::from(u16_at(e, 64).unwrap_or(0)).min(64);
        let units: Vec<u16> = e[..len]
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    };
    let find = |wanted: &str| {
        entries
            .iter()
            .find(|e| e[66] == 2 && name_of(e).eq_ignore_ascii_case(wanted))
    };
    let Some(entry) = find("Workbook").or_else(|| find("Book")) else {
        if find("EncryptedPackage").is_some() {
            return Err(damaged(
                "it is password-protected (save it again without a password)",
            ));
        }
        return Err(damaged("no Workbook stream (is it an Excel file?)"));
    };
    let start = u32_at(entry, 116).unwrap_or(END_OF_CHAIN);
    let mut len = u64::from(u32_at(entry, 120).unwrap_or(0));
    if size == 4096 {
        len |= u64::from(u32_at(entry, 124).unwrap_or(0)) << 32;
    }
    if len > file.len() as u64 {
        return Err(damaged("a stream larger than the file"));
    }
    let len = len as usize;
    if len >= MINI_CUTOFF {
        return sectors.read(start, Some(len));
    }

    // A small workbook lives in the mini stream: 64-byte sectors inside the root entry's
    // stream, chained by the mini FAT.
    let root = entries.first().ok_or_else(|| damaged("no root entry"))?;
    let mini_stream = sectors.read(u32_at(root, 116).unwrap_or(END_OF_CHAIN), None)?;
    let mini_fat: Vec<u32> = sectors
        .read(field32(60), None)?
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let mini_count = mini_stream.len() / 64;
    let ids = sectors.chain(&mini_fat, start, mini_count)?;
    let mut out = Vec::with_capacity(len);
    for id in ids {
        let at = id as usize * 64;
        let Some(chunk) = mini_stream.get(at..at + 64) else {
            return Err(damaged("a mini sector beyond the mini stream"));
        };
        out.extend_from_slice(chunk);
        if out.len() >= len {
            break;
        }
    }
    if out.len() < len {
        return Err(damaged("a stream shorter than its stated size"));
    }
    out.truncate(len);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Checking the records calamine will act on
// ---------------------------------------------------------------------------------------

/// BIFF records from `at`: (type, data), as calamine's reader walks them.
fn records(stream: &[u8], at: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = stream.get(at..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let typ = u16_at(rest, 0)?;
        let len = usize::from(u16_at(rest, 2)?);
        let data = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some((typ, data))
    })
}

/// Refuses a workbook whose sheets would make calamine hold more than [`XLS_CELLS_MAX`]
/// cells, or whose records would make it compute a negative size.
fn check_records(stream: &[u8]) -> Result<(), ParseError> {
    let too_large = || {
        ParseError::new(
            ErrorKind::TooLarge,
            format!("the workbook's sheets span more than {XLS_CELLS_MAX} cells"),
        )
    };
    // The globals substream names where each sheet starts (BoundSheet8).
    let mut starts = Vec::new();
    for (typ, data) in records(stream, 0) {
        match typ {
            0x0085 => starts.push(u32_at(data, 0).unwrap_or(u32::MAX) as usize),
            0x000A => break,
            _ => {}
        }
    }
    let mut total: u64 = 0;
    for start in starts {
        if start > stream.len() {
            return Err(damaged("a sheet starts beyond the end of the workbook"));
        }
        let mut span: Option<(u32, u32, u32, u32)> = None;
        let mut note = |row: u32, first: u32, last: u32| {
            let s = span.get_or_insert((row, row, first, last));
            *s = (s.0.min(row), s.1.max(row), s.2.min(first), s.3.max(last));
        };
        // Nested substreams (charts) are skipped the way calamine skips them.
        let mut seen_bof = false;
        let mut depth = 0usize;
        for (typ, data) in records(stream, start) {
            if depth > 0 {
                match typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            let cell =
                |data: &[u8]| Some((u32::from(u16_at(data, 0)?), u32::from(u16_at(data, 2)?)));
            match typ {
                0x0809 if seen_bof => depth += 1,
                0x0809 => seen_bof = true,
                0x000A => break,
                0x0200 => total = total.saturating_add(dimensions(data)?),
                // Number, Label, RString, BoolErr, RK, LabelSst, Formula: row and column first.
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                    if let Some((row, col)) = cell(data) {
                        note(row, col, col);
                    }
                }
                // MulRk: row, first column, ..., last column.
                0x00BD if data.len() >= 6 => {
                    let row = u32::from(u16_at(data, 0).unwrap_or(0));
                    let first = u32::from(u16_at(data, 2).unwrap_or(0));
                    let last = u32::from(u16_at(data, data.len() - 2).unwrap_or(0));
                    if last < first {
                        return Err(damaged("a MULRK record with its columns reversed"));
                    }
                    note(row, first, last);
                }
                _ => {}
            }
        }
        if let Some((r0, r1, c0, c1)) = span {
            if c1 as usize >= COLUMNS_MAX {
                return Err(ParseError::new(
                    ErrorKind::TooLarge,
                    format!("a sheet has a value beyond column {COLUMNS_MAX}"),
                ));
            }
            // calamine's dense range of values and its range of formulas.
            let cells = u64::from(r1 - r0 + 1) * u64::from(c1 - c0 + 1);
            total = total.saturating_add(cells.saturating_mul(2));
        }
        if total > XLS_CELLS_MAX {
            return Err(too_large());
        }
    }
    if total > XLS_CELLS_MAX {
        return Err(too_large());
    }
    Ok(())
}

/// The cells calamine reserves for a `DIMENSIONS` record, read as calamine reads it.
fn dimensions(data: &[u8]) -> Result<u64, ParseError> {
    let (rf, rl, mut cf, cl) = match data.len() {
        10 => (
            u32::from(u16_at(data, 0).unwrap_or(0)),
            u32::from(u16_at(data, 2).unwrap_or(0)),
            u32::from(u16_at(data, 4).unwrap_or(0)),
            u32::from(u16_at(data, 6).unwrap_or(0)),
        ),
        14 | 16 => (
            u32_at(data, 0).unwrap_or(0),
            u32_at(data, 4).unwrap_or(0),
            u32::from(u16_at(data, 8).unwrap_or(0)),
            u32::from(u16_at(data, 10).unwrap_or(0)),
        ),
        // calamine refuses the record itself.
        _ => return Ok(0),
    };
    if 0xFF < cf || cl < cf {
        cf = 0;
    }
    if rl == 0 || cl == 0 {
        return Ok(1);
    }
    let (rows, cols) = match ((rl - 1).checked_sub(rf), (cl - 1).checked_sub(cf)) {
        (Some(r), Some(c)) => (u64::from(r) + 1, u64::from(c) + 1),
        _ => return Err(damaged("a DIMENSIONS record that ends before it starts")),
    };
    Ok(rows.saturating_mul(cols))
}

// ---------------------------------------------------------------------------------------
// The clean compound file handed to calamine
// ---------------------------------------------------------------------------------------

/// A version 3 compound file (512-byte sectors) holding `stream` as `Workbook`, padded to
/// at least [`MINI_CUTOFF`] bytes so that it lives in regular sectors (BIFF readers stop at
/// the EOF record, so the padding is never read). Layout: FAT sectors, DIFAT sectors, one
/// directory sector, the stream.
fn single_stream_file(stream: &[u8]) -> Vec<u8> {
    const SIZE: usize = 512;
    const PER_SECTOR: usize = SIZE / 4;
    let padded = stream.len().max(MINI_CUTOFF).div_ceil(SIZE) * SIZE;
    let data_sectors = padded / SIZE;
    // FAT sectors cover every sector, themselves included; the header lists 109 of them and
    // each DIFAT sector 127 more.
    let (mut fats, mut difats) = (1usize, 0usize);
    loop {
        let total = fats + difats + 1 + data_sectors;
        let need_fats = total.div_ceil(PER_SECTOR);
        let need_difats = need_fats.saturating_sub(109).div_ceil(PER_SECTOR - 1);
        if (need_fats, need_difats) == (fats, difats) {
            break;
        }
        (fats, difats) = (need_fats, need_difats);
    }
    let dir = fats + difats;
    let first_data = dir + 1;
    let total = first_data + data_sectors;

    let mut fat = vec![FREE; fats * PER_SECTOR];
    fat[..fats].fill(FAT_SECTOR);
    fat[fats..dir].fill(DIFAT_SECTOR);
    fat[dir] = END_OF_CHAIN;
    for (id, next) in fat.iter_mut().enumerate().take(total).skip(first_data) {
        *next = if id + 1 < total {
            id as u32 + 1
        } else {
            END_OF_CHAIN
        };
    }

    let mut out = Vec::with_capacity((total + 1) * SIZE);
    let put16 = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
    let put32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    out.extend_from_slice(&CFB_MAGIC);
    out.extend_from_slice(&[0; 16]); // class id
    put16(&mut out, 0x003E); // minor version
    put16(&mut out, 3); // major version
    put16(&mut out, 0xFFFE); // byte order
    put16(&mut out, 9); // sector shift: 512
    put16(&mut out, 6); // mini sector shift: 64
    out.extend_from_slice(&[0; 6]);
    put32(&mut out, 0); // directory sectors (0 in version 3)
    put32(&mut out, fats as u32);
    put32(&mut out, dir as u32);
    put32(&mut out, 0); // transaction signature
    put32(&mut out, MINI_CUTOFF as u32);
    put32(&mut out, END_OF_CHAIN); // no mini FAT
    put32(&mut out, 0);
    put32(
        &mut out,
        if difats > 0 {
            fats as u32
        } else {
            END_OF_CHAIN
        },
    );
    put32(&mut out, difats as u32);
    for i in 0..109 {
        put32(&mut out, if i < fats { i as u32 } else { FREE });
    }
    debug_assert_eq!(out.len(), SIZE);

    for word in &fat {
        put32(&mut out, *word);
    }
    for d in 0..difats {
        for k in 0..PER_SECTOR - 1 {
            let i = 109 + d * (PER_SECTOR - 1) + k;
            put32(&mut out, if i < fats { i as u32 } else { FREE });
        }
        let next = if d + 1 < difats {
            (fats + d + 1) as u32
        } else {
            END_OF_CHAIN
        };
        put32(&mut out, next);
    }

    let entry = |out: &mut Vec<u8>, name: &str, kind: u8, child: u32, start: u32, len: u32| {
        let units: Vec<u16> = name.encode_utf16().chain([0]).collect();
        let at = out.len();
        for u in &units {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out.resize(at + 64, 0);
        out.extend_from_slice(&((units.len() * 2) as u16).to_le_bytes());
        out.push(kind);
        out.push(1); // black
        for sibling_or_child in [NO_STREAM, NO_STREAM, child] {
            out.extend_from_slice(&sibling_or_child.to_le_bytes());
        }
        out.resize(at + 116, 0); // class id, state bits, times
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.resize(at + 128, 0);
    };
    entry(&mut out, "Root Entry", 5, 1, END_OF_CHAIN, 0);
    entry(
        &mut out,
        "Workbook",
        2,
        NO_STREAM,
        first_data as u32,
        padded as u32,
    );
    for _ in 0..2 {
        entry(&mut out, "", 0, NO_STREAM, 0, 0);
    }

    out.extend_from_slice(stream);
    out.resize((total + 1) * SIZE, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuilt_file_gives_back_its_stream() {
        // Small (mini-stream sized), a few sectors, and large enough to need DIFAT sectors.
        for len in [100, 5000, 9_000_000] {
            let stream: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = single_stream_file(&stream);
            let back = workbook_stream(&file).unwrap();
            assert_eq!(
                back.len(),
                stream.len().max(MINI_CUTOFF).div_ceil(512) * 512
            );
            assert_eq!(&back[..len], &stream[..], "{len}");
        }
    }

    #[test]
    fn loops_and_wild_numbers_in_a_compound_file_are_errors() {
        let stream = vec![7u8; 5000];
        let good = single_stream_file(&stream);
        // The FAT starts at sector 0 (offset 512); the stream's first entry points at itself.
        // One FAT sector (0), the directory (1), the stream from sector 2: make 3 point at 3.
        let mut looped = good.clone();
        let at = 512 + 4 * 3;
        looped[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
        assert!(workbook_stream(&looped).is_err());
        let mut wild = good.clone();
        wild[48..52].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes()); // directory sector
        assert!(workbook_stream(&wild).is_err());
        assert!(workbook_stream(&good[..600]).is_err());
    }

    #[test]
    fn records_that_would_make_calamine_allocate_without_bound_are_refused() {
        let record = |typ: u16, data: &[u8]| {
            let mut r = typ.to_le_bytes().to_vec();
            r.extend_from_slice(&(data.len() as u16).to_le_bytes());
            r.extend_from_slice(data);
            r
        };
        let workbook = |sheet: &[u8]| {
            let mut globals = record(0x0809, &[0; 16]);
            let bound = record(0x0085, &[0; 8]);
            let start = (globals.len() + bound.len() + 4) as u32;
            let mut b = bound;
            b[4..8].copy_from_slice(&start.to_le_bytes());
            globals.extend(b);
            globals.extend(record(0x000A, &[]));
            globals.extend(record(0x0809, &[0; 16]));
            globals.extend_from_slice(sheet);
            globals.extend(record(0x000A, &[]));
            globals
        };
        let mut dims = Vec::new();
        dims.extend_from_slice(&0u32.to_le_bytes());
        dims.extend_from_slice(&u32::MAX.to_le_bytes());
        dims.extend_from_slice(&[0, 0, 200, 0, 0, 0]);
        assert!(check_records(&workbook(&record(0x0200, &dims))).is_err());
        // rf > rl - 1: calamine would subtract below zero.
        let mut reversed = Vec::new();
        reversed.extend_from_slice(&9u32.to_le_bytes());
        reversed.extend_from_slice(&5u32.to_le_bytes());
        reversed.extend_from_slice(&[0, 0, 2, 0, 0, 0]);
        assert!(check_records(&workbook(&record(0x0200, &reversed))).is_err());
        // Two cells far apart span a huge dense range.
        let mut far = record(0x0203, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        far.extend(record(
            0x0203,
            &[0xFF, 0xFF, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ));
        assert!(check_records(&workbook(&far)).is_err());
        // A column past the limit.
        let wide = record(0x0203, &[0, 0, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(check_records(&workbook(&wide)).is_err());
        let fine = record(0x0203, &[3, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(check_records(&workbook(&fine)).is_ok());
    }
}
