//! Statements that prove themselves: on import and in `--dry-run`, every section must add up
//! from its stated opening balance to its stated closing balance; across imports, consecutive
//! statements of one account must join, or reconciliation reports a `statement_gap`.
//!
//! The banks' public sample files are checked against another implementation's reading of
//! them (the `*.expected-by-mt940-rs.json` files): which statements add up, and by how much the
//! others miss, is computed here from that reading, not from ours.

use fundtrail::statements::show::dry_run;
use fundtrail_e2e::{fundtrail_bin, Reply, Tree};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bank-samples")
}

/// Decimal text to minor units (two decimals), exactly.
fn cents(text: &str) -> i64 {
    let (neg, t) = text.strip_prefix('-').map_or((false, text), |t| (true, t));
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let frac = format!("{frac:0<2}");
    assert_eq!(frac.len(), 2, "{text}");
    let c = int.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
    if neg {
        -c
    } else {
        c
    }
}

fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// Per statement of an mt940-rs expectation: closing − (opening + Σ lines), in minor units.
fn differences_by_mt940_rs(expected: &Path) -> Vec<i64> {
    let statements: Vec<Value> = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
    let signed = |b: &Value| {
        let a = cents(b["amount"].as_str().unwrap());
        if b["debit_credit_indicator"] == "Credit" {
            a
        } else {
            -a
        }
    };
    statements
        .iter()
        .map(|s| {
            let lines: i64 = s["statement_lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let a = cents(l["amount"].as_str().unwrap());
                    match l["ext_debit_credit_indicator"].as_str().unwrap() {
                        "Credit" | "ReverseDebit" => a,
                        _ => -a,
                    }
                })
                .sum();
            signed(&s["closing_balance"]) - signed(&s["opening_balance"]) - lines
        })
        .collect()
}

struct Checked {
    errors: u64,
    unbalanced: u64,
    transactions: u64,
    out: String,
    err: String,
}

fn check(path: &Path) -> Checked {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let seen = dry_run(path, None, None, false, &mut out, &mut err).expect("the file opens");
    Checked {
        errors: seen.errors,
        unbalanced: seen.unbalanced,
        transactions: seen.transactions,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[test]
fn mt940_samples_add_up_exactly_where_another_implementation_says_they_do() {
    let dir = samples().join("mt940");
    let mut files = 0;
    let (mut balanced_files, mut unbalanced_files) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let expected = entry.unwrap().path();
        let name = expected.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name.strip_suffix(".expected-by-mt940-rs.json") else {
            continue;
        };
        files += 1;
        let differences = differences_by_mt940_rs(&expected);
        let misses: Vec<i64> = differences.iter().copied().filter(|d| *d != 0).collect();
        let got = check(&dir.join(format!("{stem}.sta")));
        assert_eq!(
            got.unbalanced,
            misses.len() as u64,
            "{stem}: {} of {} statements do not add up by mt940-rs' reading\n{}",
            misses.len(),
            differences.len(),
            got.err
        );
        assert_eq!(
            got.errors, got.unbalanced,
            "{stem}: no other errors\n{}",
            got.err
        );
        for d in &misses {
            let said = format!("(a difference of {})", money(*d));
            assert!(got.err.contains(&said), "{stem}: {said} in\n{}", got.err);
        }
        if misses.is_empty() {
            balanced_files += 1;
            assert!(
                got.out.contains("0 sections that do not add up"),
                "{}",
                got.out
            );
        } else {
            unbalanced_files += 1;
            // The clerk still sees every row, and which section went wrong.
            assert!(got.transactions > 0);
            assert!(got.err.contains("[statement_unbalanced]"), "{}", got.err);
            assert!(got.err.contains("does not add up"), "{}", got.err);
        }
    }
    assert_eq!(files, 6, "every mt940-rs expectation is checked");
    assert!(balanced_files >= 3 && unbalanced_files >= 3);
}

#[test]
fn a_dry_run_of_an_unbalanced_statement_names_the_section_its_lines_and_the_sum() {
    let got = check(&samples().join("mt940/sparkasse-buxtehude.sta"));
    assert_eq!(got.unbalanced, 1, "{}", got.err);
    let line = got
        .err
        .lines()
        .find(|l| l.contains("statement_unbalanced"))
        .unwrap();
    // The account and statement number, the rows' lines, the stated balances and the sum.
    assert!(line.contains("statement "), "{line}");
    assert!(line.contains("lines "), "{line}");
    assert!(line.contains("opening 13564.13"), "{line}");
    assert!(line.contains("closing 13523.09 stated"), "{line}");
    assert!(line.contains("(a difference of 100.00)"), "{line}");
    // The rows are listed all the same.
    assert_eq!(
        got.out.lines().filter(|l| l.starts_with("line ")).count() as u64,
        got.transactions
    );
}

#[test]
fn the_cli_dry_run_exits_non_zero_on_an_unbalanced_statement_and_zero_on_a_balanced_one() {
    let run = |file: &str| {
        Command::new(fundtrail_bin())
            .args([
                "import",
                samples().join(file).to_str().unwrap(),
                "--dry-run",
            ])
            .output()
            .unwrap()
    };
    let bad = run("mt940/ing.sta");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("statement_unbalanced"));
    let good = run("mt940/rabobank-iban.sta");
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}

const ACCOUNT: &str = "NL01BANK0123456789";

fn mt940(closing: &str) -> Vec<u8> {
    format!(
        ":20:FT-1\r\n:25:{ACCOUNT}\r\n:28C:7/1\r\n:60F:C261101CNY1000,00\r\n\
         :61:2611021102D30,00NTRFNONREF\r\n:86:/EREF/PAY-9/NAME/ZHANG SAN/\r\n\
         :62F:C261102CNY{closing}\r\n-\r\n"
    )
    .into_bytes()
}

#[test]
fn an_import_that_does_not_add_up_is_refused_whole_and_writes_nothing() {
    let t = Tree::build();
    t.app.register_account(&t.town, ACCOUNT);
    let before = t.app.snapshot();
    let r = t.app.upload(&t.town, "bad.sta", &mt940("980,00"));
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.code(), "statement_unbalanced");
    assert_eq!(r.body["location"], "line 1");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("statement 7/1"), "{message}");
    assert!(
        message.contains("opening 1000.00 + -30.00 = 970.00"),
        "{message}"
    );
    assert!(message.contains("closing 980.00 stated"), "{message}");
    assert_eq!(t.app.snapshot(), before, "nothing was written");

    let r = t.app.upload(&t.town, "good.sta", &mt940("970,00"));
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Summaries say what the matcher had to work with.
    let statement = &r.body["statement"];
    assert_eq!(statement["rows_total"], 1, "{statement}");
    assert_eq!(statement["rows_without_reference"], 0);
    assert_eq!(statement["rows_without_counterparty_account"], 1);
}

/// Every statement (account, currency) a file names, and whether any part of it fails the
/// checks, as a clerk's dry run reads it.
fn read_sample(path: &Path, account: Option<&str>) -> (Vec<(String, String)>, Vec<String>) {
    use fundtrail_importers::{balance::Checked, parse_auto, Options, Record};
    let options = Options {
        account: account.map(str::to_string),
        ..Options::default()
    };
    let file = std::fs::File::open(path).unwrap();
    let name = path.file_name().and_then(|n| n.to_str());
    let (_, records) = parse_auto(file, name, &options).unwrap();
    let (mut accounts, mut errors) = (Vec::new(), Vec::new());
    for r in Checked::new(records) {
        match r {
            Ok(Record::Statement(s)) => {
                let pair = (
                    s.account.clone(),
                    s.currency.unwrap_or_else(|| "CNY".into()),
                );
                if !accounts.contains(&pair) {
                    accounts.push(pair);
                }
            }
            Ok(Record::Transaction(_)) => {}
            Err(e) => errors.push(e.code.as_str().to_string()),
        }
    }
    (accounts, errors)
}

#[test]
fn every_public_sample_that_adds_up_imports_and_every_other_is_refused_whole() {
    let t = Tree::build();
    let mut registered: Vec<String> = Vec::new();
    let (mut imported, mut refused) = (Vec::new(), Vec::new());
    for folder in ["mt940", "camt", "csv-cn"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(samples().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                !n.contains(".expected-") && !n.ends_with(".md")
            })
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            // Exports that name no account are imported with one, as `--account` does.
            let named = read_sample(&path, None).0;
            let account = named
                .iter()
                .any(|(a, _)| a.is_empty())
                .then_some("6228480000000009999");
            let (accounts, errors) = read_sample(&path, account);
            for (number, currency) in &accounts {
                if registered.contains(number) {
                    continue;
                }
                let r = t.app.post_signed(
                    &t.town,
                    "/api/v1/bank-accounts",
                    serde_json::json!({"org": "TOWN", "account": number,
                        "currency": currency, "label": "sample"}),
                );
                assert_eq!(r.status, 201, "{name}: register {number}: {:?}", r.body);
                registered.push(number.clone());
            }
            let bytes = std::fs::read(&path).unwrap();
            let before = t.app.snapshot();
            let r = t.app.upload_with(&t.town, &name, &bytes, &bytes, account);
            if errors.is_empty() {
                assert_eq!(r.status, 201, "{name} adds up and imports: {:?}", r.body);
                imported.push(name);
            } else {
                assert_eq!(r.status, 422, "{name}: {:?}", r.body);
                assert!(errors.iter().any(|e| e == r.code()), "{name}: {:?}", r.body);
                assert_eq!(t.app.snapshot(), before, "{name}: a refusal writes nothing");
                refused.push(name);
            }
        }
    }
    // The hand-made samples whose balances do not add up (SOURCES.md names three of them).
    for name in ["abnamro.sta", "ing.sta", "sparkasse-buxtehude.sta"] {
        assert!(refused.contains(&name.to_string()), "{name}: {refused:?}");
    }
    assert!(
        imported.len() >= 8,
        "imported {imported:?}, refused {refused:?}"
    );
    assert!(t.app.verify_db().ok());
}

/// statement_gap findings of a whole-ledger report on `t`'s database.
fn statement_gaps(t: &Tree) -> Vec<fundtrail::reconcile::report::Finding> {
    let mut conn = t.app.conn();
    let dir = fundtrail::ledger::read::Directory::load(&mut conn).unwrap();
    let params = fundtrail::reconcile::ReconcileRequest::default()
        .resolve(&dir, chrono::Utc::now().date_naive())
        .unwrap();
    let report = fundtrail::reconcile::engine::run(&mut conn, &params, &mut |_, _, _| {}).unwrap();
    report
        .findings
        .into_iter()
        .filter(|f| f.finding_type.as_str() == "statement_gap")
        .collect()
}

/// Danske Bank's sample: fourteen daily MT940 statements of one account, each `:60F:` dated
/// with the previous statement's closing day.
fn daily_statements(t: &Tree, file: &[u8]) -> Reply {
    let r = t.app.post_signed(
        &t.town,
        "/api/v1/bank-accounts",
        serde_json::json!({"org": "TOWN", "account": "DABADKKK/1234567890",
            "currency": "DKK", "label": "sample"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    t.app.upload(&t.town, "danskebank-dk.sta", file)
}

#[test]
fn daily_mt940_statements_that_join_give_no_gap_and_one_that_opens_higher_gives_one() {
    let original = std::fs::read(samples().join("mt940/danskebank-dk.sta")).unwrap();
    let t = Tree::build();
    assert_eq!(daily_statements(&t, &original).status, 201);
    assert!(statement_gaps(&t).is_empty(), "{:#?}", statement_gaps(&t));

    // The last statement opens (and so closes) 100.00 higher than the one before closed: it
    // still adds up on its own, so it imports, and the jump between the two is the finding.
    let text = String::from_utf8(original).unwrap();
    let tampered = text
        .replace(":60F:C091019DKK3859701,48", ":60F:C091019DKK3859801,48")
        .replace(":62F:C091020DKK3851379,47", ":62F:C091020DKK3851479,47");
    assert_ne!(tampered, text);
    let t = Tree::build();
    let r = daily_statements(&t, tampered.as_bytes());
    assert_eq!(r.status, 201, "{:?}", r.body);
    let gaps = statement_gaps(&t);
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    assert_eq!(gaps[0].amount, "100.00");
    assert_eq!(gaps[0].evidence.rule.name, "statement_gap.balance_jump");
    assert_eq!(gaps[0].evidence.statements[1].from_date, "2009-10-19");
}
