//! Bank statements in: a township uploads its account's statement, and the rows become
//! confirmations and returns on the ledger — or the file is refused whole.

use fundtrail::domain::EntryKind;
use fundtrail_e2e::{body, today, Reply, Tree};
use serde_json::{json, Value};

const ACCOUNT: &str = "1508021209202905541";

/// The account a test recipient (0-based `i`) registered (see `register_recipients`).
fn recipient_account(i: usize) -> String {
    format!("622848{:013}", i + 1)
}

/// A generic-profile CSV statement of ACCOUNT: (amount, counterparty account, reference,
/// bank txn id, text) per row, all booked today.
fn statement(rows: &[(&str, &str, &str, &str, &str)]) -> Vec<u8> {
    let mut out = String::from(
        "account,date,amount,currency,counterparty_name,counterparty_account,reference,bank_txn_id,text\n",
    );
    for (amount, cp, reference, txn, text) in rows {
        out.push_str(&format!(
            "{ACCOUNT},{},{amount},CNY,张三,{cp},{reference},{txn},{text}\n",
            today()
        ));
    }
    out.into_bytes()
}

/// TOWN with its program account registered and payments PAY-1..PAY-5 (780.00 each) made to
/// its first five recipients.
fn town_that_paid() -> (Tree, Vec<i64>) {
    let t = Tree::build();
    t.app.register_account(&t.town, ACCOUNT);
    let out = t
        .app
        .append(
            &t.town,
            (0..5)
                .map(|i| t.payment(i, "780.00", &format!("PAY-{}", i + 1)))
                .collect(),
        )
        .unwrap();
    let seqs = out.entries.iter().map(|e| e.seq).collect();
    (t, seqs)
}

fn rows(app: &fundtrail_e2e::TestApp, token: &str, id: i64) -> Vec<Value> {
    let r = app.get(Some(token), &format!("/api/v1/statements/{id}?limit=1000"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["rows"].as_array().unwrap().clone()
}

fn entry(t: &Tree, seq: i64) -> Value {
    let r = t
        .app
        .get(Some(&t.town.token), &format!("/api/v1/entries/{seq}"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[test]
fn a_statement_confirms_payments_by_reference_and_by_account_and_brings_returns_back() {
    let (t, pay) = town_that_paid();
    let file = statement(&[
        ("-780.00", &recipient_account(0), "PAY-1", "T1", "低保"),
        // A short payment: the bank moved 80.00 less than the ledger says.
        ("-700.00", &recipient_account(1), "PAY-2", "T2", "低保"),
        // The bank dropped the reference: matched by the recipient's account and the amount.
        ("-780.00", &recipient_account(3), "", "T4", "低保"),
        ("-780.00", &recipient_account(4), "PAY-5", "T5", "低保"),
        (
            "780.00",
            &recipient_account(4),
            "PAY-5",
            "T6",
            "退汇 账户已销户",
        ),
        // Money that left with no payment behind it.
        ("-5000.00", "3301020109000123456", "", "T7", "往来款"),
        // The allocation arriving: money in, not a return.
        ("10000.00", "999", "ALC-TOWN", "T8", "拨款"),
        // The bank paid PAY-1 twice: the second debit confirms nothing.
        ("-780.00", &recipient_account(0), "PAY-1", "T9", "低保"),
    ]);
    let held_before = entry(&t, t.town_seq)["remaining"].clone();
    assert_eq!(held_before, "6100.00");

    let r = t.app.upload(&t.town, "nov.csv", &file);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["already_imported"], false);
    let s = &r.body["statement"];
    assert_eq!(s["org"], "TOWN");
    assert_eq!(s["format"], "csv");
    assert_eq!(s["rows_total"], 8);
    assert_eq!(
        (
            &s["confirmed_strong"],
            &s["confirmed_weak"],
            &s["returned"],
            &s["unmatched"]
        ),
        (&json!(3), &json!(1), &json!(1), &json!(3))
    );
    assert_eq!(
        s["unmatched_by_note"],
        json!({"no_matching_payment": 1, "credit": 1, "already_confirmed": 1})
    );
    assert_eq!(
        s["file_sha256"],
        hex::encode(fundtrail::crypto::sha256(&file))
    );

    let rows = rows(&t.app, &t.town.token, s["id"].as_i64().unwrap());
    let by_txn = |txn: &str| {
        rows.iter()
            .find(|r| r["bank_txn_id"] == txn)
            .unwrap()
            .clone()
    };
    let seq_of = |v: &Value| v.as_i64().unwrap();
    // PAY-1: strong, confirmed for 780.00.
    let r1 = by_txn("T1");
    assert_eq!(
        (r1["status"].as_str(), r1["match"].as_str()),
        (Some("confirmed"), Some("strong"))
    );
    assert_eq!(seq_of(&r1["payment_seq"]), pay[0]);
    let c1 = entry(&t, seq_of(&r1["entry_seq"]))["entry"].clone();
    assert_eq!(
        (
            c1["kind"].as_str(),
            c1["amount"].as_str(),
            c1["source"].as_i64(),
            c1["reference"].clone()
        ),
        (
            Some("confirmation"),
            Some("780.00"),
            Some(pay[0]),
            json!(format!("CFM-{}", pay[0]))
        )
    );
    assert_eq!(c1["recipient"], t.recipients[0]);
    // PAY-2: confirmed for what the bank really paid.
    let c2 = entry(&t, seq_of(&by_txn("T2")["entry_seq"]))["entry"].clone();
    assert_eq!(c2["amount"], "700.00");
    // PAY-4: weak.
    let r4 = by_txn("T4");
    assert_eq!(
        (r4["status"].as_str(), r4["match"].as_str()),
        (Some("confirmed"), Some("weak"))
    );
    assert_eq!(seq_of(&r4["payment_seq"]), pay[3]);
    // PAY-5: paid, then returned; the money is back with TOWN.
    let r6 = by_txn("T6");
    assert_eq!(
        (r6["status"].as_str(), r6["match"].as_str()),
        (Some("returned"), Some("strong"))
    );
    let ret = entry(&t, seq_of(&r6["entry_seq"]))["entry"].clone();
    assert_eq!(
        (
            ret["kind"].as_str(),
            ret["amount"].as_str(),
            ret["to"].as_str(),
            ret["source"].as_i64()
        ),
        (Some("return"), Some("780.00"), Some("TOWN"), Some(pay[4]))
    );
    assert_eq!(entry(&t, t.town_seq)["remaining"], "6880.00");
    let b = t.app.get(Some(&t.town.token), "/api/v1/balances?org=TOWN");
    assert_eq!(
        (
            &b.body[0]["disbursed"],
            &b.body[0]["returned"],
            &b.body[0]["held"]
        ),
        (&json!("3900.00"), &json!("780.00"), &json!("6880.00"))
    );
    // Unmatched rows, with why; the second PAY-1 debit names the payment it repeats.
    assert_eq!(by_txn("T7")["note"], "no_matching_payment");
    assert_eq!(by_txn("T8")["note"], "credit");
    let r9 = by_txn("T9");
    assert_eq!(
        (r9["status"].as_str(), r9["note"].as_str()),
        (Some("unmatched"), Some("already_confirmed"))
    );
    assert_eq!(seq_of(&r9["payment_seq"]), pay[0]);
    // Personal data is masked in the rows.
    assert_eq!(r1["counterparty_name"], "张*");
    assert_eq!(r1["counterparty_account"], "6228***********0001");
    // PAY-3 is in no statement: unconfirmed. The chain verifies, bank facts included.
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["payment_seq"] != pay[2]));
    let report = t.app.verify_db();
    assert!(report.ok(), "{:?}", report.failure);

    // The returned payment cannot also be reversed; TOWN can pay the recipient again.
    let rev = body(EntryKind::Reversal, "780.00", "PAY-5-REV").source(pay[4]);
    let err = t.app.append(&t.town, vec![rev]).unwrap_err();
    assert_eq!(err.code().as_str(), "source_already_drawn", "{err}");
    t.app
        .append(&t.town, vec![t.payment(4, "780.00", "PAY-5B")])
        .unwrap();
    // Paying again after the bank sent the money back whole is no duplicate payment.
    let mut conn = t.app.conn();
    let dir = fundtrail::ledger::read::Directory::load(&mut conn).unwrap();
    let params = fundtrail::reconcile::ReconcileRequest::default()
        .resolve(&dir, chrono::Utc::now().date_naive())
        .unwrap();
    let report = fundtrail::reconcile::engine::run(&mut conn, &params, &mut |_, _, _| {}).unwrap();
    let duplicates: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.finding_type.as_str() == "duplicate_payment")
        .collect();
    assert!(duplicates.is_empty(), "{duplicates:#?}");
}

#[test]
fn the_same_file_twice_changes_nothing_and_answers_the_first_result() {
    let (t, _) = town_that_paid();
    let file = statement(&[("-780.00", &recipient_account(0), "PAY-1", "T1", "")]);
    let first = t.app.upload(&t.town, "a.csv", &file);
    assert_eq!(first.status, 201, "{:?}", first.body);
    let before = t.app.snapshot();
    let again = t.app.upload(&t.town, "renamed.csv", &file);
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["already_imported"], true);
    assert_eq!(again.body["statement"], first.body["statement"]);
    assert_eq!(t.app.snapshot(), before);
    // Another org cannot claim the same file as its own statement.
    t.app.register_account(&t.town2, "99887766");
    let other = t.app.upload(&t.town2, "a.csv", &file);
    assert_eq!((other.status, other.code()), (409, "already_exists"));
    assert_eq!(t.app.snapshot(), {
        let mut b = before.clone();
        for (table, n) in b.iter_mut() {
            if table == "bank_accounts" || table == "submissions" {
                *n += 1; // town2's account registration
            }
        }
        b
    });
}

#[test]
fn overlapping_statements_count_each_bank_row_once() {
    let (t, _) = town_that_paid();
    let a = statement(&[
        ("-780.00", &recipient_account(0), "PAY-1", "T1", ""),
        ("-780.00", &recipient_account(1), "PAY-2", "T2", ""),
    ]);
    let b = statement(&[
        ("-780.00", &recipient_account(1), "PAY-2", "T2", ""),
        ("-780.00", &recipient_account(2), "PAY-3", "T3", ""),
    ]);
    assert_eq!(t.app.upload(&t.town, "a.csv", &a).status, 201);
    let r = t.app.upload(&t.town, "b.csv", &b);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = &r.body["statement"];
    assert_eq!(
        (
            &s["rows_duplicate"],
            &s["confirmed_strong"],
            &s["unmatched"]
        ),
        (&json!(1), &json!(1), &json!(0))
    );
    let rows = rows(&t.app, &t.town.token, s["id"].as_i64().unwrap());
    assert_eq!(rows[0]["status"], "duplicate");
    assert!(rows[0]["duplicate_of"].as_i64().is_some());
    let confirmations = t
        .app
        .get(Some(&t.town.token), "/api/v1/entries?kind=confirmation");
    assert_eq!(confirmations.body["entries"].as_array().unwrap().len(), 3);
}

#[test]
fn a_file_with_one_bad_row_imports_nothing_and_names_the_row() {
    let (t, _) = town_that_paid();
    let mut file = statement(&[
        ("-780.00", &recipient_account(0), "PAY-1", "T1", ""),
        ("-780.00", &recipient_account(1), "PAY-2", "T2", ""),
    ]);
    file.extend_from_slice(format!("{ACCOUNT},{},12x,CNY,李四,1,PAY-3,T3,\n", today()).as_bytes());
    file.extend_from_slice(format!("{ACCOUNT},2026-13-40,1.00,CNY,李四,1,PAY-4,T4,\n").as_bytes());
    let before = t.app.snapshot();
    let r = t.app.upload(&t.town, "bad.csv", &file);
    assert_eq!(
        (r.status, r.code()),
        (422, "bad_statement_row"),
        "{:?}",
        r.body
    );
    // The full shape a clerk's tools parse: each bad row with its line, field and reason.
    insta::assert_json_snapshot!("statement_error_body", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (errors[0]["location"].as_str(), errors[0]["field"].as_str()),
        (Some("line 4"), Some("amount"))
    );
    assert_eq!(
        (errors[1]["location"].as_str(), errors[1]["field"].as_str()),
        (Some("line 5"), Some("booking_date"))
    );
    assert_eq!(t.app.snapshot(), before);
    let stored = std::fs::read_dir(t.app.dir.path().join("statement-files"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap())
        .count();
    assert_eq!(stored, 0, "a refused file is not kept");
}

#[test]
fn statements_of_unregistered_accounts_are_refused() {
    let (t, _) = town_that_paid();
    // TOWN2's account is not TOWN's to upload.
    t.app.register_account(&t.town2, "4400001111");
    let before = t.app.snapshot();
    let other = "account,date,amount,currency\n4400001111,2026-01-02,-1.00,CNY\n";
    let r = t.app.upload(&t.town, "x.csv", other.as_bytes());
    assert_eq!(
        (r.status, r.code()),
        (422, "unknown_account"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["location"], "line 2");
    // A file that names no account needs one; the manifest can name it.
    let bare = "date,amount,currency\n2026-01-02,-1.00,CNY\n";
    let r = t.app.upload(&t.town, "y.csv", bare.as_bytes());
    assert_eq!(r.code(), "unknown_account");
    assert!(r.body["message"].as_str().unwrap().contains("--account"));
    assert_eq!(t.app.snapshot(), before);
    let r = t.app.upload_with(
        &t.town,
        "y.csv",
        bare.as_bytes(),
        bare.as_bytes(),
        Some(ACCOUNT),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["statement"]["unmatched"], 1);
}

#[test]
fn an_upload_must_be_the_file_that_was_signed() {
    let (t, _) = town_that_paid();
    let file = statement(&[("-780.00", &recipient_account(0), "PAY-1", "T1", "")]);
    let mut altered = file.clone();
    let at = altered.len() - 3;
    altered[at] = b'9';
    let before = t.app.snapshot();
    let r = t.app.upload_with(&t.town, "s.csv", &file, &altered, None);
    assert_eq!(
        (r.status, r.code()),
        (422, "digest_mismatch"),
        "{:?}",
        r.body
    );
    let longer = [file.clone(), b"x".to_vec()].concat();
    let r = t.app.upload_with(&t.town, "s.csv", &file, &longer, None);
    assert_eq!(
        (r.status, r.code()),
        (422, "digest_mismatch"),
        "{:?}",
        r.body
    );
    // No signature at all; a token of another org.
    let r: Reply = t
        .app
        .post(Some(&t.town.token), "/api/v1/statements", &json!({}));
    assert_eq!((r.status, r.code()), (401, "unsigned"));
    let mut wrong = t.town.clone();
    wrong.token = t.town2.token.clone();
    let r = t.app.upload(&wrong, "s.csv", &file);
    assert_eq!((r.status, r.code()), (403, "signer_mismatch"));
    assert_eq!(t.app.snapshot(), before);
}

#[test]
fn bank_facts_come_only_from_statements_and_are_read_only_by_those_entitled() {
    let (t, pay) = town_that_paid();
    let fake = body(
        EntryKind::Confirmation,
        "780.00",
        &format!("CFM-{}", pay[0]),
    )
    .source(pay[0])
    .recipient(&t.recipients[0]);
    let err = t.app.append(&t.town, vec![fake]).unwrap_err();
    assert_eq!(err.code().as_str(), "kind_not_allowed", "{err}");
    // Bank fact references are kept for bank facts.
    let err = t
        .app
        .append(&t.town, vec![t.payment(6, "780.00", "CFM-1")])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "invalid_reference", "{err}");

    let file = statement(&[("-780.00", &recipient_account(0), "PAY-1", "T1", "")]);
    let id = t.app.upload(&t.town, "s.csv", &file).body["statement"]["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/statements/{id}");
    for (who, status) in [
        (&t.town, 200),
        (&t.county, 200),
        (&t.auditor, 200),
        (&t.town2, 404),
    ] {
        assert_eq!(
            t.app.get(Some(&who.token), &path).status,
            status,
            "{}",
            who.code
        );
    }
    let list = t.app.get(Some(&t.town2.token), "/api/v1/statements");
    assert_eq!(list.body, json!([]));
    let r = t
        .app
        .get(Some(&t.town.token), &format!("{path}?status=nope"));
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
}

#[test]
fn identical_rows_in_one_file_are_two_bank_rows_and_each_is_recognised_in_an_overlap() {
    let (t, _) = town_that_paid();
    let fee = ("-5.00", "", "", "", "手续费");
    // Two identical fee rows, far enough apart to fall in different import chunks.
    let mut rows: Vec<(String, String, String, String, String)> = Vec::new();
    for i in 0..2600 {
        let r = if i == 0 || i == 2500 {
            fee
        } else {
            ("-1.00", "", "", "", "")
        };
        let txn = if r == fee {
            String::new()
        } else {
            format!("T{i}")
        };
        rows.push((r.0.into(), r.1.into(), r.2.into(), txn, r.4.into()));
    }
    let view: Vec<(&str, &str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.0.as_str(),
                r.1.as_str(),
                r.2.as_str(),
                r.3.as_str(),
                r.4.as_str(),
            )
        })
        .collect();
    let r = t.app.upload(&t.town, "long.csv", &statement(&view));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (
            &r.body["statement"]["rows_total"],
            &r.body["statement"]["rows_duplicate"]
        ),
        (&json!(2600), &json!(0))
    );
    // A later statement with both fees again (and one new): the fees are the same two rows.
    let r = t
        .app
        .upload(&t.town, "again.csv", &statement(&[fee, fee, fee]));
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (
            &r.body["statement"]["rows_duplicate"],
            &r.body["statement"]["unmatched"]
        ),
        (&json!(2), &json!(1))
    );
}

#[test]
fn a_gbk_bank_export_imports_the_same_rows_as_its_utf8_twin() {
    let t = Tree::build();
    let sample = |name: &str| {
        std::fs::read(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/bank-samples/csv-cn")
                .join(name),
        )
        .unwrap()
    };
    // The ICBC sample's account is printed masked; that is the account as the bank names it.
    t.app.register_account(&t.town, "1234****9876");
    let gbk = t
        .app
        .upload(&t.town, "icbc-debit.gbk.csv", &sample("icbc-debit.gbk.csv"));
    assert_eq!(gbk.status, 201, "{:?}", gbk.body);
    let s = &gbk.body["statement"];
    assert_eq!(
        (s["format"].as_str(), &s["rows_total"]),
        (Some("csv-icbc"), &json!(11))
    );
    // The UTF-8 twin is another file with the very same bank rows: every one a duplicate.
    let utf8 = t.app.upload(
        &t.town,
        "icbc-debit.utf8.csv",
        &sample("icbc-debit.utf8.csv"),
    );
    assert_eq!(utf8.status, 201, "{:?}", utf8.body);
    assert_eq!(
        (
            &utf8.body["statement"]["rows_total"],
            &utf8.body["statement"]["rows_duplicate"]
        ),
        (&json!(11), &json!(11))
    );
    let a = rows(&t.app, &t.town.token, s["id"].as_i64().unwrap());
    let b = rows(
        &t.app,
        &t.town.token,
        utf8.body["statement"]["id"].as_i64().unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        for key in [
            "booking_date",
            "amount",
            "counterparty_name",
            "counterparty_account",
            "reference",
            "text",
            "location",
        ] {
            assert_eq!(x[key], y[key], "{key}");
        }
        assert_eq!(y["duplicate_of"], x["id"]);
    }
    assert_eq!(a[0]["amount"], "-13.40");
}
