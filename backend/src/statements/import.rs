//! Importing one statement file: parse, store every row, match rows to payments, append the
//! matches as `confirmation` and `return` entries — all in one write transaction, or nothing.
//!
//! The file streams through in chunks of [`CHUNK_ROWS`]; each chunk asks the database (which,
//! inside the transaction, already holds the earlier chunks) for duplicates and candidates, so
//! memory stays flat however long the file is. Parsing, and the work per row that needs no
//! database (fingerprints, keyed account tags, masking, formatting), runs on a second thread
//! a few batches ahead of the writer (a bounded queue: memory stays flat), so it overlaps the
//! database work of the chunk before.
//!
//! Matching, in order, for a row that is not a duplicate:
//! 1. **strong**: the row's reference (EndToEndId, 附言, MT940 customer reference) equals the
//!    reference of exactly one payment (disbursement) by the account's org;
//! 2. **weak** (no usable reference): the counterparty account is a recipient's registered
//!    account (compared by keyed tag), the amount equals an unconfirmed payment to that
//!    recipient, and the booking is within [`MATCH_WINDOW_DAYS`] of the payment's value date
//!    (returns: within [`RETURN_WINDOW_DAYS`] after it); the nearest date wins, then the
//!    lowest sequence number.
//!
//! A matched debit confirms the payment for the amount the bank really moved; a matched credit
//! (a reference match, or a row the bank marks returned or reversed) returns it. A payment is
//! confirmed at most once, so a second debit for it stays unmatched (`already_confirmed`), and
//! one row never matches two payments.

use super::{
    currency_minor_units, mask_account, mask_name, normalize_account, show, Manifest,
    MATCH_WINDOW_DAYS, RETURN_WINDOW_DAYS,
};
use crate::crypto::{sha256, PersonalDataKeys};
use crate::db::{write_transaction, DbConn};
use crate::domain::{format_micros, EntryKind, Micros, Period};
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::ledger::append::{
    chain_head, check_key_still_valid, insert_entries, load_funds, save_changed_funds,
    LOOKUP_VALUES_MAX,
};
use crate::ledger::read::Directory;
use crate::ledger::rules::{
    check_shape, confirmation_reference, return_reference, Facts, FundsState,
};
use crate::ledger::{entry_hash, ChainFields, EntryBody, REFERENCE_CHARS_MAX};
use crate::money::format_minor;
use crate::signing::{self, Verified};
use chrono::NaiveDate;
use diesel::prelude::*;
use fundtrail_importers::{
    balance, detect_head, parse_with, ErrorKind, Format, Options, ParseError, Record, Transaction,
};
use fundtrail_schema::rows::{BankRow, LedgerEntryRow, StatementRow, StatementSectionRow};
use fundtrail_schema::schema::{
    bank_accounts, bank_rows, ledger_entries, recipients, statement_sections, statements,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::mpsc;

/// Rows matched per round trip to the database.
pub const CHUNK_ROWS: usize = 2000;
/// Records per message from the parsing thread to the writer.
const BATCH_RECORDS: usize = 256;
/// Messages the parsing thread may be ahead by (with [`BATCH_RECORDS`]: memory stays flat).
const QUEUE_BATCHES: usize = 16;
/// Longest memo of a bank fact, in bytes (the ledger's limit).
const MEMO_BYTES_MAX: usize = crate::ledger::MEMO_BYTES_MAX;

/// Why a row was left unmatched: stable snake_case words.
pub mod note {
    /// A debit no payment explains: money left the account with no ledger entry behind it.
    pub const NO_MATCHING_PAYMENT: &str = "no_matching_payment";
    /// Money came in that is not a payment coming back (an allocation arriving, say).
    pub const CREDIT: &str = "credit";
    /// The reference names payments in more than one program.
    pub const AMBIGUOUS_REFERENCE: &str = "ambiguous_reference";
    /// The row's currency is not the account's or the payment's.
    pub const CURRENCY_DIFFERS: &str = "currency_differs";
    pub const ZERO_AMOUNT: &str = "zero_amount";
    /// The bank reversed an incoming credit.
    pub const REVERSAL_OF_CREDIT: &str = "reversal_of_credit";
}

/// What importing needs besides the file.
pub struct ImportRequest<'a> {
    pub verified: &'a Verified,
    /// The canonical JSON of `verified.payload` (what was signed).
    pub manifest_text: &'a str,
    pub manifest: &'a Manifest,
    pub file_sha256: [u8; 32],
}

/// A transaction as the parsing thread hands it over: the bank row to store with everything
/// that needs no database filled in (ids, fingerprint occurrence and outcome come later).
struct Parsed {
    /// `amount_minor` is 0 here when `amount_minor` below is an error.
    row: BankRow,
    /// The statement's account, normalised.
    account: String,
    /// Minor units, or why the amount has too many decimals.
    amount_minor: Result<i64, String>,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    /// What identifies the row itself (see [`fingerprint_base`]).
    base: [u8; 32],
}

/// What the parsing thread sends, in file order.
enum Item {
    Problem(Problem),
    Section(fundtrail_importers::Statement),
    Row(Box<Parsed>),
    /// The file was read to its end (without it the reader stopped early: nothing is written).
    End,
}

/// A parsed row waiting in the current chunk.
struct Pending {
    /// The bank row; `row.fingerprint` is that of the first occurrence until `duplicates`.
    row: BankRow,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    /// The row's currency is not its account's.
    currency_differs: bool,
    base: [u8; 32],
    /// Occurrence of this exact row earlier in the same file (1 = first).
    occurrence: u32,
}

/// A stored bank row as duplicate detection sees it: id, statement, duplicate_of.
type StoredRow = (i64, i64, Option<i64>);
/// Stored rows by (account, fingerprint).
type StoredRows = HashMap<(i64, Vec<u8>), Vec<StoredRow>>;
/// Per pending row: its fingerprint where it is not the first occurrence's (which the row
/// carries), and the earlier row of another statement it repeats.
type Duplicates = Vec<(Option<Vec<u8>>, Option<i64>)>;
/// Pseudonyms of recipients by the keyed tag of their registered account.
type RecipientsByTag = HashMap<String, Vec<String>>;

/// A payment a row may be about.
#[derive(Debug, Clone)]
struct Payment {
    seq: i64,
    program_id: i64,
    reference: String,
    recipient: Option<String>,
    amount_minor: i64,
    value_date: NaiveDate,
    period: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    rows_total: i64,
    rows_duplicate: i64,
    confirmed_strong: i64,
    confirmed_weak: i64,
    returned: i64,
    unmatched: i64,
}

struct Importer<'a> {
    req: &'a ImportRequest<'a>,
    dir: Directory,
    org_id: i64,
    org_code: String,
    /// Normalised account -> (id, currency) of the uploader's accounts.
    accounts: HashMap<String, (i64, String)>,
    statement_id: i64,
    submission_id: i64,
    next_row_id: i64,
    next_section_id: i64,
    head_seq: i64,
    prev_hash: [u8; 32],
    recorded_at: Micros,
    recorded_text: String,
    memo_prefix: String,
    counts: Counts,
    first_row_id: Option<i64>,
    first_seq: Option<i64>,
    pending: Vec<Pending>,
    /// Occurrences of each row fingerprint base in the chunk being filled; cleared per chunk
    /// (earlier chunks are found in the database).
    chunk_occurrences: HashMap<[u8; 32], u32>,
    problems: Vec<Problem>,
    problems_total: usize,
    unknown_accounts: HashSet<String>,
}

fn problem(
    error: ErrorCode,
    location: Option<String>,
    field: Option<&str>,
    message: String,
) -> Problem {
    Problem {
        error,
        message,
        field: field.map(str::to_string),
        item: None,
        location,
    }
}

fn parse_problem(e: &ParseError) -> Problem {
    let code = match e.code {
        ErrorKind::Unbalanced => ErrorCode::StatementUnbalanced,
        _ => ErrorCode::BadStatementRow,
    };
    problem(
        code,
        e.location.as_ref().map(|l| l.to_string()),
        e.field.as_deref(),
        format!("{}: {}", e.code.as_str(), e.message),
    )
}

/// Minor units of `amount` in a currency with `units` decimals, if it has no more decimals.
pub(crate) fn to_minor(amount: Decimal, units: u32) -> Option<i64> {
    let scaled = amount.checked_mul(Decimal::from(10i64.checked_pow(units)?))?;
    if !scaled.fract().is_zero() {
        return None;
    }
    scaled.to_i64()
}

/// The fields that make a bank row itself, for recognising it in an overlapping statement.
pub(crate) fn fingerprint_base(account: &str, t: &Transaction) -> [u8; 32] {
    let mut s = String::with_capacity(160);
    for part in [
        account,
        &t.booking_date.to_string(),
        &t.value_date.map(|d| d.to_string()).unwrap_or_default(),
        &t.amount.normalize().to_string(),
        &t.currency,
        t.reference.as_deref().unwrap_or(""),
        t.bank_txn_id.as_deref().unwrap_or(""),
        t.counterparty_account
            .as_deref()
            .map(normalize_account)
            .as_deref()
            .unwrap_or(""),
        t.text.as_deref().unwrap_or(""),
        if t.reversal { "R" } else { "" },
        t.return_reason.as_deref().unwrap_or(""),
    ] {
        s.push_str(part);
        s.push('\u{1f}');
    }
    sha256(s.as_bytes())
}

pub(crate) fn fingerprint(base: &[u8; 32], occurrence: u32) -> Vec<u8> {
    let mut b = base.to_vec();
    b.extend_from_slice(&occurrence.to_be_bytes());
    sha256(&b)[..16].to_vec()
}

/// The keyed tag of a row's counterparty account (as recipients' accounts are tagged).
pub(crate) fn counterparty_tag(keys: &PersonalDataKeys, t: &Transaction) -> Option<String> {
    t.counterparty_account
        .as_deref()
        .filter(|a| !normalize_account(a).is_empty())
        .map(|a| keys.account_tag(a))
}

/// A usable payment reference from a row: trimmed, within the ledger's reference rules.
fn row_reference(row: &BankRow) -> Option<&str> {
    row.reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty() && r.chars().count() <= REFERENCE_CHARS_MAX)
}

fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Imports one statement file read from `input`. Runs in one write transaction: on any bad
/// row, unknown account or rule failure nothing is written, and the error lists every bad row.
/// `progress` gets the number of rows read so far, once per chunk. Returns the statement's id
/// and whether this call imported it (false: the same file was imported before; nothing
/// changed).
pub fn import(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    req: &ImportRequest<'_>,
    mut input: impl Read + Send,
    now: Micros,
    progress: &mut dyn FnMut(u64),
) -> AppResult<(i64, bool)> {
    let m = req.manifest;
    let options = Options {
        account: m.account.clone(),
        ..Options::default()
    };
    let (format, head) = match show::format_by_name(&m.format)? {
        Some(f) => (f, Vec::new()),
        None => detect_head(&mut input, Some(&m.file_name))
            .map_err(|e| AppError::from(parse_problem(&e)).with_code(ErrorCode::UnknownFormat))?,
    };
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<Item>>(QUEUE_BATCHES);
        std::thread::Builder::new()
            .name("statement-parse".into())
            .spawn_scoped(scope, move || {
                let records = parse_with(std::io::Cursor::new(head).chain(input), format, &options);
                // Every section must add up from its opening to its closing balance.
                let records = balance::Checked::new(records);
                read_ahead(records, keys, &tx);
            })
            .map_err(|e| AppError::internal(format!("cannot start the statement reader: {e}")))?;
        // `rx` moves into the transaction and is dropped with it, however it ends: the reader
        // then stops at its next send, and the scope joins it.
        write_transaction(conn, move |conn| {
            // Checked again under the write lock: two uploads of one file race to here.
            if let Some(id) = existing(conn, &req.file_sha256, req.verified.actor.org_id)? {
                return Ok((id, false));
            }
            let mut im = Importer::start(conn, req, now)?;
            let mut rows_read: u64 = 0;
            let mut ended = false;
            for item in rx.iter().flatten() {
                match item {
                    Item::Problem(p) => im.push_problem(p),
                    Item::Section(s) => im.section(conn, s)?,
                    Item::Row(r) => {
                        rows_read += 1;
                        im.transaction(*r);
                        if im.pending.len() >= CHUNK_ROWS {
                            im.flush(conn)?;
                            progress(rows_read);
                        }
                    }
                    Item::End => ended = true,
                }
            }
            if !ended {
                return Err(AppError::internal(
                    "the statement reader stopped before the end of the file",
                ));
            }
            im.flush(conn)?;
            progress(rows_read);
            Ok((im.finish(conn, format)?, true))
        })
    })
}

/// The parsing thread: reads every record and prepares each transaction's bank row, sending
/// them in order in batches; stops early only if the writer has gone.
fn read_ahead(
    records: impl Iterator<Item = Result<Record, ParseError>>,
    keys: &PersonalDataKeys,
    tx: &mpsc::SyncSender<Vec<Item>>,
) {
    let mut batch = Vec::with_capacity(BATCH_RECORDS);
    for record in records {
        batch.push(match record {
            Err(e) => Item::Problem(parse_problem(&e)),
            Ok(Record::Statement(s)) => Item::Section(s),
            Ok(Record::Transaction(t)) => Item::Row(Box::new(parsed(keys, t))),
        });
        if batch.len() >= BATCH_RECORDS {
            let next = Vec::with_capacity(BATCH_RECORDS);
            if tx.send(std::mem::replace(&mut batch, next)).is_err() {
                return;
            }
        }
    }
    batch.push(Item::End);
    let _ = tx.send(batch);
}

/// Everything about a transaction that needs no database: the row as stored, its fingerprint
/// base and first fingerprint, the keyed tag of the counterparty account.
fn parsed(keys: &PersonalDataKeys, t: Transaction) -> Parsed {
    let account = normalize_account(&t.account);
    let units = currency_minor_units(&t.currency);
    let amount_minor = to_minor(t.amount, units).ok_or_else(|| {
        format!(
            "{} has more than {units} decimals for {}",
            t.amount, t.currency
        )
    });
    let base = fingerprint_base(&account, &t);
    let row = BankRow {
        id: 0,
        statement_id: 0,
        location: t.location.to_string(),
        account_id: 0,
        booking_date: t.booking_date.to_string(),
        value_date: t.value_date.map(|d| d.to_string()),
        amount_minor: *amount_minor.as_ref().unwrap_or(&0),
        counterparty_name_masked: t.counterparty_name.as_deref().map(mask_name),
        counterparty_account_masked: t.counterparty_account.as_deref().map(mask_account),
        counterparty_account_tag: counterparty_tag(keys, &t),
        currency: t.currency,
        reference: t.reference,
        bank_txn_id: t.bank_txn_id,
        text: t.text,
        reversal: t.reversal,
        return_reason: t.return_reason,
        fingerprint: fingerprint(&base, 1),
        status: String::new(),
        match_strength: None,
        matched_seq: None,
        entry_seq: None,
        duplicate_of: None,
        note: None,
    };
    Parsed {
        row,
        account,
        amount_minor,
        booking_date: t.booking_date,
        value_date: t.value_date,
        base,
    }
}

/// The statement already imported from the file `sha256`, if any. Importing a file again is a
/// no-op that answers the first import; but a file is one org's statement, so another org's
/// upload of it is refused.
pub fn existing(conn: &mut DbConn, sha256: &[u8; 32], org_id: i64) -> AppResult<Option<i64>> {
    let found: Option<(i64, i64)> = statements::table
        .filter(statements::file_sha256.eq(sha256.as_slice()))
        .select((statements::id, statements::org_id))
        .first(conn)
        .optional()?;
    match found {
        Some((id, org)) if org != org_id => Err(AppError::new(
            ErrorCode::AlreadyExists,
            format!("this file was already imported by another org, as statement {id}"),
        )
        .field("file_sha256")),
        other => Ok(other.map(|(id, _)| id)),
    }
}

impl<'a> Importer<'a> {
    fn start(
        conn: &mut DbConn,
        req: &'a ImportRequest<'a>,
        now: Micros,
    ) -> AppResult<Importer<'a>> {
        let v = req.verified;
        let dir = Directory::load(conn)?;
        let submission_id = signing::record(conn, v, now)?;
        let (head_seq, prev_hash, head_time) = chain_head(conn)?;
        let recorded_at = now.max(head_time);
        check_key_still_valid(conn, &v.key_id, recorded_at)?;
        let accounts: HashMap<String, (i64, String)> = bank_accounts::table
            .filter(bank_accounts::org_id.eq(v.actor.org_id))
            .select((
                bank_accounts::account,
                bank_accounts::id,
                bank_accounts::currency,
            ))
            .load::<(String, i64, String)>(conn)?
            .into_iter()
            .map(|(a, id, c)| (a, (id, c)))
            .collect();
        let max_id = |ids: Option<i64>| ids.unwrap_or(0) + 1;
        let statement_id = max_id(
            statements::table
                .select(diesel::dsl::max(statements::id))
                .first(conn)?,
        );
        let next_row_id = max_id(
            bank_rows::table
                .select(diesel::dsl::max(bank_rows::id))
                .first(conn)?,
        );
        let next_section_id = max_id(
            statement_sections::table
                .select(diesel::dsl::max(statement_sections::id))
                .first(conn)?,
        );
        Ok(Importer {
            req,
            org_id: v.actor.org_id,
            org_code: v.actor.org_code.clone(),
            dir,
            accounts,
            statement_id,
            submission_id,
            next_row_id,
            next_section_id,
            head_seq,
            prev_hash,
            recorded_at,
            recorded_text: format_micros(recorded_at),
            memo_prefix: format!("statement {}", &req.manifest.file_sha256[..12]),
            counts: Counts::default(),
            first_row_id: None,
            first_seq: None,
            pending: Vec::with_capacity(CHUNK_ROWS),
            chunk_occurrences: HashMap::new(),
            problems: Vec::new(),
            problems_total: 0,
            unknown_accounts: HashSet::new(),
        })
    }

    fn push_problem(&mut self, p: Problem) {
        self.problems_total += 1;
        if self.problems.len() < crate::error::PROBLEMS_LISTED_MAX {
            self.problems.push(p);
        }
    }

    /// The uploader's account a statement or row names, or a problem (reported once per account).
    fn account(&mut self, named: &str, location: String) -> Option<(i64, String)> {
        let n = normalize_account(named);
        self.normalized_account(n, || location)
    }

    /// [`Self::account`] for an account already normalised.
    fn normalized_account(
        &mut self,
        n: String,
        location: impl FnOnce() -> String,
    ) -> Option<(i64, String)> {
        if let Some(a) = self.accounts.get(&n) {
            return Some(a.clone());
        }
        if self.unknown_accounts.insert(n.clone()) {
            let location = location();
            let message = if n.is_empty() {
                "the file does not name its account; give the account (fundtrail import --account)"
                    .to_string()
            } else {
                format!(
                    "account {n} is not a registered account of {}; register it first (fundtrail account add)",
                    self.org_code
                )
            };
            self.push_problem(problem(
                ErrorCode::UnknownAccount,
                Some(location),
                Some("account"),
                message,
            ));
        }
        None
    }

    fn section(&mut self, conn: &mut DbConn, s: fundtrail_importers::Statement) -> AppResult<()> {
        let location = s.location.to_string();
        let Some((account_id, currency)) = self.account(&s.account, location.clone()) else {
            return Ok(());
        };
        let units = currency_minor_units(s.currency.as_deref().unwrap_or(&currency));
        let balance = |b: Option<Decimal>| b.and_then(|d| to_minor(d, units));
        let row = StatementSectionRow {
            id: self.next_section_id,
            statement_id: self.statement_id,
            account_id,
            location,
            bank_statement_id: s.statement_id,
            currency: s.currency,
            from_date: s.from_date.map(|d| d.to_string()),
            to_date: s.to_date.map(|d| d.to_string()),
            opening_minor: balance(s.opening_balance),
            closing_minor: balance(s.closing_balance),
        };
        self.next_section_id += 1;
        if self.problems_total == 0 {
            diesel::insert_into(statement_sections::table)
                .values(&row)
                .execute(conn)?;
        }
        Ok(())
    }

    fn transaction(&mut self, r: Parsed) {
        let Parsed {
            mut row,
            account,
            amount_minor,
            booking_date,
            value_date,
            base,
        } = r;
        let Some((account_id, account_currency)) =
            self.normalized_account(account, || row.location.clone())
        else {
            return;
        };
        if let Err(message) = amount_minor {
            return self.push_problem(problem(
                ErrorCode::BadStatementRow,
                Some(row.location),
                Some("amount"),
                message,
            ));
        }
        let occurrence = self.chunk_occurrences.entry(base).or_insert(0);
        *occurrence += 1;
        let occurrence = *occurrence;
        row.account_id = account_id;
        row.statement_id = self.statement_id;
        self.pending.push(Pending {
            currency_differs: row.currency != account_currency,
            row,
            booking_date,
            value_date,
            base,
            occurrence,
        });
    }

    /// Stores and matches the rows of the current chunk.
    fn flush(&mut self, conn: &mut DbConn) -> AppResult<()> {
        let pending = std::mem::take(&mut self.pending);
        self.chunk_occurrences.clear();
        // Once the file is known to be bad, only keep parsing to list every bad row.
        if pending.is_empty() || self.problems_total > 0 {
            return Ok(());
        }
        let duplicates = self.duplicates(conn, &pending)?;
        let (payments, tag_recipients) = self.candidates(conn, &pending, &duplicates)?;
        let mut state = FundsState::new();
        let mut seqs: Vec<i64> = payments.values().map(|p| p.seq).collect();
        seqs.sort_unstable();
        load_funds(conn, &self.dir, &seqs, &mut state)?;
        let mut parents: Vec<i64> = seqs
            .iter()
            .filter_map(|s| state.get(*s).and_then(|f| f.source))
            .collect();
        // Most payments of a chunk draw on a few allocations.
        parents.sort_unstable();
        parents.dedup();
        load_funds(conn, &self.dir, &parents, &mut state)?;
        for chunk in seqs.chunks(LOOKUP_VALUES_MAX) {
            let confirmed: Vec<(i64, Option<i64>)> = ledger_entries::table
                .filter(ledger_entries::kind.eq(EntryKind::Confirmation.as_str()))
                .filter(ledger_entries::source_seq.eq_any(chunk))
                .select((ledger_entries::seq, ledger_entries::source_seq))
                .load(conn)?;
            for (by, of) in confirmed {
                if let Some(of) = of {
                    state.mark_confirmed(of, by);
                }
            }
        }
        let mut by_reference: HashMap<&str, Vec<&Payment>> = HashMap::new();
        let mut by_recipient: HashMap<&str, Vec<&Payment>> = HashMap::new();
        for p in payments.values() {
            by_reference
                .entry(p.reference.as_str())
                .or_default()
                .push(p);
            if let Some(r) = &p.recipient {
                by_recipient.entry(r.as_str()).or_default().push(p);
            }
        }

        let mut rows = Vec::with_capacity(pending.len());
        let mut entries = Vec::new();
        for (mut p, (fingerprint, duplicate_of)) in pending.into_iter().zip(duplicates) {
            let id = self.next_row_id;
            self.next_row_id += 1;
            self.first_row_id.get_or_insert(id);
            self.counts.rows_total += 1;
            p.row.id = id;
            if let Some(fingerprint) = fingerprint {
                p.row.fingerprint = fingerprint;
            }
            p.row.duplicate_of = duplicate_of;
            if duplicate_of.is_some() {
                p.row.status = "duplicate".into();
                self.counts.rows_duplicate += 1;
                rows.push(p.row);
                continue;
            }
            let decided = self.decide(
                &p,
                &by_reference,
                &by_recipient,
                &tag_recipients,
                &mut state,
            );
            let row = match decided {
                Ok((payment, kind, strength)) => {
                    let entry = self.entry(&p, payment, kind, id);
                    let mut row = p.row;
                    row.status = if kind == EntryKind::Confirmation {
                        "confirmed"
                    } else {
                        "returned"
                    }
                    .into();
                    row.match_strength = Some(strength.into());
                    row.matched_seq = Some(payment.seq);
                    row.entry_seq = Some(entry.seq);
                    match (kind, strength) {
                        (EntryKind::Confirmation, "strong") => self.counts.confirmed_strong += 1,
                        (EntryKind::Confirmation, _) => self.counts.confirmed_weak += 1,
                        _ => self.counts.returned += 1,
                    }
                    entries.push(entry);
                    row
                }
                Err((note, matched)) => {
                    let mut row = p.row;
                    row.status = "unmatched".into();
                    row.note = Some(note.to_string());
                    row.matched_seq = matched;
                    self.counts.unmatched += 1;
                    row
                }
            };
            rows.push(row);
        }
        // Entries first: rows point at them.
        insert_entries(conn, &entries)?;
        insert_bank_rows(conn, &rows)?;
        save_changed_funds(conn, &state, self.head_seq)?;
        Ok(())
    }

    /// For each pending row: its fingerprint where it is not that of a first occurrence (which
    /// the row carries), and the earlier row (of another statement) it repeats, if any. Every
    /// lookup goes through the (account, fingerprint) index.
    fn duplicates(&self, conn: &mut DbConn, pending: &[Pending]) -> AppResult<Duplicates> {
        // Rows identical to one earlier in this same file (an earlier chunk) count on from there.
        let firsts: Vec<(i64, Vec<u8>)> = pending
            .iter()
            .filter(|p| p.occurrence == 1)
            .map(|p| (p.row.account_id, p.row.fingerprint.clone()))
            .collect();
        let seen = self.stored_rows(conn, &firsts)?;
        let in_this = |rows: Option<&Vec<StoredRow>>| {
            rows.is_some_and(|r| r.iter().any(|(_, st, _)| *st == self.statement_id))
        };
        let mut offsets: HashMap<[u8; 32], u32> = HashMap::new();
        for p in pending.iter().filter(|p| p.occurrence == 1) {
            let key = (p.row.account_id, p.row.fingerprint.clone());
            if offsets.contains_key(&p.base) || !in_this(seen.get(&key)) {
                continue;
            }
            let mut k = 1;
            loop {
                let next = (p.row.account_id, fingerprint(&p.base, k + 1));
                let found = self.stored_rows(conn, std::slice::from_ref(&next))?;
                if !in_this(found.get(&next)) {
                    break;
                }
                k += 1;
            }
            offsets.insert(p.base, k);
        }
        // The first occurrences need no second lookup: their keys were looked up as `firsts`.
        let keys: Vec<(i64, Option<Vec<u8>>)> = pending
            .iter()
            .map(|p| {
                let k = p.occurrence + offsets.get(&p.base).copied().unwrap_or(0);
                (p.row.account_id, (k != 1).then(|| fingerprint(&p.base, k)))
            })
            .collect();
        let later: Vec<(i64, Vec<u8>)> = keys
            .iter()
            .filter_map(|(a, fp)| fp.as_ref().map(|fp| (*a, fp.clone())))
            .collect();
        let found_later = self.stored_rows(conn, &later)?;
        let original = |rows: Option<&Vec<StoredRow>>| {
            rows.and_then(|rows| {
                rows.iter()
                    .find(|(_, st, dup)| *st != self.statement_id && dup.is_none())
                    .map(|(id, _, _)| *id)
            })
        };
        Ok(pending
            .iter()
            .zip(keys)
            .map(|(p, (account, fp))| match fp {
                None => (
                    None,
                    original(seen.get(&(account, p.row.fingerprint.clone()))),
                ),
                Some(fp) => {
                    let key = (account, fp);
                    let o = original(found_later.get(&key));
                    (Some(key.1), o)
                }
            })
            .collect())
    }

    /// Rows already stored under each (account, fingerprint).
    fn stored_rows(&self, conn: &mut DbConn, keys: &[(i64, Vec<u8>)]) -> AppResult<StoredRows> {
        let mut by_account: BTreeMap<i64, Vec<&[u8]>> = BTreeMap::new();
        for (account, fp) in keys {
            by_account.entry(*account).or_default().push(fp);
        }
        let mut out = StoredRows::new();
        for (account, fps) in by_account {
            for chunk in fps.chunks(LOOKUP_VALUES_MAX) {
                let rows: Vec<(i64, i64, Option<i64>, Vec<u8>)> = bank_rows::table
                    .filter(bank_rows::account_id.eq(account))
                    .filter(bank_rows::fingerprint.eq_any(chunk))
                    .select((
                        bank_rows::id,
                        bank_rows::statement_id,
                        bank_rows::duplicate_of,
                        bank_rows::fingerprint,
                    ))
                    .load(conn)?;
                for (id, statement, duplicate_of, fp) in rows {
                    out.entry((account, fp))
                        .or_default()
                        .push((id, statement, duplicate_of));
                }
            }
        }
        Ok(out)
    }

    /// Payments by the uploader that rows of the chunk may be about: by reference, and by the
    /// recipients whose registered account appears as a counterparty.
    fn candidates(
        &self,
        conn: &mut DbConn,
        pending: &[Pending],
        duplicates: &[(Option<Vec<u8>>, Option<i64>)],
    ) -> AppResult<(BTreeMap<i64, Payment>, RecipientsByTag)> {
        type Row = (i64, i64, String, Option<String>, i64, String, String);
        let select = (
            ledger_entries::seq,
            ledger_entries::program_id,
            ledger_entries::reference,
            ledger_entries::to_recipient,
            ledger_entries::amount_minor,
            ledger_entries::value_date,
            ledger_entries::period,
        );
        let program_ids: Vec<i64> = self.dir.programs().map(|p| p.id).collect();
        let mut refs: Vec<&str> = pending
            .iter()
            .zip(duplicates)
            .filter(|(_, d)| d.1.is_none())
            .filter_map(|(p, _)| row_reference(&p.row))
            .collect();
        refs.sort_unstable();
        refs.dedup();
        let mut found: Vec<Row> = Vec::new();
        for chunk in refs.chunks(LOOKUP_VALUES_MAX) {
            // Only (program_id, reference) goes to SQLite, so it uses that unique index: given
            // the kind and author too, it may prefer the author index and walk every entry of
            // the author for each chunk. Those are checked here.
            let rows: Vec<(Row, String, i64)> = ledger_entries::table
                .filter(ledger_entries::program_id.eq_any(&program_ids))
                .filter(ledger_entries::reference.eq_any(chunk))
                .select((select, ledger_entries::kind, ledger_entries::author_org_id))
                .load(conn)?;
            found.extend(rows.into_iter().filter_map(|(row, kind, author)| {
                (kind == EntryKind::Disbursement.as_str() && author == self.org_id).then_some(row)
            }));
        }
        // Weak matching only for rows that no payment's reference names (most rows carry one).
        let referenced: HashSet<&str> = found.iter().map(|r| r.2.as_str()).collect();
        let unreferenced: Vec<&Pending> = pending
            .iter()
            .zip(duplicates)
            .filter(|(p, d)| {
                d.1.is_none() && !row_reference(&p.row).is_some_and(|r| referenced.contains(r))
            })
            .map(|(p, _)| p)
            .collect();
        let tag_recipients = self.recipients_by_tag(conn, &unreferenced)?;
        let mut pseudonyms: Vec<&str> = tag_recipients
            .values()
            .flatten()
            .map(String::as_str)
            .collect();
        pseudonyms.sort_unstable();
        pseudonyms.dedup();
        for chunk in pseudonyms.chunks(LOOKUP_VALUES_MAX) {
            // Only the recipient index narrows this: kind and author are checked here, or
            // SQLite would walk every entry of the author.
            let rows: Vec<(Row, String, i64)> = ledger_entries::table
                .filter(ledger_entries::to_recipient.eq_any(chunk))
                .select((select, ledger_entries::kind, ledger_entries::author_org_id))
                .load(conn)?;
            found.extend(rows.into_iter().filter_map(|(row, kind, author)| {
                (kind == EntryKind::Disbursement.as_str() && author == self.org_id).then_some(row)
            }));
        }
        let mut out = BTreeMap::new();
        for (seq, program_id, reference, recipient, amount_minor, value_date, period) in found {
            let value_date = crate::domain::parse_date(&value_date).ok_or_else(|| {
                AppError::internal(format!("entry #{seq} has a malformed value date"))
            })?;
            out.insert(
                seq,
                Payment {
                    seq,
                    program_id,
                    reference,
                    recipient,
                    amount_minor,
                    value_date,
                    period,
                },
            );
        }
        Ok((out, tag_recipients))
    }

    /// Pseudonyms of the uploader's recipients by the keyed tag of their registered account.
    fn recipients_by_tag(
        &self,
        conn: &mut DbConn,
        pending: &[&Pending],
    ) -> AppResult<RecipientsByTag> {
        let mut tags: Vec<&str> = pending
            .iter()
            .filter_map(|p| p.row.counterparty_account_tag.as_deref())
            .collect();
        tags.sort_unstable();
        tags.dedup();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in tags.chunks(LOOKUP_VALUES_MAX) {
            // The office is checked here, not in SQL, so that SQLite keeps to the tag index.
            let found: Vec<(String, String, i64)> = recipients::table
                .filter(recipients::account_tag.eq_any(chunk))
                .select((
                    recipients::account_tag,
                    recipients::pseudonym,
                    recipients::home_org_id,
                ))
                .load(conn)?;
            for (tag, pseudonym, _) in found.into_iter().filter(|r| r.2 == self.org_id) {
                out.entry(tag).or_default().push(pseudonym);
            }
        }
        Ok(out)
    }

    /// Matches one row: the payment, the kind of entry, and `strong`/`weak`; or why not (and
    /// the payment it was about, when known).
    fn decide<'p>(
        &self,
        p: &Pending,
        by_reference: &HashMap<&str, Vec<&'p Payment>>,
        by_recipient: &HashMap<&str, Vec<&'p Payment>>,
        tag_recipients: &RecipientsByTag,
        state: &mut FundsState,
    ) -> Result<(&'p Payment, EntryKind, &'static str), (&'static str, Option<i64>)> {
        let row = &p.row;
        if p.currency_differs {
            return Err((note::CURRENCY_DIFFERS, None));
        }
        if row.amount_minor == 0 {
            return Err((note::ZERO_AMOUNT, None));
        }
        let kind = match (row.amount_minor < 0, row.reversal) {
            (true, false) => EntryKind::Confirmation,
            (false, _) => EntryKind::Return,
            (true, true) => return Err((note::REVERSAL_OF_CREDIT, None)),
        };
        let amount = row.amount_minor.abs();
        let strong: &[&Payment] = row_reference(row)
            .and_then(|r| by_reference.get(r))
            .map_or(&[], Vec::as_slice);
        let (payment, strength): (&'p Payment, _) = match strong {
            [one] => (one, "strong"),
            [_, _, ..] => return Err((note::AMBIGUOUS_REFERENCE, None)),
            [] => {
                let flagged_return = row.return_reason.is_some() || row.reversal;
                if kind == EntryKind::Return && !flagged_return {
                    return Err((note::CREDIT, None));
                }
                let date = p.value_date.unwrap_or(p.booking_date);
                let mut weak: Vec<(i64, &'p Payment)> = row
                    .counterparty_account_tag
                    .as_ref()
                    .and_then(|t| tag_recipients.get(t))
                    .into_iter()
                    .flatten()
                    .filter_map(|r| by_recipient.get(r.as_str()))
                    .flatten()
                    .filter(|c| c.amount_minor == amount)
                    .filter_map(|c| {
                        let days = (date - c.value_date).num_days();
                        let in_window = match kind {
                            EntryKind::Confirmation => days.abs() <= MATCH_WINDOW_DAYS,
                            _ => (0..=RETURN_WINDOW_DAYS).contains(&days),
                        };
                        let open = state.get(c.seq).is_some_and(|f| {
                            f.reversed_by.is_none()
                                && match kind {
                                    EntryKind::Confirmation => f.confirmed_by.is_none(),
                                    _ => f.remaining_minor == f.amount_minor,
                                }
                        });
                        (in_window && open).then_some((days.abs(), *c))
                    })
                    .collect();
                weak.sort_by_key(|(days, c)| (*days, c.seq));
                match weak.first() {
                    Some((_, c)) => (*c, "weak"),
                    None if kind == EntryKind::Return => return Err((note::CREDIT, None)),
                    None => return Err((note::NO_MATCHING_PAYMENT, None)),
                }
            }
        };
        let program = self
            .dir
            .program(payment.program_id)
            .ok_or(("unknown_program", Some(payment.seq)))?;
        if program.currency != row.currency
            || program.minor_units != currency_minor_units(&row.currency)
        {
            return Err((note::CURRENCY_DIFFERS, Some(payment.seq)));
        }
        let period: Period = payment
            .period
            .parse()
            .map_err(|_| ("invalid_period", Some(payment.seq)))?;
        let facts = Facts {
            seq: self.head_seq + 1,
            kind,
            program: &program.code,
            period,
            source: Some(payment.seq),
            to_org: (kind == EntryKind::Return).then_some(self.org_code.as_str()),
            author: &self.org_code,
            amount_minor: amount,
            minor_units: program.minor_units,
        };
        // The rules decide, exactly as `verify` will: at most one confirmation, returns only
        // of what went out and has not come back.
        state
            .apply(&facts)
            .map_err(|b| (b.code.as_str(), Some(payment.seq)))?;
        Ok((payment, kind, strength))
    }

    /// Chains the entry for a matched row.
    fn entry(
        &mut self,
        p: &Pending,
        payment: &Payment,
        kind: EntryKind,
        row_id: i64,
    ) -> LedgerEntryRow {
        let program = self
            .dir
            .program(payment.program_id)
            .expect("checked in decide");
        let seq = self.head_seq + 1;
        let mut memo = format!("{} {} (row {row_id})", self.memo_prefix, p.row.location);
        if let Some(id) = &p.row.bank_txn_id {
            memo.push_str(", bank txn ");
            memo.push_str(id);
        }
        memo.retain(|c| !c.is_control());
        truncate_bytes(&mut memo, MEMO_BYTES_MAX);
        let amount_minor = p.row.amount_minor.abs();
        let body = EntryBody {
            kind,
            program: program.code.clone(),
            period: payment.period.clone(),
            source: Some(payment.seq),
            from: None,
            to: (kind == EntryKind::Return).then(|| self.org_code.clone()),
            recipient: payment.recipient.clone(),
            amount: format_minor(amount_minor, program.minor_units),
            reference: match kind {
                EntryKind::Confirmation => confirmation_reference(payment.seq),
                _ => return_reference(payment.seq),
            },
            memo,
            value_date: p
                .row
                .value_date
                .as_ref()
                .unwrap_or(&p.row.booking_date)
                .clone(),
        };
        debug_assert!(
            check_shape(kind, &body, &self.org_code).is_empty(),
            "{body:?}"
        );
        let hash = entry_hash(
            &body,
            &ChainFields {
                seq,
                author: &self.org_code,
                batch: &self.req.verified.nonce,
                recorded_at: &self.recorded_text,
                prev_hash: &self.prev_hash,
            },
        );
        let row = LedgerEntryRow {
            seq,
            kind: kind.as_str().to_string(),
            program_id: payment.program_id,
            period: body.period,
            source_seq: body.source,
            from_org_id: None,
            to_org_id: (kind == EntryKind::Return).then_some(self.org_id),
            to_recipient: body.recipient,
            amount_minor,
            reference: body.reference,
            memo: body.memo,
            author_org_id: self.org_id,
            submission_id: self.submission_id,
            value_date: body.value_date,
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash.to_vec(),
            hash: hash.to_vec(),
        };
        self.head_seq = seq;
        self.prev_hash = hash;
        self.first_seq.get_or_insert(seq);
        row
    }

    fn finish(self, conn: &mut DbConn, format: Format) -> AppResult<i64> {
        if self.problems_total > 0 {
            let mut err = AppError::batch(self.problems);
            err.problems_total = self.problems_total;
            return Err(err);
        }
        let m = self.req.manifest;
        let last_row_id = self.first_row_id.map(|_| self.next_row_id - 1);
        let row = StatementRow {
            id: self.statement_id,
            file_sha256: self.req.file_sha256.to_vec(),
            size_bytes: m.size_bytes as i64,
            file_name: m.file_name.clone(),
            format: show::format_name(format).to_string(),
            manifest: self.req.manifest_text.to_string(),
            org_id: self.org_id,
            submission_id: self.submission_id,
            imported_at: self.recorded_at,
            rows_total: self.counts.rows_total,
            rows_duplicate: self.counts.rows_duplicate,
            confirmed_strong: self.counts.confirmed_strong,
            confirmed_weak: self.counts.confirmed_weak,
            returned: self.counts.returned,
            unmatched: self.counts.unmatched,
            first_row_id: self.first_row_id,
            last_row_id,
            first_seq: self.first_seq,
            last_seq: self.first_seq.map(|_| self.head_seq),
        };
        diesel::insert_into(statements::table)
            .values(&row)
            .execute(conn)?;
        Ok(self.statement_id)
    }
}

fn insert_bank_rows(conn: &mut DbConn, rows: &[BankRow]) -> AppResult<()> {
    crate::insert_rows!(conn, bank_rows::table, rows);
    Ok(())
}

/// A statement file on this machine, and how to read it.
#[derive(Debug, Clone, Copy)]
pub struct LocalFile<'a> {
    pub path: &'a std::path::Path,
    /// `auto` or a format name.
    pub format: &'a str,
    /// The account, for files that do not name it.
    pub account: Option<&'a str>,
}

/// Imports a local file as `key`'s org through the same steps as `POST /api/v1/statements`:
/// stores the file, signs its manifest, verifies it and imports it. For local tools (the demo
/// loader, benchmarks) that write without the network in between.
pub fn import_local(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    files: &crate::filestore::FileStore,
    key: &crate::crypto::SigningKey,
    file: LocalFile<'_>,
    progress: &mut dyn FnMut(u64),
) -> AppResult<(i64, bool)> {
    let LocalFile {
        path,
        format,
        account,
    } = file;
    let io = |e: std::io::Error| AppError::internal(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    let staged = files
        .stage(std::io::BufReader::new(file), super::STATEMENT_BYTES_MAX)
        .map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
    let digest = staged.sha256;
    let manifest = Manifest {
        file_sha256: hex::encode(digest),
        size_bytes: staged.size_bytes,
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "statement".into()),
        format: format.to_string(),
        account: account.map(str::to_string),
    };
    staged.commit().map_err(io)?;
    let payload = serde_json::to_value(&manifest).expect("a manifest serializes");
    let (verified, now) =
        signing::sign_locally(conn, key, crate::ledger::STATEMENTS_PURPOSE, payload)?;
    manifest.validate()?;
    let manifest_text = crate::canonical::to_canonical_string(&verified.payload)
        .map_err(|e| AppError::invalid("payload", e.to_string()))?;
    let input = files
        .reader(&digest)
        .map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
    import(
        conn,
        keys,
        &ImportRequest {
            verified: &verified,
            manifest_text: &manifest_text,
            manifest: &manifest,
            file_sha256: digest,
        },
        input,
        now,
        progress,
    )
}
