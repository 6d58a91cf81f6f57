//! Reading bank statement files for people: what `fundtrail import FILE --dry-run` shows, so a
//! clerk can check a file before it is sent anywhere. Parsing is `fundtrail_importers`'.

use crate::error::{AppError, AppResult, ErrorCode};
use fundtrail_importers::{
    balance, parse_auto, parse_with, CsvProfile, Format, Options, Record, Transaction,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use unicode_width::UnicodeWidthStr;

/// Names accepted by `--format`.
pub const FORMAT_NAMES: &[&str] = &[
    "auto",
    "csv",
    "csv-icbc",
    "csv-abc",
    "csv-cmb",
    "csv-chinese",
    "excel",
    "excel-icbc",
    "excel-abc",
    "excel-cmb",
    "excel-chinese",
    "camt053",
    "camt054",
    "mt940",
];

/// The name of a format, as `--format` takes it.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::Csv(CsvProfile::Generic) => "csv",
        Format::Csv(CsvProfile::Icbc) => "csv-icbc",
        Format::Csv(CsvProfile::Abc) => "csv-abc",
        Format::Csv(CsvProfile::Cmb) => "csv-cmb",
        Format::Csv(CsvProfile::Chinese) => "csv-chinese",
        Format::Excel(CsvProfile::Generic) => "excel",
        Format::Excel(CsvProfile::Icbc) => "excel-icbc",
        Format::Excel(CsvProfile::Abc) => "excel-abc",
        Format::Excel(CsvProfile::Cmb) => "excel-cmb",
        Format::Excel(CsvProfile::Chinese) => "excel-chinese",
        Format::Camt053 => "camt053",
        Format::Camt054 => "camt054",
        Format::Mt940 => "mt940",
    }
}

/// The format named on the command line (`auto` is None: detect it).
pub fn format_by_name(name: &str) -> AppResult<Option<Format>> {
    Ok(Some(match name {
        "auto" => return Ok(None),
        "csv" => Format::Csv(CsvProfile::Generic),
        "csv-icbc" => Format::Csv(CsvProfile::Icbc),
        "csv-abc" => Format::Csv(CsvProfile::Abc),
        "csv-cmb" => Format::Csv(CsvProfile::Cmb),
        "csv-chinese" => Format::Csv(CsvProfile::Chinese),
        "excel" => Format::Excel(CsvProfile::Generic),
        "excel-icbc" => Format::Excel(CsvProfile::Icbc),
        "excel-abc" => Format::Excel(CsvProfile::Abc),
        "excel-cmb" => Format::Excel(CsvProfile::Cmb),
        "excel-chinese" => Format::Excel(CsvProfile::Chinese),
        "camt053" => Format::Camt053,
        "camt054" => Format::Camt054,
        "mt940" => Format::Mt940,
        other => {
            return Err(AppError::invalid(
                "format",
                format!(
                    "unknown format `{other}` (use one of {})",
                    FORMAT_NAMES.join(", ")
                ),
            ))
        }
    }))
}

/// One transaction as `--json` prints it: a stable, flat object.
pub fn transaction_json(t: &Transaction) -> Value {
    json!({
        "location": t.location.to_string(),
        "account": t.account,
        "booking_date": t.booking_date.to_string(),
        "value_date": t.value_date.map(|d| d.to_string()),
        "amount": t.amount.to_string(),
        "currency": t.currency,
        "counterparty_name": t.counterparty_name,
        "counterparty_account": t.counterparty_account,
        "reference": t.reference,
        "bank_txn_id": t.bank_txn_id,
        "text": t.text,
        "reversal": t.reversal,
        "return_reason": t.return_reason,
    })
}

/// Pads `s` to `width` terminal columns (CJK characters take two).
fn pad(s: &str, width: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).collect();
    while out.width() > width {
        out.pop();
    }
    let fill = width - out.width();
    out.push_str(&" ".repeat(fill));
    out
}

/// A location short enough for a table column: of an XML path, the steps that say which
/// statement, entry and detail (`Stmt[2]/Ntry[1]/TxDtls[3]`).
fn short_location(location: &str) -> String {
    if !location.starts_with('/') {
        return location.to_string();
    }
    let keep = ["Stmt[", "Ntfctn[", "Ntry[", "TxDtls["];
    let steps: Vec<&str> = location
        .split('/')
        .filter(|s| keep.iter().any(|k| s.starts_with(k)))
        .collect();
    if steps.is_empty() {
        location.to_string()
    } else {
        steps.join("/")
    }
}

/// What a dry run found.
#[derive(Debug, Default)]
pub struct DryRun {
    pub transactions: u64,
    /// Every error: bad rows, running-balance breaks and unbalanced sections.
    pub errors: u64,
    /// Of `errors`, sections whose transactions do not add up from the opening to the
    /// closing balance.
    pub unbalanced: u64,
    /// Of `errors`, rows whose running balance (a CSV's 余额) is not the previous one plus
    /// the row's amount.
    pub balance_breaks: u64,
    /// Transactions that name no counterparty account: weak matching and the account checks
    /// have nothing to compare.
    pub without_counterparty_account: u64,
    /// Transactions with no payment reference: matching by reference has nothing to go on.
    pub without_reference: u64,
    pub inflow: Decimal,
    pub outflow: Decimal,
}

/// Parses `path` and writes every transaction to `out` (a table, or JSON Lines), every bad
/// row to `err`, and a summary. Touches no database and no server.
pub fn dry_run(
    path: &Path,
    format: Option<Format>,
    account: Option<String>,
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> AppResult<DryRun> {
    let file = std::fs::File::open(path).map_err(|e| {
        AppError::new(
            ErrorCode::NotFound,
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    let options = Options {
        account,
        ..Options::default()
    };
    let name = path.file_name().and_then(|n| n.to_str());
    let (format, records) = match format {
        Some(f) => (f, parse_with(reader, f, &options)),
        None => parse_auto(reader, name, &options).map_err(|e| {
            AppError::new(ErrorCode::InvalidField, format!("{}: {e}", path.display()))
                .field("format")
        })?,
    };
    // A closed pipe (`| head`) ends the output quietly; other write errors are errors.
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            AppError::new(ErrorCode::Unavailable, "output closed")
        } else {
            AppError::internal(format!("cannot write output: {e}"))
        }
    };
    // The same check as an import's: a section that does not add up is an error.
    let records = balance::Checked::new(records);
    let mut seen = DryRun::default();
    let mut statements = Vec::new();
    if !as_json {
        writeln!(out, "{} ({})", path.display(), format_name(format)).map_err(io)?;
        writeln!(
            out,
            "{}  {}  {:>14}  {}  {}  {}  reference",
            pad("where", 28),
            pad("booked", 10),
            "amount",
            pad("cur", 3),
            pad("counterparty", 24),
            pad("account", 22),
        )
        .map_err(io)?;
    }
    for record in records {
        match record {
            Ok(Record::Transaction(t)) => {
                seen.transactions += 1;
                if t.counterparty_account.is_none() {
                    seen.without_counterparty_account += 1;
                }
                if t.reference.is_none() {
                    seen.without_reference += 1;
                }
                if t.amount.is_sign_negative() {
                    seen.outflow = seen.outflow.saturating_add(t.amount);
                } else {
                    seen.inflow = seen.inflow.saturating_add(t.amount);
                }
                if as_json {
                    writeln!(out, "{}", transaction_json(&t)).map_err(io)?;
                } else {
                    let flag = if t.reversal {
                        " (reversal)"
                    } else if t.return_reason.is_some() {
                        " (return)"
                    } else {
                        ""
                    };
                    writeln!(
                        out,
                        "{}  {}  {:>14}  {}  {}  {}  {}{flag}",
                        pad(&short_location(&t.location.to_string()), 28),
                        t.booking_date,
                        t.amount.to_string(),
                        pad(&t.currency, 3),
                        pad(t.counterparty_name.as_deref().unwrap_or("-"), 24),
                        pad(t.counterparty_account.as_deref().unwrap_or("-"), 22),
                        t.reference.as_deref().unwrap_or("-"),
                    )
                    .map_err(io)?;
                }
            }
            Ok(Record::Statement(s)) => statements.push(s),
            Err(e) => {
                seen.errors += 1;
                if e.code == fundtrail_importers::ErrorKind::Unbalanced {
                    if e.field.as_deref() == Some("balance") {
                        seen.balance_breaks += 1;
                    } else {
                        seen.unbalanced += 1;
                    }
                }
                writeln!(err, "error: {}: {e} [{}]", path.display(), e.code.as_str())
                    .map_err(io)?;
            }
        }
    }
    // People read the summary; with --json it goes to stderr so stdout stays pure JSON Lines.
    let summary: &mut dyn Write = if as_json { err } else { out };
    for s in &statements {
        writeln!(
            summary,
            "statement {} account {} {}..{} opening {} closing {}",
            s.statement_id.as_deref().unwrap_or("-"),
            if s.account.is_empty() {
                "(not in file; give --account)"
            } else {
                &s.account
            },
            s.from_date.map(|d| d.to_string()).unwrap_or_default(),
            s.to_date.map(|d| d.to_string()).unwrap_or_default(),
            s.opening_balance
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            s.closing_balance
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
        )
        .map_err(io)?;
    }
    writeln!(
        summary,
        "{} transactions (in {}, out {}), {} bad rows, {} running-balance breaks, {} sections \
         that do not add up",
        seen.transactions,
        seen.inflow,
        seen.outflow,
        seen.errors - seen.unbalanced - seen.balance_breaks,
        seen.balance_breaks,
        seen.unbalanced
    )
    .map_err(io)?;
    writeln!(
        summary,
        "{} without a counterparty account, {} without a payment reference{}",
        seen.without_counterparty_account,
        seen.without_reference,
        if seen.transactions > 0
            && seen.without_counterparty_account == seen.transactions
            && seen.without_reference == seen.transactions
        {
            ": the matcher has nothing but amounts and dates to work with"
        } else {
            ""
        }
    )
    .map_err(io)?;
    writeln!(summary, "nothing was sent anywhere").map_err(io)?;
    Ok(seen)
}
