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
use fundtrail::db::DbConn;
use fundtrail::domain::EntryKind;
use fundtrail::ledger::append::append;
use fundtrail::ledger::{EntryBody, ENTRIES_PURPOSE};
use fundtrail_schema::rows::LedgerEntryRow;
use fundtrail_schema::schema::ledger_entries;
use serde_json::json;
use std::time::Instant;

mod common;

use common::{env_usize, peak_rss_bytes, PROGRAM};

fn main() {
    let entries = env_usize("BENCH_ENTRIES", 1_000_000);
    let batch = env_usize("BENCH_BATCH", 10_000).clamp(1, fundtrail::ledger::BATCH_ENTRIES_MAX);
    let recipients_n = entries.min(100_000);
    // Setup (not timed): a bureau, an office below it, a program, recipients, a budget and an
    // allocation big enough for every payment.
    let common::Ledger {
        tmp: dir,
        db,
        mut conn,
        town,
        pseudonyms,
        alloc_seq,
        today,
        period,
        register_s,
        ..
    } = common::ledger(recipients_n, entries);

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
