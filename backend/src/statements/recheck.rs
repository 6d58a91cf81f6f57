//! Rechecking an import against its kept file: the file is read again from the encrypted
//! store (its SHA-256 must still be the one the uploader signed), parsed the same way, and every
//! stored bank row and every confirmation or return the import appended is compared with what
//! the file says. Someone who edited the rows or the bank facts behind the service's back, or
//! swapped the file, is named row by row.
//!
//! What it does not redo is the choice of payment for each row: that depended on the ledger as
//! it stood at import time. It checks that each bank fact is consistent with its row (kind,
//! amount, payment, author, batch) and the ledger's own rules are `verify`'s job.

use super::import::{counterparty_tag, fingerprint, fingerprint_base, note};
use super::{currency_minor_units, mask_account, mask_name, normalize_account, show, Manifest};
use crate::crypto::PersonalDataKeys;
use crate::db::DbConn;
use crate::domain::EntryKind;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::filestore::FileStore;
use diesel::prelude::*;
use fundtrail_importers::{parse_with, Options, Record};
use fundtrail_schema::rows::{BankRow, LedgerEntryRow, StatementRow};
use fundtrail_schema::schema::{bank_rows, ledger_entries, statements};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most differences listed; the count says how many in all.
pub const DIFFERENCES_LISTED_MAX: usize = 100;
/// Rows compared per database read.
const PAGE_ROWS: i64 = 5000;

/// What a recheck found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecheckReport {
    pub statement: i64,
    pub file_sha256: String,
    pub rows_checked: i64,
    pub entries_checked: i64,
    pub differences_total: usize,
    /// `row <id> (<location>): <what>`, at most [`DIFFERENCES_LISTED_MAX`].
    pub differences: Vec<String>,
}

impl RecheckReport {
    pub fn ok(&self) -> bool {
        self.differences_total == 0
    }
    fn differ(&mut self, what: String) {
        self.differences_total += 1;
        if self.differences.len() < DIFFERENCES_LISTED_MAX {
            self.differences.push(what);
        }
    }
}

/// Rechecks statement `id` against its file in `files`.
pub fn recheck(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    files: &FileStore,
    id: i64,
) -> AppResult<RecheckReport> {
    let s: StatementRow = statements::table
        .find(id)
        .select(StatementRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("statement {id}")))?;
    let sha: [u8; 32] = s
        .file_sha256
        .clone()
        .try_into()
        .map_err(|_| AppError::internal("malformed file digest"))?;
    let mut report = RecheckReport {
        statement: id,
        file_sha256: hex::encode(sha),
        rows_checked: 0,
        entries_checked: 0,
        differences_total: 0,
        differences: Vec::new(),
    };
    let manifest: Manifest = serde_json::from_str(&s.manifest)
        .map_err(|e| AppError::internal(format!("statement {id}: stored manifest: {e}")))?;
    if manifest.file_sha256 != report.file_sha256 {
        report.differ("the signed manifest names another file than the one stored".into());
    }
    let format = show::format_by_name(&s.format)?
        .ok_or_else(|| AppError::internal(format!("statement {id} has no format")))?;
    let input = files.reader(&sha).map_err(|e| {
        AppError::new(
            ErrorCode::NotFound,
            format!("the file of statement {id} cannot be read from the store: {e}"),
        )
    })?;
    let options = Options {
        account: manifest.account.clone(),
        ..Options::default()
    };

    let (first, last) = (s.first_row_id.unwrap_or(0), s.last_row_id.unwrap_or(-1));
    let mut next_id = first;
    let mut page: std::collections::VecDeque<BankRow> = Default::default();
    let mut occurrences: HashMap<[u8; 32], u32> = HashMap::new();
    let mut entry_seqs: Vec<i64> = Vec::new();
    for record in parse_with(input, format, &options) {
        let t = match record {
            Ok(Record::Transaction(t)) => t,
            Ok(Record::Statement(_)) => continue,
            Err(e) => {
                report.differ(format!("the kept file no longer parses: {e}"));
                break;
            }
        };
        if page.is_empty() && next_id <= last {
            let rows: Vec<BankRow> = bank_rows::table
                .filter(bank_rows::id.between(next_id, last.min(next_id + PAGE_ROWS - 1)))
                .select(BankRow::as_select())
                .order(bank_rows::id)
                .load(conn)?;
            next_id += PAGE_ROWS;
            page.extend(rows);
        }
        let Some(row) = page.pop_front() else {
            report.differ(format!("{}: in the file but not stored", t.location));
            continue;
        };
        report.rows_checked += 1;
        let at = format!("row {} ({})", row.id, row.location);
        let account = normalize_account(&t.account);
        let base = fingerprint_base(&account, &t);
        let k = occurrences.entry(base).or_insert(0);
        *k += 1;
        let units = currency_minor_units(&t.currency);
        let amount = super::import::to_minor(t.amount, units);
        let fields: [(&str, bool); 13] = [
            ("location", row.location == t.location.to_string()),
            (
                "booking_date",
                row.booking_date == t.booking_date.to_string(),
            ),
            (
                "value_date",
                row.value_date == t.value_date.map(|d| d.to_string()),
            ),
            ("amount", Some(row.amount_minor) == amount),
            ("currency", row.currency == t.currency),
            (
                "counterparty_name",
                row.counterparty_name_masked == t.counterparty_name.as_deref().map(mask_name),
            ),
            (
                "counterparty_account",
                row.counterparty_account_masked
                    == t.counterparty_account.as_deref().map(mask_account),
            ),
            (
                "counterparty_account_tag",
                row.counterparty_account_tag == counterparty_tag(keys, &t),
            ),
            ("reference", row.reference == t.reference),
            ("bank_txn_id", row.bank_txn_id == t.bank_txn_id),
            ("text", row.text == t.text),
            ("reversal", row.reversal == t.reversal),
            ("return_reason", row.return_reason == t.return_reason),
        ];
        for (field, same) in fields {
            if !same {
                report.differ(format!("{at}: {field} differs from the file"));
            }
        }
        if row.fingerprint != fingerprint(&base, *k) {
            report.differ(format!("{at}: fingerprint differs from the file's row"));
        }
        check_fact(conn, &mut report, &at, &row, &s)?;
        entry_seqs.extend(row.entry_seq);
    }
    for row in page {
        report.differ(format!(
            "row {} ({}): stored but not in the file",
            row.id, row.location
        ));
    }
    if next_id <= last {
        report.differ(format!("rows {next_id}-{last}: stored but not in the file"));
    }
    // The import's entries are exactly the rows' bank facts, in order.
    let expected: Vec<i64> = match (s.first_seq, s.last_seq) {
        (Some(a), Some(b)) => (a..=b).collect(),
        _ => Vec::new(),
    };
    report.entries_checked = entry_seqs.len() as i64;
    if entry_seqs != expected {
        report.differ(format!(
            "the import appended entries {:?}-{:?}, but its rows name {} entries",
            s.first_seq,
            s.last_seq,
            entry_seqs.len()
        ));
    }
    if report.rows_checked != s.rows_total {
        report.differ(format!(
            "the statement counts {} rows; the file has {}",
            s.rows_total, report.rows_checked
        ));
    }
    Ok(report)
}

/// Checks the bank fact written for a row against the row.
fn check_fact(
    conn: &mut DbConn,
    report: &mut RecheckReport,
    at: &str,
    row: &BankRow,
    s: &StatementRow,
) -> AppResult<()> {
    let kind = match row.status.as_str() {
        "confirmed" => Some(EntryKind::Confirmation),
        "returned" => Some(EntryKind::Return),
        _ => None,
    };
    match (kind, row.entry_seq) {
        (None, None) => {
            if row.status == "unmatched" && row.note.is_none() {
                report.differ(format!("{at}: unmatched without a reason"));
            }
            if row.status == "unmatched"
                && row.note.as_deref() == Some(note::CREDIT)
                && row.amount_minor < 0
            {
                report.differ(format!("{at}: a debit noted as a credit"));
            }
            Ok(())
        }
        (Some(kind), Some(seq)) => {
            let e: Option<LedgerEntryRow> = ledger_entries::table
                .find(seq)
                .select(LedgerEntryRow::as_select())
                .first(conn)
                .optional()?;
            let Some(e) = e else {
                report.differ(format!("{at}: its {kind} entry #{seq} is missing"));
                return Ok(());
            };
            let checks = [
                ("kind", e.kind == kind.as_str()),
                (
                    "payment",
                    e.source_seq.is_some() && e.source_seq == row.matched_seq,
                ),
                ("amount", e.amount_minor == row.amount_minor.abs()),
                ("author", e.author_org_id == s.org_id),
                ("batch", e.submission_id == s.submission_id),
                ("memo", e.memo.contains(&row.location)),
            ];
            for (what, same) in checks {
                if !same {
                    report.differ(format!(
                        "{at}: entry #{seq} disagrees with the row ({what})"
                    ));
                }
            }
            Ok(())
        }
        (_, seq) => {
            report.differ(format!(
                "{at}: status {} does not fit entry {seq:?}",
                row.status
            ));
            Ok(())
        }
    }
}
