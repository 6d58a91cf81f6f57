//! Reading the ledger: the org/program directory, entries as API views, pages for export
//! and verification, and balances.

use super::rules::OrgFacts;
use super::{EntryView, SubmissionView};
use crate::db::DbConn;
use crate::domain::{format_micros, EntryKind, Granularity, Role};
use crate::error::{AppError, AppResult};
use crate::money::format_minor;
use diesel::prelude::*;
use fundtrail_schema::rows::{LedgerEntryRow, OrgRow, ProgramRow, SubmissionRow};
use fundtrail_schema::schema::{
    ledger_entries, ledger_funds, orgs, programs, statements, submissions,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// Largest page of entries one request returns.
pub const PAGE_ENTRIES_MAX: i64 = 1000;

#[derive(Debug, Clone)]
pub struct OrgInfo {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub role: Role,
    pub parent_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ProgramInfo {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub fiscal_year: i32,
    pub currency: String,
    pub minor_units: u32,
    pub standard_amount_minor: i64,
    pub granularity: Granularity,
    pub owner_org_id: i64,
}

/// Every org and program, by id and by code. Small (a province has thousands of orgs at most)
/// and read whole, so entry views and checks never join for a code.
#[derive(Debug, Default)]
pub struct Directory {
    orgs: HashMap<i64, OrgInfo>,
    org_ids: HashMap<String, i64>,
    programs: HashMap<i64, ProgramInfo>,
    program_ids: HashMap<String, i64>,
}

impl Directory {
    pub fn load(conn: &mut DbConn) -> AppResult<Directory> {
        let mut dir = Directory::default();
        for o in orgs::table.select(OrgRow::as_select()).load(conn)? {
            let role = Role::parse(&o.role)
                .ok_or_else(|| AppError::internal(format!("org {} has unknown role", o.code)))?;
            dir.org_ids.insert(o.code.clone(), o.id);
            dir.orgs.insert(
                o.id,
                OrgInfo {
                    id: o.id,
                    code: o.code,
                    name: o.name,
                    role,
                    parent_id: o.parent_id,
                },
            );
        }
        for p in programs::table.select(ProgramRow::as_select()).load(conn)? {
            let granularity = Granularity::parse(&p.period_granularity).ok_or_else(|| {
                AppError::internal(format!("program {} has unknown granularity", p.code))
            })?;
            dir.program_ids.insert(p.code.clone(), p.id);
            dir.programs.insert(
                p.id,
                ProgramInfo {
                    id: p.id,
                    code: p.code,
                    name: p.name,
                    fiscal_year: p.fiscal_year,
                    currency: p.currency,
                    minor_units: p.minor_units as u32,
                    standard_amount_minor: p.standard_amount_minor,
                    granularity,
                    owner_org_id: p.owner_org_id,
                },
            );
        }
        Ok(dir)
    }

    pub fn org(&self, id: i64) -> Option<&OrgInfo> {
        self.orgs.get(&id)
    }
    pub fn org_by_code(&self, code: &str) -> Option<&OrgInfo> {
        self.org_ids.get(code).and_then(|id| self.orgs.get(id))
    }
    pub fn program(&self, id: i64) -> Option<&ProgramInfo> {
        self.programs.get(&id)
    }
    pub fn program_by_code(&self, code: &str) -> Option<&ProgramInfo> {
        self.program_ids
            .get(code)
            .and_then(|id| self.programs.get(id))
    }
    pub fn orgs(&self) -> impl Iterator<Item = &OrgInfo> {
        self.orgs.values()
    }
    pub fn programs(&self) -> impl Iterator<Item = &ProgramInfo> {
        self.programs.values()
    }

    /// The authority facts of org `id` (which must exist).
    pub fn facts(&self, id: i64) -> OrgFacts {
        let o = &self.orgs[&id];
        OrgFacts {
            code: o.code.clone(),
            role: o.role,
            parent: o
                .parent_id
                .and_then(|p| self.orgs.get(&p))
                .map(|p| p.code.clone()),
        }
    }

    /// Whether `id` is `ancestor` or lies below it.
    pub fn is_within(&self, id: i64, ancestor: i64) -> bool {
        let mut cur = Some(id);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            steps += 1;
            if steps > 64 {
                return false; // a cycle cannot be built through the API; refuse to loop anyway
            }
            cur = self.orgs.get(&c).and_then(|o| o.parent_id);
        }
        false
    }
}

/// Builds the API view of a stored row. References that do not resolve (a tampered row) are
/// shown as `?org<id>` / `?program<id>` rather than failing, so that verification can name
/// the broken entry instead of stopping.
fn view(
    dir: &Directory,
    row: LedgerEntryRow,
    nonce: &str,
    reversed_by: Option<i64>,
) -> AppResult<EntryView> {
    let recorded_at = format_micros(row.recorded_at);
    view_at(dir, row, nonce, reversed_by, recorded_at)
}

/// [`view`] with the entry's `recorded_at` already formatted (a batch's entries share it).
fn view_at(
    dir: &Directory,
    row: LedgerEntryRow,
    nonce: &str,
    reversed_by: Option<i64>,
    recorded_at: String,
) -> AppResult<EntryView> {
    let program = dir.program(row.program_id);
    let minor_units = program.map(|p| p.minor_units).unwrap_or(2);
    let code = |id: Option<i64>| {
        id.map(|i| {
            dir.org(i)
                .map(|o| o.code.clone())
                .unwrap_or_else(|| format!("?org{i}"))
        })
    };
    Ok(EntryView {
        seq: row.seq,
        kind: EntryKind::parse(&row.kind)
            .ok_or_else(|| AppError::internal(format!("entry #{} has unknown kind", row.seq)))?,
        program: program
            .map(|p| p.code.clone())
            .unwrap_or_else(|| format!("?program{}", row.program_id)),
        period: row.period,
        source: row.source_seq,
        from: code(row.from_org_id),
        to: code(row.to_org_id),
        recipient: row.to_recipient,
        amount: format_minor(row.amount_minor, minor_units),
        currency: program.map(|p| p.currency.clone()).unwrap_or_default(),
        reference: row.reference,
        memo: row.memo,
        value_date: row.value_date,
        author: code(Some(row.author_org_id)).unwrap_or_default(),
        batch: nonce.to_string(),
        recorded_at,
        prev_hash: hex_text(&row.prev_hash),
        hash: hex_text(&row.hash),
        reversed_by,
    })
}

/// Lowercase hex of `bytes`, written straight into the string (`hex::encode` goes through a
/// char iterator, which showed in `verify`'s profile).
fn hex_text(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut out).expect("twice the length");
    String::from_utf8(out).expect("hex is ASCII")
}

/// The submissions `ids`, with the signed manifest of those that uploaded a statement.
fn load_submissions(
    conn: &mut DbConn,
    dir: &Directory,
    nonces: &[String],
) -> AppResult<Vec<SubmissionView>> {
    let rows: Vec<(SubmissionRow, Option<String>)> = submissions::table
        .left_join(statements::table.on(statements::submission_id.eq(submissions::id)))
        .filter(submissions::nonce.eq_any(nonces))
        .select((SubmissionRow::as_select(), statements::manifest.nullable()))
        .order(submissions::id.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(s, manifest)| submission_view(dir, s, manifest))
        .collect())
}

pub(crate) fn submission_view(
    dir: &Directory,
    s: SubmissionRow,
    manifest: Option<String>,
) -> SubmissionView {
    SubmissionView {
        manifest,
        nonce: s.nonce,
        org: dir
            .org(s.org_id)
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        key_id: s.key_id,
        purpose: s.purpose,
        signed_at: s.signed_at,
        payload_sha256: hex::encode(&s.payload_sha256),
        signature: crate::crypto::b64(&s.signature),
        recorded_at: format_micros(s.recorded_at),
    }
}

/// Filters for listing entries. All optional; combined with AND.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntryFilter {
    /// Program code.
    pub program: Option<String>,
    /// Period, exactly as written on entries (`2026-11`).
    pub period: Option<String>,
    pub kind: Option<EntryKind>,
    /// Org code: entries it authored, sent or received.
    pub org: Option<String>,
    /// Recipient pseudonym.
    pub recipient: Option<String>,
    /// Cursor: only entries with a greater sequence number.
    pub after: Option<i64>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<i64>,
}

/// A page of entries, with the submissions (batches) they came in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryPage {
    pub entries: Vec<EntryView>,
    /// The signed batches the entries on this page belong to.
    pub submissions: Vec<SubmissionView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Lists entries matching `filter`, oldest first.
pub fn list(conn: &mut DbConn, dir: &Directory, filter: &EntryFilter) -> AppResult<EntryPage> {
    let limit = filter.limit.unwrap_or(100);
    if !(1..=PAGE_ENTRIES_MAX).contains(&limit) {
        return Err(AppError::new(
            crate::error::ErrorCode::InvalidQuery,
            format!("limit must be 1-{PAGE_ENTRIES_MAX}"),
        )
        .field("limit"));
    }
    let mut q = ledger_entries::table
        .left_join(ledger_funds::table.on(ledger_funds::seq.eq(ledger_entries::seq)))
        .inner_join(submissions::table)
        .select((
            LedgerEntryRow::as_select(),
            ledger_funds::reversed_by.nullable(),
            submissions::nonce,
        ))
        .order(ledger_entries::seq.asc())
        .limit(limit + 1)
        .into_boxed();
    let unknown = |what: &str, v: &str| {
        AppError::new(
            crate::error::ErrorCode::InvalidQuery,
            format!("unknown {what} {v}"),
        )
        .field(what.to_string())
    };
    if let Some(code) = &filter.program {
        let p = dir
            .program_by_code(code)
            .ok_or_else(|| unknown("program", code))?;
        q = q.filter(ledger_entries::program_id.eq(p.id));
    }
    if let Some(period) = &filter.period {
        q = q.filter(ledger_entries::period.eq(period.clone()));
    }
    if let Some(kind) = filter.kind {
        q = q.filter(ledger_entries::kind.eq(kind.as_str()));
    }
    if let Some(code) = &filter.org {
        let o = dir.org_by_code(code).ok_or_else(|| unknown("org", code))?;
        q = q.filter(
            ledger_entries::author_org_id
                .eq(o.id)
                .or(ledger_entries::to_org_id.eq(o.id))
                .or(ledger_entries::from_org_id.eq(o.id)),
        );
    }
    if let Some(r) = &filter.recipient {
        q = q.filter(ledger_entries::to_recipient.eq(r.clone()));
    }
    if let Some(after) = filter.after {
        q = q.filter(ledger_entries::seq.gt(after));
    }
    let mut rows: Vec<(LedgerEntryRow, Option<i64>, String)> = q.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|(r, _, _)| r.seq)
    } else {
        None
    };
    let mut nonces: Vec<String> = rows.iter().map(|(_, _, n)| n.clone()).collect();
    nonces.dedup();
    let mut last_time: (i64, String) = (i64::MIN, String::new());
    let entries = rows
        .into_iter()
        .map(|(row, reversed, nonce)| {
            if row.recorded_at != last_time.0 {
                last_time = (row.recorded_at, format_micros(row.recorded_at));
            }
            view_at(dir, row, &nonce, reversed, last_time.1.clone())
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok(EntryPage {
        entries,
        submissions: load_submissions(conn, dir, &nonces)?,
        next_cursor,
    })
}

/// One entry with its chain links.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryDetail {
    pub entry: EntryView,
    pub submission: SubmissionView,
    /// The entry before it in the chain (its `prev_hash` is that entry's hash).
    pub prev_seq: Option<i64>,
    /// The entry after it, if any.
    pub next_seq: Option<i64>,
    /// Entries that draw on or reverse this one.
    pub children: Vec<i64>,
    /// Amount still available to draw on (budgets and allocations).
    pub remaining: Option<String>,
}

/// Reads entry `seq` with its links.
pub fn detail(conn: &mut DbConn, dir: &Directory, seq: i64) -> AppResult<EntryDetail> {
    type Row = (LedgerEntryRow, Option<(i64, Option<i64>)>, SubmissionRow);
    let found: Option<Row> = ledger_entries::table
        .left_join(ledger_funds::table.on(ledger_funds::seq.eq(ledger_entries::seq)))
        .inner_join(submissions::table)
        .filter(ledger_entries::seq.eq(seq))
        .select((
            LedgerEntryRow::as_select(),
            (ledger_funds::remaining_minor, ledger_funds::reversed_by).nullable(),
            SubmissionRow::as_select(),
        ))
        .first(conn)
        .optional()?;
    let (row, funds, sub) = found.ok_or_else(|| AppError::not_found(format!("entry #{seq}")))?;
    let minor_units = dir
        .program(row.program_id)
        .map(|p| p.minor_units)
        .unwrap_or(2);
    let kind = EntryKind::parse(&row.kind);
    let remaining = match (funds, kind) {
        (Some((r, _)), Some(k)) if k.is_drawable() => Some(format_minor(r, minor_units)),
        _ => None,
    };
    let children: Vec<i64> = ledger_entries::table
        .filter(ledger_entries::source_seq.eq(seq))
        .select(ledger_entries::seq)
        .order(ledger_entries::seq.asc())
        .limit(PAGE_ENTRIES_MAX)
        .load(conn)?;
    let next: Option<i64> = ledger_entries::table
        .filter(ledger_entries::seq.eq(seq + 1))
        .select(ledger_entries::seq)
        .first(conn)
        .optional()?;
    let entry = view(dir, row, &sub.nonce, funds.and_then(|(_, r)| r))?;
    Ok(EntryDetail {
        prev_seq: (seq > 1).then_some(seq - 1),
        next_seq: next,
        children,
        remaining,
        submission: load_submissions(conn, dir, std::slice::from_ref(&sub.nonce))?
            .pop()
            .ok_or_else(|| AppError::internal("an entry's submission vanished"))?,
        entry,
    })
}

/// The head of the chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerHead {
    /// Sequence number of the last entry (0 for an empty ledger).
    pub seq: i64,
    /// Its hash (64 zeros for an empty ledger).
    pub hash: String,
}

pub fn head(conn: &mut DbConn) -> AppResult<LedgerHead> {
    let h: Option<(i64, Vec<u8>)> = ledger_entries::table
        .order(ledger_entries::seq.desc())
        .select((ledger_entries::seq, ledger_entries::hash))
        .first(conn)
        .optional()?;
    Ok(match h {
        Some((seq, hash)) => LedgerHead {
            seq,
            hash: hex::encode(hash),
        },
        None => LedgerHead {
            seq: 0,
            hash: hex::encode(super::GENESIS_HASH),
        },
    })
}

/// An org's money in one program, as the ledger has it now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Balance {
    pub org: String,
    pub program: String,
    pub currency: String,
    /// Budgets and allocations it received (not reversed).
    pub received: String,
    /// Allocations it passed to orgs below it.
    pub passed_down: String,
    /// Disbursements it paid to recipients.
    pub disbursed: String,
    /// Payments its bank sent back (`return` entries): held again.
    pub returned: String,
    /// What it still holds: received - passed_down - disbursed + returned.
    pub held: String,
}

/// Balances for every (org, program) with any money, optionally narrowed.
pub fn balances(
    conn: &mut DbConn,
    dir: &Directory,
    program: Option<&str>,
    org: Option<&str>,
) -> AppResult<Vec<Balance>> {
    let program_id = match program {
        Some(code) => Some(
            dir.program_by_code(code)
                .ok_or_else(|| {
                    AppError::new(
                        crate::error::ErrorCode::InvalidQuery,
                        format!("unknown program {code}"),
                    )
                    .field("program")
                })?
                .id,
        ),
        None => None,
    };
    let org_id = match org {
        Some(code) => Some(
            dir.org_by_code(code)
                .ok_or_else(|| {
                    AppError::new(
                        crate::error::ErrorCode::InvalidQuery,
                        format!("unknown org {code}"),
                    )
                    .field("org")
                })?
                .id,
        ),
        None => None,
    };
    // (program, org) -> [received, passed_down, disbursed, held, returned]
    let mut sums: std::collections::BTreeMap<(i64, i64), [i64; 5]> = Default::default();
    // Payments have a funds row only once reversed; no row: not reversed.
    let mut q = ledger_entries::table
        .left_join(ledger_funds::table.on(ledger_funds::seq.eq(ledger_entries::seq)))
        .filter(ledger_funds::reversed_by.is_null())
        .filter(ledger_entries::kind.eq_any(["budget", "allocation", "disbursement", "return"]))
        .select((
            ledger_entries::program_id,
            ledger_entries::kind,
            ledger_entries::to_org_id,
            ledger_entries::author_org_id,
            ledger_entries::amount_minor,
            ledger_funds::remaining_minor.nullable(),
        ))
        .into_boxed();
    if let Some(p) = program_id {
        q = q.filter(ledger_entries::program_id.eq(p));
    }
    if let Some(o) = org_id {
        q = q.filter(
            ledger_entries::to_org_id
                .eq(o)
                .or(ledger_entries::author_org_id.eq(o)),
        );
    }
    // (program, kind, to, author, amount, remaining)
    type Row = (i64, String, Option<i64>, i64, i64, Option<i64>);
    let rows: Vec<Row> = q.load(conn)?;
    for (program, kind, to, author, amount, remaining) in rows {
        let remaining = remaining.unwrap_or(amount);
        match kind.as_str() {
            "disbursement" => sums.entry((program, author)).or_default()[2] += amount,
            "return" => sums.entry((program, author)).or_default()[4] += amount,
            _ => {
                if let Some(to) = to {
                    let s = sums.entry((program, to)).or_default();
                    s[0] += amount;
                    s[3] += remaining;
                }
                if kind == "allocation" {
                    sums.entry((program, author)).or_default()[1] += amount;
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((program, org), [received, passed, disbursed, held, returned]) in sums {
        if org_id.is_some_and(|o| o != org) {
            continue;
        }
        // The derived funds table and the entries must agree; if not, say so loudly.
        if held != received - passed - disbursed + returned {
            return Err(AppError::internal(format!(
                "balance of org id {org} in program id {program} does not add up; run `fundtrail verify`"
            )));
        }
        let p = dir
            .program(program)
            .ok_or_else(|| AppError::internal("unknown program"))?;
        out.push(Balance {
            org: dir.org(org).map(|o| o.code.clone()).unwrap_or_default(),
            program: p.code.clone(),
            currency: p.currency.clone(),
            received: format_minor(received, p.minor_units),
            passed_down: format_minor(passed, p.minor_units),
            disbursed: format_minor(disbursed, p.minor_units),
            returned: format_minor(returned, p.minor_units),
            held: format_minor(held, p.minor_units),
        });
    }
    Ok(out)
}
