//! Importing bank statements against a ledger that holds the matching disbursements, next to
//! a parse-only pass over the same files.
//!
//! `cargo bench -p fundtrail --bench import` (or `make bench`). Sizes: `BENCH_ROWS` rows in
//! the CSV statement (default 1,000,000), `BENCH_CAMT_ROWS` entries in the camt.053 (default
//! 100,000); `BENCH_HALF=0` skips the extra CSV of `BENCH_ROWS / 2` rows that is imported
//! first to show how memory and speed behave as the file grows. `BENCH_FILES` (default 0:
//! off) adds the pipeline's shape: that many small statements of `BENCH_FILE_ROWS` rows each
//! (default 2,500), GBK ICBC exports as the township offices send them (preamble, padded
//! cells, total row), imported one after another with `format: auto`, after the files above.
//!
//! One ledger holds a disjoint set of unconfirmed disbursements for each file (half-size CSV,
//! full CSV, camt), so every row of every file really matches a payment by its reference
//! (asserted from the `statements` table: the bench fails if matching breaks). The files are
//! imported in that order, each against the ledger the previous imports left behind.
//!
//! Per file: a parse-only pass (`fundtrail_importers::parse_with` over the plain file), the
//! cost of storing the file in an encrypted scratch store alone, and the end-to-end
//! `statements::import::import_local` — the path of `POST /api/v1/statements` minus the
//! socket: store the file encrypted (fsync), sign and verify the manifest, then in one write
//! transaction parse the decrypted file again, look each chunk up for duplicates and
//! candidate payments, match, store every bank row (masked, keyed account tag), append one
//! hash-chained confirmation entry per matched row, update the funds, and commit (SQLite, WAL,
//! synchronous=FULL). The peak RSS of each stage is measured on its own (VmHWM is reset
//! through /proc/self/clear_refs before the stage, where the kernel allows it).

use diesel::prelude::*;
use fundtrail::crypto::SigningKey;
use fundtrail::domain::EntryKind;
use fundtrail::filestore::FileStore;
use fundtrail::ledger::append::append;
use fundtrail::ledger::{EntryBody, ENTRIES_PURPOSE};
use fundtrail::signing::sign_locally;
use fundtrail_importers::{parse_with, CsvProfile, Format, Options, Record};
use fundtrail_schema::rows::StatementRow;
use fundtrail_schema::schema::statements;
use serde_json::json;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;

use common::{env_usize, recipient_account, status_bytes, AMOUNT, PROGRAM};

/// The office's program bank account, which every statement is for.
const ACCOUNT: &str = "6222020200001234567";

fn peak_rss() -> u64 {
    common::peak_rss_bytes()
}

fn rss_now() -> u64 {
    status_bytes("VmRSS:")
}

/// Resets the peak RSS to the current RSS (Linux >= 4.0); false if the kernel refused.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time of the calling thread so far (the writer: the import's parsing thread is not in
/// it), in seconds; 0 where unavailable. On a shared machine this shows what the wall clock
/// hides: how much work the writer itself did.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// What the statements need to know about one disbursement.
struct Payments {
    /// Digits of the references (`P0000001`).
    width: usize,
    recipients: usize,
    today: String,
    period: String,
}

impl Payments {
    fn reference(&self, i: usize) -> String {
        format!("P{:0w$}", i + 1, w = self.width)
    }
    fn bank_txn_id(&self, i: usize) -> String {
        format!("BK{:010}", i + 1)
    }
    fn recipient(&self, i: usize) -> usize {
        i % self.recipients
    }
}

/// Writes a generic CSV statement with one debit per disbursement in `range`.
fn write_csv(path: &Path, p: &Payments, range: std::ops::Range<usize>) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    writeln!(
        w,
        "account,date,amount,currency,counterparty_name,counterparty_account,reference,bank_txn_id,text"
    )
    .unwrap();
    for i in range {
        let r = p.recipient(i);
        writeln!(
            w,
            "{ACCOUNT},{},-{AMOUNT},CNY,R{r},{},{},{},{PROGRAM} {} subsidy",
            p.today,
            recipient_account(r),
            p.reference(i),
            p.bank_txn_id(i),
            p.period,
        )
        .unwrap();
    }
    w.into_inner().unwrap().sync_all().unwrap();
}

/// Writes a camt.053.001.08 statement with one booked debit entry (with one `TxDtls`) per
/// disbursement in `range`.
fn write_camt(path: &Path, p: &Payments, range: std::ops::Range<usize>) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let opening = format!("{}.00", range.len() * 100);
    let day = &p.today;
    write!(
        w,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr>
      <MsgId>BENCH-CAMT053-1</MsgId>
      <CreDtTm>{day}T18:00:00+08:00</CreDtTm>
    </GrpHdr>
    <Stmt>
      <Id>BENCH-STMT-1</Id>
      <ElctrncSeqNb>1</ElctrncSeqNb>
      <CreDtTm>{day}T18:00:00+08:00</CreDtTm>
      <FrToDt>
        <FrDtTm>{day}T00:00:00+08:00</FrDtTm>
        <ToDtTm>{day}T23:59:59+08:00</ToDtTm>
      </FrToDt>
      <Acct>
        <Id>
          <Othr>
            <Id>{ACCOUNT}</Id>
          </Othr>
        </Id>
        <Ccy>CNY</Ccy>
      </Acct>
      <Bal>
        <Tp>
          <CdOrPrtry>
            <Cd>OPBD</Cd>
          </CdOrPrtry>
        </Tp>
        <Amt Ccy="CNY">{opening}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt>
          <Dt>{day}</Dt>
        </Dt>
      </Bal>
      <Bal>
        <Tp>
          <CdOrPrtry>
            <Cd>CLBD</Cd>
          </CdOrPrtry>
        </Tp>
        <Amt Ccy="CNY">0.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Dt>
          <Dt>{day}</Dt>
        </Dt>
      </Bal>
"#
    )
    .unwrap();
    for i in range {
        let r = p.recipient(i);
        write!(
            w,
            r#"      <Ntry>
        <Amt Ccy="CNY">{AMOUNT}</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts>
          <Cd>BOOK</Cd>
        </Sts>
        <BookgDt>
          <Dt>{day}</Dt>
        </BookgDt>
        <ValDt>
          <Dt>{day}</Dt>
        </ValDt>
        <AcctSvcrRef>{txn}</AcctSvcrRef>
        <BkTxCd>
          <Domn>
            <Cd>PMNT</Cd>
            <Fmly>
              <Cd>ICDT</Cd>
              <SubFmlyCd>DMCT</SubFmlyCd>
            </Fmly>
          </Domn>
        </BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs>
              <EndToEndId>{reference}</EndToEndId>
            </Refs>
            <Amt Ccy="CNY">{AMOUNT}</Amt>
            <CdtDbtInd>DBIT</CdtDbtInd>
            <RltdPties>
              <Cdtr>
                <Pty>
                  <Nm>R{r}</Nm>
                </Pty>
              </Cdtr>
              <CdtrAcct>
                <Id>
                  <Othr>
                    <Id>{account}</Id>
                  </Othr>
                </Id>
              </CdtrAcct>
            </RltdPties>
            <RmtInf>
              <Ustrd>{PROGRAM} {period} subsidy</Ustrd>
            </RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
"#,
            txn = p.bank_txn_id(i),
            reference = p.reference(i),
            account = recipient_account(r),
            period = p.period,
        )
        .unwrap();
    }
    write!(w, "    </Stmt>\n  </BkToCstmrStmt>\n</Document>\n").unwrap();
    w.into_inner().unwrap().sync_all().unwrap();
}

// GBK bytes of the fixed parts of an ICBC 明细查询 export (as `fixtures/src/icbc.rs` writes it).
const ICBC_TITLE: &[u8] =
    b"\xc3\xf7\xcf\xb8\xb2\xe9\xd1\xaf\xce\xc4\xbc\xfe\xcf\xc2\xd4\xd8\x0a\x0a";
const ICBC_ACCOUNT: &[u8] = b"\xd5\xcb\xba\xc5: ";
const ICBC_PREAMBLE_REST: &[u8] = b",\x22\xbb\xa7\xc3\xfb: \xb8\xdf\xc1\xe4\xbd\xf2\xcc\xf9\xd7\xa8\xbb\xa7\x22\x0a\x0a\xd7\xd3\xd5\xcb\xbb\xa7\xd0\xf2\xba\xc5: 00000,\xd7\xd3\xd5\xcb\xbb\xa7\xc0\xe0\xb1\xf0: \xbb\xee\xc6\xda,\x22\xd7\xd3\xd5\xcb\xbb\xa7\xb1\xf0\xc3\xfb: \xbd\xf2\xcc\xf9\x22\x0a\x0a";
const ICBC_PERIOD: &[u8] = b"\xc6\xf0\xd6\xb9\xc8\xd5\xc6\xda: ";
const ICBC_TO: &[u8] = b" \xd6\xc1 ";
const ICBC_HEADER: &[u8] = b"\xbd\xbb\xd2\xd7\xc8\xd5\xc6\xda,\xd5\xaa\xd2\xaa,\xbd\xbb\xd2\xd7\xb3\xa1\xcb\xf9,\xbd\xbb\xd2\xd7\xb9\xfa\xbc\xd2\xbb\xf2\xb5\xd8\xc7\xf8\xbc\xf2\xb3\xc6,\xb3\xae/\xbb\xe3,\xbd\xbb\xd2\xd7\xbd\xf0\xb6\xee(\xca\xd5\xc8\xeb),\xbd\xbb\xd2\xd7\xbd\xf0\xb6\xee(\xd6\xa7\xb3\xf6),\xbd\xbb\xd2\xd7\xb1\xd2\xd6\xd6,\xbc\xc7\xd5\xcb\xbd\xf0\xb6\xee(\xca\xd5\xc8\xeb),\xbc\xc7\xd5\xcb\xbd\xf0\xb6\xee(\xd6\xa7\xb3\xf6),\xbc\xc7\xd5\xcb\xb1\xd2\xd6\xd6,\xd3\xe0\xb6\xee,\xb6\xd4\xb7\xbd\xbb\xa7\xc3\xfb,\xb6\xd4\xb7\xbd\xd5\xcb\xba\xc5,\xb8\xbd\xd1\xd4,\xbd\xbb\xd2\xd7\xc1\xf7\xcb\xae\xba\xc5\x0a";
/// From the summary (代发) to the opening quote of the income cell.
const ICBC_CELLS: &[u8] = b"\x22\xb4\xfa\xb7\xa2                  \x09\x22,\x22\xc6\xf3\xd2\xb5\xcd\xf8\xc9\xcf\xd2\xf8\xd0\xd0                                  \x09\x22,\x22CHN                 \x09\x22,\xb3\xae       \x09,\x22-                   \x09\x22,\x22-                   \x09\x22,-             \x09,\x22";
/// 人民币 (the booked currency) up to the opening quote of the balance cell.
const ICBC_RMB: &[u8] = b"\xc8\xcb\xc3\xf1\xb1\xd2     \x09,\x22";
/// 张, the counterparty names' first character.
const ICBC_NAME: &[u8] = b"\xd5\xc5";
const ICBC_TOTAL: &[u8] = b"\xc8\xcb\xc3\xf1\xb1\xd2\xba\xcf\xbc\xc6,,,,,,,,";

/// Writes an ICBC export (GBK) with one expense per disbursement in `range`, newest first.
fn write_icbc(path: &Path, p: &Payments, range: std::ops::Range<usize>) {
    let mut w = BufWriter::with_capacity(1 << 16, std::fs::File::create(path).unwrap());
    w.write_all(ICBC_TITLE).unwrap();
    w.write_all(ICBC_ACCOUNT).unwrap();
    w.write_all(ACCOUNT.as_bytes()).unwrap();
    w.write_all(ICBC_PREAMBLE_REST).unwrap();
    w.write_all(ICBC_PERIOD).unwrap();
    w.write_all(p.today.as_bytes()).unwrap();
    w.write_all(ICBC_TO).unwrap();
    w.write_all(p.today.as_bytes()).unwrap();
    w.write_all(b"\n\n").unwrap();
    w.write_all(ICBC_HEADER).unwrap();
    let n = range.len();
    for i in range.rev() {
        let r = p.recipient(i);
        write!(w, "{:<14}\t,", p.today).unwrap();
        w.write_all(ICBC_CELLS).unwrap();
        write!(w, "{:<20}\t\",\"{:<20}\t\",", "", AMOUNT).unwrap();
        w.write_all(ICBC_RMB).unwrap();
        write!(w, "{:<20}\t\",\"", "0.00").unwrap();
        w.write_all(ICBC_NAME).unwrap();
        // 张 is one character of the 40.
        writeln!(
            w,
            "{:<39}\t\",\"{:<24}\t\",\"{:<30}\t\",\"{:<24}\t\",",
            r,
            recipient_account(r),
            p.reference(i),
            p.bank_txn_id(i)
        )
        .unwrap();
    }
    w.write_all(b" \n").unwrap();
    w.write_all(ICBC_TOTAL).unwrap();
    let total = format!("{}.00", n * 100);
    writeln!(w, "\"{:<18}\t\",\"{:<18}\t\",", "0.00", total).unwrap();
    w.into_inner().unwrap().sync_all().unwrap();
}

/// The figures of one statement file.
struct Stage {
    name: String,
    rows: usize,
    bytes: u64,
    write_s: f64,
    parse_s: f64,
    store_s: f64,
    import_s: f64,
    /// CPU time of the writer thread during the import.
    import_cpu_s: f64,
    rss_start: u64,
    peak_parse: u64,
    peak_import: u64,
}

/// A parse-only pass: every record of the file, transactions counted, errors fatal.
fn parse_only(path: &Path, format: Format) -> usize {
    let file = std::fs::File::open(path).unwrap();
    let mut rows = 0;
    for record in parse_with(BufReader::new(file), format, &Options::default()) {
        match record {
            Ok(Record::Transaction(_)) => rows += 1,
            Ok(Record::Statement(_)) => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    rows
}

struct Bench {
    dir: PathBuf,
    db: PathBuf,
    conn: fundtrail::db::DbConn,
    pii: fundtrail::crypto::PersonalDataKeys,
    files: FileStore,
    secret: [u8; 32],
    town: SigningKey,
    peak_resets: bool,
    /// No progress lines (the many small files).
    quiet: bool,
}

impl Bench {
    /// Writes, parses, and imports one file; asserts that every row was confirmed strongly.
    fn run(
        &mut self,
        name: &str,
        file_name: &str,
        format: Format,
        format_name: &str,
        rows: usize,
        write: impl FnOnce(&Path),
    ) -> Stage {
        let path = self.dir.join(file_name);
        let started = Instant::now();
        write(&path);
        let write_s = started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&path).unwrap().len();

        let rss_start = rss_now();
        self.peak_resets &= reset_peak_rss();
        let started = Instant::now();
        let parsed = parse_only(&path, format);
        let parse_s = started.elapsed().as_secs_f64();
        let peak_parse = peak_rss();
        assert_eq!(
            parsed, rows,
            "{name}: the parser saw another number of rows"
        );

        // Storing alone, into a scratch store (same code, same fsyncs), to show its share.
        let scratch = self.dir.join("scratch-store");
        let store = FileStore::open(&scratch, self.secret).unwrap();
        let started = Instant::now();
        let staged = store
            .stage(
                BufReader::new(std::fs::File::open(&path).unwrap()),
                fundtrail::statements::STATEMENT_BYTES_MAX,
            )
            .unwrap();
        staged.commit().unwrap();
        let store_s = started.elapsed().as_secs_f64();
        drop(store);
        std::fs::remove_dir_all(&scratch).unwrap();

        self.peak_resets &= reset_peak_rss();
        let started = Instant::now();
        // Progress on stderr (the table is on stdout): shows whether the rate holds up.
        let step = (rows as u64 / 10).max(10_000);
        let mut next = step;
        let mut last = (0u64, 0.0f64);
        let quiet = self.quiet;
        let mut progress = |n: u64| {
            if !quiet && n > last.0 && (n >= next || n == rows as u64) {
                let t = started.elapsed().as_secs_f64();
                eprintln!(
                    "  {name}: {n} rows read in {t:.1} s ({:.0} rows/s since the last line)",
                    (n - last.0) as f64 / (t - last.1)
                );
                last = (n, t);
                next = n / step * step + step;
            }
        };
        let cpu_started = thread_cpu_s();
        let (id, imported) = fundtrail::statements::import::import_local(
            &mut self.conn,
            &self.pii,
            &self.files,
            &self.town,
            fundtrail::statements::import::LocalFile {
                path: &path,
                format: format_name,
                account: None,
            },
            &mut progress,
        )
        .unwrap();
        let import_s = started.elapsed().as_secs_f64();
        let import_cpu_s = thread_cpu_s() - cpu_started;
        let peak_import = peak_rss();
        assert!(imported, "{name}: the file was imported before");

        let s: StatementRow = statements::table
            .find(id)
            .select(StatementRow::as_select())
            .first(&mut self.conn)
            .unwrap();
        let n = rows as i64;
        let counts = (
            s.rows_total,
            s.rows_duplicate,
            s.confirmed_strong,
            s.confirmed_weak,
            s.returned,
            s.unmatched,
        );
        assert_eq!(
            counts,
            (n, 0, n, 0, 0, 0),
            "{name}: (rows_total, duplicate, confirmed_strong, confirmed_weak, returned, unmatched)"
        );
        assert_eq!(
            s.last_seq.unwrap() - s.first_seq.unwrap() + 1,
            n,
            "{name}: one confirmation entry per row"
        );
        std::fs::remove_file(&path).unwrap();
        Stage {
            name: name.to_string(),
            rows,
            bytes,
            write_s,
            parse_s,
            store_s,
            import_s,
            import_cpu_s,
            rss_start,
            peak_parse,
            peak_import,
        }
    }
}

fn main() {
    let rows = env_usize("BENCH_ROWS", 1_000_000).max(1);
    let camt_rows = env_usize("BENCH_CAMT_ROWS", 100_000).max(1);
    let half = if env_usize("BENCH_HALF", 1) == 0 {
        0
    } else {
        rows / 2
    };
    let files_n = env_usize("BENCH_FILES", 0);
    let file_rows = env_usize("BENCH_FILE_ROWS", 2500).max(1);
    let payments_n = half + rows + camt_rows + files_n * file_rows;
    let batch = fundtrail::ledger::BATCH_ENTRIES_MAX.min(10_000);
    let recipients_n = payments_n.min(100_000);

    // Setup (not part of any figure): a bureau, an office below it, a program, recipients, a
    // budget, an allocation, the disbursements and the office's bank account.
    let setup_started = Instant::now();
    let common::Ledger {
        tmp,
        db,
        mut conn,
        pii,
        town,
        pseudonyms,
        alloc_seq,
        today,
        period,
        register_s,
        ..
    } = common::ledger(recipients_n, payments_n);
    let master = fundtrail::config::load_master_key(&db).unwrap();

    let payments = Payments {
        width: payments_n.to_string().len().max(7),
        recipients: recipients_n,
        today: today.clone(),
        period: period.clone(),
    };
    let started = Instant::now();
    for start in (0..payments_n).step_by(batch) {
        let bodies: Vec<EntryBody> = (start..(start + batch).min(payments_n))
            .map(|i| {
                EntryBody::new(
                    EntryKind::Disbursement,
                    PROGRAM,
                    &period,
                    AMOUNT,
                    &payments.reference(i),
                    &today,
                )
                .source(alloc_seq)
                .from("TOWN")
                .recipient(&pseudonyms[payments.recipient(i)])
            })
            .collect();
        let (v, now) = sign_locally(
            &mut conn,
            &town,
            ENTRIES_PURPOSE,
            json!({ "entries": bodies }),
        )
        .unwrap();
        append(&mut conn, &v, now).unwrap();
    }
    let disburse_s = started.elapsed().as_secs_f64();
    let (v, now) = sign_locally(
        &mut conn,
        &town,
        fundtrail::statements::accounts::ACCOUNTS_PURPOSE,
        json!({"org": "TOWN", "account": ACCOUNT, "currency": "CNY", "label": "TOWN program account"}),
    )
    .unwrap();
    fundtrail::statements::accounts::register(&mut conn, &v, now).unwrap();
    let setup_s = setup_started.elapsed().as_secs_f64();
    let rss_after_setup = peak_rss();
    drop(pseudonyms);

    let files = FileStore::open(
        &fundtrail::config::files_dir(&db),
        master.file_store_secret(),
    )
    .unwrap();
    let mut bench = Bench {
        dir: tmp.path().to_path_buf(),
        db: db.clone(),
        conn,
        pii,
        files,
        secret: master.file_store_secret(),
        town,
        peak_resets: true,
        quiet: false,
    };
    let csv = Format::Csv(CsvProfile::Generic);
    let mut stages = Vec::new();
    if half > 0 {
        stages.push(bench.run(
            &format!("CSV, {half} rows"),
            "half.csv",
            csv,
            "csv",
            half,
            |path| write_csv(path, &payments, 0..half),
        ));
    }
    stages.push(bench.run(
        &format!("CSV, {rows} rows"),
        "statement.csv",
        csv,
        "csv",
        rows,
        |path| write_csv(path, &payments, half..half + rows),
    ));
    stages.push(bench.run(
        &format!("camt.053, {camt_rows} entries"),
        "statement.camt053.xml",
        Format::Camt053,
        "camt053",
        camt_rows,
        |path| write_camt(path, &payments, half + rows..half + rows + camt_rows),
    ));
    let mut small = Vec::with_capacity(files_n);
    bench.quiet = true;
    for f in 0..files_n {
        let start = half + rows + camt_rows + f * file_rows;
        small.push(bench.run(
            &format!("ICBC GBK file {}", f + 1),
            &format!("TOWN-{:03}.icbc.gbk.csv", f + 1),
            Format::Csv(CsvProfile::Icbc),
            "auto",
            file_rows,
            |path| write_icbc(path, &payments, start..start + file_rows),
        ));
    }
    let db_bytes = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = bench.db.clone().into_os_string();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum::<u64>();

    let rate = |n: usize, s: f64| n as f64 / s;
    println!("fundtrail statement import benchmark (SQLite, WAL, synchronous=FULL; release build)");
    println!(
        "  setup, not timed below: {recipients_n} recipients registered in {register_s:.1} s; {payments_n} disbursements \
         (refs {}..{}) appended in signed batches of {batch} in {disburse_s:.1} s; {setup_s:.1} s in all; \
         peak RSS after setup {:.0} MiB",
        payments.reference(0),
        payments.reference(payments_n - 1),
        mib(rss_after_setup)
    );
    println!(
        "  one ledger, disjoint disbursements per file: every row matches a payment by reference (asserted: \
         confirmed_strong = rows, nothing weak, duplicate or unmatched); files imported in the order shown, \
         each into the ledger the previous imports left"
    );
    println!();
    println!(
        "  {:<34} {:>10} {:>9} {:>9} {:>12} {:>13}",
        "stage", "rows", "MiB", "seconds", "rows/s", "peak RSS MiB"
    );
    for s in &stages {
        println!(
            "  {:<34} {:>10} {:>9.1} {:>9.2} {:>12}",
            format!("{}: written", s.name),
            s.rows,
            mib(s.bytes),
            s.write_s,
            ""
        );
        println!(
            "  {:<34} {:>10} {:>9} {:>9.2} {:>12.0} {:>13.0}",
            "  parse only (fundtrail_importers)",
            s.rows,
            "",
            s.parse_s,
            rate(s.rows, s.parse_s),
            mib(s.peak_parse)
        );
        println!(
            "  {:<34} {:>10} {:>9} {:>9.2} {:>12.0}",
            "  store only (encrypt + fsync)",
            s.rows,
            "",
            s.store_s,
            rate(s.rows, s.store_s)
        );
        println!(
            "  {:<34} {:>10} {:>9} {:>9.2} {:>12.0} {:>13.0}",
            "  import end to end (import_local)",
            s.rows,
            "",
            s.import_s,
            rate(s.rows, s.import_s),
            mib(s.peak_import)
        );
        println!(
            "  {:<34} import takes {:.1}x the parse-only time; writer thread CPU {:.2} s; RSS before \
             the stage {:.0} MiB, import peak +{:.0} MiB over it",
            "",
            s.import_s / s.parse_s,
            s.import_cpu_s,
            mib(s.rss_start),
            mib(s.peak_import.saturating_sub(s.rss_start))
        );
    }
    if let (Some(first), Some(last)) = (small.first(), small.last()) {
        let n: usize = small.iter().map(|s| s.rows).sum();
        let bytes: u64 = small.iter().map(|s| s.bytes).sum();
        let parse_s: f64 = small.iter().map(|s| s.parse_s).sum();
        let import_s: f64 = small.iter().map(|s| s.import_s).sum();
        let quarter = (small.len() / 4).max(1);
        let ms = |files: &[Stage]| {
            1000.0 * files.iter().map(|s| s.import_s).sum::<f64>() / files.len() as f64
        };
        println!(
            "  {:<34} {:>10} {:>9.1} {:>9} {:>12}",
            format!("{files_n} ICBC GBK files x {file_rows}: written"),
            n,
            mib(bytes),
            "",
            ""
        );
        println!(
            "  {:<34} {:>10} {:>9} {:>9.2} {:>12.0} {:>13.0}",
            "  parse only (fundtrail_importers)",
            n,
            "",
            parse_s,
            rate(n, parse_s),
            mib(small.iter().map(|s| s.peak_parse).max().unwrap_or(0))
        );
        println!(
            "  {:<34} {:>10} {:>9} {:>9.2} {:>12.0} {:>13.0}",
            "  import end to end (import_local)",
            n,
            "",
            import_s,
            rate(n, import_s),
            mib(small.iter().map(|s| s.peak_import).max().unwrap_or(0))
        );
        println!(
            "  {:<34} per file {:.0} ms on average (writer thread CPU {:.0} ms); first {} files {:.0} ms, \
             last {} files {:.0} ms (first file {:.0} ms, last {:.0} ms)",
            "",
            1000.0 * import_s / small.len() as f64,
            1000.0 * small.iter().map(|s| s.import_cpu_s).sum::<f64>() / small.len() as f64,
            quarter,
            ms(&small[..quarter]),
            quarter,
            ms(&small[small.len() - quarter..]),
            1000.0 * first.import_s,
            1000.0 * last.import_s
        );
    }
    println!();
    if let [first, second, ..] = stages.as_slice() {
        if first.name.starts_with("CSV") && second.name.starts_with("CSV") {
            println!(
                "  CSV file grows {:.1}x ({} -> {} rows): import peak RSS {:.0} -> {:.0} MiB, rows/s {:.0} -> {:.0}",
                second.rows as f64 / first.rows as f64,
                first.rows,
                second.rows,
                mib(first.peak_import),
                mib(second.peak_import),
                rate(first.rows, first.import_s),
                rate(second.rows, second.import_s)
            );
        }
    }
    if let Some(full) = stages
        .iter()
        .find(|s| s.rows == rows && s.name.starts_with("CSV"))
    {
        let r = rate(full.rows, full.import_s);
        println!(
            "  aim for CSV end to end: >= 300000 rows/s; measured {r:.0} rows/s ({})",
            if r >= 300_000.0 { "met" } else { "NOT met" }
        );
    }
    println!(
        "  peak RSS per stage: {}",
        if bench.peak_resets {
            "measured per stage (VmHWM reset through /proc/self/clear_refs before each parse and import)"
        } else {
            "the kernel refused to reset VmHWM, so each figure is the process peak so far"
        }
    );
    println!(
        "  database after all imports: {:.0} MiB (db + wal)",
        mib(db_bytes)
    );
    println!(
        "  end to end = store the file encrypted in the file store (ChaCha20-Poly1305, fsync), sign + verify the \
         manifest, then one write transaction: parse the decrypted file, per-chunk duplicate (fingerprint) and \
         candidate lookups, matching, every bank row stored (masked, keyed account tag), one hash-chained \
         confirmation entry per row, funds updated, commit. Parse only = the parser alone over the plain file."
    );
}
