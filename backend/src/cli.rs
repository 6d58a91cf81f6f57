//! The `fundtrail` command line: run the service (`init`, `serve`, `demo`), sign and send
//! as an org (`org`, `key`, `token`, `program`, `recipients`, `budget`, `allocate`,
//! `disburse`, `reverse`), read (`entries`, `balance`) and check (`verify`).
//!
//! Client commands sign on this machine with the org's private key (`--key`); the server
//! never sees it.

use crate::client::Client;
use crate::config;
use crate::crypto::{self, SigningKey};
use crate::domain::EntryKind;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::append::AppendOutcome;
use crate::ledger::read::{Balance, EntryDetail, EntryPage};
use crate::ledger::verify::{self, DbCopy, LedgerCopy, VerifyReport};
use crate::ledger::{EntryBody, BATCH_ENTRIES_MAX};
use crate::money::{format_minor, parse_amount_lenient};
use crate::roster::{read_roster, RecipientRef};
use crate::service::programs::ProgramView;
use crate::service::recipients::{Registered, Resolved};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "fundtrail", version, about = "Welfare money on a signed, hash-chained ledger", long_about = None)]
pub struct Cli {
    /// Database file (for init, serve, demo and verify --db).
    #[arg(long, global = true, env = "FUNDTRAIL_DB", default_value = config::DB_PATH_DEFAULT)]
    pub db: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the server and sign as an org.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Server base URL.
    #[arg(
        long,
        env = "FUNDTRAIL_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token of your org.
    #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Your org's private key file (from `fundtrail keygen`).
    #[arg(long, env = "FUNDTRAIL_KEY")]
    pub key: Option<PathBuf>,
}

impl Remote {
    fn client(&self) -> AppResult<Client> {
        let token = self
            .token
            .clone()
            .ok_or_else(|| AppError::unauthorized("give --token or set FUNDTRAIL_TOKEN"))?;
        Ok(Client::new(&self.server, Some(token.trim().to_string())))
    }
    fn signing_key(&self) -> AppResult<SigningKey> {
        let path = self.key.as_ref().ok_or_else(|| {
            AppError::unauthorized("give --key or set FUNDTRAIL_KEY (your org's private key file)")
        })?;
        SigningKey::load(path).map_err(AppError::unauthorized)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the database, master key, operator org, key and first admin token.
    Init {
        /// Succeed quietly if already initialized.
        #[arg(long)]
        if_missing: bool,
    },
    /// Serve the API.
    Serve {
        #[arg(long, env = "FUNDTRAIL_BIND", default_value = config::BIND_DEFAULT)]
        bind: String,
        /// Worker threads (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Load the demo fixtures into --db (initialising it if needed). Does nothing twice.
    Demo {
        #[arg(long, default_value = "fixtures/demo")]
        fixtures: PathBuf,
    },
    /// Generate an Ed25519 key for an org; prints the public key to register.
    Keygen {
        /// The org the key signs for.
        #[arg(long)]
        org: String,
        /// Where to write the private key (mode 0600). Refuses to overwrite.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Check the whole chain: links, hashes, signatures, conservation. Exit 1 on failure.
    Verify {
        /// Verify a running server instead of --db.
        #[arg(long)]
        server: Option<String>,
        #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export the whole ledger as JSON Lines (orgs, programs, keys, submissions, entries) for
    /// independent verification (docs/verify_export.py).
    Export {
        /// Export from a running server instead of --db.
        #[arg(long)]
        server: Option<String>,
        #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Import a bank statement (CSV incl. GBK Chinese bank exports, camt.053/054, MT940) for
    /// one of your org's registered accounts: signs the file's SHA-256 and uploads it; the
    /// server matches its rows to your payments. With --dry-run, only read it and show what it
    /// holds, sending nothing anywhere.
    Import {
        #[command(flatten)]
        remote: Remote,
        file: PathBuf,
        /// Parse and print only; contact no server.
        #[arg(long)]
        dry_run: bool,
        /// auto, csv, csv-icbc, csv-abc, csv-cmb, csv-chinese, camt053, camt054 or mt940.
        #[arg(long, default_value = "auto")]
        format: String,
        /// The statement's account, for files that do not name it.
        #[arg(long)]
        account: Option<String>,
        /// With --dry-run: one JSON object per transaction on stdout (summary on stderr).
        /// Otherwise: the import result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reconcile: where money is stuck, missing or misdirected, node by node, with evidence.
    /// Runs on --db directly (an inspector's copy gives the same report as the server), or as
    /// a job on --server. Left out, --program, --period and --org mean all of them.
    Reconcile {
        #[command(flatten)]
        args: ReconcileArgs,
        /// Run on a server (as a job, with your token) instead of --db.
        #[arg(long)]
        server: Option<String>,
        #[arg(long, env = "FUNDTRAIL_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Program bank accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Imported statements.
    #[command(subcommand)]
    Statement(StatementCommand),
    /// Orgs (admin).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Programs (finance bureau).
    #[command(subcommand)]
    Program(ProgramCommand),
    /// The recipient registry (local office).
    #[command(subcommand)]
    Recipients(RecipientsCommand),
    /// Record a budget your bureau received (finance bureau owning the program).
    Budget {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Pass money you hold to an org directly below you.
    Allocate {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        entry: EntryArgs,
        /// Sequence number of the entry whose money you pass on.
        #[arg(long)]
        source: i64,
        /// The receiving org.
        #[arg(long)]
        to: String,
    },
    /// Pay recipients from a roster CSV, in signed batches.
    Disburse {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        args: DisburseArgs,
    },
    /// Reverse (void) an entry you wrote that nothing has drawn on.
    Reverse {
        #[command(flatten)]
        remote: Remote,
        /// Sequence number of the entry to reverse.
        seq: i64,
        #[arg(long, default_value = "")]
        memo: String,
        #[arg(long)]
        value_date: Option<String>,
    },
    /// List entries.
    Entries {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        program: Option<String>,
        #[arg(long)]
        period: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        after: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Balances per org and program.
    Balance {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        program: Option<String>,
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// What `reconcile` computes and writes.
#[derive(Args, Debug, Clone)]
pub struct ReconcileArgs {
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
    /// json, csv (findings; UTF-8 with BOM) or html (a printable page).
    #[arg(long, default_value = "json")]
    format: String,
    /// Labels of csv and html: zh-CN or en.
    #[arg(long, default_value = "zh-CN")]
    lang: String,
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

/// `fundtrail reconcile`: computes on --db, or runs a job on a server, and writes the report.
fn reconcile(
    args: &ReconcileArgs,
    server: Option<String>,
    token: Option<String>,
    db: &std::path::Path,
) -> AppResult<ExitCode> {
    use crate::reconcile::{engine, jobs, render::Lang, write_report, Format};
    let format = Format::parse(&args.format)
        .ok_or_else(|| AppError::invalid("format", "--format must be json, csv or html"))?;
    let lang = Lang::parse(&args.lang)
        .ok_or_else(|| AppError::invalid("lang", "--lang must be zh-CN or en"))?;
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos:>3}%").expect("valid template"),
    );
    let bytes = match server {
        None => {
            let mut conn = config::open_existing(db)?;
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
            let body = serde_json::to_value(args.request()).expect("request serializes");
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
                    ("lang", args.lang.clone()),
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

/// What `disburse` pays and how.
#[derive(Args, Debug, Clone)]
pub struct DisburseArgs {
    #[arg(long)]
    pub program: String,
    #[arg(long)]
    pub period: String,
    /// The allocation you pay from.
    #[arg(long)]
    pub source: i64,
    /// Roster: id_number (or recipient), amount, optional reference and memo.
    #[arg(long)]
    pub roster: PathBuf,
    /// Business date of the payments, YYYY-MM-DD (default today).
    #[arg(long)]
    pub value_date: Option<String>,
    /// Entries per signed batch.
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Skip roster lines before this one (to resume after a failed batch).
    #[arg(long, default_value_t = 0)]
    pub from_line: u64,
}

/// Fields every single-entry command takes.
#[derive(Args, Debug, Clone)]
pub struct EntryArgs {
    #[arg(long)]
    pub program: String,
    #[arg(long)]
    pub period: String,
    /// Amount, e.g. 780 or 780.00.
    #[arg(long)]
    pub amount: String,
    /// Business date, YYYY-MM-DD (default today).
    #[arg(long)]
    pub value_date: Option<String>,
    /// Payment reference (generated if not given).
    #[arg(long)]
    pub reference: Option<String>,
    #[arg(long, default_value = "")]
    pub memo: String,
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Register an org (admin).
    Create {
        #[command(flatten)]
        remote: Remote,
        code: String,
        #[arg(long)]
        name: String,
        /// admin, finance_bureau, local_office or inspector.
        #[arg(long)]
        role: String,
        #[arg(long)]
        parent: Option<String>,
        /// The org's public key (base64, as `keygen` prints it).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// List orgs.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Register a public key for an org (admin, or the org to rotate).
    Add {
        #[command(flatten)]
        remote: Remote,
        org: String,
        #[arg(long)]
        public_key: String,
    },
    /// Retire a key from now on.
    Retire {
        #[command(flatten)]
        remote: Remote,
        org: String,
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue an API token for an org (admin, or the org itself). Prints it once.
    Create {
        #[command(flatten)]
        remote: Remote,
        org: String,
        #[arg(long)]
        label: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProgramCommand {
    /// Register a program (finance bureau).
    Create {
        #[command(flatten)]
        remote: Remote,
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        fiscal_year: i32,
        #[arg(long)]
        standard_amount: String,
        /// month, quarter or year.
        #[arg(long, default_value = "month")]
        period_granularity: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Register a bank account holding an org's program money (the org itself, or the admin).
    Add {
        #[command(flatten)]
        remote: Remote,
        /// The org whose money it holds.
        #[arg(long)]
        org: String,
        /// Account number or IBAN.
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// For people, e.g. 城关镇低保资金专户.
        #[arg(long)]
        label: String,
    },
    /// List registered accounts.
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum StatementCommand {
    /// List imported statements you may read.
    List {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        org: Option<String>,
    },
    /// One statement with its rows (JSON).
    Show {
        #[command(flatten)]
        remote: Remote,
        id: i64,
        /// confirmed, returned, unmatched or duplicate.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        after: Option<i64>,
    },
    /// Recheck an import against its kept file (on the server's machine, or a copy of the
    /// database with its statement-files/ and master key): every stored row and bank fact
    /// compared with the file. Exit 1 on any difference.
    Recheck {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RecipientsCommand {
    /// Register recipients from a CSV: name, id_number, bank_account, [bank_name, status, status_date].
    Register {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        csv: PathBuf,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for p in e.problems.iter().skip(1) {
                let at = match (p.item, &p.field) {
                    (Some(i), Some(f)) => format!(" (item {i}, field {f})"),
                    (Some(i), None) => format!(" (item {i})"),
                    (None, Some(f)) => format!(" (field {f})"),
                    _ => String::new(),
                };
                eprintln!("  {}: {}{at}", p.error.as_str(), p.message);
            }
            ExitCode::FAILURE
        }
    }
}

fn today() -> String {
    chrono::Local::now().date_naive().to_string()
}

/// A reference for an entry without one: kind letter, period, 12 random hex digits.
fn generated_reference(kind: EntryKind, period: &str) -> String {
    let letter = kind.as_str()[..1].to_ascii_uppercase();
    format!(
        "{letter}{}-{}",
        period.replace('-', ""),
        hex::encode(crypto::random_bytes::<6>())
    )
}

fn program(client: &Client, code: &str) -> AppResult<ProgramView> {
    client.get(&format!("/api/v1/programs/{code}"), &[])
}

fn canonical_amount(p: &ProgramView, text: &str) -> AppResult<String> {
    parse_amount_lenient(text, p.minor_units)
        .map(|m| format_minor(m, p.minor_units))
        .map_err(|e| AppError::new(ErrorCode::InvalidAmount, e.to_string()).field("amount"))
}

/// Signs and posts `payload` to `path` as the remote's org and prints the JSON answer.
fn post_and_print(remote: &Remote, path: &str, payload: Value) -> AppResult<ExitCode> {
    let out: Value = remote
        .client()?
        .post_signed(path, &remote.signing_key()?, payload)?;
    print_json(&out);
    Ok(ExitCode::SUCCESS)
}

/// `fundtrail import FILE`: hash, sign the manifest, upload with a progress bar, summarise.
fn import_statement(
    remote: &Remote,
    file: &std::path::Path,
    format: &str,
    account: Option<String>,
    json: bool,
) -> AppResult<ExitCode> {
    let client = remote.client()?;
    let key = remote.signing_key()?;
    let unreadable = |e: std::io::Error| {
        AppError::invalid("file", format!("cannot read {}: {e}", file.display()))
    };
    let size_bytes = std::fs::metadata(file).map_err(unreadable)?.len();
    let bar = ProgressBar::new(size_bytes);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    // The file's digest goes into the signed manifest, so it is read twice: once here.
    bar.set_message("hashing");
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut f =
        std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(file).map_err(unreadable)?);
    let mut buf = vec![0u8; 1 << 16];
    let mut hashed: u64 = 0;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        hashed += n as u64;
        bar.set_position(hashed);
    }
    let digest = hex::encode(ctx.finish());
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "statement".into());
    let manifest = json!({
        "file_sha256": digest,
        "size_bytes": hashed,
        "file_name": file_name,
        "format": format,
        "account": account,
    });
    bar.set_message("uploading");
    bar.set_position(0);
    let mut sent = |n: u64| {
        bar.set_position(n);
        if n >= hashed {
            bar.set_message("server is matching rows");
        }
    };
    let result: AppResult<crate::statements::read::ImportResult> =
        client.post_file_signed("/api/v1/statements", &key, manifest, file, &mut sent);
    bar.finish_and_clear();
    let result = result?;
    if json {
        print_json(&result);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &result.statement;
    if result.already_imported {
        println!(
            "{} was already imported as statement {}; nothing changed.",
            file.display(),
            s.id
        );
    } else {
        println!(
            "imported {} as statement {} ({}, {} rows)",
            file.display(),
            s.id,
            s.format,
            s.rows_total
        );
    }
    let mut notes: Vec<_> = s.unmatched_by_note.iter().collect();
    notes.sort();
    let notes: Vec<String> = notes.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!(
        "  confirmed {} (by reference {}, by account and amount {}), returned {}, unmatched {}{}, already in an earlier statement {}",
        s.confirmed_strong + s.confirmed_weak,
        s.confirmed_strong,
        s.confirmed_weak,
        s.returned,
        s.unmatched,
        if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) },
        s.rows_duplicate
    );
    if let (Some(first), Some(last)) = (s.first_seq, s.last_seq) {
        println!("  ledger entries #{first}-#{last}");
    }
    println!("  rows: fundtrail statement show {}", s.id);
    Ok(ExitCode::SUCCESS)
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

fn send_entries(remote: &Remote, bodies: Vec<EntryBody>) -> AppResult<AppendOutcome> {
    let key = remote.signing_key()?;
    remote
        .client()?
        .post_signed("/api/v1/entries", &key, json!({ "entries": bodies }))
}

fn single_entry(
    remote: &Remote,
    entry: &EntryArgs,
    kind: EntryKind,
    shape: impl FnOnce(EntryBody, &str) -> EntryBody,
) -> AppResult<ExitCode> {
    let client = remote.client()?;
    let key = remote.signing_key()?;
    let p = program(&client, &entry.program)?;
    let reference = entry
        .reference
        .clone()
        .unwrap_or_else(|| generated_reference(kind, &entry.period));
    let body = EntryBody::new(
        kind,
        &p.code,
        &entry.period,
        &canonical_amount(&p, &entry.amount)?,
        &reference,
        &entry.value_date.clone().unwrap_or_else(today),
    )
    .memo(&entry.memo);
    let out = send_entries(remote, vec![shape(body, &key.org)])?;
    println!(
        "recorded entry #{} ({} {}), head {}",
        out.first_seq, kind, reference, out.head_hash
    );
    Ok(ExitCode::SUCCESS)
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn disburse(remote: &Remote, a: &DisburseArgs) -> AppResult<ExitCode> {
    let DisburseArgs {
        program: program_code,
        period,
        source,
        roster,
        value_date,
        batch_size,
        from_line,
    } = a.clone();
    let (period, roster) = (period.as_str(), &roster);
    if !(1..=BATCH_ENTRIES_MAX).contains(&batch_size) {
        return Err(AppError::invalid(
            "batch_size",
            format!("--batch-size must be 1-{BATCH_ENTRIES_MAX}"),
        ));
    }
    let client = remote.client()?;
    let key = remote.signing_key()?;
    let p = program(&client, &program_code)?;
    let file = std::fs::File::open(roster).map_err(|e| {
        AppError::invalid("roster", format!("cannot open {}: {e}", roster.display()))
    })?;
    let rows = read_roster(std::io::BufReader::new(file), p.minor_units).map_err(|errors| {
        let problems = errors
            .iter()
            .map(|e| crate::error::Problem {
                error: ErrorCode::InvalidField,
                message: format!("{}: {e}", roster.display()),
                field: e.column.clone(),
                item: None,
                location: None,
            })
            .collect();
        AppError::batch(problems)
    })?;
    let rows: Vec<_> = rows.into_iter().filter(|r| r.line >= from_line).collect();
    // Resolve ID numbers to pseudonyms (the server alone holds the pseudonym key).
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.recipient {
            RecipientRef::IdNumber(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let mut pseudonyms = std::collections::HashMap::new();
    for chunk in ids.chunks(BATCH_ENTRIES_MAX) {
        let resolved: Resolved = client.post_json(
            "/api/v1/recipients/resolve",
            &json!({ "id_numbers": chunk }),
        )?;
        for (id, p) in chunk.iter().zip(resolved.pseudonyms) {
            pseudonyms.insert(id.clone(), p);
        }
    }
    let value_date = value_date.unwrap_or_else(today);
    let mut bodies = Vec::with_capacity(rows.len());
    for r in &rows {
        let recipient = match &r.recipient {
            RecipientRef::Pseudonym(p) => p.clone(),
            RecipientRef::IdNumber(id) => {
                pseudonyms.get(id).cloned().flatten().ok_or_else(|| {
                    AppError::new(
                        ErrorCode::UnknownRecipient,
                        format!(
                            "{} line {}: this ID number is not a registered recipient of {}",
                            roster.display(),
                            r.line,
                            key.org
                        ),
                    )
                })?
            }
        };
        let reference = r
            .reference
            .clone()
            .unwrap_or_else(|| generated_reference(EntryKind::Disbursement, period));
        bodies.push((
            r.line,
            EntryBody::new(
                EntryKind::Disbursement,
                &p.code,
                period,
                &format_minor(r.amount_minor, p.minor_units),
                &reference,
                &value_date,
            )
            .from(&key.org)
            .source(source)
            .recipient(&recipient)
            .memo(&r.memo),
        ));
    }
    let bar = progress(bodies.len() as u64, "disbursing");
    let mut written = 0usize;
    for chunk in bodies.chunks(batch_size) {
        let first_line = chunk[0].0;
        let batch: Vec<EntryBody> = chunk.iter().map(|(_, b)| b.clone()).collect();
        match send_entries(remote, batch) {
            Ok(out) => {
                written += out.count;
                bar.inc(out.count as u64);
            }
            Err(mut e) => {
                bar.abandon();
                // Map batch items back to roster lines so the clerk can fix the file.
                for p in e.problems.iter_mut().chain(std::iter::once(&mut *e.first)) {
                    if let Some(i) = p.item {
                        p.message = format!("roster line {}: {}", chunk[i].0, p.message);
                    }
                }
                eprintln!("{written} payments recorded before this batch; the batch from roster line {first_line} wrote nothing.");
                eprintln!("fix the roster and resume with --from-line {first_line}");
                return Err(e);
            }
        }
    }
    bar.finish_and_clear();
    println!("recorded {written} disbursements from {}", roster.display());
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
    db: &std::path::Path,
    f: impl FnOnce(&mut dyn LedgerCopy) -> AppResult<T>,
) -> AppResult<T> {
    match server {
        Some(url) => f(&mut Client::new(&url, token)),
        None => f(&mut DbCopy::new(&mut config::open_existing(db)?)),
    }
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> AppResult<ExitCode> {
    match cli.command {
        Command::Init { if_missing } => {
            if if_missing && config::is_initialized(&cli.db)? {
                println!("{} is already initialized", cli.db.display());
                return Ok(ExitCode::SUCCESS);
            }
            let made = config::init(&cli.db)?;
            println!("initialized {}", cli.db.display());
            println!("operator signing key: {}", made.operator_key_path.display());
            println!(
                "operator admin token (also in {}):\n  {}",
                made.operator_token_path.display(),
                made.operator_token
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { bind, workers } => {
            let state = crate::server::state(&cli.db)?;
            let listener = std::net::TcpListener::bind(&bind)
                .map_err(|e| AppError::internal(format!("cannot listen on {bind}: {e}")))?;
            let workers = workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            });
            println!("Fundtrail serving {} on http://{bind}", cli.db.display());
            println!("  API docs:   http://{bind}/docs/");
            println!("  health:     curl http://{bind}/api/v1/health");
            actix_web::rt::System::new()
                .block_on(async move { crate::server::build(state, listener, workers)?.await })
                .map_err(|e| AppError::internal(format!("server stopped: {e}")))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { fixtures } => {
            let s = crate::demo::load(&cli.db, &fixtures)?;
            if s.loaded {
                println!(
                    "demo loaded: {} orgs, {} recipients, {} ledger entries",
                    s.orgs, s.recipients, s.entries
                );
            } else {
                println!("demo already loaded in {}", cli.db.display());
            }
            println!(
                "each demo org's token and key: {}/<ORG>/token, .../key",
                s.credentials_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { org, out } => {
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
            println!("key_id:     {}", key.key_id);
            println!("public_key: {}", key.public_key_b64());
            println!(
                "private key written to {} (keep it on this machine)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            print!("{}", crate::api::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile {
            args,
            server,
            token,
        } => reconcile(&args, server, token, &cli.db),
        Command::Verify {
            server,
            token,
            json,
        } => {
            let report = with_copy(server, token, &cli.db, |copy| verify_copy(copy))?;
            Ok(print_report(&report, json))
        }
        Command::Export { server, token, out } => {
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
                    |e| AppError::internal(format!("cannot write {}: {e}", p.display())),
                )?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let lines = with_copy(server, token, &cli.db, |copy| export(copy, &mut sink))?;
            sink.flush()
                .map_err(|e| AppError::internal(format!("write failed: {e}")))?;
            if let Some(p) = out {
                eprintln!("exported {lines} lines to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            remote,
            file,
            dry_run,
            format,
            account,
            json,
        } => {
            let format_name = format;
            let format = crate::statements::show::format_by_name(&format_name)?;
            if !dry_run {
                return import_statement(&remote, &file, &format_name, account, json);
            }
            let result = crate::statements::show::dry_run(
                &file,
                format,
                account,
                json,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            match result {
                Ok(found) if found.errors == 0 => Ok(ExitCode::SUCCESS),
                Ok(_) => Ok(ExitCode::FAILURE),
                // The reader of our output went away (`| head`): not an error.
                Err(e) if e.code() == ErrorCode::Unavailable => Ok(ExitCode::SUCCESS),
                Err(e) => Err(e),
            }
        }
        Command::Account(AccountCommand::Add {
            remote,
            org,
            account,
            currency,
            label,
        }) => post_and_print(
            &remote,
            "/api/v1/bank-accounts",
            json!({"org": org, "account": account, "currency": currency, "label": label}),
        ),
        Command::Account(AccountCommand::List { remote, org }) => {
            let query: Vec<(&str, String)> = org.map(|o| ("org", o)).into_iter().collect();
            let out: Value = remote.client()?.get("/api/v1/bank-accounts", &query)?;
            print_json(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Statement(StatementCommand::List { remote, org }) => {
            let query: Vec<(&str, String)> = org.map(|o| ("org", o)).into_iter().collect();
            let out: Value = remote.client()?.get("/api/v1/statements", &query)?;
            print_json(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Statement(StatementCommand::Recheck { id, json }) => {
            let mut conn = config::open_existing(&cli.db)?;
            let master = config::load_master_key(&cli.db)?;
            let files = crate::filestore::FileStore::open(
                &config::files_dir(&cli.db),
                master.file_store_secret(),
            )
            .map_err(|e| AppError::internal(format!("statement file store: {e}")))?;
            let report = crate::statements::recheck::recheck(
                &mut conn,
                &master.personal_data_keys(),
                &files,
                id,
            )?;
            if json {
                print_json(&report);
            } else if report.ok() {
                println!(
                    "ok: statement {id} ({} rows, {} bank facts) matches its file {}",
                    report.rows_checked, report.entries_checked, report.file_sha256
                );
            } else {
                println!(
                    "FAILED: statement {id}: {} difference(s) with its file {}",
                    report.differences_total, report.file_sha256
                );
                for d in &report.differences {
                    println!("  {d}");
                }
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Statement(StatementCommand::Show {
            remote,
            id,
            status,
            limit,
            after,
        }) => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(status.map(|s| ("status", s)));
            query.extend(after.map(|a| ("after", a.to_string())));
            let out: Value = remote
                .client()?
                .get(&format!("/api/v1/statements/{id}"), &query)?;
            print_json(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Org(OrgCommand::Create {
            remote,
            code,
            name,
            role,
            parent,
            public_key,
        }) => post_and_print(
            &remote,
            "/api/v1/orgs",
            json!({"code": code, "name": name, "role": role, "parent": parent, "public_key": public_key}),
        ),
        Command::Org(OrgCommand::List { remote }) => {
            let out: Value = remote.client()?.get("/api/v1/orgs", &[])?;
            print_json(&out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCommand::Add {
            remote,
            org,
            public_key,
        }) => post_and_print(
            &remote,
            &format!("/api/v1/orgs/{org}/keys"),
            json!({"public_key": public_key}),
        ),
        Command::Key(KeyCommand::Retire {
            remote,
            org,
            key_id,
        }) => post_and_print(
            &remote,
            &format!("/api/v1/orgs/{org}/keys/{key_id}/retire"),
            json!({}),
        ),
        Command::Token(TokenCommand::Create { remote, org, label }) => post_and_print(
            &remote,
            &format!("/api/v1/orgs/{org}/tokens"),
            json!({"label": label}),
        ),
        Command::Program(ProgramCommand::Create {
            remote,
            code,
            name,
            fiscal_year,
            standard_amount,
            period_granularity,
            currency,
        }) => post_and_print(
            &remote,
            "/api/v1/programs",
            json!({"code": code, "name": name, "fiscal_year": fiscal_year, "currency": currency,
                       "standard_amount": standard_amount, "period_granularity": period_granularity}),
        ),
        Command::Recipients(RecipientsCommand::Register { remote, csv }) => {
            let rows = read_recipients_csv(&csv)?;
            let client = remote.client()?;
            let key = remote.signing_key()?;
            let mut total = 0;
            for chunk in rows.chunks(crate::service::recipients::REGISTER_BATCH_MAX) {
                let out: Registered = client.post_signed(
                    "/api/v1/recipients",
                    &key,
                    json!({ "recipients": chunk }),
                )?;
                total += out.pseudonyms.len();
            }
            println!("registered {total} recipients from {}", csv.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Budget { remote, entry } => {
            single_entry(&remote, &entry, EntryKind::Budget, |b, me| b.to(me))
        }
        Command::Allocate {
            remote,
            entry,
            source,
            to,
        } => single_entry(&remote, &entry, EntryKind::Allocation, |b, me| {
            b.from(me).source(source).to(&to)
        }),
        Command::Disburse { remote, args } => disburse(&remote, &args),
        Command::Reverse {
            remote,
            seq,
            memo,
            value_date,
        } => {
            let client = remote.client()?;
            let d: EntryDetail = client.get(&format!("/api/v1/entries/{seq}"), &[])?;
            let e = d.entry;
            let body = EntryBody::new(
                EntryKind::Reversal,
                &e.program,
                &e.period,
                &e.amount,
                &format!("REV-{seq}"),
                &value_date.unwrap_or_else(today),
            )
            .source(seq)
            .memo(&memo);
            let out = send_entries(&remote, vec![body])?;
            println!("entry #{seq} reversed by entry #{}", out.first_seq);
            Ok(ExitCode::SUCCESS)
        }
        Command::Entries {
            remote,
            program,
            period,
            kind,
            org,
            after,
            limit,
            json,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            for (k, v) in [
                ("program", program),
                ("period", period),
                ("kind", kind),
                ("org", org),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if let Some(a) = after {
                q.push(("after", a.to_string()));
            }
            let page: EntryPage = remote.client()?.get("/api/v1/entries", &q)?;
            if json {
                print_json(&page);
            } else {
                println!(
                    "{:>8}  {:<12}  {:<8}  {:<14}  {:<26}  {:>14}  reference",
                    "seq", "kind", "period", "from", "to", "amount"
                );
                for e in &page.entries {
                    let to = e.to.clone().or(e.recipient.clone()).unwrap_or_default();
                    let kind = if e.reversed_by.is_some() {
                        format!("{}*", e.kind)
                    } else {
                        e.kind.to_string()
                    };
                    println!(
                        "{:>8}  {:<12}  {:<8}  {:<14}  {:<26}  {:>14}  {}",
                        e.seq,
                        kind,
                        e.period,
                        e.from.clone().unwrap_or_default(),
                        to,
                        e.amount,
                        e.reference
                    );
                }
                if let Some(c) = page.next_cursor {
                    println!("(more: --after {c})");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Balance {
            remote,
            program,
            org,
            json,
        } => {
            let mut q = Vec::new();
            if let Some(p) = program {
                q.push(("program", p));
            }
            if let Some(o) = org {
                q.push(("org", o));
            }
            let rows: Vec<Balance> = remote.client()?.get("/api/v1/balances", &q)?;
            if json {
                print_json(&rows);
            } else {
                println!(
                    "{:<14}  {:<12}  {:>16}  {:>16}  {:>16}  {:>12}  {:>16}",
                    "org", "program", "received", "passed down", "disbursed", "returned", "held"
                );
                for b in rows {
                    println!(
                        "{:<14}  {:<12}  {:>16}  {:>16}  {:>16}  {:>12}  {:>16}",
                        b.org,
                        b.program,
                        b.received,
                        b.passed_down,
                        b.disbursed,
                        b.returned,
                        b.held
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads a recipients CSV (name, id_number, bank_account, bank_name?, status?, status_date?).
fn read_recipients_csv(path: &PathBuf) -> AppResult<Vec<Value>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| AppError::invalid("csv", format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| AppError::invalid("csv", format!("{}: {e}", path.display())))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
    };
    let (Some(name), Some(id), Some(account)) =
        (col("name"), col("id_number"), col("bank_account"))
    else {
        return Err(AppError::invalid(
            "csv",
            format!(
                "{}: the header needs name, id_number and bank_account",
                path.display()
            ),
        ));
    };
    let (bank, status, date) = (col("bank_name"), col("status"), col("status_date"));
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| {
            AppError::invalid("csv", format!("{} line {}: {e}", path.display(), i + 2))
        })?;
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        out.push(json!({
            "name": get(Some(name)).unwrap_or_default(), "id_number": get(Some(id)).unwrap_or_default(),
            "bank_account": get(Some(account)).unwrap_or_default(), "bank_name": get(bank),
            "status": get(status), "status_date": get(date),
        }));
    }
    Ok(out)
}
