//! Arbitrary and mutated input never panics `detect` or any parser, and the streams end.

mod common;

use common::sample;
use fundtrail_importers::{detect, parse_bytes, CsvProfile, Format, Limits, Options};
use proptest::prelude::*;

const FORMATS: [Format; 8] = [
    Format::Csv(CsvProfile::Generic),
    Format::Csv(CsvProfile::Icbc),
    Format::Csv(CsvProfile::Abc),
    Format::Csv(CsvProfile::Cmb),
    Format::Csv(CsvProfile::Chinese),
    Format::Camt053,
    Format::Camt054,
    Format::Mt940,
];

const SAMPLES: [&str; 9] = [
    "camt/camt053.v2.minimal.xml",
    "camt/camt053.v2.multi.statement.xml",
    "camt/camt053.v8.xml",
    "camt/camt054.v2.xml",
    "mt940/abnamro.sta",
    "mt940/sparkasse-buxtehude.sta",
    "csv-cn/icbc-debit.utf8.csv",
    "csv-cn/icbc-debit.gbk.csv",
    "csv-cn/cmb-debit.gbk.csv",
];

fn small_limits() -> Options {
    Options {
        limits: Limits {
            file_bytes_max: 1 << 16,
            rows_max: 50,
            field_bytes_max: 64,
        },
        ..Options::default()
    }
}

/// Runs every parser; the streams must end and a fatal error must be the last item.
fn run_all(bytes: &[u8]) {
    let _ = detect(bytes, None);
    let _ = detect(bytes, Some("x.csv"));
    for format in FORMATS {
        for options in [Options::default(), small_limits()] {
            let records = parse_bytes(bytes, format, &options);
            assert!(
                records.len() <= bytes.len() + 2,
                "{format:?}: {}",
                records.len()
            );
        }
    }
}

/// Bytes that look a bit like statements, so the parsers get past their first checks.
fn statementish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"\n"[..]),
        Just(&b","[..]),
        Just(&b"\""[..]),
        Just(&b":61:"[..]),
        Just(&b":86:"[..]),
        Just(&b":20:"[..]),
        Just(&b":25:"[..]),
        Just(&b":60F:C240101CNY1,00"[..]),
        Just(&b"2401020102RD12,5NTRF"[..]),
        Just(&b"//"[..]),
        Just(&b"-\n"[..]),
        Just("交易日期,交易金额,对方户名\n".as_bytes()),
        Just("记账金额(收入),记账金额(支出)".as_bytes()),
        Just(&b"2024-01-02"[..]),
        Just(&b"-1,234.56"[..]),
        Just(&b"<Document><BkToCstmrStmt><Stmt>"[..]),
        Just(&b"<Ntry><Amt Ccy=\"EUR\">1.0</Amt><CdtDbtInd>DBIT</CdtDbtInd>"[..]),
        Just(&b"<NtryDtls><TxDtls>"[..]),
        Just(&b"</TxDtls>"[..]),
        Just(&b"</Ntry>"[..]),
        Just(&b"<BookgDt><Dt>2024-01-01</Dt></BookgDt>"[..]),
        Just(&b"&amp;&#x4e2d;&bogus;"[..]),
        Just(&b"\xff\xfe\xc3"[..]),
    ];
    prop::collection::vec(token, 0..60).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        run_all(&bytes);
    }

    #[test]
    fn statement_like_bytes_never_panic(bytes in statementish()) {
        run_all(&bytes);
    }

    #[test]
    fn mutated_samples_never_panic(
        which in 0..SAMPLES.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample(SAMPLES[which]);
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let len = bytes.len();
        bytes.truncate(len - cut.index(len / 4 + 1));
        run_all(&bytes);
    }
}
