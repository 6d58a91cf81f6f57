//! Ground truth: generated scenarios (fundtrail-fixtures) of several seeds and sizes, each with
//! every leakage type injected, loaded through the service's own paths and reconciled. Every
//! injected case must be found (recall 1.0) with its org and amount, and nothing else flagged
//! (precision 1.0). A clean scenario gives no findings and a funnel that balances to the cent.

use diesel::connection::SimpleConnection;
use fundtrail::reconcile::report::{Finding, Report};
use fundtrail::reconcile::{engine, ReconcileRequest};
use fundtrail_fixtures::{generate, Cases, Options, Truth, TruthCase};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const AS_OF: &str = "2026-12-31";

/// What identifies a case: the payment, the bank row, the org holding money, or the group of
/// payments into one account.
fn finding_key(f: &Finding) -> String {
    let kind = f.finding_type.as_str();
    match kind {
        "unrecorded_outflow" | "returned_not_recredited" => {
            let row = &f.evidence.bank_rows[0];
            format!("{kind} statements/{} {}", row.file_name, row.location)
        }
        "held_too_long" => format!("{kind} {}", f.org),
        "statement_gap" => {
            let later = f.evidence.statements.last().map(|s| s.file_name.as_str());
            format!("{kind} {} statements/{}", f.org, later.unwrap_or("?"))
        }
        "shared_account" => {
            let refs: BTreeSet<&str> = f
                .evidence
                .ledger
                .iter()
                .map(|e| e.reference.as_str())
                .collect();
            format!("{kind} {refs:?}")
        }
        _ => format!("{kind} {}", f.payment_reference.as_deref().unwrap_or("-")),
    }
}

fn truth_key(c: &TruthCase) -> String {
    let kind = c.kind.as_str();
    match kind {
        "unrecorded_outflow" | "returned_not_recredited" => format!(
            "{kind} {} line {}",
            c.file.as_deref().unwrap_or("?"),
            c.line.unwrap_or(0)
        ),
        "held_too_long" => format!("{kind} {}", c.org),
        "statement_gap" => format!("{kind} {} {}", c.org, c.file.as_deref().unwrap_or("?")),
        "shared_account" => {
            let refs: BTreeSet<&str> = c
                .payment_references
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            format!("{kind} {refs:?}")
        }
        _ => format!("{kind} {}", c.payment_reference.as_deref().unwrap_or("-")),
    }
}

/// Generates, loads, tampers the integrity cases in the database, reconciles.
fn run(opts: &Options) -> (Truth, Report) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario");
    let truth = generate(opts, &scenario).expect("scenario generates");
    let db = dir.path().join("data/fundtrail.db");
    fundtrail::demo::load(&db, &scenario).expect("scenario loads");
    tamper(&db, &truth);
    (truth, reconcile(&db))
}

/// The whole province as of AS_OF, with the default thresholds.
fn reconcile(db: &Path) -> Report {
    let mut conn = fundtrail::config::open_existing(db).unwrap();
    let dir_ = fundtrail::ledger::read::Directory::load(&mut conn).unwrap();
    let params = ReconcileRequest {
        as_of: Some(AS_OF.into()),
        ..Default::default()
    }
    .resolve(&dir_, chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap())
    .unwrap();
    engine::run(&mut conn, &params, &mut |_, _, _| {}).unwrap()
}

/// The integrity cases: someone with the database file rewrites a payment's memo behind the
/// service's back (dropping the trigger that forbids it).
fn tamper(db: &Path, truth: &Truth) {
    let mut conn = fundtrail::config::open_existing(db).unwrap();
    let fundtrail::db::DbConn::Sqlite(c) = &mut conn;
    for case in truth.cases.iter().filter(|c| c.kind == "integrity") {
        let reference = case.payment_reference.as_deref().unwrap();
        c.batch_execute(&format!(
            "DROP TRIGGER ledger_entries_no_update;
             UPDATE ledger_entries SET memo = memo || ' (edited)' WHERE reference = '{reference}';
             CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
             BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;"
        ))
        .unwrap();
    }
}

/// Precision and recall of `report` against `truth`, and every mismatch spelled out.
fn score(truth: &Truth, report: &Report) -> (f64, f64, Vec<String>) {
    let expected: BTreeMap<String, &TruthCase> =
        truth.cases.iter().map(|c| (truth_key(c), c)).collect();
    assert_eq!(expected.len(), truth.cases.len(), "truth keys are unique");
    let mut problems = Vec::new();
    let mut hits = 0usize;
    let mut seen = BTreeSet::new();
    for f in &report.findings {
        let key = finding_key(f);
        match expected.get(&key) {
            Some(case) if seen.insert(key.clone()) => {
                hits += 1;
                if case.org != f.org || case.amount != f.amount {
                    problems.push(format!(
                        "{key}: found org {} amount {}, injected org {} amount {}",
                        f.org, f.amount, case.org, case.amount
                    ));
                }
            }
            Some(_) => problems.push(format!("{key}: flagged twice")),
            None => problems.push(format!("{key}: flagged but not injected ({})", f.detail)),
        }
    }
    for key in expected.keys().filter(|k| !seen.contains(*k)) {
        problems.push(format!("{key}: injected but not found"));
    }
    let precision = if report.findings.is_empty() {
        1.0
    } else {
        hits as f64 / report.findings.len() as f64
    };
    let recall = if truth.cases.is_empty() {
        1.0
    } else {
        hits as f64 / truth.cases.len() as f64
    };
    (precision, recall, problems)
}

fn options(
    seed: u64,
    recipients: usize,
    counties: usize,
    townships: usize,
    cases: Cases,
) -> Options {
    Options {
        seed,
        recipients,
        counties,
        townships,
        cases,
        ..Options::default()
    }
}

#[test]
fn every_injected_case_is_found_and_nothing_else_across_seeds_and_sizes() {
    for opts in [
        options(1, 400, 2, 4, Cases::PerType(1)),
        options(7, 3_000, 3, 9, Cases::PerType(2)),
        options(42, 8_000, 5, 20, Cases::Rate(0.0005)),
    ] {
        let (truth, report) = run(&opts);
        // Every type is in the truth, so every rule is exercised.
        for (kind, n) in &truth.counts {
            assert!(*n > 0, "seed {}: no {kind} injected", opts.seed);
        }
        let (precision, recall, problems) = score(&truth, &report);
        assert!(
            problems.is_empty(),
            "seed {} ({} recipients): precision {precision:.3}, recall {recall:.3}\n{}",
            opts.seed,
            opts.recipients,
            problems.join("\n")
        );
        assert_eq!((precision, recall), (1.0, 1.0));
        assert!(report.checks.iter().all(|c| c.holds), "{:?}", report.checks);
    }
}

#[test]
fn a_clean_scenario_has_no_findings_and_its_funnel_balances_to_the_cent() {
    let (truth, report) = run(&options(3, 2_000, 4, 12, Cases::PerType(0)));
    assert!(truth.cases.is_empty());
    assert!(
        report.findings.is_empty(),
        "{:#?}",
        report.findings.iter().map(finding_key).collect::<Vec<_>>()
    );
    assert!(report.checks.iter().all(|c| c.holds && c.checked > 0));
    let s = &report.summary[0];
    let minor = |t: &str| fundtrail::money::parse_amount_lenient(t, 2).unwrap_or(0);
    assert!(minor(&s.received) > 0);
    // All that came in was paid, all that was paid the bank confirmed, nothing is held.
    assert_eq!(s.received, s.disbursed);
    assert_eq!(s.confirmed, s.disbursed);
    assert_eq!(s.reached_recipients, s.disbursed);
    assert_eq!((s.held.as_str(), s.unexplained.as_str()), ("0.00", "0.00"));
    // And node by node: the leaves' payments add up to every ancestor's subtree.
    let by_org: BTreeMap<&str, _> = report.funnel.iter().map(|n| (n.org.as_str(), n)).collect();
    for node in &report.funnel {
        let children: i64 = report
            .funnel
            .iter()
            .filter(|c| c.parent.as_deref() == Some(node.org.as_str()))
            .map(|c| minor(&c.subtree.disbursed))
            .sum();
        let own = minor(&node.disbursed);
        assert_eq!(
            minor(&node.subtree.disbursed),
            own + children,
            "{}",
            node.org
        );
        if let Some(parent) = &node.parent {
            assert!(by_org.contains_key(parent.as_str()));
        }
    }
}

#[test]
fn the_same_state_and_parameters_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario");
    let truth = generate(&options(11, 600, 2, 6, Cases::PerType(1)), &scenario).unwrap();
    let db = dir.path().join("data/fundtrail.db");
    fundtrail::demo::load(&db, &scenario).unwrap();
    tamper(&db, &truth);
    let copy = dir.path().join("copy.db");
    {
        let mut conn = fundtrail::config::open_existing(&db).unwrap();
        let fundtrail::db::DbConn::Sqlite(c) = &mut conn;
        c.batch_execute(&format!("VACUUM INTO '{}'", copy.display()))
            .unwrap();
    }
    let report_bytes = |path: &Path| {
        let report = reconcile(path);
        let mut out = Vec::new();
        fundtrail::reconcile::write_report(
            &report,
            fundtrail::reconcile::Format::Json,
            Default::default(),
            &mut out,
        )
        .unwrap();
        (report.findings.len(), out)
    };
    // Each run hashes with fresh random seeds; the output must not depend on them.
    let (n, first) = report_bytes(&db);
    assert!(n >= truth.cases.len());
    assert!(first == report_bytes(&db).1);
    assert!(
        first == report_bytes(&copy).1,
        "a copy of the file gives other bytes"
    );
}

/// The report's shape as a contract: a small scenario with one case of each type, as JSON.
/// Only the head hash and the pseudonyms differ between loads (each load makes fresh keys).
#[test]
fn the_report_format_of_a_small_scenario() {
    let (_, report) = run(&options(5, 40, 1, 2, Cases::PerType(1)));
    let mut json = serde_json::to_value(&report).unwrap();
    json["ledger_state"]["head_hash"] = "[head hash]".into();
    for f in json["findings"].as_array_mut().unwrap() {
        if !f["recipient"].is_null() {
            f["recipient"] = "[pseudonym]".into();
        }
        // The integrity failure names the stored and recomputed hashes of the edited entry.
        if f["type"] == "integrity" {
            f["detail"] = "[edited entry]".into();
        }
    }
    insta::assert_json_snapshot!("small_scenario_report", json);
}

#[test]
fn a_day_left_out_and_a_balance_jump_each_give_exactly_one_statement_gap() {
    // Two cases of each type: the first split leaves the 25th out, the second opens lower.
    let (truth, report) = run(&options(5, 1_200, 2, 6, Cases::PerType(2)));
    let injected: Vec<&TruthCase> = truth
        .cases
        .iter()
        .filter(|c| c.kind == "statement_gap")
        .collect();
    assert_eq!(injected.len(), 2);
    let found: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.finding_type.as_str() == "statement_gap")
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    let mut rules: Vec<(&str, &str)> = found
        .iter()
        .map(|f| {
            let rule = &f.evidence.rule;
            (rule.name.as_str(), rule.observed.as_deref().unwrap_or(""))
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            ("statement_gap.balance_jump", "-3001.00"),
            ("statement_gap.uncovered_days", "2026-10-25..2026-10-25"),
        ]
    );
    for f in &found {
        let case = injected
            .iter()
            .find(|c| c.org == f.org)
            .expect("its township");
        assert_eq!(f.amount, case.amount);
        assert_eq!(f.evidence.statements.len(), 2);
        assert_eq!(
            Some(format!("statements/{}", f.evidence.statements[1].file_name)),
            case.file
        );
        // The missing money is unexplained in the township's funnel.
        let node = report.funnel.iter().find(|n| n.org == f.org).unwrap();
        assert!(cents(&node.unexplained) >= cents(&f.amount), "{node:?}");
    }
}

/// Cents of a two-decimal amount's text.
fn cents(text: &str) -> i64 {
    let (int, frac) = text.split_once('.').expect("two decimals");
    let sign = if int.starts_with('-') { -1 } else { 1 };
    sign * (int.trim_start_matches('-').parse::<i64>().unwrap() * 100
        + frac.parse::<i64>().unwrap())
}
