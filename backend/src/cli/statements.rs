//! Bank accounts and statements: `account add|list`, `import`, `statement list|show|recheck`.
//! What an import or a statement says is printed in one place, [`print_statement`], which
//! also prints any count it does not know by name, so new summary fields show up unasked.

use super::output::{or_dash, print_json, Table};
use super::{DbArg, Remote, Signer};
use crate::config;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::statements::accounts::AccountView;
use crate::statements::read::{ImportResult, StatementDetail, StatementView};
use crate::statements::show::FORMAT_NAMES;
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct Import {
    #[command(flatten)]
    signer: Signer,
    /// The statement file.
    file: PathBuf,
    /// Parse and print only; contact no server.
    #[arg(long)]
    dry_run: bool,
    /// The file's format; auto detects it from the file's name and head.
    #[arg(long, default_value = "auto", value_parser = PossibleValuesParser::new(FORMAT_NAMES.iter().copied()))]
    format: String,
    /// The statement's account, for files that do not name it.
    #[arg(long)]
    account: Option<String>,
    /// With --dry-run: one JSON object per transaction on stdout (summary on stderr).
    /// Otherwise: the import result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Register a bank account holding an org's program money (the org itself, or the admin).
    Add {
        #[command(flatten)]
        signer: Signer,
        /// The org whose money it holds.
        #[arg(long)]
        org: String,
        /// Account number or IBAN.
        #[arg(long)]
        account: String,
        /// ISO 4217 currency of the account.
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// For people, e.g. 城关镇低保资金专户.
        #[arg(long)]
        label: String,
        /// Print the account registered as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List registered accounts.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only this org's accounts.
        #[arg(long)]
        org: Option<String>,
        /// Print the accounts as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What became of a bank row.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RowStatus {
    Confirmed,
    Returned,
    Unmatched,
    Duplicate,
}

#[derive(Subcommand, Debug)]
pub enum StatementCommand {
    /// List imported statements you may read.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only this org's statements.
        #[arg(long)]
        org: Option<String>,
        /// Print the statements as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One statement: its summary and a page of its rows.
    Show {
        #[command(flatten)]
        remote: Remote,
        /// The statement's id (from `statement list` or the import).
        id: i64,
        /// Only rows that were matched so, or not.
        #[arg(long, value_enum)]
        status: Option<RowStatus>,
        /// Most rows to list (0-1000; 0 for the summary only).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Only rows after this row id (the page cursor).
        #[arg(long, value_name = "ROW_ID")]
        after: Option<i64>,
        /// Print the statement and its rows as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recheck an import against its kept file, on the database file itself (the server's
    /// machine, or a copy of the database with its statement-files/ and master key; not
    /// through a server): every stored row and bank fact compared with the file. Exit 1 on
    /// any difference.
    Recheck {
        #[command(flatten)]
        db: DbArg,
        /// The statement's id.
        id: i64,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn import(a: Import) -> AppResult<ExitCode> {
    let format = crate::statements::show::format_by_name(&a.format)?;
    if !a.dry_run {
        return upload(&a.signer, &a.file, &a.format, a.account, a.json);
    }
    let result = crate::statements::show::dry_run(
        &a.file,
        format,
        a.account,
        a.json,
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

/// `fundtrail import FILE`: hash, sign the manifest, upload with a progress bar, summarise.
fn upload(
    signer: &Signer,
    file: &Path,
    format: &str,
    account: Option<String>,
    json_out: bool,
) -> AppResult<ExitCode> {
    let client = signer.client()?;
    let key = signer.signing_key()?;
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
    let f =
        std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(file).map_err(unreadable)?);
    let mut hashed: u64 = 0;
    let digest = crate::crypto::sha256_reader(f, &mut |n| {
        hashed = n;
        bar.set_position(n);
    })
    .map_err(unreadable)?;
    let digest = hex::encode(digest);
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
    let result: AppResult<ImportResult> =
        client.post_file_signed("/api/v1/statements", &key, manifest, file, &mut sent);
    bar.finish_and_clear();
    let result = result?;
    if json_out {
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
    print_statement(s);
    println!("  rows: fundtrail statement show {}", s.id);
    Ok(ExitCode::SUCCESS)
}

/// Fields [`print_statement`] prints by name (or, like the file's hash, deliberately not).
const SHOWN: &[&str] = &[
    "id",
    "org",
    "file_name",
    "file_sha256",
    "size_bytes",
    "format",
    "imported_at",
    "submission",
    "sections",
    "rows_total",
    "rows_duplicate",
    "confirmed_strong",
    "confirmed_weak",
    "returned",
    "unmatched",
    "unmatched_by_note",
    "first_seq",
    "last_seq",
];

/// What a statement's import found, for people: the matches, then every other count the
/// summary carries (by its field name), then the entries written.
fn print_statement(s: &StatementView) {
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
    if let Ok(Value::Object(fields)) = serde_json::to_value(s) {
        for (k, v) in fields {
            if SHOWN.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            let text = match &v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            println!("  {}: {text}", k.replace('_', " "));
        }
    }
    if let (Some(first), Some(last)) = (s.first_seq, s.last_seq) {
        println!("  ledger entries #{first}-#{last}");
    }
}

pub(super) fn account(c: AccountCommand) -> AppResult<ExitCode> {
    match c {
        AccountCommand::Add {
            signer,
            org,
            account,
            currency,
            label,
            json: json_out,
        } => {
            let a: AccountView = signer.client()?.post_signed(
                "/api/v1/bank-accounts",
                &signer.signing_key()?,
                json!({"org": org, "account": account, "currency": currency, "label": label}),
            )?;
            if json_out {
                print_json(&a);
            } else {
                println!(
                    "registered account {} ({}) of {}: {}",
                    a.account, a.currency, a.org, a.label
                );
            }
        }
        AccountCommand::List {
            remote,
            org,
            json: json_out,
        } => {
            let query: Vec<(&str, String)> = org.map(|o| ("org", o)).into_iter().collect();
            let list: Vec<AccountView> = remote.client()?.get("/api/v1/bank-accounts", &query)?;
            if json_out {
                print_json(&list);
            } else {
                let mut t = Table::new(&["org", "account", "currency", "registered", "label"]);
                for a in list {
                    t.row(vec![a.org, a.account, a.currency, a.created_at, a.label]);
                }
                t.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn statement(c: StatementCommand, top: Option<&Path>) -> AppResult<ExitCode> {
    match c {
        StatementCommand::List {
            remote,
            org,
            json: json_out,
        } => {
            let query: Vec<(&str, String)> = org.map(|o| ("org", o)).into_iter().collect();
            let list: Vec<StatementView> = remote.client()?.get("/api/v1/statements", &query)?;
            if json_out {
                print_json(&list);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&[
                ">id",
                "org",
                "format",
                ">rows",
                ">confirmed",
                ">returned",
                ">unmatched",
                ">duplicate",
                "imported",
                "file",
            ]);
            for s in list {
                t.row(vec![
                    s.id.to_string(),
                    s.org,
                    s.format,
                    s.rows_total.to_string(),
                    (s.confirmed_strong + s.confirmed_weak).to_string(),
                    s.returned.to_string(),
                    s.unmatched.to_string(),
                    s.rows_duplicate.to_string(),
                    s.imported_at,
                    s.file_name,
                ]);
            }
            t.print();
            Ok(ExitCode::SUCCESS)
        }
        StatementCommand::Show {
            remote,
            id,
            status,
            limit,
            after,
            json: json_out,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status.and_then(|s| s.to_possible_value()) {
                query.push(("status", s.get_name().to_string()));
            }
            query.extend(after.map(|a| ("after", a.to_string())));
            let d: StatementDetail = remote
                .client()?
                .get(&format!("/api/v1/statements/{id}"), &query)?;
            if json_out {
                print_json(&d);
                return Ok(ExitCode::SUCCESS);
            }
            let s = &d.statement;
            println!(
                "statement {} of {}: {} ({}, {} rows), imported {}",
                s.id, s.org, s.file_name, s.format, s.rows_total, s.imported_at
            );
            for sec in &s.sections {
                println!(
                    "  account {} {} to {}: opening {}, closing {} ({})",
                    sec.account,
                    or_dash(sec.from_date.as_deref()),
                    or_dash(sec.to_date.as_deref()),
                    or_dash(sec.opening_balance.as_deref()),
                    or_dash(sec.closing_balance.as_deref()),
                    sec.location
                );
            }
            print_statement(s);
            if !d.rows.is_empty() {
                let mut t = Table::new(&[
                    ">row",
                    "location",
                    "booked",
                    ">amount",
                    "status",
                    "match",
                    ">payment",
                    ">entry",
                    "reference",
                    "counterparty",
                ]);
                for r in &d.rows {
                    t.row(vec![
                        r.id.to_string(),
                        r.location.clone(),
                        r.booking_date.clone(),
                        r.amount.clone(),
                        r.status.clone(),
                        or_dash(r.match_strength.as_deref()),
                        or_dash(r.payment_seq.map(|s| format!("#{s}"))),
                        or_dash(r.entry_seq.map(|s| format!("#{s}"))),
                        or_dash(r.reference.as_deref()),
                        or_dash(r.counterparty_name.as_deref()),
                    ]);
                }
                t.print();
            }
            if let Some(c) = d.next_cursor {
                println!("(more: --after {c})");
            }
            Ok(ExitCode::SUCCESS)
        }
        StatementCommand::Recheck {
            db,
            id,
            json: json_out,
        } => recheck(&db, top, id, json_out),
    }
}

/// `statement recheck`: reads the database, the master key and the kept file directly.
fn recheck(db: &DbArg, top: Option<&Path>, id: i64, json_out: bool) -> AppResult<ExitCode> {
    let db = db.resolve(top);
    if !db.explicit && !db.path.exists() {
        let server = std::env::var("FUNDTRAIL_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| {
                format!(" (FUNDTRAIL_SERVER={s} is not used: a server does not hand out its files)")
            })
            .unwrap_or_default();
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!(
                "statement recheck reads the database file, its master key and statement-files/ directly{server}: give --db PATH (no database at the default {})",
                db.path.display()
            ),
        )
        .field("db"));
    }
    let path: PathBuf = db.path;
    let mut conn = config::open_existing(&path)?;
    let master = config::load_master_key(&path)?;
    let files =
        crate::filestore::FileStore::open(&config::files_dir(&path), master.file_store_secret())
            .map_err(|e| AppError::internal(format!("statement file store: {e}")))?;
    let report =
        crate::statements::recheck::recheck(&mut conn, &master.personal_data_keys(), &files, id)?;
    if json_out {
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
