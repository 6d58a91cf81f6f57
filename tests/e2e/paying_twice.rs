//! A clerk unsure whether a roster went through runs it again: the ledger must not pay anyone
//! twice by accident. A payment to a recipient already paid for the same program and period
//! is refused (`already_paid`, naming the earlier payment) unless its memo says why it is paid
//! again; references generated for a roster are the same on every run of the same file.

use fundtrail::domain::EntryKind;
use fundtrail_e2e::{body, fundtrail_bin, id_number, period, Tree, PROGRAM};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn disburse(t: &Tree, key: &Path, roster: &Path, extra: &[&str]) -> Output {
    Command::new(fundtrail_bin())
        .args(["disburse", "--program", PROGRAM, "--period", &period()])
        .args(["--source", &t.town_seq.to_string()])
        .args(["--roster", roster.to_str().unwrap(), "--json"])
        .args(extra)
        .env("FUNDTRAIL_SERVER", &t.app.base)
        .env("FUNDTRAIL_TOKEN", &t.town.token)
        .env("FUNDTRAIL_KEY", key)
        .output()
        .unwrap()
}

fn references(out: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reference"].as_str().unwrap().to_string())
        .collect()
}

/// TOWN's key in a file, and a two-row roster paying its recipients 1 and 2.
fn setup() -> (Tree, std::path::PathBuf, std::path::PathBuf) {
    let t = Tree::build();
    let key = t.app.dir.path().join("town.key");
    t.town.key.save(&key).unwrap();
    let roster = t.app.dir.path().join("roster.csv");
    std::fs::write(
        &roster,
        format!(
            "身份证号,金额,备注\n{},780,12月\n{},650.50,12月\n",
            id_number(1),
            id_number(2)
        ),
    )
    .unwrap();
    (t, key, roster)
}

#[test]
fn a_roster_run_twice_pays_once_and_the_second_run_names_the_earlier_payments() {
    let (t, key, roster) = setup();
    let first = disburse(&t, &key, &roster, &[]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let paid = references(&first);
    assert_eq!(paid.len(), 2);
    // Generated from the file and the line: the same on every run of this file.
    for (r, line) in paid.iter().zip([2, 3]) {
        assert!(r.ends_with(&format!("-{line:06}")), "{r}");
        assert!(r.len() <= 35);
    }

    let before = t.app.snapshot();
    let again = disburse(&t, &key, &roster, &[]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already_paid"), "{err}");
    // Both rows are named, each with the payment it would repeat.
    assert!(err.contains(&format!("(reference {})", paid[0])), "{err}");
    assert!(err.contains(&format!("(reference {})", paid[1])), "{err}");
    assert!(err.contains("--second-payment"), "{err}");
    assert_eq!(t.app.snapshot(), before, "nothing was written");
}

#[test]
fn the_same_references_through_another_client_are_refused_too() {
    let (t, key, roster) = setup();
    let paid = references(&disburse(&t, &key, &roster, &[]));
    // Another client sends the first row again, with the reference the CLI generated and a
    // memo that says it is deliberate: the reference alone still stops it.
    let again = t.payment(0, "780.00", &paid[0]).memo("再次发放：重发");
    let err = t.app.append(&t.town, vec![again]).unwrap_err();
    assert_eq!(err.code().as_str(), "duplicate_reference", "{err}");
}

#[test]
fn a_second_payment_on_purpose_goes_through_with_its_reason_in_the_memo() {
    let (t, key, roster) = setup();
    assert_eq!(disburse(&t, &key, &roster, &[]).status.code(), Some(0));
    // Another roster file (new references), paying the same people again on purpose.
    let arrears = t.app.dir.path().join("arrears.csv");
    std::fs::write(
        &arrears,
        format!(
            "身份证号,金额\n{},780\n{},650.50\n",
            id_number(1),
            id_number(2)
        ),
    )
    .unwrap();
    let out = disburse(&t, &key, &arrears, &["--second-payment", "补发10月欠发"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seq = v["entries"][0]["seq"].as_i64().unwrap();
    let entry = t
        .app
        .get(Some(&t.town.token), &format!("/api/v1/entries/{seq}"));
    assert_eq!(entry.body["entry"]["memo"], "再次发放：补发10月欠发");
    // An empty reason is no reason.
    let out = disburse(&t, &key, &arrears, &["--second-payment", " "]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("second_payment"));
}

#[test]
fn one_batch_cannot_pay_a_recipient_twice_and_a_reversed_payment_frees_the_recipient() {
    let t = Tree::build();
    let err = t
        .app
        .append(
            &t.town,
            vec![t.payment(3, "100.00", "P-1"), t.payment(3, "100.00", "P-2")],
        )
        .unwrap_err();
    assert_eq!(err.code().as_str(), "already_paid");
    assert_eq!(err.problems[0].item, Some(1), "the second one is refused");
    assert!(err.problems[0]
        .message
        .contains(&format!("by entry #{} (reference P-1)", t.town_seq + 1)));

    // Paid, reversed as a mistake, paid again in the same batch as the reversal (in either
    // order): fine.
    let first = t
        .app
        .append(&t.town, vec![t.payment(3, "100.00", "P-1")])
        .unwrap()
        .first_seq;
    let reversal = body(EntryKind::Reversal, "100.00", "P-1-REV")
        .source(first)
        .memo("金额有误");
    t.app
        .append(&t.town, vec![t.payment(3, "90.00", "P-1B"), reversal])
        .unwrap();
    assert!(t.app.verify_db().ok());
}

#[test]
fn reversing_one_of_two_live_payments_leaves_the_other_standing() {
    let t = Tree::build();
    let first = t
        .app
        .append(&t.town, vec![t.payment(5, "100.00", "Q-1")])
        .unwrap()
        .first_seq;
    let second = t
        .app
        .append(
            &t.town,
            vec![t.payment(5, "100.00", "Q-2").memo("再次发放：补发")],
        )
        .unwrap()
        .first_seq;
    let undo = body(EntryKind::Reversal, "100.00", "Q-2-REV").source(second);
    t.app.append(&t.town, vec![undo]).unwrap();
    // Q-1 is still live: a third payment without a reason is refused, naming it.
    let err = t
        .app
        .append(&t.town, vec![t.payment(5, "100.00", "Q-3")])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "already_paid");
    assert!(
        err.problems[0]
            .message
            .contains(&format!("by entry #{first} (reference Q-1)")),
        "{err}"
    );
}
