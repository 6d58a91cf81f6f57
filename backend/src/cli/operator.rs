//! The operator's commands, which open a database file themselves (`init`, `serve`, `demo`,
//! and `verify`, `export`, `reconcile` unless given a server), and `keygen`.

use super::output::print_json;
use super::DbArg;
use crate::client::Client;
use crate::config;
use crate::crypto::SigningKey;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::verify::{self, DbCopy, LedgerCopy, VerifyReport};
use crate::reconcile::render::Lang;
use crate::reconcile::Format;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct Init {
    #[command(flatten)]
    db: DbArg,
    /// Succeed quietly if already initialized.
    #[arg(long)]
    if_missing: bool,
}

#[derive(Args, Debug)]
pub struct Serve {
    #[command(flatten)]
    db: DbArg,
    /// Address to listen on (loopback by default: put TLS in front).
    #[arg(long, env = "FUNDTRAIL_BIND", default_value = config::BIND_DEFAULT)]
    bind: String,
    /// Worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

#[derive(Args, Debug)]
pub struct Demo {
    #[command(flatten)]
    db: DbArg,
    /// The demo's fixtures directory.
    #[arg(long, default_value = "fixtures/demo")]
    fixtures: PathBuf,
}

#[derive(Args, Debug)]
pub struct Keygen {
    /// The org the key signs for.
    #[arg(long)]
    org: String,
    /// Where to write the private key (mode 0600). Refuses to overwrite.
    #[arg(long, short)]
    out: PathBuf,
    /// Print the key id, public key and file as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Verify {
    #[command(flatten)]
    db: DbArg,
    /// Verify a running server instead of the database file.
    #[arg(long, conflicts_with = "db")]
    server: Option<String>,
    /// API token for --server.
    #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Export {
    #[command(flatten)]
    db: DbArg,
    /// Export from a running server instead of the database file.
    #[arg(long, conflicts_with = "db")]
    server: Option<String>,
    /// API token for --server.
    #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct Reconcile {
    #[command(flatten)]
    db: DbArg,
    #[command(flatten)]
    args: ReconcileArgs,
    /// Run on a server (as a job, with your token) instead of the database file.
    #[arg(long, conflicts_with = "db")]
    server: Option<String>,
    /// API token for --server.
    #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// What `reconcile` computes and writes.
#[derive(Args, Debug, Clone)]
pub struct ReconcileArgs {
    /// Program code (default: every program).
    #[arg(long)]
    program: Option<String>,
    /// 2026, 2026-Q4 or 2026-11.
    #[arg(long)]
    period: Option<String>,
    /// Root org of the subtree.
    #[arg(long)]
    org: Option<String>,
    /// Ages are computed as of this day (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    as_of: Option<String>,
    /// Days an org may hold an allocation (default 30).
    #[arg(long)]
    hold_days_max: Option<i64>,
    /// Days a payment may wait for its bank confirmation (default 15).
    #[arg(long)]
    unconfirmed_days_max: Option<i64>,
    /// Differences up to this amount are not mismatches (default 0.00).
    #[arg(long)]
    amount_tolerance: Option<String>,
    /// More recipients than this on one account are flagged (default 3).
    #[arg(long)]
    recipients_per_account_max: Option<i64>,
    /// The report's format: json, csv (findings; UTF-8 with BOM) or html (a printable page).
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Labels of csv and html.
    #[arg(long, value_enum, default_value = "zh-CN")]
    lang: Lang,
    /// Output file (default: standard output).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
}

impl ReconcileArgs {
    fn request(&self) -> crate::reconcile::ReconcileRequest {
        crate::reconcile::ReconcileRequest {
            program: self.program.clone(),
            period: self.period.clone(),
            org: self.org.clone(),
            as_of: self.as_of.clone(),
            hold_days_max: self.hold_days_max,
            unconfirmed_days_max: self.unconfirmed_days_max,
            amount_tolerance: self.amount_tolerance.clone(),
            recipients_per_account_max: self.recipients_per_account_max,
        }
    }
}

pub(super) fn init(a: Init, top: Option<&Path>) -> AppResult<ExitCode> {
    let db = a.db.resolve(top).path;
    if a.if_missing && config::is_initialized(&db)? {
        println!("{} is already initialized", db.display());
        return Ok(ExitCode::SUCCESS);
    }
    let made = config::init(&db)?;
    println!("initialized {}", db.display());
    println!("operator signing key: {}", made.operator_key_path.display());
    println!(
        "operator admin token (also in {}):\n  {}",
        made.operator_token_path.display(),
        made.operator_token
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn serve(a: Serve, top: Option<&Path>) -> AppResult<ExitCode> {
    let db = a.db.resolve(top).path;
    let bind = a.bind;
    let state = crate::server::state(&db)?;
    let listener = std::net::TcpListener::bind(&bind)
        .map_err(|e| AppError::internal(format!("cannot listen on {bind}: {e}")))?;
    let workers = a.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    println!("Fundtrail serving {} on http://{bind}", db.display());
    println!("  API docs:   http://{bind}/docs/");
    println!("  health:     curl http://{bind}/api/v1/health");
    actix_web::rt::System::new()
        .block_on(async move { crate::server::build(state, listener, workers)?.await })
        .map_err(|e| AppError::internal(format!("server stopped: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn demo(a: Demo, top: Option<&Path>) -> AppResult<ExitCode> {
    let db = a.db.resolve(top).path;
    let s = crate::demo::load(&db, &a.fixtures)?;
    if s.loaded {
        println!(
            "demo loaded: {} orgs, {} recipients, {} ledger entries",
            s.orgs, s.recipients, s.entries
        );
    } else {
        println!("demo already loaded in {}", db.display());
    }
    println!(
        "each demo org's token and key: {}/<ORG>/token, .../key",
        s.credentials_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn keygen(a: Keygen) -> AppResult<ExitCode> {
    let Keygen { org, out, json } = a;
    if out.exists() {
        return Err(AppError::new(
            ErrorCode::AlreadyExists,
            format!("{} exists; not overwriting a key", out.display()),
        ));
    }
    crate::service::check_code("org", &org)?;
    let key = SigningKey::generate(&org);
    key.save(&out)
        .map_err(|e| AppError::internal(format!("cannot write {}: {e}", out.display())))?;
    if json {
        print_json(&json!({
            "org": org, "key_id": key.key_id, "public_key": key.public_key_b64(),
            "private_key_file": out,
        }));
    } else {
        println!("key_id:     {}", key.key_id);
        println!("public_key: {}", key.public_key_b64());
        println!(
            "private key written to {} (keep it on this machine)",
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--db` before the command and `--server` after it: which one was meant is a guess.
fn db_or_server(top: Option<&Path>, server: &Option<String>) -> AppResult<()> {
    match (top, server) {
        (Some(_), Some(_)) => Err(AppError::invalid("db", "give --db or --server, not both")),
        _ => Ok(()),
    }
}

pub(super) fn verify(a: Verify, top: Option<&Path>) -> AppResult<ExitCode> {
    db_or_server(top, &a.server)?;
    let db = a.db.resolve(top).path;
    let report = with_copy(a.server, a.token, &db, |copy| verify_copy(copy))?;
    Ok(print_report(&report, a.json))
}

pub(super) fn export_command(a: Export, top: Option<&Path>) -> AppResult<ExitCode> {
    db_or_server(top, &a.server)?;
    let db = a.db.resolve(top).path;
    let mut sink: Box<dyn std::io::Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| AppError::internal(format!("cannot write {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let lines = with_copy(a.server, a.token, &db, |copy| export(copy, &mut sink))?;
    sink.flush()
        .map_err(|e| AppError::internal(format!("write failed: {e}")))?;
    if let Some(p) = a.out {
        eprintln!("exported {lines} lines to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `fundtrail reconcile`: computes on the database, or runs a job on a server, and writes
/// the report.
pub(super) fn reconcile(a: Reconcile, top: Option<&Path>) -> AppResult<ExitCode> {
    use crate::reconcile::{engine, jobs, write_report};
    db_or_server(top, &a.server)?;
    let Reconcile {
        db,
        args,
        server,
        token,
    } = a;
    let (format, lang) = (args.format, args.lang);
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos:>3}%").expect("valid template"),
    );
    let bytes = match server {
        None => {
            let mut conn = config::open_existing(&db.resolve(top).path)?;
            let dir = crate::ledger::read::Directory::load(&mut conn)?;
            let params = args
                .request()
                .resolve(&dir, chrono::Utc::now().date_naive())?;
            let report = engine::run(&mut conn, &params, &mut |stage, done, total| {
                bar.set_message(stage.to_string());
                bar.set_position(jobs::percent(stage, done, total) as u64);
            })?;
            bar.finish_and_clear();
            eprintln!(
                "{} findings on ledger state #{} ({})",
                report.findings.len(),
                report.ledger_state.seq,
                &report.ledger_state.head_hash[..16.min(report.ledger_state.head_hash.len())]
            );
            let mut out = Vec::new();
            write_report(&report, format, lang, &mut out)
                .map_err(|e| AppError::internal(format!("report: {e}")))?;
            out
        }
        Some(url) => {
            let client = Client::new(&url, token);
            let body = serde_json::to_value(args.request())
                .map_err(|e| AppError::internal(format!("request: {e}")))?;
            let mut job: jobs::JobView = client.post_json("/api/v1/reconciliations", &body)?;
            let path = format!("/api/v1/reconciliations/{}", job.id);
            while matches!(job.status.as_str(), "queued" | "running") {
                bar.set_message(job.progress.stage.clone());
                bar.set_position(job.progress.percent as u64);
                std::thread::sleep(std::time::Duration::from_millis(200));
                job = client.get(&path, &[])?;
            }
            bar.finish_and_clear();
            if let Some(e) = job.error.filter(|_| job.status == "failed") {
                return Err(AppError::internal(format!(
                    "reconciliation {} failed: {} ({})",
                    job.id, e.message, e.code
                )));
            }
            eprintln!(
                "job {}: {} findings on ledger state #{}",
                job.id,
                job.findings.unwrap_or(0),
                job.ledger_seq.unwrap_or(0)
            );
            client.get_raw(
                &format!("{path}/report"),
                &[
                    ("format", format.as_str().into()),
                    ("lang", lang.as_str().into()),
                ],
            )?
        }
    };
    match &args.out {
        Some(p) => std::fs::write(p, &bytes)
            .map_err(|e| AppError::internal(format!("cannot write {}: {e}", p.display())))?,
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|e| AppError::internal(format!("write failed: {e}")))?
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &VerifyReport, json_out: bool) -> ExitCode {
    if json_out {
        print_json(report);
    } else if let Some(f) = &report.failure {
        println!("FAILED at entry #{}: {}", f.seq, f.reason);
    } else {
        println!(
            "ok: {} entries in {} signed batches verified; head #{} {}",
            report.entries_checked, report.batches_checked, report.head_seq, report.head_hash
        );
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Verifies a copy with a progress bar.
pub fn verify_copy(copy: &mut dyn LedgerCopy) -> AppResult<VerifyReport> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("verifying {pos} entries ({per_sec})")
            .expect("valid template"),
    );
    let report = verify::verify(copy, &mut |seq| bar.set_position(seq.max(0) as u64));
    bar.finish_and_clear();
    report
}

/// Writes `copy` as JSON Lines, one object per line tagged with `type`; returns the count.
pub fn export(copy: &mut dyn LedgerCopy, out: &mut dyn std::io::Write) -> AppResult<u64> {
    let mut n = 0u64;
    let mut line = |v: Value| -> AppResult<()> {
        n += 1;
        writeln!(out, "{v}").map_err(|e| AppError::internal(format!("write failed: {e}")))
    };
    line(
        json!({"type": "header", "format": "fundtrail-export/v1", "spec": "docs/ledger-format.md"}),
    )?;
    let r = copy.reference()?;
    let mut orgs: Vec<_> = r.orgs.values().collect();
    orgs.sort_by(|a, b| a.code.cmp(&b.code));
    for o in orgs {
        line(json!({"type": "org", "code": o.code, "role": o.role, "parent": o.parent}))?;
    }
    let mut programs: Vec<_> = r.programs.iter().collect();
    programs.sort();
    for (code, (owner, minor_units)) in programs {
        line(json!({"type": "program", "code": code, "owner": owner, "minor_units": minor_units}))?;
    }
    let mut keys: Vec<_> = r.keys.values().collect();
    keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    for k in keys {
        let mut v = serde_json::to_value(k).expect("serializable");
        v["type"] = "key".into();
        line(v)?;
    }
    let mut after = 0;
    loop {
        let page = copy.page(after)?;
        for s in &page.submissions {
            let mut v = serde_json::to_value(s).expect("serializable");
            v["type"] = "submission".into();
            line(v)?;
        }
        for e in &page.entries {
            let mut v = serde_json::to_value(e).expect("serializable");
            v["type"] = "entry".into();
            line(v)?;
            after = e.seq;
        }
        if page.next_cursor.is_none() {
            break;
        }
    }
    Ok(n)
}

/// Runs `f` on the ledger copy a command names: a server (`--server`) or the database file.
fn with_copy<T>(
    server: Option<String>,
    token: Option<String>,
    db: &Path,
    f: impl FnOnce(&mut dyn LedgerCopy) -> AppResult<T>,
) -> AppResult<T> {
    match server {
        Some(url) => f(&mut Client::new(&url, token)),
        None => f(&mut DbCopy::new(&mut config::open_existing(db)?)),
    }
}
