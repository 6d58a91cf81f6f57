//! The CLI as a clerk uses it: keygen, register, pay a roster in signed batches, reverse,
//! verify a server, all signing on the client.

use clap::Parser as _;
use fundtrail::cli::{run, Cli};
use fundtrail_e2e::{id_number, period, Tree};
use std::process::ExitCode;

fn cli(args: &[&str]) -> Result<ExitCode, fundtrail::error::AppError> {
    let mut full = vec!["fundtrail"];
    full.extend_from_slice(args);
    run(Cli::parse_from(full))
}

#[test]
fn a_clerk_registers_pays_a_roster_in_batches_reverses_and_verifies() {
    let t = Tree::build();
    let dir = t.app.dir.path();
    let key_path = dir.join("town.key");
    // TOWN's existing key, as the clerk's key file.
    t.town.key.save(&key_path).unwrap();
    let base = t.app.base.clone();
    let key = key_path.to_str().unwrap().to_string();
    let remote = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--server".into(),
            base.clone(),
            "--token".into(),
            t.town.token.clone(),
            "--key".into(),
            key.clone(),
        ]);
        v
    };

    let csv = dir.join("new.csv");
    let mut text = String::from("name,id_number,bank_account,bank_name\n");
    for i in 200..230 {
        text.push_str(&format!(
            "新户{i},{},62284800000{i:05},中国农业银行\n",
            id_number(i)
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let args = remote(&["recipients", "register", "--csv", csv.to_str().unwrap()]);
    assert_eq!(
        cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).unwrap(),
        ExitCode::SUCCESS
    );

    // A roster with Chinese headers and thousands separators, 30 rows of 300.00 (9,000.00 of
    // TOWN's 10,000.00), paid in batches of 7.
    let roster = dir.join("roster.csv");
    let mut text = String::from("身份证号,姓名,金额,备注\n");
    for i in 200..230 {
        text.push_str(&format!("{},新户{i},\"0,300.00\",11月\n", id_number(i)));
    }
    std::fs::write(&roster, text).unwrap();
    let town_seq = t.town_seq.to_string();
    let p = period();
    let pay = remote(&[
        "disburse",
        "--program",
        fundtrail_e2e::PROGRAM,
        "--period",
        &p,
        "--source",
        &town_seq,
        "--roster",
        roster.to_str().unwrap(),
        "--batch-size",
        "7",
    ]);
    let before = t.app.verify_db().head_seq;
    assert_eq!(
        cli(&pay.iter().map(String::as_str).collect::<Vec<_>>()).unwrap(),
        ExitCode::SUCCESS
    );
    let report = t.app.verify_db();
    assert_eq!(report.head_seq - before, 30);
    assert_eq!(
        report.batches_checked,
        4 + 5,
        "the tree's four batches and ceil(30/7)"
    );

    // Paying TOWN's other twenty recipients 300.00 each overdraws in the first batch
    // (1,000.00 left: lines 2-4 fit, line 5 does not): the CLI names the roster lines and
    // that batch writes nothing. (Other recipients than the first roster's, so that the refusal is the
    // overdraw and not a payment already made.)
    let other = dir.join("other.csv");
    let mut text = String::from("身份证号,金额\n");
    for i in 1..=20 {
        text.push_str(&format!("{},300\n", id_number(i)));
    }
    std::fs::write(&other, text).unwrap();
    let mut pay_other = pay.clone();
    let at = pay_other.iter().position(|a| a == "--roster").unwrap() + 1;
    pay_other[at] = other.to_str().unwrap().to_string();
    let err = cli(&pay_other.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_err();
    assert_eq!(err.code().as_str(), "overdraw", "{err}");
    assert!(err.to_string().contains("roster line 5: "), "{err}");
    assert_eq!(t.app.verify_db().head_seq, report.head_seq);

    let last = report.head_seq.to_string();
    let rev = remote(&["reverse", &last, "--memo", "错发"]);
    assert_eq!(
        cli(&rev.iter().map(String::as_str).collect::<Vec<_>>()).unwrap(),
        ExitCode::SUCCESS
    );
    let again = cli(&rev.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_err();
    assert_eq!(again.code().as_str(), "already_reversed");

    let verify = ["verify", "--server", &base, "--token", &t.auditor.token];
    assert_eq!(cli(&verify).unwrap(), ExitCode::SUCCESS);
    let export_path = dir.join("e.jsonl");
    assert_eq!(
        cli(&[
            "export",
            "--server",
            &base,
            "--token",
            &t.auditor.token,
            "-o",
            export_path.to_str().unwrap()
        ])
        .unwrap(),
        ExitCode::SUCCESS
    );
    let exported = std::fs::read_to_string(&export_path).unwrap();
    assert_eq!(
        exported
            .lines()
            .filter(|l| l.contains("\"type\":\"entry\""))
            .count() as i64,
        report.head_seq + 1
    );

    // keygen refuses to overwrite a key file.
    let err = cli(&["keygen", "--org", "TOWN", "--out", &key]).unwrap_err();
    assert_eq!(err.code().as_str(), "already_exists");
}

#[test]
fn a_clerk_imports_a_bank_statement_once() {
    let t = Tree::build();
    let dir = t.app.dir.path();
    let key_path = dir.join("town.key");
    t.town.key.save(&key_path).unwrap();
    t.app
        .append(&t.town, vec![t.payment(0, "780.00", "PAY-1")])
        .unwrap();
    let remote = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--server".into(),
            t.app.base.clone(),
            "--token".into(),
            t.town.token.clone(),
            "--key".into(),
            key_path.to_str().unwrap().into(),
        ]);
        v
    };
    let run_args = |args: Vec<String>| cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        run_args(remote(&[
            "account",
            "add",
            "--org",
            "TOWN",
            "--account",
            "6222 0000 1111",
            "--label",
            "低保专户"
        ]))
        .unwrap(),
        ExitCode::SUCCESS
    );
    // A CMB-style export names no account: the clerk gives it.
    let file = dir.join("cmb.csv");
    std::fs::write(
        &file,
        format!(
            "记账日期,货币,交易金额,联机余额,交易摘要,对手信息,客户摘要,流水号\n{},CNY,-780.00,\"1,000.00\",代发其他,张三 6228480000000000001,PAY-1,K1\n",
            fundtrail_e2e::today()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let err = run_args(remote(&["import", f])).unwrap_err();
    assert_eq!(err.code().as_str(), "unknown_account", "{err}");
    assert_eq!(
        run_args(remote(&["import", f, "--account", "622200001111"])).unwrap(),
        ExitCode::SUCCESS
    );
    let confirmations = t
        .app
        .get(Some(&t.town.token), "/api/v1/entries?kind=confirmation");
    assert_eq!(confirmations.body["entries"][0]["amount"], "780.00");
    // The same file again changes nothing.
    let before = t.app.snapshot();
    assert_eq!(
        run_args(remote(&["import", f, "--account", "622200001111"])).unwrap(),
        ExitCode::SUCCESS
    );
    assert_eq!(t.app.snapshot(), before);
}
