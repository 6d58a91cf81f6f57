//! Tampering: the database refuses to rewrite the ledger, and if someone drops the triggers
//! and changes any byte of an entry anyway, `fundtrail verify` fails at that entry.

use clap::Parser as _;
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Text};
use fundtrail::cli::{run, Cli};
use fundtrail_e2e::Tree;
use std::process::ExitCode;

fn raw(t: &Tree) -> SqliteConnection {
    let mut c = SqliteConnection::establish(t.app.db_path.to_str().unwrap()).unwrap();
    c.batch_execute("PRAGMA foreign_keys = OFF; PRAGMA busy_timeout = 10000;")
        .unwrap();
    c
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    v: Option<String>,
}
#[derive(QueryableByName)]
struct BlobValue {
    #[diesel(sql_type = Binary)]
    v: Vec<u8>,
}
#[derive(QueryableByName)]
struct IntValue {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    v: Option<i64>,
}

fn verify_fails_at(t: &Tree, seq: i64, what: &str) {
    let report = t.app.verify_db();
    // The direct database path and the paged path (what a server's export goes through) must
    // say the same about every tampered database.
    let mut conn = t.app.conn();
    let paged = fundtrail::ledger::verify::verify(
        &mut fundtrail::ledger::verify::DbCopy::through_pages(&mut conn),
        &mut |_| {},
    )
    .expect("verification ran");
    assert_eq!(
        (
            &report.failure,
            report.entries_checked,
            report.batches_checked,
            report.head_seq,
            &report.head_hash
        ),
        (
            &paged.failure,
            paged.entries_checked,
            paged.batches_checked,
            paged.head_seq,
            &paged.head_hash
        ),
        "{what}: the database and paged paths disagree"
    );
    let failure = report
        .failure
        .unwrap_or_else(|| panic!("{what}: verify passed a tampered ledger"));
    assert_eq!(
        failure.seq, seq,
        "{what}: failed at #{} ({})",
        failure.seq, failure.reason
    );
}

#[test]
fn the_database_refuses_update_and_delete_of_ledger_rows() {
    let t = Tree::build();
    let mut c = raw(&t);
    for sql in [
        "UPDATE ledger_entries SET memo = 'x' WHERE seq = 1",
        "DELETE FROM ledger_entries WHERE seq = 1",
        "UPDATE submissions SET nonce = 'x' WHERE id = 1",
        "DELETE FROM submissions",
        "UPDATE programs SET name = 'x'",
        "UPDATE orgs SET code = 'X' WHERE code = 'TOWN'",
        "UPDATE org_keys SET valid_until = NULL",
        "DELETE FROM org_keys",
    ] {
        let err = diesel::sql_query(sql).execute(&mut c).unwrap_err();
        let msg = err.to_string();
        assert!(
            [
                "append-only",
                "permanent",
                "never un-retired",
                "never deleted"
            ]
            .iter()
            .any(|m| msg.contains(m)),
            "{sql}: {err}"
        );
    }
    assert!(t.app.verify_db().ok());
}

#[test]
fn changing_any_byte_of_a_stored_entry_makes_verify_fail_at_that_entry() {
    let t = Tree::build();
    let bodies: Vec<_> = (0..6)
        .map(|i| t.payment(i, "100.00", &format!("REF-{i}")).memo("monthly"))
        .collect();
    let out = t.app.append(&t.town, bodies).unwrap();
    t.app
        .append(&t.town, vec![t.payment(7, "5.00", "LAST")])
        .unwrap();
    let seq = out.first_seq + 2; // an entry in the middle of a multi-entry batch
    let mut c = raw(&t);
    c.batch_execute(
        "DROP TRIGGER ledger_entries_no_update; DROP TRIGGER ledger_entries_no_delete;",
    )
    .unwrap();
    let mut changes = 0;

    for col in [
        "kind",
        "period",
        "to_recipient",
        "reference",
        "memo",
        "value_date",
    ] {
        let original: TextValue = diesel::sql_query(format!(
            "SELECT {col} AS v FROM ledger_entries WHERE seq = ?"
        ))
        .bind::<BigInt, _>(seq)
        .get_result(&mut c)
        .unwrap();
        let original = original.v.unwrap();
        for pos in 0..original.len() {
            let mut bytes = original.clone().into_bytes();
            bytes[pos] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            let update =
                diesel::sql_query(format!("UPDATE ledger_entries SET {col} = ? WHERE seq = ?"))
                    .bind::<Text, _>(&changed)
                    .bind::<BigInt, _>(seq)
                    .execute(&mut c);
            if update.is_err() {
                continue; // a CHECK constraint refused the change: nothing to detect
            }
            verify_fails_at(&t, seq, &format!("{col} byte {pos}"));
            diesel::sql_query(format!("UPDATE ledger_entries SET {col} = ? WHERE seq = ?"))
                .bind::<Text, _>(&original)
                .bind::<BigInt, _>(seq)
                .execute(&mut c)
                .unwrap();
            changes += 1;
        }
    }
    for col in ["prev_hash", "hash"] {
        let original: BlobValue = diesel::sql_query(format!(
            "SELECT {col} AS v FROM ledger_entries WHERE seq = ?"
        ))
        .bind::<BigInt, _>(seq)
        .get_result(&mut c)
        .unwrap();
        for pos in 0..original.v.len() {
            let mut bytes = original.v.clone();
            bytes[pos] ^= 0x80;
            diesel::sql_query(format!("UPDATE ledger_entries SET {col} = ? WHERE seq = ?"))
                .bind::<Binary, _>(&bytes)
                .bind::<BigInt, _>(seq)
                .execute(&mut c)
                .unwrap();
            verify_fails_at(&t, seq, &format!("{col} byte {pos}"));
            diesel::sql_query(format!("UPDATE ledger_entries SET {col} = ? WHERE seq = ?"))
                .bind::<Binary, _>(&original.v)
                .bind::<BigInt, _>(seq)
                .execute(&mut c)
                .unwrap();
            changes += 1;
        }
    }
    let other_submission = out.first_seq; // any other id works; use the previous batch's
    for (col, values) in [
        ("amount_minor", vec![1, -1]),
        ("recorded_at", vec![1, -1]),
        ("source_seq", vec![-1, -2]),
        ("author_org_id", vec![1, -1]),
        ("from_org_id", vec![1, -1]),
        ("program_id", vec![1]),
        ("submission_id", vec![-1, -other_submission]),
    ] {
        let original: IntValue = diesel::sql_query(format!(
            "SELECT {col} AS v FROM ledger_entries WHERE seq = ?"
        ))
        .bind::<BigInt, _>(seq)
        .get_result(&mut c)
        .unwrap();
        let original = original.v.unwrap();
        for delta in values {
            let changed = original + delta;
            if diesel::sql_query(format!("UPDATE ledger_entries SET {col} = ? WHERE seq = ?"))
                .bind::<BigInt, _>(changed)
                .bind::<BigInt, _>(seq)
                .execute(&mut c)
                .is_err()
            {
                continue;
            }
            verify_fails_at(&t, seq, &format!("{col} {original} -> {changed}"));
            diesel::sql_query(format!("UPDATE ledger_entries SET {col} = ? WHERE seq = ?"))
                .bind::<BigInt, _>(original)
                .bind::<BigInt, _>(seq)
                .execute(&mut c)
                .unwrap();
            changes += 1;
        }
    }
    // A payment quietly redirected to an org, or an entry deleted or renumbered.
    diesel::sql_query("UPDATE ledger_entries SET to_org_id = 2 WHERE seq = ?")
        .bind::<BigInt, _>(seq)
        .execute(&mut c)
        .unwrap();
    verify_fails_at(&t, seq, "to_org_id set");
    diesel::sql_query("UPDATE ledger_entries SET to_org_id = NULL WHERE seq = ?")
        .bind::<BigInt, _>(seq)
        .execute(&mut c)
        .unwrap();
    diesel::sql_query("UPDATE ledger_entries SET seq = 1000000 WHERE seq = ?")
        .bind::<BigInt, _>(seq)
        .execute(&mut c)
        .unwrap();
    verify_fails_at(&t, seq, "seq renumbered");
    diesel::sql_query("UPDATE ledger_entries SET seq = ? WHERE seq = 1000000")
        .bind::<BigInt, _>(seq)
        .execute(&mut c)
        .unwrap();
    assert!(changes >= 120, "only {changes} changes tried");
    assert!(t.app.verify_db().ok(), "restored ledger verifies again");

    // The CLI says so with its exit code, from the file and from the server.
    let db = t.app.db_path.to_str().unwrap().to_string();
    let verify = |args: &[&str]| run(Cli::parse_from(args)).unwrap();
    assert_eq!(
        verify(&["fundtrail", "--db", &db, "verify"]),
        ExitCode::SUCCESS
    );
    diesel::sql_query("UPDATE ledger_entries SET amount_minor = amount_minor - 1 WHERE seq = ?")
        .bind::<BigInt, _>(seq)
        .execute(&mut c)
        .unwrap();
    assert_eq!(
        verify(&["fundtrail", "--db", &db, "verify"]),
        ExitCode::FAILURE
    );
    assert_eq!(
        verify(&[
            "fundtrail",
            "verify",
            "--server",
            &t.app.base,
            "--token",
            &t.auditor.token
        ]),
        ExitCode::FAILURE
    );
}

#[test]
fn a_forged_signature_or_swapped_key_fails_verification_at_the_batch() {
    let t = Tree::build();
    let out = t
        .app
        .append(
            &t.town,
            (0..3)
                .map(|i| t.payment(i, "1.00", &format!("S-{i}")))
                .collect(),
        )
        .unwrap();
    let mut c = raw(&t);
    c.batch_execute("DROP TRIGGER submissions_no_update;")
        .unwrap();
    let sub = format!(
        "(SELECT submission_id FROM ledger_entries WHERE seq = {})",
        out.first_seq
    );
    diesel::sql_query(format!(
        "UPDATE submissions SET signature = randomblob(64) WHERE id = {sub}"
    ))
    .execute(&mut c)
    .unwrap();
    verify_fails_at(&t, out.first_seq, "signature replaced");
    let mut c2 = raw(&t);
    let forger = fundtrail::crypto::SigningKey::generate("TOWN");
    c2.batch_execute("DROP TRIGGER org_keys_public_key_fixed;")
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE org_keys SET public_key = ? WHERE key_id = '{}'",
        t.town.key.key_id
    ))
    .bind::<Binary, _>(forger.public_key())
    .execute(&mut c2)
    .unwrap();
    let report = t.app.verify_db();
    assert!(!report.ok());
}

#[test]
fn the_fundtrail_binary_names_the_first_broken_entry_and_exits_1() {
    let t = Tree::build();
    let out = t
        .app
        .append(
            &t.town,
            (0..4)
                .map(|i| t.payment(i, "10.00", &format!("BIN-{i}")))
                .collect(),
        )
        .unwrap();
    let db = t.app.db_path.to_str().unwrap().to_string();
    let run = || {
        std::process::Command::new(fundtrail_e2e::fundtrail_bin())
            .args(["--db", &db, "verify"])
            .output()
            .unwrap()
    };
    let ok = run();
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));
    let mut c = raw(&t);
    c.batch_execute("DROP TRIGGER ledger_entries_no_update;")
        .unwrap();
    let seq = out.first_seq + 1;
    diesel::sql_query("UPDATE ledger_entries SET memo = 'x' WHERE seq = ?")
        .bind::<BigInt, _>(seq)
        .execute(&mut c)
        .unwrap();
    let bad = run();
    assert_eq!(bad.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(
        stdout.starts_with(&format!("FAILED at entry #{seq}: ")),
        "{stdout}"
    );
    assert!(stdout.contains("hash"), "{stdout}");
}

/// TOWN registers an account and imports a statement confirming payment PAY-1; returns the
/// payment's and the confirmation's seq.
fn imported(t: &Tree) -> (i64, i64) {
    t.app.register_account(&t.town, "77770000");
    let pay = t
        .app
        .append(&t.town, vec![t.payment(0, "780.00", "PAY-1")])
        .unwrap()
        .first_seq;
    let file = format!(
        "account,date,amount,currency,reference\n77770000,{},-780.00,CNY,PAY-1\n",
        fundtrail_e2e::today()
    );
    let r = t.app.upload(&t.town, "s.csv", file.as_bytes());
    assert_eq!(r.status, 201, "{:?}", r.body);
    (pay, r.body["statement"]["first_seq"].as_i64().unwrap())
}

#[test]
fn statements_are_history_and_bank_facts_verify_against_the_signed_upload() {
    let t = Tree::build();
    let (_, confirmation) = imported(&t);
    assert!(t.app.verify_db().ok());
    let mut c = raw(&t);
    for sql in [
        "UPDATE statements SET rows_total = 0",
        "DELETE FROM statements",
        "UPDATE bank_rows SET status = 'unmatched'",
        "DELETE FROM bank_rows",
        "UPDATE statement_sections SET closing_minor = 0",
        "UPDATE bank_accounts SET org_id = 1",
        "DELETE FROM bank_accounts",
    ] {
        let err = diesel::sql_query(sql).execute(&mut c).unwrap_err();
        assert!(
            err.to_string().contains("RAISE")
                || err.to_string().contains("append-only")
                || err.to_string().contains("never")
                || err.to_string().contains("for good"),
            "{sql}: {err}"
        );
    }
    // The manifest the uploader signed, changed (say, to name another file): the bank facts it
    // carries no longer verify.
    c.batch_execute("DROP TRIGGER statements_no_update;")
        .unwrap();
    diesel::sql_query(
        "UPDATE statements SET manifest = replace(manifest, '\"s.csv\"', '\"t.csv\"')",
    )
    .execute(&mut c)
    .unwrap();
    verify_fails_at(&t, confirmation, "altered manifest");
    diesel::sql_query(
        "UPDATE statements SET manifest = replace(manifest, '\"t.csv\"', '\"s.csv\"')",
    )
    .execute(&mut c)
    .unwrap();
    assert!(t.app.verify_db().ok());
    // A confirmation for more than the bank paid, written behind the service's back.
    c.batch_execute("DROP TRIGGER ledger_entries_no_update;")
        .unwrap();
    diesel::sql_query("UPDATE ledger_entries SET amount_minor = 78100 WHERE seq = ?")
        .bind::<BigInt, _>(confirmation)
        .execute(&mut c)
        .unwrap();
    verify_fails_at(&t, confirmation, "altered confirmation");
}

#[test]
fn a_second_confirmation_of_one_payment_fails_verification() {
    let t = Tree::build();
    let (pay, confirmation) = imported(&t);
    // Re-label a later payment as a second confirmation of PAY-1 (hash recomputation aside,
    // the rules alone refuse it): verify must not accept two confirmations of one payment.
    let next = t
        .app
        .append(&t.town, vec![t.payment(1, "780.00", "PAY-2")])
        .unwrap()
        .first_seq;
    let mut c = raw(&t);
    c.batch_execute("DROP TRIGGER ledger_entries_no_update;")
        .unwrap();
    diesel::sql_query(
        "UPDATE ledger_entries SET kind = 'confirmation', source_seq = ?, from_org_id = NULL WHERE seq = ?",
    )
    .bind::<BigInt, _>(pay)
    .bind::<BigInt, _>(next)
    .execute(&mut c)
    .unwrap();
    assert!(next > confirmation);
    verify_fails_at(&t, next, "second confirmation");
    let reason = t.app.verify_db().failure.unwrap().reason;
    assert!(
        reason.contains("altered") || reason.contains("already_confirmed"),
        "{reason}"
    );
}

#[test]
fn a_recheck_compares_every_stored_row_and_bank_fact_with_the_kept_file() {
    let t = Tree::build();
    let (_, confirmation) = imported(&t);
    let db = t.app.db_path.to_str().unwrap().to_string();
    let recheck = || {
        run(Cli::parse_from([
            "fundtrail",
            "--db",
            &db,
            "statement",
            "recheck",
            "1",
        ]))
    };
    assert_eq!(recheck().unwrap(), ExitCode::SUCCESS);
    let mut c = raw(&t);
    c.batch_execute("DROP TRIGGER bank_rows_no_update;")
        .unwrap();
    diesel::sql_query("UPDATE bank_rows SET amount_minor = -70000")
        .execute(&mut c)
        .unwrap();
    let mut conn = t.app.conn();
    let keys = fundtrail::config::load_master_key(&t.app.db_path)
        .unwrap()
        .personal_data_keys();
    let files = fundtrail::filestore::FileStore::open(
        &fundtrail::config::files_dir(&t.app.db_path),
        fundtrail::config::load_master_key(&t.app.db_path)
            .unwrap()
            .file_store_secret(),
    )
    .unwrap();
    let report = fundtrail::statements::recheck::recheck(&mut conn, &keys, &files, 1).unwrap();
    assert_eq!(report.differences_total, 2, "{:?}", report.differences);
    assert!(
        report.differences[0].contains("line 2): amount differs"),
        "{:?}",
        report.differences
    );
    assert!(report.differences[1].contains(&format!(
        "entry #{confirmation} disagrees with the row (amount)"
    )));
    assert_eq!(recheck().unwrap(), ExitCode::FAILURE);
    // Without its file, an import cannot be rechecked, and says so.
    std::fs::remove_dir_all(fundtrail::config::files_dir(&t.app.db_path)).unwrap();
    assert_eq!(recheck().unwrap_err().code().as_str(), "not_found");
}
