//! CSV running balances: the statement's opening and closing balances come from the balance
//! column, and a row whose balance does not follow from the row before is reported at its
//! line; also the period a preamble states.

mod common;

use chrono::NaiveDate;
use common::{dec, parse, parse_with, sample, Parsed};
use fundtrail_importers::balance::Checked;
use fundtrail_importers::{
    parse_bytes, CsvProfile, ErrorKind, Format, Location, Options, ParseError, Record,
};
use rust_decimal::Decimal;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// (line, message) of every `statement_unbalanced` error; the field is always `balance`.
fn breaks(p: &Parsed) -> Vec<(u64, String)> {
    p.errors
        .iter()
        .filter(|e| e.code == ErrorKind::Unbalanced)
        .map(|e| {
            assert_eq!(e.field.as_deref(), Some("balance"), "{e}");
            let Some(Location::Line(l)) = e.location else {
                panic!("{e:?}")
            };
            (l, e.message.clone())
        })
        .collect()
}

fn ends(p: &Parsed) -> (Option<Decimal>, Option<Decimal>) {
    assert_eq!(p.stmts.len(), 1);
    (p.stmts[0].opening_balance, p.stmts[0].closing_balance)
}

fn sum(p: &Parsed) -> Decimal {
    p.txs.iter().map(|t| t.amount).sum()
}

fn csv(text: &str, profile: CsvProfile) -> Parsed {
    parse(text.as_bytes(), Format::Csv(profile))
}

// ------------------------------------------------------------------------------------------
// The shared samples (hand-made: two of three do not chain)
// ------------------------------------------------------------------------------------------

#[test]
fn abc_sample_breaks_at_lines_3_4_and_5() {
    let p = parse(
        &sample("csv-cn/abc-debit.utf8.csv"),
        Format::Csv(CsvProfile::Abc),
    );
    assert_eq!(
        breaks(&p),
        [
            (
                3,
                "balance 11,000.00 stated, 11,000.00 + -10.00 = 10,990.00 expected".to_string()
            ),
            // The chain goes on from the stated 11,000.00, so one jump is one error.
            (
                4,
                "balance 1,943.12 stated, 11,000.00 + -12,345.89 = -1,345.89 expected".into()
            ),
            (
                5,
                "balance 123.35 stated, 1,943.12 + 0.01 = 1,943.13 expected".into()
            ),
        ]
    );
    assert_eq!(p.errors.len(), 3, "no other errors: {:?}", p.errors);
    assert_eq!(
        p.txs.len(),
        5,
        "a break is reported besides its row's transaction"
    );
    // The ends are what the file states: before the oldest row, after the newest.
    assert_eq!(ends(&p), (Some(dec("1000.00")), Some(dec("123.35"))));
    let e = p.errors[1].to_string();
    assert_eq!(
        e,
        "line 4, field balance: balance 1,943.12 stated, 11,000.00 + -12,345.89 = -1,345.89 expected"
    );
}

#[test]
fn cmb_sample_breaks_at_lines_4_5_and_6_in_both_encodings() {
    for file in ["csv-cn/cmb-debit.utf8.csv", "csv-cn/cmb-debit.gbk.csv"] {
        let p = parse(&sample(file), Format::Csv(CsvProfile::Cmb));
        let lines: Vec<u64> = breaks(&p).into_iter().map(|(l, _)| l).collect();
        assert_eq!(lines, [4, 5, 6], "{file}");
        assert_eq!(
            breaks(&p)[0].1,
            "balance 81.22 stated, 271.66 + -3.00 = 268.66 expected"
        );
        assert_eq!(p.errors.len(), 3, "{file}: {:?}", p.errors);
        // The first day's two rows chain oldest first: 37.66 + 1,234.00 = 1,271.66.
        assert_eq!(
            ends(&p),
            (Some(dec("37.66")), Some(dec("1218.24"))),
            "{file}"
        );
    }
}

#[test]
fn icbc_sample_masks_its_balances_so_nothing_is_checked() {
    // `xx,yyyy.zz` in every row: a masked balance states nothing, and is no bad amount.
    for file in ["csv-cn/icbc-debit.utf8.csv", "csv-cn/icbc-debit.gbk.csv"] {
        let p = parse(&sample(file), Format::Csv(CsvProfile::Icbc));
        assert!(p.errors.is_empty(), "{file}: {:?}", p.errors);
        assert_eq!(ends(&p), (None, None));
        // No period in this preamble: the rows' dates.
        assert_eq!(p.stmts[0].from_date, Some(date("2023-02-08")));
        assert_eq!(p.stmts[0].to_date, Some(date("2023-05-02")));
    }
}

// ------------------------------------------------------------------------------------------
// The demo's statements all chain
// ------------------------------------------------------------------------------------------

fn demo(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../fixtures/demo/statements/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_demo_csv_chains_and_adds_up() {
    let dir = format!("{}/../fixtures/demo/statements", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".csv") {
            continue;
        }
        seen += 1;
        let bytes = std::fs::read(&path).unwrap();
        let format = fundtrail_importers::detect(&bytes, Some(&name)).unwrap();
        let p = parse(&bytes, format);
        assert!(p.errors.is_empty(), "{name}: {:?}", p.errors);
        assert!(!p.txs.is_empty(), "{name}");
        let (Some(opening), Some(closing)) = ends(&p) else {
            panic!("{name}: every demo CSV has a balance column")
        };
        assert_eq!(opening + sum(&p), closing, "{name}");
        // And the section check passes them through untouched.
        let records = parse_bytes(&bytes, format, &Options::default());
        let checked: Vec<_> = Checked::new(records.into_iter()).collect();
        assert!(checked.iter().all(Result::is_ok), "{name}");
    }
    assert_eq!(seen, 5, "the demo's CSV files");
}

#[test]
fn demo_icbc_is_newest_first_with_each_day_in_booking_order() {
    let p = parse(
        &demo("TWN-AP-CG.icbc.gbk.csv"),
        Format::Csv(CsvProfile::Icbc),
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    // The first row is the newest (2026-11-20, after it 6,416.08); the last the oldest
    // (the 31,000.00 allocation of 2026-11-06 on top of 9,276.08).
    assert_eq!(p.txs[0].booking_date, date("2026-11-20"));
    assert_eq!(p.txs.last().unwrap().amount, dec("31000.00"));
    assert_eq!(ends(&p), (Some(dec("9276.08")), Some(dec("6416.08"))));
    // The period is the preamble's `起止日期: 2026-11-01 至 2026-11-30`, wider than the rows.
    let s = &p.stmts[0];
    assert_eq!(s.from_date, Some(date("2026-11-01")));
    assert_eq!(s.to_date, Some(date("2026-11-30")));

    let late = parse(
        &demo("TWN-AP-CG.icbc.2026-11-late.gbk.csv"),
        Format::Csv(CsvProfile::Icbc),
    );
    assert!(late.errors.is_empty(), "{:?}", late.errors);
    assert_eq!(ends(&late), (Some(dec("12196.08")), Some(dec("6416.08"))));
    assert_eq!(late.stmts[0].from_date, Some(date("2026-11-13")));
}

// ------------------------------------------------------------------------------------------
// Orders, breaks and bad balances
// ------------------------------------------------------------------------------------------

const HEAD: &str = "交易日期,交易金额,余额,对方户名\n";

#[test]
fn newest_first_breaks_are_reported_at_the_later_row() {
    // 2026-11-02's balance has a typo (101.00 for 100.00): it breaks, and so does the next
    // day's, which follows the stated 101.00.
    let file = format!(
        "{HEAD}2026-11-04,-5.00,85.00,丁\n\
         2026-11-03,-10.00,90.00,丙\n\
         2026-11-02,-10.00,101.00,乙\n\
         2026-11-01,+10.00,110.00,甲\n"
    );
    let p = csv(&file, CsvProfile::Chinese);
    assert_eq!(
        breaks(&p),
        [
            (
                3,
                "balance 90.00 stated, 101.00 + -10.00 = 91.00 expected".to_string()
            ),
            (
                4,
                "balance 101.00 stated, 110.00 + -10.00 = 100.00 expected".into()
            ),
        ]
    );
    assert_eq!(ends(&p), (Some(dec("100.00")), Some(dec("85.00"))));
    assert_eq!(p.txs.len(), 4);
}

#[test]
fn a_one_day_file_is_ordered_by_how_its_balances_chain() {
    let newest_first = format!(
        "{HEAD}2026-11-11,-3.00,94.00,丙\n2026-11-11,-2.00,97.00,乙\n2026-11-11,-1.00,99.00,甲\n"
    );
    let p = csv(&newest_first, CsvProfile::Chinese);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(ends(&p), (Some(dec("100.00")), Some(dec("94.00"))));
    let oldest_first = format!(
        "{HEAD}2026-11-11,-1.00,99.00,甲\n2026-11-11,-2.00,97.00,乙\n2026-11-11,-3.00,94.00,丙\n"
    );
    let p = csv(&oldest_first, CsvProfile::Icbc);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(ends(&p), (Some(dec("100.00")), Some(dec("94.00"))));
}

#[test]
fn the_generic_balance_column_and_total_rows() {
    let file = "date,amount,currency,balance\n\
                2026-11-01,100.00,CNY,1100.00\n\
                2026-11-02,-50.00,CNY,1050.00\n\
                Total,50.00,,\n";
    let p = csv(file, CsvProfile::Generic);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.txs.len(), 2, "the total row is no transaction");
    assert_eq!(ends(&p), (Some(dec("1000.00")), Some(dec("1050.00"))));
}

#[test]
fn a_bad_balance_is_a_bad_amount_and_the_chain_skips_the_row() {
    let file = format!(
        "{HEAD}2026-11-01,10.00,110.00,甲\n2026-11-02,-1.00,1O9.00,乙\n2026-11-03,-1.00,108.00,丙\n"
    );
    let p = csv(&file, CsvProfile::Chinese);
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    let e = &p.errors[0];
    assert_eq!(
        (e.code, e.field.as_deref(), e.location.clone()),
        (
            ErrorKind::BadAmount,
            Some("balance"),
            Some(Location::Line(3))
        )
    );
    assert_eq!(e.message, "`1O9.00` is not an amount");
    // Line 4 is not checked against an unreadable row.
    assert_eq!(p.txs.len(), 2);
    assert_eq!(ends(&p), (Some(dec("100.00")), Some(dec("108.00"))));
}

#[test]
fn without_a_balance_column_nothing_is_stated() {
    let p = csv(
        "交易日期,交易金额,对方户名\n2026-11-01,1.00,甲\n",
        CsvProfile::Chinese,
    );
    assert!(p.errors.is_empty());
    assert_eq!(ends(&p), (None, None));
}

#[test]
fn breaks_keep_the_section_check_quiet_and_the_stream_going() {
    let file = format!(
        "{HEAD}2026-11-01,10.00,110.00,甲\n2026-11-02,-1.00,100.00,乙\n2026-11-03,x,1,丙\n"
    );
    let records = parse_bytes(
        file.as_bytes(),
        Format::Csv(CsvProfile::Chinese),
        &Options::default(),
    );
    let kinds: Vec<String> = Checked::new(records.into_iter())
        .map(|r| match r {
            Ok(Record::Transaction(t)) => format!("t{}", location_line(&t.location)),
            Ok(Record::Statement(_)) => "s".into(),
            Err(ParseError { code, location, .. }) => {
                format!(
                    "{}@{}",
                    code.as_str(),
                    location.map_or(0, |l| location_line(&l))
                )
            }
        })
        .collect();
    // The break at line 3 comes once its day has ended (here: with the file, after line 4's
    // error), and the section check adds nothing to a section with row errors.
    assert_eq!(
        kinds,
        ["t2", "t3", "bad_amount@4", "statement_unbalanced@3", "s"]
    );
}

fn location_line(l: &Location) -> u64 {
    match l {
        Location::Line(n) => *n,
        Location::XmlPath(_) => 0,
    }
}

#[test]
fn preamble_periods_in_their_usual_forms() {
    let cases = [
        "起止日期: 2026-11-01 至 2026-11-30",
        "查询起止日期：20261101 至 20261130",
        "起始日期: 2026-11-01,终止日期: 2026-11-30",
    ];
    for preamble in cases {
        let file = format!("{preamble}\n{HEAD}2026-11-11,-1.00,99.00,甲\n");
        let p = csv(&file, CsvProfile::Chinese);
        assert!(p.errors.is_empty(), "{preamble}: {:?}", p.errors);
        let s = &p.stmts[0];
        assert_eq!(
            (s.from_date, s.to_date),
            (Some(date("2026-11-01")), Some(date("2026-11-30"))),
            "{preamble}"
        );
    }
    // A period that ends before it starts is ignored.
    let file = format!("起止日期: 2026-11-30 至 2026-11-01\n{HEAD}2026-11-11,-1.00,99.00,甲\n");
    let s = &csv(&file, CsvProfile::Chinese).stmts[0];
    assert_eq!(
        (s.from_date, s.to_date),
        (Some(date("2026-11-11")), Some(date("2026-11-11")))
    );
}

#[test]
fn a_long_statement_streams_and_chains() {
    // 30 days newest first, 400 rows a day in booking order (as the demo's ICBC files).
    let mut rows = Vec::new();
    let mut balance = Decimal::from(1_000_000);
    for day in 1..=30u32 {
        let mut today = Vec::new();
        for i in 0..400 {
            let amount = Decimal::new(-(i % 7 + 1) * 100 - 5, 2);
            balance += amount;
            today.push(format!("2026-11-{day:02},{amount},{balance},收款人{i}"));
        }
        rows.push(today);
    }
    rows.reverse();
    let file = format!("{HEAD}{}\n", rows.concat().join("\n"));
    let p = parse_with(
        file.as_bytes(),
        Format::Csv(CsvProfile::Icbc),
        &Options::default(),
    );
    assert!(
        p.errors.is_empty(),
        "{:?}",
        &p.errors[..p.errors.len().min(3)]
    );
    assert_eq!(p.txs.len(), 12_000);
    let (opening, closing) = ends(&p);
    assert_eq!(opening, Some(Decimal::from(1_000_000)));
    assert_eq!(closing, Some(balance));
}
