//! `fundtrail import FILE --dry-run`: a clerk checks a bank statement before sending it. Runs
//! the real binary on the banks' own sample files.

use fundtrail_e2e::fundtrail_bin;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn sample(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/bank-samples")
        .join(path);
    p.to_str().unwrap().to_string()
}

fn import(args: &[&str]) -> Output {
    Command::new(fundtrail_bin())
        .arg("import")
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_gbk_bank_export_reads_the_same_as_its_utf8_twin() {
    let gbk = import(&[&sample("csv-cn/icbc-debit.gbk.csv"), "--dry-run", "--json"]);
    let utf8 = import(&[&sample("csv-cn/icbc-debit.utf8.csv"), "--dry-run", "--json"]);
    assert_eq!(
        gbk.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gbk.stderr)
    );
    assert_eq!(gbk.stdout, utf8.stdout);
    let rows = json_lines(&gbk);
    assert_eq!(rows.len(), 11, "the 合计 total row is not a transaction");
    let first = &rows[0];
    assert_eq!(first["booking_date"], "2023-05-02");
    assert_eq!(first["amount"], "-13.40");
    assert_eq!(first["currency"], "CNY");
    assert_eq!(first["account"], "1234****9876");
    assert!(first["counterparty_name"]
        .as_str()
        .unwrap()
        .starts_with("深圳市财付通"));
    for key in [
        "booking_date",
        "amount",
        "currency",
        "counterparty_name",
        "counterparty_account",
        "reference",
        "bank_txn_id",
    ] {
        assert!(
            rows.iter().all(|r| r.get(key).is_some()),
            "{key} in every object"
        );
    }
    assert!(String::from_utf8_lossy(&gbk.stderr).contains("11 transactions"));
}

#[test]
fn camt_and_mt940_read_with_signs_and_references() {
    let camt = import(&[&sample("camt/camt054.v2.xml"), "--dry-run", "--json"]);
    let rows = json_lines(&camt);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["amount"].as_str(), rows[0]["currency"].as_str()),
        (Some("-200000"), Some("SEK"))
    );
    assert_eq!(rows[0]["reference"], "MUELL/FINP/RA12345");
    let mt = import(&[
        &sample("mt940/sparkasse-buxtehude.sta"),
        "--dry-run",
        "--json",
    ]);
    let amounts: Vec<String> = json_lines(&mt)
        .iter()
        .map(|r| r["amount"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(amounts, vec!["-119.35", "-16.69", "-5.00"]);
}

#[test]
fn bad_rows_are_named_by_line_and_field_and_the_rest_is_still_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("statement.csv");
    std::fs::write(
        &file,
        "date,amount,currency\n2024-01-02,12.50,CNY\n2024-13-40,1,CNY\n2024-01-03,x,CNY\n",
    )
    .unwrap();
    let out = import(&[file.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3, field booking_date"), "{stderr}");
    assert!(stderr.contains("line 4, field amount"), "{stderr}");
    let rows = json_lines(&out);
    assert_eq!((rows.len(), rows[0]["amount"].as_str()), (1, Some("12.50")));
    let missing = import(&[dir.path().join("nope.csv").to_str().unwrap(), "--dry-run"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open"));
}
