//! Computes a reconciliation report from a database: one pass over the ledger entries in scope,
//! one over the bank rows, the registry and the complaints, all held in compact arrays; then
//! every rule, the funnel and its checks. Reads only: it never writes and needs no keys, so an
//! inspector's copy of the database file gives the same report as the server.
//!
//! Dates decide, not clocks: an entry, bank row or complaint dated after `as_of` does not exist
//! for the report, and ages are `as_of` minus value dates.

use super::report::*;
use super::tolerance_minor;
use crate::db::DbConn;
use crate::domain::{parse_date, EntryKind, Period};
use crate::error::{AppError, AppResult};
use crate::ledger::read::{head, Directory};
use crate::ledger::verify::{verify_upto, DbCopy, VerifyReport};
use crate::money::format_minor;
use crate::statements::currency_minor_units;
use chrono::NaiveDate;
use diesel::prelude::*;
use fundtrail_schema::schema::{
    bank_accounts, bank_rows, complaints, ledger_entries, recipients, statement_sections,
    statements,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};

/// Stages reported to the progress callback, in order.
pub const STAGES: [&str; 5] = ["registry", "ledger", "bank", "integrity", "rules"];

/// Most ledger entries a finding's evidence lists (a shared account can gather thousands).
pub const EVIDENCE_ENTRIES_MAX: usize = 1000;

const NONE: u32 = u32::MAX;

/// Progress: stage name, done, total (total 0 when unknown).
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// One ledger entry, as much as the rules need.
struct Entry {
    seq: i64,
    kind: EntryKind,
    program: i64,
    /// Index into `Engine::periods`.
    period: u32,
    in_period: bool,
    source: u32,
    to_org: Option<i64>,
    recipient: u32,
    amount: i64,
    author: i64,
    date: NaiveDate,
}

/// What happened to an entry later on (as of the report's date).
#[derive(Clone)]
struct After {
    reversed: bool,
    confirmation: u32,
    /// Returns recorded on this payment.
    returned: i64,
    /// Live draws on this budget or allocation.
    drawn: i64,
    /// Returns on payments drawn from this allocation (the money is back here).
    returned_here: i64,
}

impl Default for After {
    fn default() -> After {
        After {
            reversed: false,
            confirmation: NONE,
            returned: 0,
            drawn: 0,
            returned_here: 0,
        }
    }
}

/// A registered recipient, compactly (a province has millions): the pseudonym lives only as
/// the key of `Engine::recipient_ids`.
struct Recipient {
    /// `active`, `suspended` or `deceased` (the registry's words, static).
    status: &'static str,
    status_date: Option<NaiveDate>,
    /// The keyed account tag, decoded from its 32 hex digits.
    account_tag: [u8; 16],
    entitlement_minor: Option<i64>,
}

/// A short text read straight from SQLite's row buffer, without a heap allocation per value
/// (texts longer than the inline buffer, which the rules never meet, spill to the heap).
#[derive(Clone, diesel::deserialize::FromSqlRow)]
enum Short {
    Inline { len: u8, buf: [u8; 31] },
    Heap(Box<str>),
}

impl Short {
    fn new(text: &str) -> Short {
        let b = text.as_bytes();
        if b.len() <= 31 {
            let mut buf = [0u8; 31];
            buf[..b.len()].copy_from_slice(b);
            Short::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            Short::Heap(text.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Built from a `&str` cut at its own length: always whole characters.
            Short::Inline { len, buf } => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            Short::Heap(s) => s,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Short::Inline { len, buf } => &buf[..*len as usize],
            Short::Heap(s) => s.as_bytes(),
        }
    }
}

impl PartialEq for Short {
    fn eq(&self, other: &Short) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Short {}

impl std::hash::Hash for Short {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes())
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for Short {
    fn from_sql(
        mut value: diesel::sqlite::SqliteValue<'_, '_, '_>,
    ) -> diesel::deserialize::Result<Short> {
        Ok(Short::new(value.read_text()))
    }
}

/// A quick hasher for the registry's pseudonyms (a million lookups twice over): eight bytes a
/// step, seeded per map from the standard library's random keys.
#[derive(Clone)]
struct QuickState(u64);

impl Default for QuickState {
    fn default() -> QuickState {
        use std::hash::BuildHasher;
        QuickState(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }
}

impl std::hash::BuildHasher for QuickState {
    type Hasher = QuickHasher;
    fn build_hasher(&self) -> QuickHasher {
        QuickHasher(self.0)
    }
}

struct QuickHasher(u64);

const QUICK_K: u64 = 0x9e37_79b9_7f4a_7c15;

impl QuickHasher {
    fn add(&mut self, word: u64) {
        let x = u128::from(self.0 ^ word) * u128::from(QUICK_K);
        self.0 = (x as u64) ^ ((x >> 64) as u64);
    }
}

impl std::hash::Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n)
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A keyed account tag as bytes (an unreadable one never equals a registered one).
fn tag_bytes(hex_text: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

struct BankRow {
    id: i64,
    account_org: i64,
    currency: String,
    date: NaiveDate,
    amount: i64,
    flagged_return: bool,
}

/// Per (program, org) sums, in minor units.
#[derive(Default, Clone, Copy)]
struct Flows {
    received: i64,
    passed_down: i64,
    disbursed: i64,
    confirmed: i64,
    returned: i64,
    unexplained: i64,
    /// Allocations this node received from its parent in the funnel.
    from_parent: i64,
}

struct Scope {
    program_ids: Vec<i64>,
    period: Option<Period>,
    period_dates: Option<(NaiveDate, NaiveDate)>,
    root: Option<i64>,
    as_of: NaiveDate,
}

/// Builds the report for `params` (already resolved) from the database behind `conn`, inside
/// one read transaction: every query sees the same state, whatever is appended meanwhile.
pub fn run(conn: &mut DbConn, params: &Params, progress: Progress) -> AppResult<Report> {
    conn.transaction(|conn| run_in(conn, params, progress))
}

fn run_in(conn: &mut DbConn, params: &Params, progress: Progress) -> AppResult<Report> {
    let dir = Directory::load(conn)?;
    let scope = scope(&dir, params)?;
    let state_head = head(conn)?;

    let mut engine = Engine::new(&dir, params, &scope);
    // The whole-chain check runs beside the rest on a second connection to the same file (it
    // is the longest part; two cores halve the wait), up to the head this transaction sees.
    let file = database_file(conn)?;
    let checked = AtomicI64::new(0);
    let head_seq = state_head.seq;
    let (loaded, integrity) = std::thread::scope(|s| {
        let verifier = file.as_ref().map(|path| {
            let checked = &checked;
            s.spawn(move || -> AppResult<VerifyReport> {
                let mut other = crate::db::connect(path)?;
                other.transaction(|c| {
                    verify_upto(&mut DbCopy::new(c), head_seq, &mut |n| {
                        checked.store(n, Ordering::Relaxed)
                    })
                })
            })
        });
        let loaded = (|| -> AppResult<(i64, i64)> {
            progress(STAGES[0], 0, 0);
            engine.load_registry(conn)?;
            progress(STAGES[1], 0, head_seq as u64);
            engine.load_ledger(conn, head_seq, progress)?;
            progress(STAGES[2], 0, 0);
            let bank_rows = engine.load_bank(conn)?;
            Ok((bank_rows, engine.load_complaints(conn)?))
        })();
        let integrity = match verifier {
            Some(handle) => {
                while !handle.is_finished() {
                    progress(
                        STAGES[3],
                        checked.load(Ordering::Relaxed) as u64,
                        head_seq as u64,
                    );
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                handle
                    .join()
                    .unwrap_or_else(|_| Err(AppError::internal("the chain check panicked")))
            }
            // An in-memory database has no second connection: check on this one.
            None => verify_upto(&mut DbCopy::new(conn), head_seq, &mut |n| {
                progress(STAGES[3], n as u64, head_seq as u64)
            }),
        };
        (loaded, integrity)
    });
    let (bank_rows_total, complaints_total) = loaded?;
    let integrity = integrity?;
    if integrity.ok() && integrity.head_seq != head_seq {
        return Err(AppError::internal(format!(
            "the chain check covered #{} of #{head_seq}",
            integrity.head_seq
        )));
    }
    progress(STAGES[4], 0, 0);
    engine.integrity = integrity.failure;
    let mut report = engine.compute(conn)?;
    report.ledger_state = LedgerState {
        seq: state_head.seq,
        head_hash: state_head.hash,
        bank_rows: bank_rows_total,
        complaints: complaints_total,
    };
    Ok(report)
}

/// The file behind an SQLite connection (None for an in-memory database).
fn database_file(conn: &mut DbConn) -> AppResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Attached {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        file: String,
    }
    let list: Vec<Attached> = diesel::sql_query("PRAGMA database_list").load(conn)?;
    Ok(list
        .into_iter()
        .find(|a| a.name == "main")
        .map(|a| a.file)
        .filter(|f| !f.is_empty()))
}

fn scope(dir: &Directory, params: &Params) -> AppResult<Scope> {
    let mut program_ids: Vec<i64> = match &params.program {
        Some(code) => vec![
            dir.program_by_code(code)
                .ok_or_else(|| AppError::not_found(format!("program {code}")))?
                .id,
        ],
        None => dir.programs().map(|p| p.id).collect(),
    };
    program_ids.sort_unstable();
    let period: Option<Period> = params
        .period
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| AppError::invalid("period", e))?;
    let root = match &params.org {
        Some(code) => Some(
            dir.org_by_code(code)
                .ok_or_else(|| AppError::not_found(format!("org {code}")))?
                .id,
        ),
        None => None,
    };
    let as_of = parse_date(&params.as_of)
        .ok_or_else(|| AppError::invalid("as_of", "as_of is not a date"))?;
    Ok(Scope {
        program_ids,
        period_dates: period.as_ref().map(period_dates),
        period,
        root,
        as_of,
    })
}

/// First and last day of a period.
fn period_dates(p: &Period) -> (NaiveDate, NaiveDate) {
    let (year, first, last) = match *p {
        Period::Year(y) => (y, 1, 12),
        Period::Quarter(y, q) => (y, (q - 1) * 3 + 1, q * 3),
        Period::Month(y, m) => (y, m, m),
    };
    let start = NaiveDate::from_ymd_opt(year, first, 1).expect("valid period");
    let end = if last == 12 {
        NaiveDate::from_ymd_opt(year, 12, 31)
    } else {
        NaiveDate::from_ymd_opt(year, last + 1, 1).and_then(|d| d.pred_opt())
    }
    .expect("valid period");
    (start, end)
}

/// Whether two periods share any month.
fn overlaps(a: &Period, b: &Period) -> bool {
    let (a0, a1) = period_dates(a);
    let (b0, b1) = period_dates(b);
    a0 <= b1 && b0 <= a1
}

struct Engine<'a> {
    dir: &'a Directory,
    params: &'a Params,
    scope: &'a Scope,
    /// Orgs in the subtree (all orgs when no root is given).
    in_tree: HashMap<i64, bool>,
    entries: Vec<Entry>,
    after: Vec<After>,
    /// seq → index in `entries` (NONE when not loaded).
    by_seq: Vec<u32>,
    /// Period texts met on the ledger, and whether each overlaps the scope's period.
    periods: Vec<(String, bool)>,
    recipients: Vec<Recipient>,
    recipient_ids: HashMap<Short, u32, QuickState>,
    /// Unknown pseudonyms met on the ledger (ghosts the registry does not know).
    unknown_recipients: Vec<String>,
    /// Entry index → id of the bank row behind it (0: none), for confirmations.
    confirmation_row: Vec<i64>,
    /// Confirmations whose bank row credited an account other than the registered one.
    account_differs: std::collections::HashSet<u32>,
    bank_unmatched: Vec<BankRow>,
    /// Statement sections of the tree's accounts (sorted by `gaps::find`), each with what a
    /// finding shows of it and the account's org and currency.
    sections: Vec<super::gaps::Section>,
    section_info: HashMap<i64, (StatementEvidence, i64, String)>,
    /// Where consecutive `sections` do not join.
    gaps: Vec<super::gaps::Gap>,
    /// (complaint id, payment entry index, kind, amount received, filed on).
    complaints: Vec<(i64, u32, String, Option<i64>, NaiveDate)>,
    integrity: Option<crate::ledger::verify::Failure>,
    /// `amount_tolerance` in each program's minor units.
    tolerance: HashMap<i64, i64>,
}

impl<'a> Engine<'a> {
    fn new(dir: &'a Directory, params: &'a Params, scope: &'a Scope) -> Engine<'a> {
        let in_tree = dir
            .orgs()
            .map(|o| {
                (
                    o.id,
                    scope.root.is_none_or(|root| dir.is_within(o.id, root)),
                )
            })
            .collect();
        Engine {
            dir,
            params,
            scope,
            in_tree,
            entries: Vec::new(),
            after: Vec::new(),
            by_seq: Vec::new(),
            periods: Vec::new(),
            recipients: Vec::new(),
            recipient_ids: HashMap::default(),
            unknown_recipients: Vec::new(),
            confirmation_row: Vec::new(),
            account_differs: Default::default(),
            bank_unmatched: Vec::new(),
            sections: Vec::new(),
            section_info: HashMap::new(),
            gaps: Vec::new(),
            complaints: Vec::new(),
            integrity: None,
            tolerance: dir
                .programs()
                .map(|p| {
                    (
                        p.id,
                        tolerance_minor(&params.amount_tolerance, p.minor_units),
                    )
                })
                .collect(),
        }
    }

    fn tree(&self, org: i64) -> bool {
        self.in_tree.get(&org).copied().unwrap_or(false)
    }

    fn load_registry(&mut self, conn: &mut DbConn) -> AppResult<()> {
        // Straight on SQLite: its rows hand out texts by reference (see `Short`).
        let DbConn::Sqlite(conn) = conn;
        // Room for everyone at once (ids are dense): no rehashing a million keys as it grows.
        let max_id: Option<i64> = recipients::table
            .select(diesel::dsl::max(recipients::id))
            .first(conn)?;
        let room = max_id.unwrap_or(0).clamp(0, 1 << 26) as usize;
        self.recipient_ids.reserve(room);
        self.recipients.reserve(room);
        let rows = recipients::table
            .select((
                recipients::pseudonym,
                recipients::status,
                recipients::status_date,
                recipients::account_tag,
                recipients::entitlement_minor,
            ))
            .order(recipients::id)
            .load_iter::<(Short, Short, Option<Short>, Short, Option<i64>), diesel::connection::DefaultLoadingMode>(conn)?;
        for row in rows {
            let (pseudonym, status, status_date, account_tag, entitlement_minor) = row?;
            let id = self.recipients.len() as u32;
            self.recipient_ids.insert(pseudonym, id);
            self.recipients.push(Recipient {
                status: match status.as_str() {
                    "deceased" => "deceased",
                    "suspended" => "suspended",
                    _ => "active",
                },
                status_date: status_date.as_ref().and_then(|d| parse_date(d.as_str())),
                account_tag: tag_bytes(account_tag.as_str()).unwrap_or([0xff; 16]),
                entitlement_minor,
            });
        }
        Ok(())
    }

    fn load_ledger(
        &mut self,
        conn: &mut DbConn,
        head_seq: i64,
        progress: Progress,
    ) -> AppResult<()> {
        let DbConn::Sqlite(conn) = conn;
        self.by_seq = vec![NONE; head_seq as usize + 1];
        self.entries.reserve(head_seq.max(0) as usize);
        let mut period_ids: HashMap<Short, u32> = HashMap::new();
        let mut last_date = (Short::new(""), NaiveDate::MIN);
        // In seq (rowid) order over the table itself: filtering on the program through its
        // index would fetch each row by seq and sort them all again. The `+` keeps SQLite off
        // that index; the ids are integers, written out as such.
        let programs = self
            .scope
            .program_ids
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let rows = ledger_entries::table
            .filter(ledger_entries::seq.le(head_seq))
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                "+program_id IN ({programs})"
            )))
            .order(ledger_entries::seq)
            .select((
                ledger_entries::seq,
                ledger_entries::kind,
                ledger_entries::program_id,
                ledger_entries::period,
                ledger_entries::source_seq,
                ledger_entries::to_org_id,
                ledger_entries::to_recipient,
                ledger_entries::amount_minor,
                ledger_entries::author_org_id,
                ledger_entries::value_date,
            ))
            .load_iter::<(
                i64,
                Short,
                i64,
                Short,
                Option<i64>,
                Option<i64>,
                Option<Short>,
                i64,
                i64,
                Short,
            ), diesel::connection::DefaultLoadingMode>(conn)?;
        for row in rows {
            let (seq, kind, program, period, source, to_org, recipient, amount, author, date) =
                row?;
            // Entries come in batches that share a date: parse each new date once.
            let date = if date == last_date.0 {
                last_date.1
            } else {
                let parsed = parse_date(date.as_str()).ok_or_else(|| {
                    AppError::internal(format!("entry #{seq} has a bad value date"))
                })?;
                last_date = (date, parsed);
                parsed
            };
            if date > self.scope.as_of {
                continue; // not yet, as of the report's date
            }
            let kind = EntryKind::parse(kind.as_str())
                .ok_or_else(|| AppError::internal(format!("entry #{seq} has an unknown kind")))?;
            let period = match period_ids.get(&period) {
                Some(id) => *id,
                None => {
                    let v = self.scope.period.as_ref().is_none_or(|scope| {
                        period
                            .as_str()
                            .parse::<Period>()
                            .is_ok_and(|p| overlaps(scope, &p))
                    });
                    let id = self.periods.len() as u32;
                    self.periods.push((period.as_str().to_string(), v));
                    period_ids.insert(period, id);
                    id
                }
            };
            let in_period = self.periods[period as usize].1;
            let source = source
                .and_then(|s| self.by_seq.get(s as usize).copied())
                .unwrap_or(NONE);
            let recipient = match recipient {
                None => NONE,
                Some(p) => match self.recipient_ids.get(&p) {
                    Some(id) => *id,
                    None => {
                        // Not in the registry: keep it apart so the ghost finding can name it.
                        let id = NONE - 1 - self.unknown_recipients.len() as u32;
                        self.unknown_recipients.push(p.as_str().to_string());
                        id
                    }
                },
            };
            let idx = self.entries.len() as u32;
            self.by_seq[seq as usize] = idx;
            self.entries.push(Entry {
                seq,
                kind,
                program,
                period,
                in_period,
                source,
                to_org,
                recipient,
                amount,
                author,
                date,
            });
            if idx.is_multiple_of(65_536) {
                progress(STAGES[1], seq as u64, head_seq as u64);
            }
        }
        // What happened to each entry afterwards: reversals, confirmations, returns, draws.
        self.after = vec![After::default(); self.entries.len()];
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.source == NONE {
                continue;
            }
            let s = e.source as usize;
            match e.kind {
                EntryKind::Reversal => self.after[s].reversed = true,
                EntryKind::Confirmation if self.after[s].confirmation == NONE => {
                    self.after[s].confirmation = i as u32
                }
                EntryKind::Return => self.after[s].returned += e.amount,
                _ => {}
            }
        }
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.source == NONE || self.after[i].reversed {
                continue;
            }
            let s = e.source as usize;
            match e.kind {
                EntryKind::Allocation | EntryKind::Disbursement => self.after[s].drawn += e.amount,
                EntryKind::Return => {
                    let from = self.entries[s].source;
                    if from != NONE {
                        self.after[from as usize].returned_here += e.amount;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn load_bank(&mut self, conn: &mut DbConn) -> AppResult<i64> {
        let DbConn::Sqlite(conn) = conn;
        let total: i64 = bank_rows::table.count().get_result(conn)?;
        self.confirmation_row = vec![0; self.entries.len()];
        let accounts: HashMap<i64, (i64, String)> = bank_accounts::table
            .select((
                bank_accounts::id,
                bank_accounts::org_id,
                bank_accounts::currency,
            ))
            .load::<(i64, i64, String)>(conn)?
            .into_iter()
            .map(|(id, org, cur)| (id, (org, cur)))
            .collect();
        let rows = bank_rows::table
            .filter(bank_rows::status.eq_any(["confirmed", "unmatched"]))
            .order(bank_rows::id)
            .select((
                bank_rows::id,
                bank_rows::account_id,
                bank_rows::booking_date,
                bank_rows::amount_minor,
                bank_rows::counterparty_account_tag,
                bank_rows::status,
                bank_rows::entry_seq,
                bank_rows::return_reason
                    .is_not_null()
                    .or(bank_rows::reversal),
            ))
            .load_iter::<(
                i64,
                i64,
                Short,
                i64,
                Option<Short>,
                Short,
                Option<i64>,
                bool,
            ), diesel::connection::DefaultLoadingMode>(conn)?;
        for row in rows {
            let (id, account, date, amount, tag, status, entry_seq, flagged_return) = row?;
            if status.as_bytes() == b"confirmed" {
                let Some(idx) = entry_seq
                    .and_then(|s| self.by_seq.get(s as usize).copied())
                    .filter(|i| *i != NONE)
                else {
                    continue; // another program's payment, or dated after as_of
                };
                self.confirmation_row[idx as usize] = id;
                let registered = self
                    .recipients
                    .get(self.entries[idx as usize].recipient as usize)
                    .map(|r| r.account_tag);
                if let (Some(tag), Some(registered)) = (tag, registered) {
                    if tag_bytes(tag.as_str()) != Some(registered) {
                        self.account_differs.insert(idx);
                    }
                }
                continue;
            }
            let date = parse_date(date.as_str())
                .ok_or_else(|| AppError::internal(format!("bank row {id} has a bad date")))?;
            if date > self.scope.as_of
                || self
                    .scope
                    .period_dates
                    .is_some_and(|(from, to)| date < from || date > to)
            {
                continue;
            }
            let Some((org, currency)) = accounts.get(&account) else {
                continue;
            };
            if !self.tree(*org) {
                continue;
            }
            self.bank_unmatched.push(BankRow {
                id,
                account_org: *org,
                currency: currency.clone(),
                date,
                amount,
                flagged_return,
            });
        }
        self.load_sections(conn, &accounts)?;
        Ok(total)
    }

    /// The statement sections of the tree's accounts that exist as of `as_of` (a section is
    /// known once the day it starts on has come); sections without dates cannot be placed,
    /// and camt.054 notifications are no statements.
    fn load_sections(
        &mut self,
        conn: &mut diesel::SqliteConnection,
        accounts: &HashMap<i64, (i64, String)>,
    ) -> AppResult<()> {
        let account_names: HashMap<i64, String> = bank_accounts::table
            .select((bank_accounts::id, bank_accounts::account))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect();
        let rows = statement_sections::table
            .inner_join(statements::table)
            // camt.054 notifications report single bookings, not an account's whole days:
            // days between them are not gaps.
            .filter(statements::format.ne("camt054"))
            .filter(statement_sections::from_date.is_not_null())
            .filter(statement_sections::to_date.is_not_null())
            .order(statement_sections::id)
            .select((
                statement_sections::id,
                statement_sections::statement_id,
                statements::file_name,
                statement_sections::location,
                statement_sections::account_id,
                statement_sections::bank_statement_id,
                statement_sections::from_date,
                statement_sections::to_date,
                statement_sections::opening_minor,
                statement_sections::closing_minor,
            ))
            .load::<SectionRow>(conn)?;
        for r in rows {
            let Some((org, currency)) = accounts.get(&r.account_id) else {
                continue;
            };
            let (Some(from), Some(to)) = (
                r.from_date.as_deref().and_then(parse_date),
                r.to_date.as_deref().and_then(parse_date),
            ) else {
                continue;
            };
            if !self.tree(*org) || from > self.scope.as_of || to < from {
                continue;
            }
            let units = currency_minor_units(currency);
            self.sections.push(super::gaps::Section {
                account_id: r.account_id,
                statement_id: r.statement_id,
                id: r.id,
                from,
                to,
                opening_minor: r.opening_minor,
                closing_minor: r.closing_minor,
            });
            let evidence = StatementEvidence {
                statement_id: r.statement_id,
                file_name: r.file_name,
                location: r.location,
                account: account_names
                    .get(&r.account_id)
                    .cloned()
                    .unwrap_or_default(),
                bank_statement_id: r.bank_statement_id,
                from_date: from.to_string(),
                to_date: to.to_string(),
                opening_balance: r.opening_minor.map(|m| format_minor(m, units)),
                closing_balance: r.closing_minor.map(|m| format_minor(m, units)),
            };
            self.section_info
                .insert(r.id, (evidence, *org, currency.clone()));
        }
        // Where they do not join; the rows of a day are read only for the rare section that
        // the next one starts on the last day of.
        let mut failed: Option<diesel::result::Error> = None;
        let mut last_day = |section: &super::gaps::Section| -> Option<i64> {
            // One day of one statement: a handful of rows, summed here (SQLite's SUM is Numeric).
            let amounts = bank_rows::table
                .filter(bank_rows::statement_id.eq(section.statement_id))
                .filter(bank_rows::account_id.eq(section.account_id))
                .filter(bank_rows::booking_date.eq(section.to.to_string()))
                .select(bank_rows::amount_minor)
                .load::<i64>(conn);
            match amounts {
                Ok(a) => a.iter().try_fold(0i64, |sum, x| sum.checked_add(*x)),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        };
        self.gaps = super::gaps::find(&mut self.sections, &mut last_day);
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn load_complaints(&mut self, conn: &mut DbConn) -> AppResult<i64> {
        let rows: Vec<(i64, i64, String, Option<i64>, i64)> = complaints::table
            .order(complaints::id)
            .select((
                complaints::id,
                complaints::payment_seq,
                complaints::kind,
                complaints::amount_received_minor,
                complaints::filed_at,
            ))
            .load(conn)?;
        let total = rows.len() as i64;
        for (id, seq, kind, received, filed_at) in rows {
            let filed_on = chrono::DateTime::from_timestamp_micros(filed_at)
                .map(|t| t.date_naive())
                .unwrap_or_default();
            if filed_on > self.scope.as_of {
                continue;
            }
            let idx = self.by_seq.get(seq as usize).copied().unwrap_or(NONE);
            if idx != NONE {
                self.complaints.push((id, idx, kind, received, filed_on));
            }
        }
        Ok(total)
    }

    /// A payment the report looks at: a live, in-scope disbursement of an org in the tree.
    fn payment_in_scope(&self, i: usize) -> bool {
        let e = &self.entries[i];
        e.kind == EntryKind::Disbursement
            && e.in_period
            && !self.after[i].reversed
            && self.tree(e.author)
    }

    fn compute(&self, conn: &mut DbConn) -> AppResult<Report> {
        let mut out: Vec<Pending> = Vec::new();
        let mut flows: BTreeMap<(i64, i64), Flows> = BTreeMap::new();
        let ages = |d: NaiveDate| (self.scope.as_of - d).num_days();
        let program_units = |id: i64| self.dir.program(id).map(|p| p.minor_units).unwrap_or(2);
        let tol = |program: i64| self.tolerance.get(&program).copied().unwrap_or(0);

        // Money moving down the tree.
        for (i, e) in self.entries.iter().enumerate() {
            if !e.in_period || self.after[i].reversed {
                continue;
            }
            match e.kind {
                EntryKind::Budget | EntryKind::Allocation => {
                    let to = e.to_org.unwrap_or(e.author);
                    if self.tree(to) {
                        let f = flows.entry((e.program, to)).or_default();
                        f.received += e.amount;
                        if e.kind == EntryKind::Allocation && self.tree(e.author) {
                            f.from_parent += e.amount;
                        }
                    }
                    if e.kind == EntryKind::Allocation && self.tree(e.author) {
                        flows.entry((e.program, e.author)).or_default().passed_down += e.amount;
                    }
                    // held_too_long: an allocation still (partly) here after the allowed days.
                    let remaining = e.amount - self.after[i].drawn + self.after[i].returned_here;
                    let age = ages(e.date);
                    if e.kind == EntryKind::Allocation
                        && self.tree(to)
                        && remaining > tol(e.program)
                        && age > self.params.hold_days_max
                    {
                        out.push(self.finding(
                            FindingType::HeldTooLong,
                            Severity::Medium,
                            i,
                            to,
                            remaining,
                            None,
                            Rule::new(
                                "held_too_long",
                                "hold_days_max",
                                self.params.hold_days_max,
                                age,
                            ),
                            format!(
                                "{} of this allocation is still held after {age} days",
                                self.money(e.program, remaining)
                            ),
                        ));
                    }
                }
                EntryKind::Disbursement if self.tree(e.author) => {
                    self.payment_rules(i, &mut flows, &mut out);
                }
                _ => {}
            }
        }

        // Same recipient paid twice for the same program and period. Sorting beats a map of
        // a million small lists: runs of equal keys are the groups, in seq order within each.
        let payments: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.payment_in_scope(i))
            .collect();
        // A payment the bank sent back whole reached nobody: paying again is no duplicate
        // (the ledger accepts it without a second-payment memo for the same reason).
        let mut paid: Vec<(i64, u32, u32, usize)> = payments
            .iter()
            .map(|&i| &self.entries[i])
            .zip(payments.iter())
            .filter(|(e, &i)| e.recipient != NONE && self.after[i].returned < e.amount)
            .map(|(e, &i)| (e.program, e.recipient, e.period, i))
            .collect();
        paid.sort_unstable();
        for group in paid.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 == b.2) {
            let Some(((_, _, _, first), rest)) = group.split_first() else {
                continue;
            };
            for &(_, _, _, i) in rest {
                let e = &self.entries[i];
                let mut f = self.finding(
                    FindingType::DuplicatePayment,
                    Severity::High,
                    i,
                    e.author,
                    e.amount,
                    Some(i),
                    Rule::plain("duplicate_payment", Some(group.len().to_string())),
                    format!("paid {} times for the same program and period", group.len()),
                );
                f.ledger.insert(0, *first);
                out.push(f);
            }
        }

        // Many recipients on one registered account.
        let mut on_account: Vec<(i64, [u8; 16], u32, usize)> = payments
            .iter()
            .filter_map(|&i| {
                let e = &self.entries[i];
                let r = self.recipients.get(e.recipient as usize)?;
                Some((e.program, r.account_tag, e.recipient, i))
            })
            .collect();
        on_account.sort_unstable();
        let max = self.params.recipients_per_account_max;
        for group in on_account.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let recipients_n = group.chunk_by(|a, b| a.2 == b.2).count() as i64;
            if recipients_n <= max {
                continue;
            }
            let mut paid_in: Vec<usize> = group.iter().map(|g| g.3).collect();
            paid_in.sort_unstable();
            let amount: i64 = paid_in.iter().map(|&i| self.entries[i].amount).sum();
            let org = self.common_org(paid_in.iter().map(|&i| self.entries[i].author));
            let mut f = self.finding(
                FindingType::SharedAccount,
                Severity::Medium,
                paid_in[0],
                org,
                amount,
                None,
                Rule::new(
                    "shared_account",
                    "recipients_per_account_max",
                    max,
                    recipients_n,
                ),
                format!("{recipients_n} recipients are paid into one bank account"),
            );
            f.program = group[0].0;
            f.ledger = paid_in.into_iter().take(EVIDENCE_ENTRIES_MAX).collect();
            out.push(f);
        }

        // The bank's rows with no ledger entry behind them, each under the program whose money
        // the account's org holds in scope (the first by code if several); an account whose
        // org has no money in scope is not this report's.
        let mut org_program: HashMap<i64, (String, i64)> = HashMap::new();
        for &(program, org) in flows.keys() {
            let code = self
                .dir
                .program(program)
                .map(|p| p.code.clone())
                .unwrap_or_default();
            match org_program.get(&org) {
                Some((c, _)) if *c <= code => {}
                _ => {
                    org_program.insert(org, (code, program));
                }
            }
        }
        for row in &self.bank_unmatched {
            let Some(&(_, program)) = org_program.get(&row.account_org) else {
                continue;
            };
            let (kind, severity, rule, detail) = if row.amount < 0 {
                (
                    FindingType::UnrecordedOutflow,
                    Severity::High,
                    "unrecorded_outflow",
                    "money left the program account with no ledger entry behind it",
                )
            } else if row.flagged_return {
                (
                    FindingType::ReturnedNotRecredited,
                    Severity::High,
                    "returned_not_recredited",
                    "the bank returned a payment and no return entry put it back on the ledger",
                )
            } else {
                continue; // an incoming transfer: not a leak
            };
            let units = currency_minor_units(&row.currency);
            let key = (program, row.account_org);
            flows.entry(key).or_default().unexplained += row.amount.abs();
            out.push(Pending {
                finding_type: kind,
                severity,
                program,
                period: None,
                org: row.account_org,
                amount_minor: row.amount.abs(),
                minor_units: units,
                currency: row.currency.clone(),
                payment: None,
                recipient: None,
                rule: Rule::plain(rule, None),
                detail: format!(
                    "{detail} ({} on {})",
                    format_minor(row.amount, units),
                    row.date
                ),
                ledger: Vec::new(),
                bank_rows: vec![row.id],
                complaints: Vec::new(),
                statements: Vec::new(),
            });
        }

        // Statements of one account that do not join (found while loading, `gaps`): a report
        // over a period takes the gaps whose later statement starts in it.
        for gap in &self.gaps {
            let (before, after) = (&self.sections[gap.before], &self.sections[gap.after]);
            if self
                .scope
                .period_dates
                .is_some_and(|(from, to)| after.from < from || after.from > to)
            {
                continue;
            }
            let (Some((first, org, currency)), Some((second, _, _))) = (
                self.section_info.get(&before.id),
                self.section_info.get(&after.id),
            ) else {
                continue;
            };
            let Some(&(_, program)) = org_program.get(org) else {
                continue;
            };
            let units = currency_minor_units(currency);
            let jump = gap.jump_minor.unwrap_or(0);
            let amount = i64::try_from(jump.unsigned_abs()).unwrap_or(i64::MAX);
            let unexplained = &mut flows.entry((program, *org)).or_default().unexplained;
            *unexplained = unexplained.saturating_add(amount);
            let balances = match gap.jump_minor {
                Some(j) => format!(
                    "the opening balance {} is {} {} the closing balance {} before it",
                    second.opening_balance.as_deref().unwrap_or("-"),
                    format_minor(amount, units),
                    if j < 0 { "below" } else { "above" },
                    first.closing_balance.as_deref().unwrap_or("-"),
                ),
                None => "no balance is stated to show nothing moved".to_string(),
            };
            let (rule, detail) = match gap.uncovered {
                Some((from, to)) => (
                    Rule::plain(
                        "statement_gap.uncovered_days",
                        Some(format!("{from}..{to}")),
                    ),
                    format!(
                        "no statement of account {} covers {from}..{to}, and {balances}",
                        first.account
                    ),
                ),
                None => (
                    Rule::plain(
                        "statement_gap.balance_jump",
                        Some(format_minor(jump, units)),
                    ),
                    format!(
                        "consecutive statements of account {} do not join: {balances}",
                        first.account
                    ),
                ),
            };
            out.push(Pending {
                finding_type: FindingType::StatementGap,
                severity: if amount > 0 {
                    Severity::High
                } else {
                    Severity::Medium
                },
                program,
                period: None,
                org: *org,
                amount_minor: amount,
                minor_units: units,
                currency: currency.clone(),
                payment: None,
                recipient: None,
                rule,
                detail,
                ledger: Vec::new(),
                bank_rows: Vec::new(),
                complaints: Vec::new(),
                statements: vec![first.clone(), second.clone()],
            });
        }

        // Citizens' complaints.
        for (id, idx, kind, received, filed_on) in &self.complaints {
            let i = *idx as usize;
            let e = &self.entries[i];
            if !(e.in_period && self.tree(e.author)) {
                continue;
            }
            let amount = match received {
                Some(r) if kind == "wrong_amount" => (e.amount - r).abs(),
                _ => e.amount,
            };
            let mut f = self.finding(
                FindingType::Complaint,
                Severity::Medium,
                i,
                e.author,
                amount,
                Some(i),
                Rule::plain(&format!("complaint.{kind}"), None),
                format!(
                    "the recipient reported {} on {filed_on}",
                    kind.replace('_', " ")
                ),
            );
            f.complaints.push(*id);
            out.push(f);
        }

        if let Some(failure) = &self.integrity {
            let idx = self
                .by_seq
                .get(failure.seq as usize)
                .copied()
                .unwrap_or(NONE);
            let rule = Rule::plain("integrity", Some(format!("#{}", failure.seq)));
            let detail = format!("entry #{}: {}", failure.seq, failure.reason);
            if idx != NONE {
                let e = &self.entries[idx as usize];
                let payment = (e.kind == EntryKind::Disbursement).then_some(idx as usize);
                out.push(self.finding(
                    FindingType::Integrity,
                    Severity::High,
                    idx as usize,
                    e.author,
                    e.amount,
                    payment,
                    rule,
                    detail,
                ));
            } else {
                // Outside the scope's programs, or not loadable at all: still the report's
                // first line, since nothing after a broken link can be trusted.
                let program = self.scope.program_ids.first().copied().unwrap_or(0);
                out.push(Pending {
                    finding_type: FindingType::Integrity,
                    severity: Severity::High,
                    program,
                    period: None,
                    org: self.scope.root.unwrap_or(0),
                    amount_minor: 0,
                    minor_units: program_units(program),
                    currency: self
                        .dir
                        .program(program)
                        .map(|p| p.currency.clone())
                        .unwrap_or_default(),
                    payment: None,
                    recipient: None,
                    rule,
                    detail,
                    ledger: Vec::new(),
                    bank_rows: Vec::new(),
                    complaints: Vec::new(),
                    statements: Vec::new(),
                });
            }
        }

        let mut finding_counts: HashMap<(i64, i64), i64> = HashMap::new();
        for p in &out {
            *finding_counts.entry((p.program, p.org)).or_default() += 1;
        }
        let (funnel, checks, summary) = self.funnel(&flows, &finding_counts, &out);
        let findings = self.finish_findings(conn, out)?;
        Ok(Report {
            report_version: REPORT_VERSION,
            ledger_state: LedgerState {
                seq: 0,
                head_hash: String::new(),
                bank_rows: 0,
                complaints: 0,
            },
            params: self.params.clone(),
            summary,
            funnel,
            checks,
            findings,
        })
    }

    /// The rules on one payment (`i`, a disbursement of an org in the tree), and its flows.
    fn payment_rules(
        &self,
        i: usize,
        flows: &mut BTreeMap<(i64, i64), Flows>,
        out: &mut Vec<Pending>,
    ) {
        let e = &self.entries[i];
        let after = &self.after[i];
        let units = self
            .dir
            .program(e.program)
            .map(|p| p.minor_units)
            .unwrap_or(2);
        let tol = self.tolerance.get(&e.program).copied().unwrap_or(0);
        let f = flows.entry((e.program, e.author)).or_default();
        f.disbursed += e.amount;
        f.returned += after.returned;
        let confirmation = (after.confirmation != NONE).then_some(after.confirmation as usize);
        if let Some(c) = confirmation {
            let confirmed = self.entries[c].amount;
            f.confirmed += confirmed;
            let diff = confirmed - e.amount;
            if diff.abs() > tol {
                f.unexplained += diff.abs();
                let mut finding = self.finding(
                    FindingType::AmountMismatch,
                    Severity::High,
                    i,
                    e.author,
                    diff.abs(),
                    Some(i),
                    Rule::new_text(
                        "amount_mismatch",
                        "amount_tolerance",
                        &self.params.amount_tolerance,
                        &format_minor(diff, units),
                    ),
                    format!(
                        "the bank moved {} for a payment of {}",
                        format_minor(confirmed, units),
                        format_minor(e.amount, units)
                    ),
                );
                finding.ledger.push(c);
                finding
                    .bank_rows
                    .extend(Some(self.confirmation_row[c]).filter(|r| *r != 0));
                out.push(finding);
            }
            // The bank credited an account other than the registered one.
            {
                if self.account_differs.contains(&(c as u32)) {
                    let mut finding = self.finding(
                        FindingType::AccountMismatch,
                        Severity::High,
                        i,
                        e.author,
                        confirmed,
                        Some(i),
                        Rule::plain("account_mismatch", None),
                        "the bank credited an account other than the recipient's registered one"
                            .into(),
                    );
                    finding.ledger.push(c);
                    finding.bank_rows.push(self.confirmation_row[c]);
                    out.push(finding);
                }
            }
        } else if after.returned == 0 {
            let age = (self.scope.as_of - e.date).num_days();
            if age > self.params.unconfirmed_days_max {
                f.unexplained += e.amount;
                out.push(self.finding(
                    FindingType::Unconfirmed,
                    Severity::Medium,
                    i,
                    e.author,
                    e.amount,
                    Some(i),
                    Rule::new(
                        "unconfirmed",
                        "unconfirmed_days_max",
                        self.params.unconfirmed_days_max,
                        age,
                    ),
                    format!("no bank confirmation {age} days after payment"),
                ));
            }
        }
        // Paid to someone the registry says was not payable at the time.
        match self.recipients.get(e.recipient as usize) {
            Some(r) => {
                let ghost = matches!(r.status, "deceased" | "suspended")
                    && r.status_date.is_none_or(|d| d <= e.date);
                if ghost {
                    out.push(self.finding(
                        FindingType::GhostRecipient,
                        Severity::High,
                        i,
                        e.author,
                        e.amount,
                        Some(i),
                        Rule::plain(
                            &format!("ghost_recipient.{}", r.status),
                            r.status_date.map(|d| d.to_string()),
                        ),
                        format!(
                            "paid on {} to a recipient {} since {}",
                            e.date,
                            r.status,
                            r.status_date.map(|d| d.to_string()).unwrap_or_default()
                        ),
                    ));
                }
                let expected = r
                    .entitlement_minor
                    .map(|m| rescale(m, 2, units))
                    .or_else(|| {
                        self.dir
                            .program(e.program)
                            .map(|p| p.standard_amount_minor)
                            .filter(|s| *s > 0)
                    });
                if let Some(expected) = expected {
                    let diff = e.amount - expected;
                    if diff.abs() > tol {
                        out.push(self.finding(
                            FindingType::EntitlementMismatch,
                            Severity::Medium,
                            i,
                            e.author,
                            diff.abs(),
                            Some(i),
                            Rule::new_text(
                                if r.entitlement_minor.is_some() {
                                    "entitlement_mismatch.recipient"
                                } else {
                                    "entitlement_mismatch.program_standard"
                                },
                                "amount_tolerance",
                                &self.params.amount_tolerance,
                                &format_minor(diff, units),
                            ),
                            format!(
                                "paid {} where the entitlement is {}",
                                format_minor(e.amount, units),
                                format_minor(expected, units)
                            ),
                        ));
                    }
                }
            }
            None if e.recipient != NONE => {
                out.push(self.finding(
                    FindingType::GhostRecipient,
                    Severity::High,
                    i,
                    e.author,
                    e.amount,
                    Some(i),
                    Rule::plain("ghost_recipient.unknown", None),
                    "paid to a pseudonym the registry does not know".into(),
                ));
            }
            None => {}
        }
    }

    /// The one org behind all of `orgs`, else their lowest common ancestor.
    fn common_org(&self, orgs: impl Iterator<Item = i64>) -> i64 {
        let orgs: BTreeSet<i64> = orgs.collect();
        let mut it = orgs.iter();
        let Some(&first) = it.next() else { return 0 };
        let mut candidate = Some(first);
        while let Some(c) = candidate {
            if orgs.iter().all(|o| self.dir.is_within(*o, c)) {
                return c;
            }
            candidate = self.dir.org(c).and_then(|o| o.parent_id);
        }
        first
    }

    fn money(&self, program: i64, minor: i64) -> String {
        let p = self.dir.program(program);
        format!(
            "{} {}",
            format_minor(minor, p.map(|p| p.minor_units).unwrap_or(2)),
            p.map(|p| p.currency.as_str()).unwrap_or("")
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        finding_type: FindingType,
        severity: Severity,
        entry: usize,
        org: i64,
        amount_minor: i64,
        payment: Option<usize>,
        rule: Rule,
        detail: String,
    ) -> Pending {
        let e = &self.entries[entry];
        let program = self.dir.program(e.program);
        let recipient = payment
            .map(|p| self.entries[p].recipient)
            .filter(|r| *r != NONE);
        Pending {
            finding_type,
            severity,
            program: e.program,
            period: None,
            org,
            amount_minor,
            minor_units: program.map(|p| p.minor_units).unwrap_or(2),
            currency: program.map(|p| p.currency.clone()).unwrap_or_default(),
            payment,
            recipient,
            rule,
            detail,
            ledger: vec![entry],
            bank_rows: Vec::new(),
            complaints: Vec::new(),
            statements: Vec::new(),
        }
    }

    /// Builds the funnel rows (tree order), its checks and the per-program summary.
    fn funnel(
        &self,
        flows: &BTreeMap<(i64, i64), Flows>,
        finding_counts: &HashMap<(i64, i64), i64>,
        findings: &[Pending],
    ) -> (Vec<FunnelNode>, Vec<FunnelCheck>, Vec<ProgramSummary>) {
        let mut nodes = Vec::new();
        let mut checks = Vec::new();
        let mut summary = Vec::new();
        let mut programs: Vec<&crate::ledger::read::ProgramInfo> = self
            .scope
            .program_ids
            .iter()
            .filter_map(|id| self.dir.program(*id))
            .collect();
        programs.sort_by(|a, b| a.code.cmp(&b.code));
        for program in programs {
            // Orgs with money in this program, plus their ancestors inside the scope.
            let mut members: BTreeSet<i64> = BTreeSet::new();
            for ((p, org), _) in flows.range((program.id, i64::MIN)..=(program.id, i64::MAX)) {
                let _ = p;
                let mut cur = Some(*org);
                while let Some(c) = cur.filter(|c| self.tree(*c)) {
                    if !members.insert(c) {
                        break;
                    }
                    cur = self.dir.org(c).and_then(|o| o.parent_id);
                }
            }
            for p in findings.iter().filter(|f| f.program == program.id) {
                if self.tree(p.org) {
                    members.insert(p.org);
                }
            }
            if members.is_empty() {
                continue;
            }
            let parent_in = |org: i64| {
                self.dir
                    .org(org)
                    .and_then(|o| o.parent_id)
                    .filter(|p| members.contains(p))
            };
            let mut children: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            let mut roots = Vec::new();
            for &m in &members {
                match parent_in(m) {
                    Some(p) => children.entry(p).or_default().push(m),
                    None => roots.push(m),
                }
            }
            let code = |id: i64| self.dir.org(id).map(|o| o.code.clone()).unwrap_or_default();
            for list in children.values_mut() {
                list.sort_by_key(|a| code(*a));
            }
            roots.sort_by_key(|a| code(*a));
            // Depth-first order; subtree totals from the leaves up.
            let mut order: Vec<(i64, u32)> = Vec::new();
            let mut stack: Vec<(i64, u32)> = roots.iter().rev().map(|r| (*r, 0)).collect();
            while let Some((org, depth)) = stack.pop() {
                order.push((org, depth));
                if let Some(cs) = children.get(&org) {
                    stack.extend(cs.iter().rev().map(|c| (*c, depth + 1)));
                }
            }
            let flow = |org: i64| flows.get(&(program.id, org)).copied().unwrap_or_default();
            let held = |f: &Flows| f.received + f.returned - f.passed_down - f.disbursed;
            // [disbursed, confirmed, returned, held, unexplained, external received]
            let mut sub: HashMap<i64, [i64; 6]> = HashMap::new();
            let mut tree_first_failure = None;
            let mut node_first_failure = None;
            for &(org, _) in order.iter().rev() {
                let f = flow(org);
                let mut s = [
                    f.disbursed,
                    f.confirmed,
                    f.returned,
                    held(&f),
                    f.unexplained,
                    f.received,
                ];
                let mut to_children = 0;
                for c in children.get(&org).into_iter().flatten() {
                    let cs = sub[c];
                    for k in 0..6 {
                        s[k] += cs[k];
                    }
                    to_children += flow(*c).from_parent;
                }
                // What entered this subtree from outside it: received here plus what entered
                // below, less what this node passed to its own children.
                s[5] -= to_children;
                if s[5] != s[0] - s[2] + s[3] && tree_first_failure.is_none() {
                    tree_first_failure = Some(code(org));
                }
                if held(&f) < 0 && node_first_failure.is_none() {
                    node_first_failure = Some(code(org));
                }
                sub.insert(org, s);
            }
            let units = program.minor_units;
            let m = |v: i64| format_minor(v, units);
            for &(org, depth) in &order {
                let f = flow(org);
                let s = sub[&org];
                let info = self.dir.org(org);
                nodes.push(FunnelNode {
                    program: program.code.clone(),
                    currency: program.currency.clone(),
                    org: code(org),
                    org_name: info.map(|o| o.name.clone()).unwrap_or_default(),
                    parent: parent_in(org).map(code),
                    depth,
                    received: m(f.received),
                    passed_down: m(f.passed_down),
                    disbursed: m(f.disbursed),
                    confirmed: m(f.confirmed),
                    returned: m(f.returned),
                    held: m(held(&f)),
                    unexplained: m(f.unexplained),
                    subtree: SubtreeTotals {
                        disbursed: m(s[0]),
                        confirmed: m(s[1]),
                        returned: m(s[2]),
                        held: m(s[3]),
                        unexplained: m(s[4]),
                    },
                    findings: finding_counts.get(&(program.id, org)).copied().unwrap_or(0),
                });
            }
            checks.push(FunnelCheck {
                program: program.code.clone(),
                check: "node".into(),
                checked: order.len() as i64,
                holds: node_first_failure.is_none(),
                first_failure: node_first_failure,
            });
            checks.push(FunnelCheck {
                program: program.code.clone(),
                check: "tree".into(),
                checked: order.len() as i64,
                holds: tree_first_failure.is_none(),
                first_failure: tree_first_failure,
            });
            let total = roots.iter().fold([0i64; 6], |mut acc, r| {
                for (a, v) in acc.iter_mut().zip(sub[r]) {
                    *a += v;
                }
                acc
            });
            let of_program: Vec<&Pending> = findings
                .iter()
                .filter(|f| f.program == program.id)
                .collect();
            summary.push(ProgramSummary {
                program: program.code.clone(),
                program_name: program.name.clone(),
                currency: program.currency.clone(),
                received: m(total[5]),
                disbursed: m(total[0]),
                confirmed: m(total[1]),
                returned: m(total[2]),
                held: m(total[3]),
                reached_recipients: m(total[1] - total[2]),
                unexplained: m(total[4]),
                findings: of_program.len() as i64,
                amount_at_risk: m(of_program.iter().map(|f| f.amount_minor).sum()),
            });
        }
        (nodes, checks, summary)
    }

    /// Sorts the findings and fills in their evidence (read once, for the few rows concerned).
    fn finish_findings(&self, conn: &mut DbConn, mut all: Vec<Pending>) -> AppResult<Vec<Finding>> {
        // Evidence lookups, batched.
        let mut seqs: BTreeSet<i64> = BTreeSet::new();
        let mut row_ids: BTreeSet<i64> = BTreeSet::new();
        let mut complaint_ids: BTreeSet<i64> = BTreeSet::new();
        for p in &all {
            seqs.extend(p.ledger.iter().map(|&i| self.entries[i].seq));
            row_ids.extend(p.bank_rows.iter().copied());
            complaint_ids.extend(p.complaints.iter().copied());
        }
        let mut entry_info: HashMap<i64, String> = HashMap::new();
        let seq_list: Vec<i64> = seqs.into_iter().collect();
        for chunk in seq_list.chunks(10_000) {
            let rows: Vec<(i64, String)> = ledger_entries::table
                .filter(ledger_entries::seq.eq_any(chunk))
                .select((ledger_entries::seq, ledger_entries::reference))
                .load(conn)?;
            entry_info.extend(rows);
        }
        let mut row_info: HashMap<i64, BankRowEvidence> = HashMap::new();
        let row_list: Vec<i64> = row_ids.into_iter().collect();
        for chunk in row_list.chunks(10_000) {
            let rows: Vec<EvidenceRow> = bank_rows::table
                .inner_join(statements::table)
                .filter(bank_rows::id.eq_any(chunk))
                .select((
                    bank_rows::id,
                    bank_rows::statement_id,
                    statements::file_name,
                    bank_rows::location,
                    bank_rows::amount_minor,
                    bank_rows::currency,
                    bank_rows::counterparty_name_masked,
                    bank_rows::counterparty_account_masked,
                    bank_rows::reference,
                    bank_rows::booking_date,
                ))
                .load(conn)?;
            for r in rows {
                row_info.insert(
                    r.id,
                    BankRowEvidence {
                        statement_id: r.statement_id,
                        file_name: r.file_name,
                        location: r.location,
                        booking_date: r.booking_date,
                        amount: format_minor(r.amount_minor, currency_minor_units(&r.currency)),
                        counterparty_name: r.counterparty_name,
                        counterparty_account: r.counterparty_account,
                        reference: r.reference,
                    },
                );
            }
        }
        // Pseudonyms of the recipients concerned: one pass over the registry's map.
        let wanted: std::collections::HashSet<u32> =
            all.iter().filter_map(|p| p.recipient).collect();
        let mut pseudonyms: HashMap<u32, String> = self
            .recipient_ids
            .iter()
            .filter(|(_, id)| wanted.contains(id))
            .map(|(p, id)| (*id, p.as_str().to_string()))
            .collect();
        for &r in &wanted {
            if let Some(p) = self.unknown_recipients.get((NONE - 1 - r) as usize) {
                pseudonyms.insert(r, p.clone());
            }
        }
        let complaint_list: Vec<i64> = complaint_ids.into_iter().collect();
        let complaint_info: HashMap<i64, (String, Option<i64>, i64)> = complaints::table
            .filter(complaints::id.eq_any(&complaint_list))
            .select((
                complaints::id,
                complaints::kind,
                complaints::amount_received_minor,
                complaints::filed_at,
            ))
            .load::<(i64, String, Option<i64>, i64)>(conn)?
            .into_iter()
            .map(|(id, k, a, t)| (id, (k, a, t)))
            .collect();

        let reference_of = |i: usize| {
            entry_info
                .get(&self.entries[i].seq)
                .cloned()
                .unwrap_or_default()
        };
        let code = |id: i64| self.dir.org(id).map(|o| o.code.clone()).unwrap_or_default();
        let program_code = |id: i64| {
            self.dir
                .program(id)
                .map(|p| p.code.clone())
                .unwrap_or_default()
        };
        // Sort before formatting: type, program, org, reference, first evidence.
        all.sort_by_cached_key(|p| {
            (
                p.finding_type,
                program_code(p.program),
                code(p.org),
                p.payment.map(reference_of).unwrap_or_default(),
                p.ledger.first().map(|&i| self.entries[i].seq).unwrap_or(0),
                p.bank_rows.first().copied().unwrap_or(0),
                p.statements.first().map(|s| s.statement_id).unwrap_or(0),
                p.statements.get(1).map(|s| s.statement_id).unwrap_or(0),
            )
        });
        let mut out = Vec::with_capacity(all.len());
        for p in all {
            let ledger = p
                .ledger
                .iter()
                .map(|&i| {
                    let e = &self.entries[i];
                    let units = self
                        .dir
                        .program(e.program)
                        .map(|p| p.minor_units)
                        .unwrap_or(2);
                    let info = entry_info.get(&e.seq);
                    LedgerEvidence {
                        seq: e.seq,
                        kind: e.kind.as_str().into(),
                        reference: info.cloned().unwrap_or_default(),
                        amount: format_minor(e.amount, units),
                        value_date: e.date.to_string(),
                    }
                })
                .collect();
            let bank_rows = p
                .bank_rows
                .iter()
                .filter_map(|id| row_info.get(id).cloned())
                .collect();
            let complaints = p
                .complaints
                .iter()
                .filter_map(|id| complaint_info.get(id).map(|c| (id, c)))
                .map(|(id, (kind, received, filed_at))| ComplaintEvidence {
                    complaint_id: *id,
                    kind: kind.clone(),
                    amount_received: received.map(|r| format_minor(r, p.minor_units)),
                    filed_on: chrono::DateTime::from_timestamp_micros(*filed_at)
                        .map(|t| t.date_naive().to_string())
                        .unwrap_or_default(),
                })
                .collect();
            let period = p
                .payment
                .or(p.ledger.first().copied())
                .map(|i| self.periods[self.entries[i].period as usize].0.clone());
            out.push(Finding {
                finding_type: p.finding_type,
                severity: p.severity,
                program: program_code(p.program),
                period: p.period.or(period),
                org: code(p.org),
                amount: format_minor(p.amount_minor, p.minor_units),
                currency: p.currency,
                payment_reference: p.payment.map(reference_of),
                recipient: p.recipient.and_then(|r| pseudonyms.get(&r).cloned()),
                detail: p.detail,
                evidence: Evidence {
                    rule: p.rule,
                    ledger,
                    bank_rows,
                    complaints,
                    statements: p.statements,
                },
            });
        }
        Ok(out)
    }
}

/// A bank row as a finding's evidence shows it.
#[derive(Queryable)]
struct EvidenceRow {
    id: i64,
    statement_id: i64,
    file_name: String,
    location: String,
    amount_minor: i64,
    currency: String,
    counterparty_name: Option<String>,
    counterparty_account: Option<String>,
    reference: Option<String>,
    booking_date: String,
}

/// Minor units of one scale in another (entitlements are kept in cents).
fn rescale(minor: i64, from: u32, to: u32) -> i64 {
    match to.cmp(&from) {
        std::cmp::Ordering::Equal => minor,
        std::cmp::Ordering::Greater => minor * 10i64.pow(to - from),
        std::cmp::Ordering::Less => minor / 10i64.pow(from - to),
    }
}

/// A finding before its evidence is looked up; entries are indexes into `Engine::entries`.
struct Pending {
    finding_type: FindingType,
    severity: Severity,
    program: i64,
    period: Option<String>,
    org: i64,
    amount_minor: i64,
    minor_units: u32,
    currency: String,
    payment: Option<usize>,
    /// Index into `Engine::recipients`, or an unknown pseudonym's (see `load_ledger`).
    recipient: Option<u32>,
    rule: Rule,
    detail: String,
    ledger: Vec<usize>,
    bank_rows: Vec<i64>,
    complaints: Vec<i64>,
    statements: Vec<StatementEvidence>,
}

/// A statement section as loaded for `statement_gap`.
#[derive(Queryable)]
struct SectionRow {
    id: i64,
    statement_id: i64,
    file_name: String,
    location: String,
    account_id: i64,
    bank_statement_id: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    opening_minor: Option<i64>,
    closing_minor: Option<i64>,
}

impl Rule {
    fn new(name: &str, parameter: &str, threshold: i64, observed: i64) -> Rule {
        Rule {
            name: name.into(),
            parameter: Some(parameter.into()),
            threshold: Some(threshold.to_string()),
            observed: Some(observed.to_string()),
        }
    }
    fn new_text(name: &str, parameter: &str, threshold: &str, observed: &str) -> Rule {
        Rule {
            name: name.into(),
            parameter: Some(parameter.into()),
            threshold: Some(threshold.into()),
            observed: Some(observed.into()),
        }
    }
    fn plain(name: &str, observed: Option<String>) -> Rule {
        Rule {
            name: name.into(),
            parameter: None,
            threshold: None,
            observed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn periods_overlap_by_month() {
        let p = |s: &str| s.parse::<Period>().unwrap();
        assert!(overlaps(&p("2026"), &p("2026-11")));
        assert!(overlaps(&p("2026-Q4"), &p("2026-11")));
        assert!(!overlaps(&p("2026-Q3"), &p("2026-11")));
        assert!(!overlaps(&p("2025"), &p("2026-01")));
        assert_eq!(
            period_dates(&p("2026-02")),
            (
                NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
            )
        );
        assert_eq!(
            period_dates(&p("2026-Q4")).1,
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        assert_eq!(period_dates(&p("2026")).0.month(), 1);
    }

    #[test]
    fn rescale_moves_between_minor_units() {
        assert_eq!(rescale(78000, 2, 2), 78000);
        assert_eq!(rescale(78000, 2, 3), 780000);
        assert_eq!(rescale(78000, 2, 0), 780);
    }
}
