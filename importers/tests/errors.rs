//! Bad rows are reported with their line (or XML path) and field and parsing continues;
//! limits produce clear errors; the less common shapes of each format are understood.

mod common;

use common::{dec, parse, parse_with, sample};
use fundtrail_importers::{
    detect, CsvProfile, ErrorKind, Format, Limits, Location, Options, Record,
};

fn limits(file: u64, rows: u64, field: usize) -> Options {
    Options {
        limits: Limits {
            file_bytes_max: file,
            rows_max: rows,
            field_bytes_max: field,
        },
        ..Options::default()
    }
}

// ------------------------------------------------------------------------------------------
// CSV
// ------------------------------------------------------------------------------------------

const GENERIC: &str = "\
date,amount,currency,counterparty_name,counterparty_account,reference,bank_txn_id,text
2024-03-01,100.00,CNY,Village Office,6222****1234,DISB-1,T1,first
2024/03/02,\"1,2x\",CNY,A,,,,bad amount
20240303,-5.5,usd,B,,DISB-3,,ok
2024-13-01,1,CNY,C,,,,bad date
,1,CNY,D,,,,no date
2024-03-06,,CNY,E,,,,no amount
2024-03-07,7,XX,F,,,,bad currency
2024-03-08 10:11:12,8,CNY,\"multi
line name\",,DISB-8,,after a multi-line cell
2024-03-09,9,CNY,G,,DISB-9,,last
";

#[test]
fn every_bad_csv_row_is_reported_and_parsing_continues() {
    let p = parse(GENERIC.as_bytes(), Format::Csv(CsvProfile::Generic));
    let errs: Vec<(ErrorKind, Option<Location>, Option<&str>)> = p
        .errors
        .iter()
        .map(|e| (e.code, e.location.clone(), e.field.as_deref()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (
                ErrorKind::BadAmount,
                Some(Location::Line(3)),
                Some("amount")
            ),
            (
                ErrorKind::BadDate,
                Some(Location::Line(5)),
                Some("booking_date")
            ),
            (
                ErrorKind::MissingField,
                Some(Location::Line(6)),
                Some("booking_date")
            ),
            (
                ErrorKind::MissingField,
                Some(Location::Line(7)),
                Some("amount")
            ),
            (
                ErrorKind::BadCurrency,
                Some(Location::Line(8)),
                Some("currency")
            ),
        ]
    );
    assert_eq!(
        p.errors[0].to_string(),
        "line 3, field amount: `1,2x` is not an amount"
    );
    assert_eq!(p.errors[0].code.as_str(), "bad_amount");
    assert_eq!(
        p.errors[1].to_string(),
        "line 5, field booking_date: `2024-13-01` is not a date"
    );

    let lines: Vec<_> = p.txs.iter().map(|t| t.location.clone()).collect();
    assert_eq!(
        lines,
        [2, 4, 9, 11].map(Location::Line).to_vec(),
        "a row after a two-line cell keeps its own line number"
    );
    let t = &p.txs[0];
    assert_eq!(t.amount, dec("100.00"));
    assert_eq!(t.counterparty_account.as_deref(), Some("6222****1234"));
    assert_eq!(t.reference.as_deref(), Some("DISB-1"));
    assert_eq!(t.bank_txn_id.as_deref(), Some("T1"));
    assert_eq!(p.txs[1].currency, "USD");
    assert_eq!(p.txs[1].amount, dec("-5.5"));
    assert_eq!(
        p.txs[2].counterparty_name.as_deref(),
        Some("multi\nline name")
    );
    assert_eq!(
        p.txs[2].booking_date.to_string(),
        "2024-03-08",
        "date-time cell"
    );
    // The statement still comes at the end.
    assert!(matches!(p.records.last(), Some(Ok(Record::Statement(_)))));
    assert_eq!(p.stmts[0].currency, None, "rows disagree on the currency");
}

#[test]
fn chinese_headers_with_split_debit_credit_columns() {
    let csv = "\
账号：3302 0000 1111,户名：某某镇民政办
交易日期,摘要,借方发生额,贷方发生额,对方户名,对方账号,附言,交易流水号,起息日
2024-05-01,代发,\"12,000.00\",,村民甲,6217****0001,2024年5月低保,LS001,20240502
2024-05-02,拨款,,\"50,000.00\",县民政局,1202****8888,,LS002,
2024-05-03,退回,,-,村民乙,,,LS003,
合计,,\"12,000.00\",\"50,000.00\",,,,,
";
    assert_eq!(
        detect(csv.as_bytes(), None).unwrap(),
        Format::Csv(CsvProfile::Chinese)
    );
    let p = parse(csv.as_bytes(), Format::Csv(CsvProfile::Chinese));
    assert_eq!(p.txs.len(), 2);
    let t = &p.txs[0];
    assert_eq!(t.account, "3302 0000 1111", "full-width colon preamble");
    assert_eq!(t.amount, dec("-12000.00"), "借方 = money leaving");
    assert_eq!(t.reference.as_deref(), Some("2024年5月低保"));
    assert_eq!(t.bank_txn_id.as_deref(), Some("LS001"));
    assert_eq!(
        t.value_date.map(|d| d.to_string()).as_deref(),
        Some("2024-05-02")
    );
    assert_eq!(p.txs[1].amount, dec("50000.00"));
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::MissingField);
    assert_eq!(p.errors[0].location, Some(Location::Line(5)));
}

#[test]
fn utf8_bom_is_skipped_and_invalid_bytes_are_reported() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice("交易日期,交易金额\n2024-01-01,1.00\n".as_bytes());
    let p = parse(&bytes, Format::Csv(CsvProfile::Abc));
    assert_eq!((p.txs.len(), p.errors.len()), (1, 0));

    let opts = Options {
        encoding: fundtrail_importers::Encoding::Utf8,
        ..Options::default()
    };
    let bad = b"date,amount,currency,text\n2024-01-01,1,CNY,ok\n2024-01-02,2,CNY,\xff\xfe\n2024-01-03,3,CNY,ok\n";
    let p = parse_with(bad, Format::Csv(CsvProfile::Generic), &opts);
    assert_eq!(p.txs.len(), 2);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::BadEncoding);
    assert_eq!(p.errors[0].location, Some(Location::Line(3)));
}

#[test]
fn csv_without_a_header_is_a_bad_header() {
    let p = parse(b"just,some\ntext,here\n", Format::Csv(CsvProfile::Generic));
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::BadHeader);
    let many = "x\n".repeat(500);
    let p = parse(many.as_bytes(), Format::Csv(CsvProfile::Icbc));
    assert_eq!(p.records.len(), 1, "stops after 100 preamble rows");
    assert_eq!(p.errors[0].code, ErrorKind::BadHeader);
}

#[test]
fn csv_limits() {
    let icbc = sample("csv-cn/icbc-debit.utf8.csv");
    let format = Format::Csv(CsvProfile::Icbc);

    let p = parse_with(&icbc, format, &limits(1000, 100, 4096));
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);
    assert!(
        p.errors[0].message.contains("1000 bytes"),
        "{}",
        p.errors[0]
    );
    assert!(
        p.records.last().unwrap().is_err(),
        "a limit ends the stream"
    );

    let p = parse_with(&icbc, format, &limits(1 << 20, 3, 4096));
    assert_eq!(p.txs.len(), 3);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);
    assert_eq!(p.errors[0].location, Some(Location::Line(11)));

    // ICBC pads the counterparty cell to ~150 bytes; it is trimmed before the check.
    let p = parse_with(&icbc, format, &limits(1 << 20, 100, 40));
    let e = &p.errors[0];
    assert_eq!(e.code, ErrorKind::FieldTooLong);
    assert_eq!(e.field.as_deref(), Some("counterparty_name"));
    assert_eq!(e.location, Some(Location::Line(8)));
    let p = parse_with(&icbc, format, &limits(1 << 20, 100, 20));
    assert_eq!(
        p.errors[0].field.as_deref(),
        Some("交易场所"),
        "unmapped columns by header"
    );
    assert_eq!(
        p.txs.len() + p.errors.len(),
        11,
        "each row is reported once, parsing continues"
    );

    // A line longer than 64 × field_bytes_max (at least 64 KiB) is refused without buffering it.
    let mut long = b"date,amount,currency\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', 70_000));
    long.extend_from_slice(b"\n2024-01-01,1,CNY\n");
    let p = parse_with(
        &long,
        Format::Csv(CsvProfile::Generic),
        &limits(1 << 20, 100, 16),
    );
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);
    assert_eq!(p.txs.len(), 1, "the next line is read again");
}

// ------------------------------------------------------------------------------------------
// camt
// ------------------------------------------------------------------------------------------

fn camt(entries: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04">
<BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId></GrpHdr>
<Stmt><Id>S1</Id>
<Acct><Id><IBAN>CN0000PROGRAM</IBAN></Id><Ccy>CNY</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>PRCD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-05-31</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">700.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-06-01</Dt></Dt></Bal>
{entries}
</Stmt></BkToCstmrStmt></Document>"#
    )
}

const BATCH: &str = r#"<Ntry><Amt Ccy="CNY">300.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2024-06-01</Dt></BookgDt><ValDt><Dt>2024-06-01</Dt></ValDt><AcctSvcrRef>BATCH-9</AcctSvcrRef>
<NtryDtls><Btch><NbOfTxs>3</NbOfTxs></Btch>
<TxDtls><Refs><EndToEndId>DISB-1</EndToEndId><TxId>T1</TxId></Refs><AmtDtls><TxAmt><Amt Ccy="CNY">100.00</Amt></TxAmt></AmtDtls>
<RltdPties><Dbtr><Nm>Township</Nm></Dbtr><Cdtr><Nm>Zhang &amp; Sons</Nm></Cdtr><CdtrAcct><Id><Othr><Id>6217****0001</Id></Othr></Id></CdtrAcct></RltdPties>
<RmtInf><Ustrd>May</Ustrd><Ustrd>allowance</Ustrd></RmtInf></TxDtls>
<TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId><AcctSvcrRef>R2</AcctSvcrRef></Refs><Amt Ccy="CNY">150.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>
<RltdPties><Cdtr><Pty><Nm>Li Si</Nm></Pty></Cdtr></RltdPties></TxDtls>
<TxDtls><Refs><EndToEndId>DISB-3</EndToEndId></Refs><Amt Ccy="CNY">50.00</Amt></TxDtls>
</NtryDtls></Ntry>"#;

#[test]
fn camt_batch_entry_yields_one_transaction_per_detail() {
    let p = parse(camt(BATCH).as_bytes(), Format::Camt053);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.txs.len(), 3);
    let amounts: Vec<_> = p.txs.iter().map(|t| t.amount).collect();
    assert_eq!(amounts, vec![dec("-100.00"), dec("-150.00"), dec("-50.00")]);
    let t = &p.txs[0];
    assert_eq!(
        t.location,
        Location::XmlPath("/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]".into())
    );
    assert_eq!(
        t.counterparty_name.as_deref(),
        Some("Zhang & Sons"),
        "debit: the creditor"
    );
    assert_eq!(t.counterparty_account.as_deref(), Some("6217****0001"));
    assert_eq!(t.text.as_deref(), Some("May allowance"));
    assert_eq!(t.reference.as_deref(), Some("DISB-1"));
    assert_eq!(
        t.bank_txn_id.as_deref(),
        Some("T1"),
        "a batch item's own TxId before the AcctSvcrRef all items share"
    );
    assert_eq!(
        p.txs[2].bank_txn_id.as_deref(),
        Some("BATCH-9"),
        "no id of its own: the entry's"
    );
    assert_eq!(p.txs[1].reference, None, "NOTPROVIDED is no reference");
    assert_eq!(p.txs[1].bank_txn_id.as_deref(), Some("R2"));
    assert_eq!(p.txs[1].counterparty_name.as_deref(), Some("Li Si"));
    assert_eq!(
        p.stmts[0].opening_balance,
        Some(dec("1000.00")),
        "PRCD when no OPBD"
    );
    assert_eq!(p.stmts[0].closing_balance, Some(dec("700.00")));
}

#[test]
fn camt_reversal_return_pending_and_bad_entries() {
    let entries = r#"
<Ntry><Amt Ccy="CNY">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd><Sts>BOOK</Sts>
<BookgDt><Dt>2024-06-03</Dt></BookgDt>
<NtryDtls><TxDtls><Refs><EndToEndId>DISB-1</EndToEndId></Refs>
<RltdPties><Dbtr><Nm>Unknown bank</Nm></Dbtr></RltdPties>
<RtrInf><Rsn><Cd>AC04</Cd></Rsn></RtrInf></TxDtls></NtryDtls>
<AddtlNtryInf>Return of disbursement</AddtlNtryInf></Ntry>
<Ntry><Amt Ccy="CNY">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>PDNG</Sts><BookgDt><Dt>2024-06-03</Dt></BookgDt></Ntry>
<Ntry><Amt Ccy="CNY">1,00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-06-03</Dt></BookgDt></Ntry>
<Ntry><Amt Ccy="CNY">2.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>
<Ntry><Amt Ccy="CNY">3.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2024-06-04</Dt></BookgDt>
<AddtlNtryInf>Bank fee</AddtlNtryInf></Ntry>"#;
    let p = parse(camt(entries).as_bytes(), Format::Camt053);
    assert_eq!(p.txs.len(), 2, "{:?}", p.records);
    let t = &p.txs[0];
    assert!(t.reversal);
    assert_eq!(t.return_reason.as_deref(), Some("AC04"));
    assert_eq!(t.amount, dec("100.00"));
    assert_eq!(t.counterparty_name.as_deref(), Some("Unknown bank"));
    assert_eq!(
        t.text.as_deref(),
        Some("Return of disbursement"),
        "AddtlNtryInf fallback"
    );
    assert_eq!(p.txs[1].amount, dec("-3.00"));
    assert_eq!(p.txs[1].text.as_deref(), Some("Bank fee"));
    // The pending entry is skipped; the two bad ones are reported with their paths.
    assert_eq!(p.errors.len(), 2);
    assert_eq!(p.errors[0].code, ErrorKind::BadAmount);
    assert_eq!(
        p.errors[0].to_string(),
        "/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]/Amt[1], field Amt: `1,00` is not an amount"
    );
    assert_eq!(p.errors[1].code, ErrorKind::MissingField);
    assert_eq!(
        p.errors[1].location,
        Some(Location::XmlPath(
            "/Document/BkToCstmrStmt/Stmt[1]/Ntry[4]".into()
        ))
    );
    assert_eq!(p.stmts.len(), 1);
}

#[test]
fn camt_batch_details_that_do_not_add_up_are_reported() {
    let entry = BATCH.replace("300.00", "310.00");
    let p = parse(camt(&entry).as_bytes(), Format::Camt053);
    assert_eq!(p.txs.len(), 3);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::BadAmount);
    assert!(p.errors[0].message.contains("-300.00"), "{}", p.errors[0]);
}

#[test]
fn malformed_xml_ends_the_stream() {
    let xml = camt(BATCH);
    let cut = &xml[..xml.find("<TxDtls><Refs><EndToEndId>DISB-3").unwrap()];
    let p = parse(cut.as_bytes(), Format::Camt053);
    assert_eq!(p.txs.len(), 2, "what was read before stays valid");
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::MalformedXml);
    assert!(p.records.last().unwrap().is_err());

    let broken = xml.replace("</Ustrd></RmtInf>", "</Ustrd></RmtInfo>");
    let p = parse(broken.as_bytes(), Format::Camt053);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::MalformedXml);
    assert!(matches!(&p.errors[0].location, Some(Location::XmlPath(x)) if x.contains("TxDtls[1]")));

    let p = parse(sample("camt/camt054.v2.xml").as_slice(), Format::Camt053);
    assert_eq!(p.records.len(), 1);
    assert_eq!(
        p.errors[0].code,
        ErrorKind::UnknownFormat,
        "camt.054 is not camt.053"
    );
}

#[test]
fn camt_limits() {
    let xml = sample("camt/camt053.v2.multi.statement.xml");
    let p = parse_with(&xml, Format::Camt053, &limits(2000, 100, 4096));
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);

    let p = parse_with(&xml, Format::Camt053, &limits(1 << 20, 1, 4096));
    assert_eq!(p.txs.len(), 1);
    assert_eq!(p.errors.last().unwrap().code, ErrorKind::TooLarge);

    let longer = String::from_utf8(xml.clone()).unwrap().replace(
        "Transaction Description 1",
        "Transaction Description 1, much longer",
    );
    let p = parse_with(
        longer.as_bytes(),
        Format::Camt053,
        &limits(1 << 20, 100, 25),
    );
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    let e = &p.errors[0];
    assert_eq!(e.code, ErrorKind::FieldTooLong);
    assert_eq!(e.field.as_deref(), Some("Ustrd"), "{e}");
    assert_eq!(
        e.to_string(),
        "/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]/RmtInf[1]/Ustrd[1], field Ustrd: the text is longer than 25 bytes"
    );
    assert_eq!(p.txs.len(), 1, "the other entry still parses");

    let deep = format!("<Document>{}", "<a>".repeat(100));
    let p = parse(deep.as_bytes(), Format::Camt053);
    assert_eq!(
        p.errors[0].code,
        ErrorKind::UnknownFormat,
        "wrong message element first"
    );
    let deep = format!("<Document><BkToCstmrStmt>{}", "<a>".repeat(100));
    let p = parse(deep.as_bytes(), Format::Camt053);
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);

    let huge_token = format!("<Document><BkToCstmrStmt>{}", "x".repeat(100_000));
    let p = parse_with(
        huge_token.as_bytes(),
        Format::Camt053,
        &limits(1 << 20, 100, 64),
    );
    assert_eq!(p.errors[0].code, ErrorKind::TooLarge);
    assert!(p.errors[0].message.contains("XML token"), "{}", p.errors[0]);
}

// ------------------------------------------------------------------------------------------
// MT940
// ------------------------------------------------------------------------------------------

const MT940: &[u8] = b"{1:F01BANKCNBJAXXX0000000000}{2:O940}{4:
:20:STMT-1
:25:CN1234****5678
:28C:12/1
:60F:C231229CNY1000,00
:61:2312290102D100,50NTRFDISB-2023-1//B001
:86:/NAME/ZHANG SAN/IBAN/6217****0001/REMI/Dibao Dec/EREF/DISB-2023-1
:61:231230C5,X0NTRFBROKEN
:86:this text belongs to the broken line
:61:2312301230RD100,50NTRFDISB-2023-1//B002
:86:R\xfcckbuchung M\xfcller
:61:231231D1,NMSCNONREF
:62F:C231231CNY995,
-}
:20:STMT-2
:25:CN1234****5678
:61:240102D1,00NTRFX
:62F:C240102CNY1,00
-";

#[test]
fn mt940_shapes_and_bad_lines() {
    assert_eq!(detect(MT940, None).unwrap(), Format::Mt940);
    let p = parse(MT940, Format::Mt940);
    assert_eq!(p.txs.len(), 3, "{:?}", p.records);
    let t = &p.txs[0];
    assert_eq!(t.location, Location::Line(6));
    assert_eq!(t.account, "CN1234****5678");
    assert_eq!(t.value_date.unwrap().to_string(), "2023-12-29");
    assert_eq!(
        t.booking_date.to_string(),
        "2024-01-02",
        "entry date rolls into the next year"
    );
    assert_eq!(t.amount, dec("-100.50"));
    assert_eq!(t.currency, "CNY");
    assert_eq!(t.reference.as_deref(), Some("DISB-2023-1"));
    assert_eq!(t.bank_txn_id.as_deref(), Some("B001"));
    assert_eq!(t.counterparty_name.as_deref(), Some("ZHANG SAN"));
    assert_eq!(t.counterparty_account.as_deref(), Some("6217****0001"));
    assert_eq!(t.text.as_deref(), Some("Dibao Dec"));
    let r = &p.txs[1];
    assert!(r.reversal);
    assert_eq!(r.amount, dec("100.50"));
    assert_eq!(
        r.text.as_deref(),
        Some("Rückbuchung Müller"),
        "Latin-1 line decoded"
    );
    assert_eq!(p.txs[2].amount, dec("-1"));
    assert_eq!(p.txs[2].reference, None);

    // The broken :61: is reported at its line with its field; parsing went on.
    let e: Vec<_> = p
        .errors
        .iter()
        .map(|e| (e.code, e.location.clone(), e.field.clone()))
        .collect();
    assert_eq!(
        e,
        vec![
            (
                ErrorKind::MalformedMt940,
                Some(Location::Line(8)),
                Some("61".into())
            ),
            (
                ErrorKind::MissingField,
                Some(Location::Line(17)),
                Some("60F".into())
            ),
        ]
    );
    assert!(
        p.errors[0].to_string().starts_with("line 8, field 61: "),
        "{}",
        p.errors[0]
    );

    assert_eq!(p.stmts.len(), 2);
    let s = &p.stmts[0];
    assert_eq!(s.statement_id.as_deref(), Some("12/1"));
    assert_eq!(s.opening_balance, Some(dec("1000.00")));
    assert_eq!(s.closing_balance, Some(dec("995")));
    assert_eq!(s.location, Location::Line(2));
    assert_eq!(
        p.stmts[1].statement_id.as_deref(),
        Some("STMT-2"),
        ":20: when there is no :28C:"
    );
}

#[test]
fn mt940_limits() {
    let p = parse_with(MT940, Format::Mt940, &limits(100, 100, 4096));
    assert_eq!(p.errors.last().unwrap().code, ErrorKind::TooLarge);
    assert!(p.records.last().unwrap().is_err());

    let p = parse_with(MT940, Format::Mt940, &limits(1 << 20, 1, 4096));
    assert_eq!(p.txs.len(), 1);
    assert_eq!(p.errors.last().unwrap().code, ErrorKind::TooLarge);

    let p = parse_with(
        &sample("mt940/sparkasse-buxtehude.sta"),
        Format::Mt940,
        &limits(1 << 20, 100, 80),
    );
    // The second and third :86: are longer than 80 bytes; their transactions are reported.
    let e: Vec<_> = p
        .errors
        .iter()
        .map(|e| (e.code, e.location.clone(), e.field.clone()))
        .collect();
    assert_eq!(
        e,
        vec![
            (
                ErrorKind::FieldTooLong,
                Some(Location::Line(11)),
                Some("86".into())
            ),
            (
                ErrorKind::FieldTooLong,
                Some(Location::Line(17)),
                Some("86".into())
            ),
        ]
    );
    assert_eq!(p.txs.len(), 1, "the first transaction still parses");
    assert_eq!(p.stmts.len(), 1);
}

#[test]
fn detect_refuses_what_it_does_not_know() {
    for (bytes, name) in [
        (&b""[..], None),
        (b"hello world", Some("x.txt")),
        (b"<html><body/></html>", Some("x.xml")),
        (b"a,b,c\n1,2,3\n", Some("x.csv")),
    ] {
        let e = detect(bytes, name).unwrap_err();
        assert_eq!(e.code, ErrorKind::UnknownFormat, "{e}");
    }
}

#[test]
fn unsigned_amounts_with_a_debit_credit_column() {
    let csv = "\
交易日期,金额,借贷标志,对方户名,附言
2024-05-01,100.00,借,村民甲,DISB-1
2024-05-02,200.00,贷,县财政局,
2024-05-03,300.00,?,某人,
";
    let p = parse(csv.as_bytes(), Format::Csv(CsvProfile::Chinese));
    let amounts: Vec<_> = p.txs.iter().map(|t| t.amount).collect();
    assert_eq!(amounts, vec![dec("-100.00"), dec("200.00")]);
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].field.as_deref(), Some("direction"));
    assert_eq!(p.errors[0].location, Some(Location::Line(4)));
}
