//! Appending disbursements in signed batches, against a plain SQLite insert of the same rows.
//!
//! `cargo bench -p fundtrail --bench append` (or `make bench`); `BENCH_ENTRIES` sets the size
//! (default 1,000,000), `BENCH_BATCH` the entries per signed batch (default 10,000).
//!
//! Fundtrail's path is the one the HTTP handler takes minus the socket: sign on the client
//! side, verify the signature, then `ledger::append` (stateless checks, BEGIN IMMEDIATE,
//! authority, recipients, references, conservation, hash chain, insert, funds). The baseline
//! inserts the very same rows into the same table with the same pragmas (WAL,
//! synchronous=FULL), one transaction per batch, and nothing else.

use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager};
use diesel::prelude::*;
use fundtrail::crypto::SigningKey;
use fundtrail::db::DbConn;
use fundtrail::domain::{EntryKind, Role};
use fundtrail::ledger::append::append;
use fundtrail::ledger::{EntryBody, ENTRIES_PURPOSE};
use fundtrail::signing::sign_locally;
use fundtrail_schema::rows::LedgerEntryRow;
use fundtrail_schema::schema::ledger_entries;
use serde_json::json;
use std::time::Instant;

/// The benchmark's program code.
const PROGRAM: &str = "BENCH";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn main() {
    let entries = env_usize("BENCH_ENTRIES", 1_000_000);
    let batch = env_usize("BENCH_BATCH", 10_000).clamp(1, fundtrail::ledger::BATCH_ENTRIES_MAX);
    let recipients_n = entries.min(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db");
    let made = fundtrail::config::init(&db).expect("init");
    let admin = SigningKey::load(&made.operator_key_path).unwrap();
    let mut conn = fundtrail::config::open_existing(&db).unwrap();
    let pii = fundtrail::config::load_master_key(&db)
        .unwrap()
        .personal_data_keys();

    // Setup (not timed): a bureau, an office below it, a program, recipients, a budget and an
    // allocation big enough for every payment.
    let prov = SigningKey::generate("PROV");
    let town = SigningKey::generate("TOWN");
    for (key, role, parent) in [
        (&prov, Role::FinanceBureau, None),
        (&town, Role::LocalOffice, Some("PROV")),
    ] {
        let payload = json!({"code": key.org, "name": key.org, "role": role, "parent": parent, "public_key": key.public_key_b64()});
        let (v, now) = sign_locally(&mut conn, &admin, "POST /api/v1/orgs", payload).unwrap();
        fundtrail::service::orgs::create(&mut conn, &v, now).unwrap();
    }
    let year = chrono::Datelike::year(&chrono::Utc::now());
    let today = chrono::Utc::now().date_naive().to_string();
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let (v, now) = sign_locally(&mut conn, &prov, "POST /api/v1/programs", json!({"code": PROGRAM, "name": "bench", "fiscal_year": year, "standard_amount": "100.00", "period_granularity": "month"})).unwrap();
    fundtrail::service::programs::create(&mut conn, &v, now).unwrap();
    let started = Instant::now();
    let mut pseudonyms = Vec::with_capacity(recipients_n);
    for chunk_start in (0..recipients_n).step_by(10_000) {
        let list: Vec<_> = (chunk_start..(chunk_start + 10_000).min(recipients_n))
            .map(|i| {
                let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap() + chrono::Days::new((i / 1000) as u64);
                let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), i % 1000);
                let id = format!("{first17}{}", fundtrail::idcard::check_char(&first17).unwrap());
                json!({"name": format!("R{i}"), "id_number": id, "bank_account": format!("622848{i:013}")})
            })
            .collect();
        let (v, now) = sign_locally(
            &mut conn,
            &town,
            "POST /api/v1/recipients",
            json!({ "recipients": list }),
        )
        .unwrap();
        pseudonyms.extend(
            fundtrail::service::recipients::register(&mut conn, &pii, &v, now)
                .unwrap()
                .pseudonyms,
        );
    }
    let register_s = started.elapsed().as_secs_f64();
    let total = format!("{}.00", entries * 100 + 100);
    let budget = EntryBody::new(
        EntryKind::Budget,
        PROGRAM,
        &year.to_string(),
        &total,
        "BUD",
        &today,
    )
    .to("PROV");
    let (v, now) = sign_locally(
        &mut conn,
        &prov,
        ENTRIES_PURPOSE,
        json!({"entries": [budget]}),
    )
    .unwrap();
    let budget_seq = append(&mut conn, &v, now).unwrap().first_seq;
    let alloc = EntryBody::new(
        EntryKind::Allocation,
        "BENCH",
        &period,
        &total,
        "ALC",
        &today,
    )
    .source(budget_seq)
    .from("PROV")
    .to("TOWN");
    let (v, now) = sign_locally(
        &mut conn,
        &prov,
        ENTRIES_PURPOSE,
        json!({"entries": [alloc]}),
    )
    .unwrap();
    let alloc_seq = append(&mut conn, &v, now).unwrap().first_seq;

    let body = |i: usize| {
        EntryBody::new(
            EntryKind::Disbursement,
            PROGRAM,
            &period,
            "100.00",
            &format!("D{i:09}"),
            &today,
        )
        .source(alloc_seq)
        .from("TOWN")
        .recipient(&pseudonyms[i % pseudonyms.len()])
    };

    // Fundtrail: sign (client side) + verify + append, batch after batch.
    let mut sign_s = 0.0;
    let started = Instant::now();
    for start in (0..entries).step_by(batch) {
        let bodies: Vec<EntryBody> = (start..(start + batch).min(entries)).map(body).collect();
        let t = Instant::now();
        let request = fundtrail::signing::SignedRequest::sign(
            &town,
            ENTRIES_PURPOSE,
            json!({ "entries": bodies }),
        )
        .unwrap();
        sign_s += t.elapsed().as_secs_f64();
        let actor = fundtrail::auth::Actor::for_org(&mut conn, "TOWN").unwrap();
        let now = fundtrail::domain::now_micros();
        let v =
            fundtrail::signing::verify(&mut conn, &actor, ENTRIES_PURPOSE, request, now).unwrap();
        append(&mut conn, &v, now).unwrap();
    }
    let fundtrail_s = started.elapsed().as_secs_f64();
    let rss_after_append = peak_rss_bytes();
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);

    // Baseline: the same rows, inserted plainly into a fresh database of the same schema.
    let rows: Vec<LedgerEntryRow> = ledger_entries::table
        .filter(ledger_entries::kind.eq("disbursement"))
        .select(LedgerEntryRow::as_select())
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), entries);
    let plain_db = dir.path().join("plain.db");
    let mut plain = fundtrail::db::connect(plain_db.to_str().unwrap()).unwrap();
    fundtrail::db::migrate(&mut plain).unwrap();
    let DbConn::Sqlite(plain) = &mut plain;
    plain.batch_execute("PRAGMA foreign_keys = OFF;").unwrap();
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        AnsiTransactionManager::begin_transaction_sql(plain, "BEGIN IMMEDIATE").unwrap();
        for part in chunk.chunks(1000) {
            diesel::insert_into(ledger_entries::table)
                .values(part)
                .execute(plain)
                .unwrap();
        }
        AnsiTransactionManager::commit_transaction(plain).unwrap();
    }
    let plain_s = started.elapsed().as_secs_f64();

    // And the chain still verifies.
    let started = Instant::now();
    let report = fundtrail::ledger::verify::verify(
        &mut fundtrail::ledger::verify::DbCopy::new(&mut conn),
        &mut |_| {},
    )
    .unwrap();
    let verify_s = started.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.failure);

    let rate = |n: usize, s: f64| n as f64 / s;
    println!("fundtrail append benchmark: {entries} disbursements in signed batches of {batch} (SQLite, WAL, synchronous=FULL)");
    println!("  setup: {recipients_n} recipients registered (sealed, pseudonymised) in {register_s:.2} s");
    println!("  {:<44} {:>10} {:>14}", "stage", "seconds", "entries/s");
    println!(
        "  {:<44} {:>10.2} {:>14.0}",
        "fundtrail: sign + verify + append (checked)",
        fundtrail_s,
        rate(entries, fundtrail_s)
    );
    println!(
        "  {:<44} {:>10.2} {:>14.0}",
        "  of which client-side signing",
        sign_s,
        rate(entries, sign_s)
    );
    println!(
        "  {:<44} {:>10.2} {:>14.0}",
        "baseline: plain INSERT of the same rows",
        plain_s,
        rate(entries, plain_s)
    );
    println!(
        "  {:<44} {:>10.2} {:>14.0}",
        "fundtrail verify (whole chain, from the db)",
        verify_s,
        rate(report.entries_checked as usize, verify_s)
    );
    println!(
        "  ratio fundtrail / plain insert: {:.2}x",
        fundtrail_s / plain_s
    );
    println!(
        "  database: {:.0} bytes per entry; peak RSS {:.0} MiB",
        db_bytes as f64 / report.entries_checked as f64,
        rss_after_append as f64 / 1048576.0
    );
}
