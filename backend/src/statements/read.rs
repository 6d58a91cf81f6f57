//! Reading imported statements back: the summary, the statements inside the file, and every
//! row with what it matched.

use super::currency_minor_units;
use crate::auth::Actor;
use crate::db::DbConn;
use crate::domain::{format_micros, Role};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::read::Directory;
use crate::money::format_minor;
use diesel::prelude::*;
use fundtrail_schema::rows::{BankRow, StatementRow, StatementSectionRow};
use fundtrail_schema::schema::{
    bank_accounts, bank_rows, statement_sections, statements, submissions,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// Most rows one page lists.
pub const PAGE_ROWS_MAX: i64 = 1000;

/// An imported statement file, summed up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct StatementView {
    pub id: i64,
    /// The org whose account the statement covers (and who uploaded it).
    pub org: String,
    pub file_name: String,
    /// Hex SHA-256 of the file: its address in the file store.
    pub file_sha256: String,
    pub size_bytes: i64,
    /// The format it was read as (`csv-icbc`, `camt053`, …).
    pub format: String,
    pub imported_at: String,
    /// Nonce of the signed upload; the entries the import wrote carry it as their batch.
    pub submission: String,
    /// The statements inside the file, as the bank states them.
    pub sections: Vec<SectionView>,
    pub rows_total: i64,
    /// Rows already imported from an overlapping statement; counted there, not here.
    pub rows_duplicate: i64,
    /// Debits matched to a payment by its reference.
    pub confirmed_strong: i64,
    /// Debits matched by recipient account, amount and date (no reference).
    pub confirmed_weak: i64,
    /// Credits matched as payments coming back.
    pub returned: i64,
    /// Rows that match no payment, or conflict with what the ledger holds (see each row's `note`).
    pub unmatched: i64,
    /// Unmatched rows by their note (`no_matching_payment`, `credit`, `already_confirmed`, …).
    pub unmatched_by_note: HashMap<String, i64>,
    /// Rows that name no counterparty account: weak matching and the account checks
    /// (`account_mismatch`, `shared_account`) have nothing to compare for them.
    pub rows_without_counterparty_account: i64,
    /// Rows with no payment reference (EndToEndId, 附言): only weak matching can place them.
    pub rows_without_reference: i64,
    /// The confirmation and return entries the import appended.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

/// One statement inside a file (camt `Stmt`/`Ntfctn`, an MT940 message, a CSV file).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SectionView {
    pub account: String,
    pub location: String,
    pub bank_statement_id: Option<String>,
    pub currency: Option<String>,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub opening_balance: Option<String>,
    pub closing_balance: Option<String>,
}

/// One bank row and what became of it. Counterparty name and account are masked: the full
/// row stays in the encrypted file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RowView {
    pub id: i64,
    /// `line 17`, or the XML path of the entry.
    pub location: String,
    pub account: String,
    pub booking_date: String,
    pub value_date: Option<String>,
    /// Signed: negative for money leaving the account.
    pub amount: String,
    pub currency: String,
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
    pub reference: Option<String>,
    pub bank_txn_id: Option<String>,
    pub text: Option<String>,
    pub reversal: bool,
    pub return_reason: Option<String>,
    /// `confirmed`, `returned`, `unmatched` or `duplicate`.
    pub status: String,
    /// `strong` (by reference) or `weak` (by account, amount and date), for matched rows.
    #[serde(rename = "match")]
    pub match_strength: Option<String>,
    /// The payment (disbursement) the row is about.
    pub payment_seq: Option<i64>,
    /// The confirmation or return entry written for it.
    pub entry_seq: Option<i64>,
    /// For a duplicate: the row of the earlier statement it repeats.
    pub duplicate_of: Option<i64>,
    /// Why an unmatched row is unmatched.
    pub note: Option<String>,
}

/// A statement with a page of its rows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementDetail {
    pub statement: StatementView,
    pub rows: Vec<RowView>,
    /// Pass as `after` for the next page of rows; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// What `POST /api/v1/statements` answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// True when this exact file had been imported before: nothing changed, and this is the
    /// first import's result.
    pub already_imported: bool,
    pub statement: StatementView,
}

/// Which rows of a statement to list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    /// `confirmed`, `returned`, `unmatched` or `duplicate`.
    pub status: Option<String>,
    /// Cursor: rows with a greater id.
    pub after: Option<i64>,
    /// Page size, 0-1000 (default 100; 0 for the summary only).
    pub limit: Option<i64>,
}

/// Which statements to list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatementFilter {
    /// Only statements of this org.
    pub org: Option<String>,
}

/// Statements are about one org's money: it, the orgs above it, inspectors and the admin
/// may read them.
fn may_read(dir: &Directory, actor: &Actor, org_id: i64) -> bool {
    matches!(actor.role, Role::Inspector | Role::Admin) || dir.is_within(org_id, actor.org_id)
}

fn account_codes(conn: &mut DbConn) -> AppResult<HashMap<i64, String>> {
    Ok(bank_accounts::table
        .select((bank_accounts::id, bank_accounts::account))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

fn view(
    conn: &mut DbConn,
    dir: &Directory,
    accounts: &HashMap<i64, String>,
    s: StatementRow,
) -> AppResult<StatementView> {
    let nonce: String = submissions::table
        .find(s.submission_id)
        .select(submissions::nonce)
        .first(conn)?;
    let sections: Vec<StatementSectionRow> = statement_sections::table
        .filter(statement_sections::statement_id.eq(s.id))
        .select(StatementSectionRow::as_select())
        .order(statement_sections::id)
        .load(conn)?;
    let notes: Vec<(Option<String>, i64)> = bank_rows::table
        .filter(bank_rows::id.between(s.first_row_id.unwrap_or(0), s.last_row_id.unwrap_or(-1)))
        .filter(bank_rows::status.eq("unmatched"))
        .group_by(bank_rows::note)
        .select((bank_rows::note, diesel::dsl::count_star()))
        .load(conn)?;
    let rows = || {
        bank_rows::table
            .filter(bank_rows::id.between(s.first_row_id.unwrap_or(0), s.last_row_id.unwrap_or(-1)))
    };
    let without_account: i64 = rows()
        .filter(bank_rows::counterparty_account_masked.is_null())
        .count()
        .get_result(conn)?;
    let without_reference: i64 = rows()
        .filter(bank_rows::reference.is_null())
        .count()
        .get_result(conn)?;
    Ok(StatementView {
        id: s.id,
        org: dir
            .org(s.org_id)
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        file_name: s.file_name,
        file_sha256: hex::encode(&s.file_sha256),
        size_bytes: s.size_bytes,
        format: s.format,
        imported_at: format_micros(s.imported_at),
        submission: nonce,
        sections: sections
            .into_iter()
            .map(|x| {
                let units = currency_minor_units(x.currency.as_deref().unwrap_or("CNY"));
                SectionView {
                    account: accounts.get(&x.account_id).cloned().unwrap_or_default(),
                    location: x.location,
                    bank_statement_id: x.bank_statement_id,
                    currency: x.currency,
                    from_date: x.from_date,
                    to_date: x.to_date,
                    opening_balance: x.opening_minor.map(|m| format_minor(m, units)),
                    closing_balance: x.closing_minor.map(|m| format_minor(m, units)),
                }
            })
            .collect(),
        rows_total: s.rows_total,
        rows_duplicate: s.rows_duplicate,
        confirmed_strong: s.confirmed_strong,
        confirmed_weak: s.confirmed_weak,
        returned: s.returned,
        unmatched: s.unmatched,
        unmatched_by_note: notes
            .into_iter()
            .map(|(n, c)| (n.unwrap_or_default(), c))
            .collect(),
        rows_without_counterparty_account: without_account,
        rows_without_reference: without_reference,
        first_seq: s.first_seq,
        last_seq: s.last_seq,
    })
}

fn load(conn: &mut DbConn, id: i64) -> AppResult<StatementRow> {
    statements::table
        .find(id)
        .select(StatementRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("statement {id}")))
}

/// The summary of statement `id`, for whoever imported it (no access check: the caller just
/// uploaded it).
pub fn summary(conn: &mut DbConn, id: i64) -> AppResult<StatementView> {
    let dir = Directory::load(conn)?;
    let row = load(conn, id)?;
    let accounts = account_codes(conn)?;
    view(conn, &dir, &accounts, row)
}

/// `GET /api/v1/statements/{id}`.
pub fn detail(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    filter: &RowFilter,
) -> AppResult<StatementDetail> {
    let dir = Directory::load(conn)?;
    let row = load(conn, id)?;
    if !may_read(&dir, actor, row.org_id) {
        // Not 403: whether another org's statement exists is not this caller's business.
        return Err(AppError::not_found(format!("statement {id}")));
    }
    let limit = filter.limit.unwrap_or(100);
    if !(0..=PAGE_ROWS_MAX).contains(&limit) {
        return Err(AppError::new(
            ErrorCode::InvalidQuery,
            format!("limit must be 0-{PAGE_ROWS_MAX}"),
        )
        .field("limit"));
    }
    if let Some(s) = &filter.status {
        if !["confirmed", "returned", "unmatched", "duplicate"].contains(&s.as_str()) {
            return Err(AppError::new(
                ErrorCode::InvalidQuery,
                "status is one of confirmed, returned, unmatched, duplicate",
            )
            .field("status"));
        }
    }
    let (first, last) = (row.first_row_id.unwrap_or(0), row.last_row_id.unwrap_or(-1));
    let mut q = bank_rows::table
        .filter(bank_rows::id.between(first, last))
        .filter(bank_rows::id.gt(filter.after.unwrap_or(0)))
        .select(BankRow::as_select())
        .order(bank_rows::id)
        .limit(limit + 1)
        .into_boxed();
    if let Some(s) = &filter.status {
        q = q.filter(bank_rows::status.eq(s.clone()));
    }
    let mut rows: Vec<BankRow> = if limit == 0 {
        Vec::new()
    } else {
        q.load(conn)?
    };
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    let accounts = account_codes(conn)?;
    let rows = rows
        .into_iter()
        .map(|r| RowView {
            amount: format_minor(r.amount_minor, currency_minor_units(&r.currency)),
            id: r.id,
            location: r.location,
            account: accounts.get(&r.account_id).cloned().unwrap_or_default(),
            booking_date: r.booking_date,
            value_date: r.value_date,
            currency: r.currency,
            counterparty_name: r.counterparty_name_masked,
            counterparty_account: r.counterparty_account_masked,
            reference: r.reference,
            bank_txn_id: r.bank_txn_id,
            text: r.text,
            reversal: r.reversal,
            return_reason: r.return_reason,
            status: r.status,
            match_strength: r.match_strength,
            payment_seq: r.matched_seq,
            entry_seq: r.entry_seq,
            duplicate_of: r.duplicate_of,
            note: r.note,
        })
        .collect();
    Ok(StatementDetail {
        statement: view(conn, &dir, &accounts, row)?,
        rows,
        next_cursor,
    })
}

/// `GET /api/v1/statements`: the statements the caller may read, newest first (at most 1000).
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    filter: &StatementFilter,
) -> AppResult<Vec<StatementView>> {
    let dir = Directory::load(conn)?;
    let mut q = statements::table
        .select(StatementRow::as_select())
        .order(statements::id.desc())
        .limit(PAGE_ROWS_MAX)
        .into_boxed();
    if let Some(code) = &filter.org {
        let org = dir.org_by_code(code).ok_or_else(|| {
            AppError::new(ErrorCode::InvalidQuery, format!("unknown org {code}")).field("org")
        })?;
        q = q.filter(statements::org_id.eq(org.id));
    }
    let rows: Vec<StatementRow> = q.load(conn)?;
    let accounts = account_codes(conn)?;
    rows.into_iter()
        .filter(|s| may_read(&dir, actor, s.org_id))
        .map(|s| view(conn, &dir, &accounts, s))
        .collect()
}
