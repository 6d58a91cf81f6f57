//! The ledger's commands: write entries (`budget`, `allocate`, `disburse`, `reverse`) and read
//! them (`entries`, `balance`).

use super::output::{emit, entries_json, print_json, seq_range, warn_unknown_columns};
use super::{today, Remote, Signer};
use crate::client::Client;
use crate::crypto::{self, SigningKey};
use crate::domain::EntryKind;
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::ledger::append::AppendOutcome;
use crate::ledger::read::{Balance, EntryDetail, EntryPage};
use crate::ledger::{second_payment_reason, EntryBody, BATCH_ENTRIES_MAX, SECOND_PAYMENT_MARKERS};

/// The marker this CLI writes for `--second-payment`.
const SECOND_PAYMENT: &str = SECOND_PAYMENT_MARKERS[0];
use crate::money::{format_minor, parse_amount_lenient};
use crate::roster::{read_roster, RecipientRef, RosterError, RosterRow};
use crate::service::programs::ProgramView;
use crate::service::recipients::{Resolved, REGISTER_BATCH_MAX};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Fields every single-entry command takes.
#[derive(Args, Debug, Clone)]
pub struct EntryArgs {
    /// Program code, e.g. DIBAO-2026.
    #[arg(long)]
    pub program: String,
    /// Period the money is for: 2026, 2026-Q4 or 2026-11.
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
    /// A note kept on the entry (at most 280 bytes).
    #[arg(long, default_value = "")]
    pub memo: String,
}

#[derive(Args, Debug)]
pub struct Budget {
    #[command(flatten)]
    signer: Signer,
    #[command(flatten)]
    entry: EntryArgs,
    /// Print the entry written as JSON (seq, reference, amount, kind, hash).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Allocate {
    #[command(flatten)]
    signer: Signer,
    #[command(flatten)]
    entry: EntryArgs,
    /// Sequence number of the entry whose money you pass on.
    #[arg(long)]
    source: i64,
    /// The receiving org.
    #[arg(long)]
    to: String,
    /// Print the entry written as JSON (seq, reference, amount, kind, hash).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Disburse {
    #[command(flatten)]
    signer: Signer,
    /// Program code.
    #[arg(long)]
    program: String,
    /// The period paid, in the program's granularity (e.g. 2026-11 for a monthly program).
    #[arg(long)]
    period: String,
    /// Sequence number of the allocation you pay from.
    #[arg(long)]
    source: i64,
    /// Roster CSV: id_number/身份证号 (or recipient), amount/金额, optional
    /// reference/payment_reference/附言 and memo/备注; other columns are named and not used.
    #[arg(long, value_name = "CSV")]
    roster: PathBuf,
    /// Business date of the payments, YYYY-MM-DD (default today).
    #[arg(long)]
    value_date: Option<String>,
    /// Entries per signed batch (each batch is all or nothing).
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
    /// Skip roster lines before this 1-based line (the header is line 1), to pay the rest
    /// after a refused batch.
    #[arg(long, default_value_t = 0, value_name = "LINE")]
    from_line: u64,
    /// Pay recipients already paid for this program and period again, on purpose: the
    /// reason goes into every entry's memo (`再次发放：REASON`). Without it the ledger refuses
    /// such a payment (`already_paid`), so a roster sent twice never pays twice.
    #[arg(long, value_name = "REASON")]
    second_payment: Option<String>,
    /// Print what was written as JSON: each entry with its roster line, seq, reference,
    /// amount and hash (also when a batch is refused: what was written before it).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Reverse {
    #[command(flatten)]
    signer: Signer,
    /// Sequence number of the entry to reverse.
    seq: i64,
    /// Why (kept on the reversal entry).
    #[arg(long, default_value = "")]
    memo: String,
    /// Business date of the reversal, YYYY-MM-DD (default today).
    #[arg(long)]
    value_date: Option<String>,
    /// Print the reversal entry written as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Entries {
    #[command(flatten)]
    remote: Remote,
    /// Only entries of this program.
    #[arg(long)]
    program: Option<String>,
    /// Only entries of this period, exactly as written on them (2026-11).
    #[arg(long)]
    period: Option<String>,
    /// Only entries of this kind.
    #[arg(long, value_enum)]
    kind: Option<EntryKind>,
    /// Only entries this org wrote, sent or received.
    #[arg(long)]
    org: Option<String>,
    /// Only entries paying this recipient (pseudonym).
    #[arg(long)]
    recipient: Option<String>,
    /// Only entries after this sequence number (the page cursor).
    #[arg(long, value_name = "SEQ")]
    after: Option<i64>,
    /// Most entries to list (1-1000).
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Print the page as JSON (entries, their signed batches, the next cursor).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct Balances {
    #[command(flatten)]
    remote: Remote,
    /// Only this program.
    #[arg(long)]
    program: Option<String>,
    /// Only this org.
    #[arg(long)]
    org: Option<String>,
    /// Print the balances as JSON.
    #[arg(long)]
    json: bool,
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

/// The reference of a roster row that names none: `D` + period + the file's digest + line,
/// e.g. `D202611-3f2a9c1d07-000002` (25 characters for a month).
fn roster_reference(period: &str, file_tag: &str, line: u64) -> String {
    format!("D{}-{file_tag}-{line:06}", period.replace('-', ""))
}

fn program(client: &Client, code: &str) -> AppResult<ProgramView> {
    client.get(&format!("/api/v1/programs/{code}"), &[])
}

fn canonical_amount(p: &ProgramView, text: &str) -> AppResult<String> {
    parse_amount_lenient(text, p.minor_units)
        .map(|m| format_minor(m, p.minor_units))
        .map_err(|e| AppError::new(ErrorCode::InvalidAmount, e.to_string()).field("amount"))
}

fn send(client: &Client, key: &SigningKey, bodies: &[EntryBody]) -> AppResult<AppendOutcome> {
    client.post_signed("/api/v1/entries", key, json!({ "entries": bodies }))
}

/// Prints one written entry for people, or as JSON.
fn print_single(out: &AppendOutcome, body: &EntryBody, json_out: bool) {
    if json_out {
        print_json(&json!({
            "batch": out.batch,
            "head_hash": out.head_hash,
            "entries": entries_json(std::slice::from_ref(body), out, &[]),
        }));
    } else {
        println!(
            "recorded entry #{} ({} {} {} {}), head {}",
            out.first_seq, body.kind, body.reference, body.amount, body.period, out.head_hash
        );
    }
}

fn single_entry(
    signer: &Signer,
    entry: &EntryArgs,
    kind: EntryKind,
    json_out: bool,
    shape: impl FnOnce(EntryBody, &str) -> EntryBody,
) -> AppResult<ExitCode> {
    let client = signer.client()?;
    let key = signer.signing_key()?;
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
    let body = shape(body, &key.org);
    let out = send(&client, &key, std::slice::from_ref(&body))?;
    print_single(&out, &body, json_out);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn budget(a: Budget) -> AppResult<ExitCode> {
    single_entry(&a.signer, &a.entry, EntryKind::Budget, a.json, |b, me| {
        b.to(me)
    })
}

pub(super) fn allocate(a: Allocate) -> AppResult<ExitCode> {
    let (source, to) = (a.source, a.to);
    single_entry(
        &a.signer,
        &a.entry,
        EntryKind::Allocation,
        a.json,
        |b, me| b.from(me).source(source).to(&to),
    )
}

pub(super) fn reverse(a: Reverse) -> AppResult<ExitCode> {
    let client = a.signer.client()?;
    let key = a.signer.signing_key()?;
    let seq = a.seq;
    let d: EntryDetail = client.get(&format!("/api/v1/entries/{seq}"), &[])?;
    let e = d.entry;
    let body = EntryBody::new(
        EntryKind::Reversal,
        &e.program,
        &e.period,
        &e.amount,
        &format!("REV-{seq}"),
        &a.value_date.unwrap_or_else(today),
    )
    .source(seq)
    .memo(&a.memo);
    let out = send(&client, &key, std::slice::from_ref(&body))?;
    if a.json {
        print_json(&json!({
            "reversed": seq,
            "batch": out.batch,
            "head_hash": out.head_hash,
            "entries": entries_json(std::slice::from_ref(&body), &out, &[]),
        }));
    } else {
        println!("entry #{seq} reversed by entry #{}", out.first_seq);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn entries(a: Entries) -> AppResult<ExitCode> {
    let mut q = vec![("limit", a.limit.to_string())];
    for (k, v) in [
        ("program", a.program),
        ("period", a.period),
        ("kind", a.kind.map(|k| k.as_str().to_string())),
        ("org", a.org),
        ("recipient", a.recipient),
        ("after", a.after.map(|s| s.to_string())),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    let page: EntryPage = a.remote.client()?.get("/api/v1/entries", &q)?;
    if a.json {
        print_json(&page);
        return Ok(ExitCode::SUCCESS);
    }
    use std::fmt::Write as _;
    let mut text = format!(
        "{:>8}  {:<12}  {:<8}  {:<14}  {:<26}  {:>14}  reference\n",
        "seq", "kind", "period", "from", "to", "amount"
    );
    for e in &page.entries {
        let to = e.to.clone().or(e.recipient.clone()).unwrap_or_default();
        let kind = if e.reversed_by.is_some() {
            format!("{}*", e.kind)
        } else {
            e.kind.to_string()
        };
        let _ = writeln!(
            text,
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
        let _ = writeln!(text, "(more: --after {c})");
    }
    emit(&text);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn balance(a: Balances) -> AppResult<ExitCode> {
    let mut q = Vec::new();
    if let Some(p) = a.program {
        q.push(("program", p));
    }
    if let Some(o) = a.org {
        q.push(("org", o));
    }
    let rows: Vec<Balance> = a.remote.client()?.get("/api/v1/balances", &q)?;
    if a.json {
        print_json(&rows);
        return Ok(ExitCode::SUCCESS);
    }
    use std::fmt::Write as _;
    let mut text = format!(
        "{:<14}  {:<12}  {:>16}  {:>16}  {:>16}  {:>12}  {:>16}\n",
        "org", "program", "received", "passed down", "disbursed", "returned", "held"
    );
    for b in rows {
        let _ = writeln!(
            text,
            "{:<14}  {:<12}  {:>16}  {:>16}  {:>16}  {:>12}  {:>16}",
            b.org, b.program, b.received, b.passed_down, b.disbursed, b.returned, b.held
        );
    }
    emit(&text);
    Ok(ExitCode::SUCCESS)
}

/// A file's problems as one error, each located by its line (and column, as its header says).
pub(super) fn file_errors(path: &Path, errors: Vec<RosterError>) -> AppError {
    AppError::batch(
        errors
            .into_iter()
            .map(|e| Problem {
                error: ErrorCode::InvalidField,
                message: format!("{}: {e}", path.display()),
                field: e.column.clone(),
                item: None,
                location: Some(format!("line {}", e.line)),
            })
            .collect(),
    )
}

/// Fields of an entry a roster row gives; a refusal about any other field (`period`,
/// `source`, …) is about the command's arguments, not the rows.
const ROW_FIELDS: &[&str] = &["recipient", "amount", "reference", "memo"];

/// Rewrites the batch items of `e` (0-based, into the batch sent) as the file's 1-based
/// lines, `lines[item]`, so every message names a line. Returns the lines refused for what
/// their row holds, sorted.
pub(super) fn items_to_lines(e: &mut AppError, lines: &[u64], what: &str) -> Vec<u64> {
    let mut at_fault = Vec::new();
    for p in e.problems.iter_mut().chain(std::iter::once(&mut *e.first)) {
        let Some(line) = p.item.and_then(|i| lines.get(i)).copied() else {
            continue;
        };
        p.message = format!("{what} {line}: {}", p.message);
        p.location = Some(format!("line {line}"));
        p.item = None;
        if p.field.as_deref().is_none_or(|f| ROW_FIELDS.contains(&f)) {
            at_fault.push(line);
        }
    }
    at_fault.sort_unstable();
    at_fault.dedup();
    at_fault
}

/// The arguments (not rows) a refusal was about, as options: `--period`, `--source`.
fn arguments_at_fault(e: &AppError) -> Vec<String> {
    let mut out: Vec<String> = e
        .problems
        .iter()
        .filter(|p| p.location.is_some())
        .filter_map(|p| p.field.as_deref())
        .filter(|f| !ROW_FIELDS.contains(f))
        .map(|f| format!("--{}", f.replace('_', "-")))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn lines_list(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(10).map(u64::to_string).collect();
    let more = lines.len().saturating_sub(10);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The pseudonym each row pays, in order. ID numbers are resolved by the server (it alone
/// holds the pseudonym key); every row whose ID is not one of `org`'s recipients is named.
fn pseudonyms_of(
    client: &Client,
    path: &Path,
    org: &str,
    rows: &[RosterRow],
    id_column: Option<&str>,
) -> AppResult<Vec<String>> {
    let ids: Vec<(u64, &str)> = rows
        .iter()
        .filter_map(|r| match &r.recipient {
            RecipientRef::IdNumber(id) => Some((r.line, id.as_str())),
            RecipientRef::Pseudonym(_) => None,
        })
        .collect();
    let mut resolved: HashMap<&str, Option<String>> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(REGISTER_BATCH_MAX) {
        let numbers: Vec<&str> = chunk.iter().map(|(_, id)| *id).collect();
        let answer: Resolved = client
            .post_json(
                "/api/v1/recipients/resolve",
                &json!({ "id_numbers": numbers }),
            )
            .map_err(|mut e| {
                let lines: Vec<u64> = chunk.iter().map(|(l, _)| *l).collect();
                items_to_lines(&mut e, &lines, &format!("{} line", path.display()));
                e
            })?;
        for ((_, id), p) in chunk.iter().zip(answer.pseudonyms) {
            resolved.insert(id, p);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut unknown = Vec::new();
    for r in rows {
        match &r.recipient {
            RecipientRef::Pseudonym(p) => out.push(p.clone()),
            RecipientRef::IdNumber(id) => match resolved.get(id.as_str()).cloned().flatten() {
                Some(p) => out.push(p),
                None => unknown.push(Problem {
                    error: ErrorCode::UnknownRecipient,
                    message: format!(
                        "{} line {}: this ID number is not a registered recipient of {org}",
                        path.display(),
                        r.line
                    ),
                    field: id_column.map(str::to_string),
                    item: None,
                    location: Some(format!("line {}", r.line)),
                }),
            },
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(AppError::batch(unknown))
    }
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

/// `#12-#41`, or how many entries lie between two seqs when others came in between.
fn span(seqs: &[i64]) -> String {
    match (seqs.first(), seqs.last()) {
        (Some(&a), Some(&b)) if (b - a + 1) as usize == seqs.len() => seq_range(a, b),
        (Some(&a), Some(&b)) => format!("{} entries between #{a} and #{b}", seqs.len()),
        _ => "none".into(),
    }
}

/// What a clerk should do after the batch from `first_line` was refused, `written` rows
/// (the first of `lines`) having been recorded before it. "Fix the roster" only when the
/// refusal named its rows; a line to resume from only when rows were recorded and the batch
/// surely was not.
fn refusal_hint(
    e: &AppError,
    lines: &[u64],
    seqs: &[i64],
    written: usize,
    first_line: u64,
    rows_at_fault: &[u64],
) -> String {
    let done = match written {
        0 => "nothing was recorded".to_string(),
        n => format!(
            "{n} payments were recorded (roster lines {}-{}, entries {})",
            lines[0],
            lines[n - 1],
            span(seqs)
        ),
    };
    if e.code() == ErrorCode::Unavailable {
        return format!("{done}; the server did not answer for the batch from roster line {first_line}, which may or may not have been recorded: check `fundtrail entries` before paying those lines again.");
    }
    // Every refused row paid already: most likely the roster was sent twice.
    if !rows_at_fault.is_empty() && e.problems.iter().all(|p| p.error == ErrorCode::AlreadyPaid) {
        return format!(
            "{done}: roster line(s) {} pay recipients already paid for this program and period. \
             If this roster was sent before, there is nothing to do. To pay them again on \
             purpose, put them in a new roster and run it with --second-payment REASON.",
            lines_list(rows_at_fault)
        );
    }
    if !rows_at_fault.is_empty() {
        let fix = format!("fix roster line(s) {}", lines_list(rows_at_fault));
        return if written == 0 {
            format!("{done}: {fix} and run the command again.")
        } else {
            format!("{done}; the batch from roster line {first_line} wrote nothing: {fix} and resume with --from-line {first_line}")
        };
    }
    let args = arguments_at_fault(e);
    let about = if args.is_empty() {
        String::new()
    } else {
        format!(
            " (the refusal is about {}, not the roster's rows)",
            args.join(", ")
        )
    };
    if written == 0 {
        format!("{done}{about}.")
    } else {
        format!("{done}; nothing from roster line {first_line} on{about}. Once that is solved, pay the rest with --from-line {first_line}: the whole roster again would pay lines {}-{} twice.", lines[0], lines[written - 1])
    }
}

pub(super) fn disburse(a: Disburse) -> AppResult<ExitCode> {
    let Disburse {
        signer,
        program: program_code,
        period,
        source,
        roster: path,
        value_date,
        batch_size,
        from_line,
        second_payment,
        json: json_out,
    } = a;
    let second_payment = match second_payment.as_deref().map(str::trim) {
        Some("") => {
            return Err(AppError::invalid(
                "second_payment",
                "--second-payment needs the reason the recipients are paid again",
            ))
        }
        other => other.map(str::to_string),
    };
    if !(1..=BATCH_ENTRIES_MAX).contains(&batch_size) {
        return Err(AppError::invalid(
            "batch_size",
            format!("--batch-size must be 1-{BATCH_ENTRIES_MAX}"),
        ));
    }
    let client = signer.client()?;
    let key = signer.signing_key()?;
    let p = program(&client, &program_code)?;
    let file = std::fs::File::open(&path)
        .map_err(|e| AppError::invalid("roster", format!("cannot open {}: {e}", path.display())))?;
    // Hashed while it is read: generated references come from the file's bytes and the row's
    // line, so running the same roster again (from here or any other client) names the same
    // references, which the ledger refuses to repeat.
    let mut hashing = crypto::Sha256Reader::new(std::io::BufReader::new(file));
    let roster =
        read_roster(&mut hashing, p.minor_units).map_err(|errors| file_errors(&path, errors))?;
    let file_tag = hex::encode(&hashing.finish()[..5]);
    let columns = roster.columns;
    warn_unknown_columns(
        &path,
        &columns.unknown,
        "id_number/身份证号 or recipient, amount/金额, reference/附言, memo/备注",
    );
    let reference_column = columns.header("reference").map(str::to_string);
    let rows: Vec<RosterRow> = roster
        .rows
        .into_iter()
        .filter(|r| r.line >= from_line)
        .collect();
    // A memo column can carry the ledger's second-payment marker; only --second-payment may
    // say a roster pays people again, or a re-exported roster would slip through.
    if second_payment.is_none() {
        let marked: Vec<u64> = rows
            .iter()
            .filter(|r| second_payment_reason(&r.memo).is_some())
            .map(|r| r.line)
            .collect();
        if !marked.is_empty() {
            return Err(AppError::invalid(
                "memo",
                format!(
                    "{}: roster line(s) {} have a memo marking a second payment (`{SECOND_PAYMENT}…`); \
                     say so with --second-payment REASON, or change those memos",
                    path.display(),
                    lines_list(&marked)
                ),
            ));
        }
    }
    let from_roster = rows.iter().any(|r| r.reference.is_some());
    if let (Some(c), false, false) = (&reference_column, from_roster, rows.is_empty()) {
        eprintln!(
            "warning: {}: column {c} is empty on every row; references are generated",
            path.display()
        );
    }
    let pseudonyms = pseudonyms_of(&client, &path, &key.org, &rows, columns.header("id_number"))?;
    let value_date = value_date.unwrap_or_else(today);
    let bodies: Vec<EntryBody> = rows
        .iter()
        .zip(&pseudonyms)
        .map(|(r, recipient)| {
            let reference = r
                .reference
                .clone()
                .unwrap_or_else(|| roster_reference(&period, &file_tag, r.line));
            let memo = match &second_payment {
                Some(reason) if r.memo.is_empty() => format!("{SECOND_PAYMENT}{reason}"),
                Some(reason) => format!("{SECOND_PAYMENT}{reason}；{}", r.memo),
                None => r.memo.clone(),
            };
            EntryBody::new(
                EntryKind::Disbursement,
                &p.code,
                &period,
                &format_minor(r.amount_minor, p.minor_units),
                &reference,
                &value_date,
            )
            .from(&key.org)
            .source(source)
            .recipient(recipient)
            .memo(&memo)
        })
        .collect();
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    let summary = |written: &[Value], resume: Option<u64>, complete: bool| {
        json!({
            "roster": path,
            "program": p.code,
            "period": period,
            "source": source,
            "unknown_columns": columns.unknown,
            "ignored_columns": columns.ignored,
            "reference_column": reference_column.as_ref().filter(|_| from_roster),
            "references": if from_roster { "roster" } else { "generated" },
            "recorded": written.len(),
            "complete": complete,
            "resume_from_line": resume,
            "entries": written,
        })
    };
    let bar = progress(bodies.len() as u64, "disbursing");
    let mut written: Vec<Value> = Vec::with_capacity(bodies.len());
    let mut seqs: Vec<i64> = Vec::with_capacity(bodies.len());
    for (batch, batch_lines) in bodies.chunks(batch_size).zip(lines.chunks(batch_size)) {
        match send(&client, &key, batch) {
            Ok(out) => {
                bar.inc(out.count as u64);
                seqs.extend(out.entries.iter().map(|e| e.seq));
                written.extend(entries_json(batch, &out, batch_lines));
            }
            Err(mut e) => {
                bar.abandon();
                let first_line = batch_lines[0];
                let rows_at_fault = items_to_lines(&mut e, batch_lines, "roster line");
                // Without an answer, whether the batch was recorded is unknown: no line to
                // resume from can be promised.
                let unknown_outcome = e.code() == ErrorCode::Unavailable;
                if json_out {
                    print_json(&summary(
                        &written,
                        (!unknown_outcome).then_some(first_line),
                        false,
                    ));
                }
                eprintln!(
                    "{}",
                    refusal_hint(&e, &lines, &seqs, written.len(), first_line, &rows_at_fault)
                );
                return Err(e);
            }
        }
    }
    bar.finish_and_clear();
    if json_out {
        print_json(&summary(&written, None, true));
    } else {
        let at = match (lines.first(), lines.last()) {
            (Some(a), Some(b)) => format!(" (lines {a}-{b}): entries {}", span(&seqs)),
            _ => String::new(),
        };
        println!(
            "recorded {} disbursements from {}{at}",
            written.len(),
            path.display()
        );
        if !written.is_empty() {
            match (&reference_column, from_roster) {
                (Some(c), true) => println!("references: from column {c}"),
                _ => println!("references: generated (the roster gives none)"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ErrorCode, item: Option<usize>, field: Option<&str>) -> AppError {
        AppError::from(Problem {
            error: code,
            message: "no".into(),
            field: field.map(str::to_string),
            item,
            location: None,
        })
    }

    #[test]
    fn items_become_lines_and_only_row_fields_blame_the_rows() {
        let lines = [7, 9, 12];
        let mut e = refused(ErrorCode::Overdraw, Some(2), Some("amount"));
        assert_eq!(items_to_lines(&mut e, &lines, "roster line"), vec![12]);
        assert_eq!(e.first.message, "roster line 12: no");
        assert_eq!(
            (e.first.item, e.first.location.as_deref()),
            (None, Some("line 12"))
        );
        assert_eq!(e.problems[0], *e.first);
        let mut e = refused(ErrorCode::WrongHolder, Some(0), Some("source"));
        assert!(items_to_lines(&mut e, &lines, "roster line").is_empty());
        assert_eq!(arguments_at_fault(&e), vec!["--source"]);
    }

    #[test]
    fn the_hint_resumes_only_where_it_is_sure() {
        let lines = [2, 3, 4, 5];
        let seqs = [40, 41];
        let rows = refused(ErrorCode::Overdraw, None, None);
        let hint = refusal_hint(&rows, &lines, &seqs, 2, 4, &[5]);
        assert!(
            hint.contains("fix roster line(s) 5 and resume with --from-line 4"),
            "{hint}"
        );
        assert!(hint.contains("roster lines 2-3, entries #40-#41"), "{hint}");
        let hint = refusal_hint(&rows, &lines, &[], 0, 2, &[3]);
        assert!(
            hint.starts_with("nothing was recorded: fix roster line(s) 3 and run"),
            "{hint}"
        );
        // No answer: the batch may have been written, so no line is promised.
        let gone = refused(ErrorCode::Unavailable, None, None);
        let hint = refusal_hint(&gone, &lines, &seqs, 2, 4, &[]);
        assert!(
            hint.contains("may or may not") && !hint.contains("--from-line"),
            "{hint}"
        );
        // A retired key: nothing about the roster, and no resume when nothing was written.
        let key = refused(ErrorCode::KeyNotValid, None, None);
        let hint = refusal_hint(&key, &lines, &[], 0, 2, &[]);
        assert_eq!(hint, "nothing was recorded.");
        let hint = refusal_hint(&key, &lines, &seqs, 2, 4, &[]);
        assert!(
            !hint.contains("fix roster") && hint.contains("--from-line 4"),
            "{hint}"
        );
    }
}
