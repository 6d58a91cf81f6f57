//! `make bench`, reconciliation: a generated province of BENCH_RECIPIENTS recipients (default
//! 1,000,000) under 20 counties and 400 townships, each paid once, its 400 GBK bank statements
//! imported (a million rows), leakage injected at 1 in 10,000 of each type; then one report
//! over the whole of it, timed stage by stage, with the peak memory of the report alone.
//!
//! Setup goes through the demo loader, i.e. the service's own signed write paths; its time is
//! printed but is not what this benchmark measures (that is `make bench`'s import and append
//! parts). The report runs in a child process of its own, so its peak memory is its own. The
//! database stays in `target/bench/reconcile-N/`; `BENCH_REUSE=1` reconciles it again without
//! the setup. Nothing here asserts speed.

mod common;

use common::{env_usize, peak_rss_bytes, status_bytes};
use fundtrail::reconcile::{engine, ReconcileRequest};
use fundtrail_fixtures::{generate, Cases, Options};
use std::collections::BTreeMap;
use std::time::Instant;

const CHILD: &str = "FUNDTRAIL_RECONCILE_BENCH_DB";

fn main() {
    if let Ok(db) = std::env::var(CHILD) {
        return reconcile(std::path::Path::new(&db));
    }
    let recipients = env_usize("BENCH_RECIPIENTS", 1_000_000);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench")
        .join(format!("reconcile-{recipients}"));
    let db = dir.join("data/fundtrail.db");
    let reuse = std::env::var("BENCH_REUSE").is_ok_and(|v| v == "1") && db.exists();
    if !reuse {
        setup(recipients, &dir, &db);
    }
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD, &db)
        .status()
        .expect("child runs");
    assert!(status.success());
}

fn setup(recipients: usize, dir: &std::path::Path, db: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    let scenario = dir.join("scenario");
    let t = Instant::now();
    let opts = Options {
        seed: 2026,
        recipients,
        counties: 20,
        townships: 400.min(recipients / 4).max(20),
        cases: Cases::Rate(0.0001),
        ..Options::default()
    };
    let truth = generate(&opts, &scenario).expect("scenario");
    println!(
        "reconcile bench: {recipients} recipients, {} injected cases, generated in {:.1} s",
        truth.cases.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let loaded = fundtrail::demo::load(db, &scenario).expect("scenario loads");
    println!(
        "setup (register, allocate, disburse, import through the service's write paths): {} entries in {:.1} s",
        loaded.entries,
        t.elapsed().as_secs_f64()
    );
}

/// The measured part, in a process of its own.
fn reconcile(db: &std::path::Path) {
    let truth: fundtrail_fixtures::Truth = serde_json::from_slice(
        &std::fs::read(
            db.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("scenario/truth.json"),
        )
        .expect("truth.json"),
    )
    .expect("truth parses");
    let mut conn = fundtrail::config::open_existing(db).expect("open");
    let dir_ = fundtrail::ledger::read::Directory::load(&mut conn).expect("directory");
    let params = ReconcileRequest {
        as_of: Some("2026-12-31".into()),
        ..Default::default()
    }
    .resolve(
        &dir_,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
    )
    .expect("params");
    let rss_before = status_bytes("VmRSS:");
    let started = Instant::now();
    let mut stages: Vec<(String, f64)> = Vec::new();
    let report = engine::run(&mut conn, &params, &mut |stage, _, _| {
        if stages.last().map(|s| s.0.as_str()) != Some(stage) {
            stages.push((stage.to_string(), started.elapsed().as_secs_f64()));
        }
    })
    .expect("report");
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_bytes();
    let mut out = Vec::new();
    fundtrail::reconcile::write_report(
        &report,
        fundtrail::reconcile::Format::Json,
        Default::default(),
        &mut out,
    )
    .expect("json");

    println!("stage        starts at (s)");
    for (stage, at) in &stages {
        println!("  {stage:<10} {at:>8.2}");
    }
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.findings {
        *found.entry(f.finding_type.as_str()).or_default() += 1;
    }
    println!(
        "reconciled {} ledger entries and {} bank rows in {seconds:.2} s; peak RSS {} MiB (at start: {} MiB); report {} KiB, {} findings",
        report.ledger_state.seq,
        report.ledger_state.bank_rows,
        peak / (1 << 20),
        rss_before / (1 << 20),
        out.len() / 1024,
        report.findings.len()
    );
    println!("findings by type (injected → found; the bench does not tamper the chain, so no integrity):");
    for (kind, n) in &truth.counts {
        println!(
            "  {kind:<24} {n:>6} → {:>6}",
            found.get(kind.as_str()).copied().unwrap_or(0)
        );
    }
}
