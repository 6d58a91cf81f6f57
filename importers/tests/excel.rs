//! Excel statements read exactly like their CSV sources: each workbook under
//! `tests/data/excel/` (written by `make_excel.py` from a CSV) must give the CSV's
//! transactions, errors and statement facts; only the locations are the sheet's row numbers.

mod common;

use chrono::NaiveDate;
use common::{dec, parse, parse_with, sample};
use fundtrail_importers::{
    detect, parse_auto, parse_bytes, CsvProfile, ErrorKind, Format, Limits, Location, Options,
    ParseError, Record, DETECT_BYTES,
};
use proptest::prelude::*;

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/excel/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn demo(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../fixtures/demo/statements/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const EXCEL: Format = Format::Excel(CsvProfile::Generic);

/// Each workbook and the CSV it was written from.
fn pairs() -> Vec<(&'static str, Vec<u8>)> {
    let abc = sample("csv-cn/abc-debit.utf8.csv");
    let cmb = sample("csv-cn/cmb-debit.utf8.csv");
    let icbc = sample("csv-cn/icbc-debit.utf8.csv");
    let twn = demo("TWN-AP-CG.icbc.gbk.csv");
    vec![
        ("abc-debit.xlsx", abc.clone()),
        ("abc-debit.xls", abc),
        ("cmb-debit.xlsx", cmb.clone()),
        ("cmb-debit.xls", cmb),
        ("icbc-debit.xlsx", icbc.clone()),
        ("icbc-debit.xls", icbc),
        ("TWN-AP-CG.icbc.xlsx", twn.clone()),
        ("TWN-AP-CG.icbc.xls", twn),
    ]
}

fn line(l: &Location) -> u64 {
    match l {
        Location::Line(n) => *n,
        Location::XmlPath(p) => panic!("{p}"),
    }
}

/// The records with every location blanked, and the locations in order.
fn split_locations(
    records: &[Result<Record, ParseError>],
) -> (Vec<Result<Record, ParseError>>, Vec<u64>) {
    let mut lines = Vec::new();
    let blank = Location::Line(0);
    let records = records
        .iter()
        .cloned()
        .map(|r| match r {
            Ok(Record::Transaction(mut t)) => {
                lines.push(line(&t.location));
                t.location = blank.clone();
                Ok(Record::Transaction(t))
            }
            Ok(Record::Statement(mut s)) => {
                lines.push(line(&s.location));
                s.location = blank.clone();
                Ok(Record::Statement(s))
            }
            Err(mut e) => {
                lines.push(e.location.as_ref().map_or(0, line));
                e.location = e.location.map(|_| blank.clone());
                Err(e)
            }
        })
        .collect();
    (records, lines)
}

#[test]
fn every_workbook_reads_like_its_csv() {
    for (name, csv) in pairs() {
        let csv_format = detect(&csv, None).unwrap();
        let from_csv = parse(&csv, csv_format);
        let bytes = data(name);
        let from_excel = parse(&bytes, EXCEL);
        let (want, _) = split_locations(&from_csv.records);
        let (got, _) = split_locations(&from_excel.records);
        assert_eq!(got, want, "{name}");
        assert!(!from_excel.txs.is_empty(), "{name}");
        // Amounts print the same too (numeric cells come out in cents).
        for (a, b) in from_excel.txs.iter().zip(&from_csv.txs) {
            assert_eq!(a.amount.to_string(), b.amount.to_string(), "{name}");
        }
        // Naming the bank's profile gives the same as letting the header pick it.
        let Format::Csv(profile) = csv_format else {
            panic!()
        };
        let named = parse(&bytes, Format::Excel(profile));
        assert_eq!(named.records, from_excel.records, "{name}");
    }
}

#[test]
fn locations_are_the_sheets_row_numbers() {
    // cmb-debit.xlsx has two title rows above the CSV's table: every row is two further down.
    let csv = parse(
        &sample("csv-cn/cmb-debit.utf8.csv"),
        Format::Csv(CsvProfile::Cmb),
    );
    let xlsx = parse(&data("cmb-debit.xlsx"), EXCEL);
    let (_, csv_lines) = split_locations(&csv.records);
    let (_, xlsx_lines) = split_locations(&xlsx.records);
    let shifted: Vec<u64> = csv_lines.iter().map(|l| l + 2).collect();
    assert_eq!(xlsx_lines, shifted);
    assert_eq!(xlsx.stmts[0].location, Location::Line(3), "the header row");
    assert_eq!(xlsx.txs[0].location, Location::Line(4));
    let e = &xlsx.errors[0];
    assert_eq!(
        e.to_string(),
        "line 6, field balance: balance 81.22 stated, 271.66 + -3.00 = 268.66 expected"
    );

    // The demo's workbook has a cover sheet; the statement on sheet 2 is row for row the CSV.
    let csv = parse(
        &demo("TWN-AP-CG.icbc.gbk.csv"),
        Format::Csv(CsvProfile::Icbc),
    );
    let xlsx = parse(&data("TWN-AP-CG.icbc.xlsx"), EXCEL);
    assert_eq!(
        split_locations(&xlsx.records).1,
        split_locations(&csv.records).1
    );
    assert_eq!(xlsx.txs[0].location, Location::Line(10));
}

#[test]
fn the_demo_workbooks_chain_and_state_their_period() {
    for name in ["TWN-AP-CG.icbc.xlsx", "TWN-AP-CG.icbc.xls"] {
        let p = parse(&data(name), EXCEL);
        assert!(p.errors.is_empty(), "{name}: {:?}", p.errors);
        let s = &p.stmts[0];
        assert_eq!(s.account, "1508021209202905541");
        assert_eq!(
            (s.opening_balance, s.closing_balance),
            (Some(dec("9276.08")), Some(dec("6416.08")))
        );
        let sum: rust_decimal::Decimal = p.txs.iter().map(|t| t.amount).sum();
        assert_eq!(s.opening_balance.unwrap() + sum, s.closing_balance.unwrap());
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert_eq!((s.from_date, s.to_date), (d("2026-11-01"), d("2026-11-30")));
    }
}

#[test]
fn numbers_dates_and_error_cells() {
    let p = parse(&data("odd-cells.xlsx"), EXCEL);
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    // 0.1 + 0.2 = 0.30000000000000004 is a formula's residue: 0.30. A date cell.
    assert_eq!(p.txs[0].amount.to_string(), "0.30");
    assert_eq!(p.txs[0].booking_date, d("2026-11-02"));
    assert_eq!(p.txs[0].location, Location::Line(2));
    // 20261107 written as a number is a date.
    assert_eq!(p.txs[1].amount.to_string(), "-0.30");
    assert_eq!(p.txs[1].booking_date, d("2026-11-07"));
    let errors: Vec<String> = p.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "line 3, field amount: `12.345` is not an amount",
            "line 4, field amount: `#VALUE!` is not an amount",
        ]
    );
    assert!(p.errors.iter().all(|e| e.code == ErrorKind::BadAmount));
    // Rows that could not be read are not checked across: 100.30 - 0.30 and 100.00.
    let s = &p.stmts[0];
    assert_eq!(
        (s.opening_balance, s.closing_balance),
        (Some(dec("100.00")), Some(dec("100.00")))
    );
}

#[test]
fn workbooks_are_detected_by_their_container() {
    for (name, _) in pairs() {
        let bytes = data(name);
        assert_eq!(detect(&bytes, Some(name)).unwrap(), EXCEL, "{name}");
        let head = &bytes[..bytes.len().min(DETECT_BYTES)];
        assert_eq!(detect(head, None).unwrap(), EXCEL, "{name} (head, no name)");
        let (format, records) = parse_auto(&bytes[..], Some(name), &Options::default()).unwrap();
        assert_eq!(format, EXCEL);
        assert_eq!(
            records.collect::<Vec<_>>(),
            parse(&bytes, EXCEL).records,
            "{name}"
        );
    }
    // A ZIP that shows no workbook part is not taken for one, unless its name says so.
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x00\x00notes.txt hello";
    assert_eq!(
        detect(zip, None).unwrap_err().code,
        ErrorKind::UnknownFormat
    );
    assert_eq!(detect(zip, Some("export.xlsx")).unwrap(), EXCEL);
    let p = parse(zip, EXCEL);
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::UnknownFormat);
    // Neither container.
    let p = parse(b"date,amount\n", EXCEL);
    assert_eq!(p.errors[0].code, ErrorKind::UnknownFormat);
}

#[test]
fn truncated_workbooks_give_one_clean_error() {
    for name in ["cmb-debit.xlsx", "TWN-AP-CG.icbc.xls", "icbc-debit.xls"] {
        let bytes = data(name);
        // An .xlsx's directory is at its end; an .xls's last sectors may be unused.
        let tail = if name.ends_with(".xlsx") {
            30
        } else {
            bytes.len() / 3
        };
        for cut in [bytes.len() / 2, bytes.len() - tail, 600, 9] {
            let p = parse(&bytes[..cut], EXCEL);
            assert_eq!(p.records.len(), 1, "{name} cut at {cut}: {:?}", p.records);
            let e = &p.errors[0];
            assert_eq!(e.code, ErrorKind::UnknownFormat, "{name} cut at {cut}: {e}");
            assert!(
                !e.message.contains("failed on it"),
                "{name}: calamine panicked: {e}"
            );
        }
    }
}

#[test]
fn limits() {
    let limits = |file_bytes_max, rows_max, field_bytes_max| Options {
        limits: Limits {
            file_bytes_max,
            rows_max,
            field_bytes_max,
        },
        ..Options::default()
    };
    // The file limit: the workbook is never read past it.
    let bytes = data("TWN-AP-CG.icbc.xlsx");
    let p = parse_with(&bytes, EXCEL, &limits(1000, 10, 4096));
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);
    assert_eq!(
        p.errors[0].message,
        "file is larger than 1000 bytes (a workbook is read into memory whole)"
    );
    // A ZIP that claims to unpack to 3 GiB is refused before anything is unpacked.
    let p = parse(&data("declared-huge.xlsx"), EXCEL);
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);
    // Rows and cells as for CSV: the same errors, at the same places.
    for opts in [limits(1 << 30, 5, 4096), limits(1 << 30, 1000, 12)] {
        for name in ["TWN-AP-CG.icbc.xlsx", "TWN-AP-CG.icbc.xls"] {
            let excel = parse_with(&data(name), EXCEL, &opts);
            let csv = parse_with(
                &demo("TWN-AP-CG.icbc.gbk.csv"),
                Format::Csv(CsvProfile::Icbc),
                &opts,
            );
            assert!(!excel.errors.is_empty());
            assert_eq!(excel.records, csv.records, "{name} {:?}", opts.limits);
        }
    }
    // A value past the last column read.
    let p = parse(&data("wide.xlsx"), EXCEL);
    let last = p.records.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.code, ErrorKind::TooLarge);
    assert_eq!(last.location, Some(Location::Line(2)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Damaged workbooks end their stream with errors; they never take the caller down.
    #[test]
    fn mutated_workbooks_end_cleanly(
        which in 0..4usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let name = ["abc-debit.xlsx", "abc-debit.xls", "TWN-AP-CG.icbc.xlsx", "icbc-debit.xls"][which];
        let mut bytes = data(name);
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let len = bytes.len();
        bytes.truncate(len - cut.index(len / 8 + 1));
        let records = parse_bytes(&bytes, EXCEL, &Options::default());
        prop_assert!(records.len() <= 200);
    }
}

#[test]
fn a_parse_left_early_stops_its_reader() {
    // Dropping the stream after one record must not hang or leak a blocked thread.
    for _ in 0..20 {
        let bytes = data("TWN-AP-CG.icbc.xlsx");
        let mut records = fundtrail_importers::parse_with(&bytes[..], EXCEL, &Options::default());
        assert!(records.next().is_some());
    }
}
