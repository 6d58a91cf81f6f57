//! The demo loads once, verifies, balances, and leaves each org's credentials next to the
//! database.

use fundtrail::ledger::read::{balances, Directory};
use fundtrail::ledger::verify::{verify, DbCopy};
use std::path::PathBuf;

#[test]
fn the_demo_loads_once_verifies_and_balances() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/fundtrail.db");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo");
    let first = fundtrail::demo::load(&db, &fixtures).unwrap();
    assert!(first.loaded);
    // The 低保 province and the generated 高龄津贴 scenario below it (fixtures/demo/scenario).
    assert_eq!((first.orgs, first.recipients), (16 + 10, 320 + 480));
    // budget + 14 allocations + 317 payments + a reversal and its re-payment, then from the
    // bank statements 316 confirmations (one payment is missing from its statement) and 2
    // returns (fixtures/demo/statements/README.md)
    let dibao = 1 + 14 + 317 + 2 + 316 + 2;
    // The scenario: budget + 2 county + 6 township allocations, 480 payments and one
    // duplicate, 480 confirmations (one payment unconfirmed, and the duplicate confirmed).
    let gaoling = 1 + 2 + 6 + 481 + 480;
    assert_eq!(first.entries, dibao + gaoling);
    let again = fundtrail::demo::load(&db, &fixtures).unwrap();
    assert!(!again.loaded);
    // A database in real use (orgs that are not the demo's) is never given the demo.
    let other = dir.path().join("other/fundtrail.db");
    let made = fundtrail::config::init(&other).unwrap();
    let admin = fundtrail::crypto::SigningKey::load(&made.operator_key_path).unwrap();
    let mut c = fundtrail::config::open_existing(&other).unwrap();
    let payload = serde_json::json!({"code": "REAL-OFFICE", "name": "某县民政局", "role": "local_office", "parent": null, "public_key": null});
    let (v, now) =
        fundtrail::signing::sign_locally(&mut c, &admin, "POST /api/v1/orgs", payload).unwrap();
    fundtrail::service::orgs::create(&mut c, &v, now).unwrap();
    let err = fundtrail::demo::load(&other, &fixtures).unwrap_err();
    assert_eq!(err.code().as_str(), "already_exists");
    let mut conn = fundtrail::config::open_existing(&db).unwrap();
    let report = verify(&mut DbCopy::new(&mut conn), &mut |_| {}).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.entries_checked, first.entries);

    // The bank statements, as fixtures/demo/statements/README.md says they should import.
    let statements: Vec<_> = (1..=9)
        .map(|id| fundtrail::statements::read::summary(&mut conn, id).unwrap())
        .collect();
    let total = |f: fn(&fundtrail::statements::read::StatementView) -> i64| {
        statements.iter().map(f).sum::<i64>()
    };
    assert_eq!(
        (
            total(|s| s.confirmed_strong),
            total(|s| s.confirmed_weak),
            total(|s| s.returned),
            total(|s| s.rows_duplicate),
            total(|s| s.unmatched)
        ),
        (315, 1, 2, 2, 9)
    );
    let unknown_debits: i64 = statements
        .iter()
        .filter_map(|s| s.unmatched_by_note.get("no_matching_payment"))
        .sum();
    assert_eq!(unknown_debits, 1, "the 5,000.00 to a trading company");
    let formats: std::collections::BTreeSet<&str> =
        statements.iter().map(|s| s.format.as_str()).collect();
    assert_eq!(formats.len(), 7, "{formats:?}");

    let dir_ = Directory::load(&mut conn).unwrap();
    let rows = balances(&mut conn, &dir_, Some(fundtrail::demo::PROGRAM), None).unwrap();
    let town = rows.iter().find(|b| b.org == "TWN-AP-CG").unwrap();
    assert_eq!(
        (
            town.received.as_str(),
            town.disbursed.as_str(),
            town.held.as_str()
        ),
        ("31000.00", "28860.00", "2140.00")
    );
    let prov = rows.iter().find(|b| b.org == "FIN-PROV").unwrap();
    assert_eq!(prov.received, "3600000.00");
    for org in [
        "FIN-PROV",
        "TWN-AP-CG",
        "AUDIT-PROV",
        "GL-AUDIT",
        "GL-C01-T001",
    ] {
        let creds = dir.path().join("data/demo").join(org);
        assert!(
            creds.join("token").is_file() && creds.join("key").is_file(),
            "{org}"
        );
        assert!(fundtrail::crypto::SigningKey::load(&creds.join("key")).is_ok());
    }
}

/// The committed demo scenario is exactly what the generator makes from its options, so the
/// generator and the demo cannot drift apart.
#[test]
fn the_demo_scenario_is_the_generators_output() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo/scenario");
    let dir = tempfile::tempdir().unwrap();
    let opts = fundtrail_fixtures::Options {
        seed: 2026,
        recipients: 480,
        counties: 2,
        townships: 6,
        parent: Some("FIN-PROV".into()),
        cases: fundtrail_fixtures::Cases::PerType(1),
        ..Default::default()
    };
    fundtrail_fixtures::generate(&opts, dir.path()).unwrap();
    let files = |root: &std::path::Path| {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    };
    let (want, have) = (files(dir.path()), files(&committed));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        have.keys().collect::<Vec<_>>(),
        "regenerate with `make demo-scenario`"
    );
    for (name, bytes) in &want {
        assert!(
            &have[name] == bytes,
            "{name} differs: regenerate with `make demo-scenario`"
        );
    }
}
