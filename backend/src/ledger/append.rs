//! Appending a signed batch: validate every entry, then in one write transaction record the
//! submission, check authority and conservation against the current state, chain the
//! entries and write them with their funds. Any problem anywhere writes nothing.

use super::read::Directory;
use super::rules::{check_authority, check_shape, Facts, Funds, FundsState, OrgFacts};
use super::{
    entry_hash, reference_ok, second_payment_reason, ChainFields, EntriesPayload, EntryBody,
    BATCH_ENTRIES_MAX, BODY_KEYS, GENESIS_HASH, MEMO_BYTES_MAX, REFERENCE_CHARS_MAX,
};
use crate::db::{write_transaction, DbConn};
use crate::domain::{
    format_micros, latest_value_date, parse_date, EntryKind, Micros, Period, RecipientStatus,
};
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::money::parse_amount;
use crate::signing::{self, Verified};
use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use fundtrail_schema::rows::{LedgerEntryRow, LedgerFundsRow};
use fundtrail_schema::schema::{ledger_entries, ledger_funds, org_keys, recipients};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// Values per `IN (…)` list of a lookup (well under SQLite's 32766 parameters).
pub(crate) const LOOKUP_VALUES_MAX: usize = 1000;

/// What an accepted batch became.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppendOutcome {
    /// Nonce of the submission.
    pub batch: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub count: usize,
    /// Hash of the last entry: the new head of the chain.
    pub head_hash: String,
    pub entries: Vec<AppendedEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppendedEntry {
    pub seq: i64,
    pub reference: String,
    pub hash: String,
}

/// An entry that passed the checks that need no database state.
struct Checked {
    body: EntryBody,
    program_id: i64,
    period: Period,
    value_date: NaiveDate,
    amount_minor: i64,
}

fn problem(item: usize, code: ErrorCode, field: &str, message: impl Into<String>) -> Problem {
    Problem {
        error: code,
        message: message.into(),
        field: Some(field.to_string()),
        item: Some(item),
        location: None,
    }
}

/// Checks one entry against everything that does not depend on the ledger's state.
fn check_alone(
    item: usize,
    raw: &serde_json::Value,
    body: EntryBody,
    author: &str,
    dir: &Directory,
    recorded_at: Micros,
) -> Result<Checked, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut p = |code, field: &str, msg: String| problems.push(problem(item, code, field, msg));

    // The signature is over what the client sent; we store the fields and rebuild it, so the
    // two must be the same JSON. The body deserialized strictly (known keys, exact types, no
    // floats), so they are the same exactly when every key was present: serde would have read
    // a missing optional key as null, which changes the signed bytes.
    let present = raw.as_object().map(|o| o.len()).unwrap_or(0);
    if present != BODY_KEYS.len() {
        let field = BODY_KEYS
            .iter()
            .find(|k| raw.get(**k).is_none())
            .copied()
            .unwrap_or("entries");
        p(
            ErrorCode::EntryNotCanonical,
            field,
            format!("field `{field}` must be present and in its canonical form (null where it does not apply)"),
        );
    }
    if matches!(body.kind, EntryKind::Confirmation | EntryKind::Return) {
        p(
            ErrorCode::KindNotAllowed,
            "kind",
            format!(
                "{} entries are written by bank statement imports (POST /api/v1/statements)",
                body.kind
            ),
        );
    }
    let Some(program) = dir.program_by_code(&body.program) else {
        p(
            ErrorCode::UnknownProgram,
            "program",
            format!("program {} is not registered", body.program),
        );
        return Err(problems);
    };
    let amount_minor = match parse_amount(&body.amount, program.minor_units) {
        Ok(a) => Some(a),
        Err(e) => {
            p(
                e.code(),
                "amount",
                format!(
                    "{e} ({} uses {} decimals)",
                    program.currency, program.minor_units
                ),
            );
            None
        }
    };
    let period = match body.period.parse::<Period>() {
        Ok(per) if per.year() != program.fiscal_year => {
            p(
                ErrorCode::InvalidPeriod,
                "period",
                format!(
                    "period {per} is outside fiscal year {}",
                    program.fiscal_year
                ),
            );
            None
        }
        // Payments name the program's own period (a month for a monthly program); budgets and
        // allocations may cover more (a year, a quarter).
        Ok(per)
            if body.kind == EntryKind::Disbursement && per.granularity() != program.granularity =>
        {
            p(
                ErrorCode::InvalidPeriod,
                "period",
                format!(
                    "program {} pays by {}; a disbursement's period must be one {}",
                    program.code, program.granularity, program.granularity
                ),
            );
            None
        }
        Ok(per) if !per.fits(program.granularity) => {
            p(
                ErrorCode::InvalidPeriod,
                "period",
                format!(
                    "program {} pays by {}; {per} is finer than that",
                    program.code, program.granularity
                ),
            );
            None
        }
        Ok(per) => Some(per),
        Err(e) => {
            p(ErrorCode::InvalidPeriod, "period", e);
            None
        }
    };
    let value_date = match parse_date(&body.value_date) {
        None => {
            p(
                ErrorCode::InvalidValueDate,
                "value_date",
                format!("`{}` is not a date in the form YYYY-MM-DD", body.value_date),
            );
            None
        }
        Some(d) if d.year() != program.fiscal_year => {
            p(
                ErrorCode::InvalidValueDate,
                "value_date",
                format!(
                    "value date {d} is outside fiscal year {}",
                    program.fiscal_year
                ),
            );
            None
        }
        Some(d) if d > latest_value_date(recorded_at) => {
            p(
                ErrorCode::InvalidValueDate,
                "value_date",
                format!("value date {d} is in the future"),
            );
            None
        }
        Some(d) => Some(d),
    };
    if !reference_ok(&body.reference) {
        p(
            ErrorCode::InvalidReference,
            "reference",
            format!("a reference is 1-{REFERENCE_CHARS_MAX} characters of A-Za-z0-9-_./+"),
        );
    }
    if body.memo.len() > MEMO_BYTES_MAX || body.memo.chars().any(|c| c.is_control() && c != '\n') {
        p(
            ErrorCode::InvalidField,
            "memo",
            format!("a memo is at most {MEMO_BYTES_MAX} bytes without control characters"),
        );
    }
    for b in check_shape(body.kind, &body, author) {
        p(b.code, b.field, b.message);
    }
    match (problems.is_empty(), amount_minor, period, value_date) {
        (true, Some(amount_minor), Some(period), Some(value_date)) => Ok(Checked {
            program_id: program.id,
            body,
            period,
            value_date,
            amount_minor,
        }),
        _ => Err(problems),
    }
}

/// Loads the funds of `seqs` (those that exist) into `state`.
pub(crate) fn load_funds(
    conn: &mut DbConn,
    dir: &Directory,
    seqs: &[i64],
    state: &mut FundsState,
) -> AppResult<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    type Row = (
        i64,
        String,
        i64,
        String,
        Option<i64>,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    // Disbursements have a funds row only once reversed: no row means the whole amount and
    // not reversed.
    let rows: Vec<Row> = ledger_entries::table
        .left_join(ledger_funds::table.on(ledger_funds::seq.eq(ledger_entries::seq)))
        .filter(ledger_entries::seq.eq_any(seqs))
        .select((
            ledger_entries::seq,
            ledger_entries::kind,
            ledger_entries::program_id,
            ledger_entries::period,
            ledger_entries::to_org_id,
            ledger_entries::author_org_id,
            ledger_entries::amount_minor,
            ledger_funds::reversed_by.nullable(),
            ledger_funds::remaining_minor.nullable(),
            ledger_entries::source_seq,
        ))
        .load(conn)?;
    for (
        seq,
        kind,
        program_id,
        period,
        to_org_id,
        author_id,
        amount,
        reversed_by,
        remaining,
        source,
    ) in rows
    {
        let bad = || AppError::internal(format!("entry #{seq} has unreadable stored fields"));
        let funds = Funds {
            kind: EntryKind::parse(&kind).ok_or_else(bad)?,
            program: state.intern(&dir.program(program_id).ok_or_else(bad)?.code),
            period: period.parse().map_err(|_| bad())?,
            holder: to_org_id
                .and_then(|id| dir.org(id))
                .map(|o| state.intern(&o.code)),
            author: state.intern(&dir.org(author_id).ok_or_else(bad)?.code),
            amount_minor: amount,
            remaining_minor: remaining.unwrap_or(amount),
            reversed_by,
            source,
            confirmed_by: None,
        };
        state.load(seq, funds);
    }
    Ok(())
}

pub(crate) fn insert_entries(conn: &mut DbConn, rows: &[LedgerEntryRow]) -> AppResult<()> {
    crate::insert_rows!(conn, ledger_entries::table, rows);
    Ok(())
}

pub(crate) fn insert_funds(conn: &mut DbConn, rows: &[LedgerFundsRow]) -> AppResult<()> {
    crate::insert_rows!(conn, ledger_funds::table, rows);
    Ok(())
}

/// The head of the chain: its seq (0 when empty), hash and recorded time.
pub(crate) fn chain_head(conn: &mut DbConn) -> AppResult<(i64, [u8; 32], Micros)> {
    let head: Option<(i64, Vec<u8>, i64)> = ledger_entries::table
        .order(ledger_entries::seq.desc())
        .select((
            ledger_entries::seq,
            ledger_entries::hash,
            ledger_entries::recorded_at,
        ))
        .first(conn)
        .optional()?;
    match head {
        Some((seq, hash, at)) => {
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| AppError::internal(format!("entry #{seq} has a malformed hash")))?;
            Ok((seq, hash, at))
        }
        None => Ok((0, GENESIS_HASH, 0)),
    }
}

/// The signature was checked before the write transaction; the key must still be valid at the
/// time the submission is recorded, or `verify` would (rightly) reject it forever.
pub(crate) fn check_key_still_valid(
    conn: &mut DbConn,
    key_id: &str,
    recorded_at: Micros,
) -> AppResult<()> {
    let (valid_from, valid_until): (i64, Option<i64>) = org_keys::table
        .filter(org_keys::key_id.eq(key_id))
        .select((org_keys::valid_from, org_keys::valid_until))
        .first(conn)?;
    if recorded_at < valid_from || valid_until.is_some_and(|u| recorded_at >= u) {
        return Err(AppError::new(
            ErrorCode::KeyNotValid,
            format!("key {key_id} was retired before this could be recorded; sign it again with a valid key"),
        )
        .field("key_id"));
    }
    Ok(())
}

/// Writes the funds of entries up to `head_seq` that `state` changed: an update where a row
/// exists, else a new row (a payment gets one once reversed or returned).
pub(crate) fn save_changed_funds(
    conn: &mut DbConn,
    state: &FundsState,
    head_seq: i64,
) -> AppResult<()> {
    let mut new_funds = Vec::new();
    for (seq, f) in state.changed().filter(|(s, _)| *s <= head_seq) {
        let updated = diesel::update(ledger_funds::table.find(seq))
            .set((
                ledger_funds::remaining_minor.eq(f.remaining_minor),
                ledger_funds::reversed_by.eq(f.reversed_by),
            ))
            .execute(conn)?;
        if updated == 0 {
            new_funds.push(LedgerFundsRow {
                seq,
                remaining_minor: f.remaining_minor,
                reversed_by: f.reversed_by,
            });
        }
    }
    insert_funds(conn, &new_funds)?;
    Ok(())
}

/// Appends the batch carried by `verified` (payload `{"entries": [...]}`).
pub fn append(conn: &mut DbConn, verified: &Verified, now: Micros) -> AppResult<AppendOutcome> {
    let payload: EntriesPayload = verified.payload_as()?;
    let no_items = Vec::new();
    let raw_items = verified.payload["entries"].as_array().unwrap_or(&no_items);
    let count = payload.entries.len();
    if count == 0 {
        return Err(
            AppError::new(ErrorCode::EmptyBatch, "a batch needs at least one entry")
                .field("entries"),
        );
    }
    if count > BATCH_ENTRIES_MAX {
        return Err(AppError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "a batch holds at most {BATCH_ENTRIES_MAX} entries, this one has {count}; split it"
            ),
        )
        .field("entries"));
    }
    let author = verified.actor.org_code.clone();

    write_transaction(conn, |conn| {
        let dir = Directory::load(conn)?;
        let submission_id = signing::record(conn, verified, now)?;
        let (head_seq, head_hash, head_time) = chain_head(conn)?;
        // Recorded times never go backwards along the chain, even if the clock does.
        let recorded_at = now.max(head_time);
        check_key_still_valid(conn, &verified.key_id, recorded_at)?;

        let mut problems = Vec::new();
        let mut checked = Vec::with_capacity(count);
        for (i, body) in payload.entries.into_iter().enumerate() {
            let raw = raw_items.get(i).unwrap_or(&serde_json::Value::Null);
            match check_alone(i, raw, body, &author, &dir, recorded_at) {
                Ok(c) => checked.push((i, c)),
                Err(mut p) => problems.append(&mut p),
            }
        }

        let author_info = dir
            .org_by_code(&author)
            .ok_or_else(|| AppError::internal("signing org vanished"))?;
        let author_facts = dir.facts(author_info.id);

        // Recipients named by disbursements.
        let pseudonyms: Vec<&str> = checked
            .iter()
            .filter_map(|(_, c)| c.body.recipient.as_deref())
            .collect();
        let found: Vec<(String, i64, String, Option<String>)> = recipients::table
            .filter(recipients::pseudonym.eq_any(&pseudonyms))
            .select((
                recipients::pseudonym,
                recipients::home_org_id,
                recipients::status,
                recipients::status_date,
            ))
            .load(conn)?;
        let recipient_map: HashMap<String, (i64, String, Option<String>)> = found
            .into_iter()
            .map(|(p, h, s, d)| (p, (h, s, d)))
            .collect();

        // References already used in each program, and repeats within the batch.
        let mut taken: HashSet<(i64, String)> = HashSet::new();
        let mut by_program: HashMap<i64, Vec<&str>> = HashMap::new();
        for (_, c) in &checked {
            by_program
                .entry(c.program_id)
                .or_default()
                .push(&c.body.reference);
        }
        for (program_id, refs) in by_program {
            let used: Vec<String> = ledger_entries::table
                .filter(ledger_entries::program_id.eq(program_id))
                .filter(ledger_entries::reference.eq_any(refs))
                .select(ledger_entries::reference)
                .load(conn)?;
            taken.extend(used.into_iter().map(|r| (program_id, r)));
        }

        // Live payments already on the ledger (not reversed, not sent back whole by the bank)
        // to this batch's recipients in its programs and periods: another one for the same
        // program, period and recipient is refused unless its memo says why.
        let mut paid: HashMap<(i64, String, String), Vec<(i64, String)>> = HashMap::new();
        let programs: Vec<i64> = checked
            .iter()
            .map(|(_, c)| c.program_id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let periods: Vec<&str> = checked
            .iter()
            .map(|(_, c)| c.body.period.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // Reversals anywhere in this batch undo their payments first, whatever the order.
        let reversed_here: HashSet<i64> = checked
            .iter()
            .filter(|(_, c)| c.body.kind == EntryKind::Reversal)
            .filter_map(|(_, c)| c.body.source)
            .collect();
        type PaidRow = (
            i64,
            i64,
            String,
            Option<String>,
            String,
            Option<i64>,
            Option<i64>,
        );
        for chunk in pseudonyms.chunks(LOOKUP_VALUES_MAX) {
            let rows: Vec<PaidRow> = ledger_entries::table
                .left_join(ledger_funds::table.on(ledger_funds::seq.eq(ledger_entries::seq)))
                .filter(ledger_entries::to_recipient.eq_any(chunk))
                .filter(ledger_entries::kind.eq(EntryKind::Disbursement.as_str()))
                .filter(ledger_entries::program_id.eq_any(&programs))
                .filter(ledger_entries::period.eq_any(&periods))
                .select((
                    ledger_entries::seq,
                    ledger_entries::program_id,
                    ledger_entries::period,
                    ledger_entries::to_recipient,
                    ledger_entries::reference,
                    ledger_funds::reversed_by.nullable(),
                    ledger_funds::remaining_minor.nullable(),
                ))
                .order(ledger_entries::seq)
                .load(conn)?;
            for (seq, program_id, period, recipient, reference, reversed_by, remaining) in rows {
                let live = reversed_by.is_none()
                    && remaining.is_none_or(|r| r > 0)
                    && !reversed_here.contains(&seq);
                if let (Some(recipient), true) = (recipient, live) {
                    paid.entry((program_id, period, recipient))
                        .or_default()
                        .push((seq, reference));
                }
            }
        }

        // Funds of every source, and of the sources of entries being reversed.
        let mut state = FundsState::new();
        let sources: Vec<i64> = checked.iter().filter_map(|(_, c)| c.body.source).collect();
        load_funds(conn, &dir, &sources, &mut state)?;
        let parents: Vec<i64> = checked
            .iter()
            .filter(|(_, c)| c.body.kind == EntryKind::Reversal)
            .filter_map(|(_, c)| {
                c.body
                    .source
                    .and_then(|s| state.get(s))
                    .and_then(|f| f.source)
            })
            .filter(|p| state.get(*p).is_none())
            .collect();
        load_funds(conn, &dir, &parents, &mut state)?;

        let mut rows = Vec::with_capacity(checked.len());
        let mut prev = head_hash;
        let recorded_text = format_micros(recorded_at);
        let mut outcome_entries = Vec::with_capacity(checked.len());
        for (i, c) in &checked {
            let seq = head_seq + 1 + *i as i64;
            let mut bad =
                |code, field: &str, msg: String| problems.push(problem(*i, code, field, msg));
            let program = dir.program(c.program_id).expect("checked programs exist");
            let to = c.body.to.as_deref().and_then(|code| dir.org_by_code(code));
            if c.body.to.is_some() && to.is_none() {
                bad(
                    ErrorCode::UnknownOrg,
                    "to",
                    format!(
                        "org {} is not registered",
                        c.body.to.as_deref().unwrap_or("")
                    ),
                );
                continue;
            }
            let to_facts: Option<OrgFacts> = to.map(|o| dir.facts(o.id));
            let owner = dir
                .org(program.owner_org_id)
                .map(|o| o.code.as_str())
                .unwrap_or("");
            if let Err(b) = check_authority(c.body.kind, &author_facts, to_facts.as_ref(), owner) {
                bad(b.code, b.field, b.message);
                continue;
            }
            if let Some(p) = &c.body.recipient {
                match recipient_map.get(p) {
                    None => {
                        bad(
                            ErrorCode::UnknownRecipient,
                            "recipient",
                            format!("recipient {p} is not registered"),
                        );
                        continue;
                    }
                    Some((home, _, _)) if *home != author_info.id => {
                        bad(
                            ErrorCode::RecipientNotInOffice,
                            "recipient",
                            format!("recipient {p} belongs to another office"),
                        );
                        continue;
                    }
                    Some((_, status, since)) => {
                        let status =
                            RecipientStatus::parse(status).unwrap_or(RecipientStatus::Suspended);
                        let since = since.as_deref().and_then(parse_date);
                        let payable = status == RecipientStatus::Active
                            || since.is_some_and(|d| d > c.value_date);
                        if !payable {
                            bad(
                                ErrorCode::RecipientNotPayable,
                                "recipient",
                                format!(
                                    "recipient {p} is {status} as of {}",
                                    since.map(|d| d.to_string()).unwrap_or_default()
                                ),
                            );
                            continue;
                        }
                    }
                }
            }
            // Only entries already on the ledger can be drawn on or reversed: a reference to one
            // in this batch would depend on the client guessing sequence numbers.
            if let Some(source) = c.body.source.filter(|s| *s > head_seq) {
                bad(
                    ErrorCode::UnknownSource,
                    "source",
                    format!("entry #{source} is not on the ledger yet (it is #{head_seq} long); draw only on appended entries"),
                );
                continue;
            }
            let facts = Facts {
                seq,
                kind: c.body.kind,
                program: &program.code,
                period: c.period,
                source: c.body.source,
                to_org: c.body.to.as_deref(),
                author: &author,
                amount_minor: c.amount_minor,
                minor_units: program.minor_units,
            };
            // Before the money rules, so a roster sent twice says `already_paid` even where
            // the money would not suffice.
            if let (EntryKind::Disbursement, Some(recipient)) = (c.body.kind, &c.body.recipient) {
                let earlier = paid.entry((c.program_id, c.body.period.clone(), recipient.clone()));
                let earlier = earlier.or_default();
                if let Some((first, reference)) = earlier.first() {
                    if second_payment_reason(&c.body.memo).is_none() {
                        bad(
                            ErrorCode::AlreadyPaid,
                            "recipient",
                            format!(
                                "recipient {recipient} is already paid for {} {} by entry #{first} \
                                 (reference {reference}); to pay again on purpose, start the memo \
                                 with `再次发放：` and the reason (`disburse --second-payment REASON`)",
                                program.code, c.body.period
                            ),
                        );
                        continue;
                    }
                }
                earlier.push((seq, c.body.reference.clone()));
            }
            if let Err(b) = state.apply(&facts) {
                bad(b.code, b.field, b.message);
                continue;
            }
            // After the money rules, so a repeated reversal says `already_reversed`.
            if !taken.insert((c.program_id, c.body.reference.clone())) {
                bad(
                    ErrorCode::DuplicateReference,
                    "reference",
                    format!(
                        "reference {} is already used in program {}",
                        c.body.reference, program.code
                    ),
                );
                continue;
            }
            if !problems.is_empty() {
                continue; // keep checking to report everything, but build nothing
            }
            let hash = entry_hash(
                &c.body,
                &ChainFields {
                    seq,
                    author: &author,
                    batch: &verified.nonce,
                    recorded_at: &recorded_text,
                    prev_hash: &prev,
                },
            );
            rows.push(LedgerEntryRow {
                seq,
                kind: c.body.kind.as_str().to_string(),
                program_id: c.program_id,
                period: c.body.period.clone(),
                source_seq: c.body.source,
                from_org_id: c.body.from.as_ref().map(|_| author_info.id),
                to_org_id: to.map(|o| o.id),
                to_recipient: c.body.recipient.clone(),
                amount_minor: c.amount_minor,
                reference: c.body.reference.clone(),
                memo: c.body.memo.clone(),
                author_org_id: author_info.id,
                submission_id,
                value_date: c.body.value_date.clone(),
                recorded_at,
                prev_hash: prev.to_vec(),
                hash: hash.to_vec(),
            });
            outcome_entries.push(AppendedEntry {
                seq,
                reference: c.body.reference.clone(),
                hash: hex::encode(hash),
            });
            prev = hash;
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.item);
            return Err(AppError::batch(problems));
        }
        assert_eq!(
            rows.len(),
            count,
            "every entry passed, so every entry is written"
        );

        insert_entries(conn, &rows)?;
        let last_seq = head_seq + count as i64;
        save_changed_funds(conn, &state, head_seq)?;
        let mut new_funds = Vec::new();
        // Funds rows for what can be drawn on; a payment needs one only when reversed.
        for seq in head_seq + 1..=last_seq {
            if let Some(f) = state
                .get(seq)
                .filter(|f| f.kind.is_drawable() || f.reversed_by.is_some())
            {
                new_funds.push(LedgerFundsRow {
                    seq,
                    remaining_minor: f.remaining_minor,
                    reversed_by: f.reversed_by,
                });
            }
        }
        insert_funds(conn, &new_funds)?;
        Ok(AppendOutcome {
            batch: verified.nonce.clone(),
            first_seq: head_seq + 1,
            last_seq,
            count,
            head_hash: hex::encode(prev),
            entries: outcome_entries,
        })
    })
}
