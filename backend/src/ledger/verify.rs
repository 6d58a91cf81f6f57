//! Verifying the whole chain from any copy of it: a database file or a server's export.
//!
//! Checked for every entry, trusting nothing stored but the entries and submissions
//! themselves: dense sequence numbers, each `prev_hash` equal to the previous entry's hash,
//! each hash recomputed from the canonical bytes, each batch's signature by a key of its
//! author that was valid when the batch was recorded, the authority rules, and conservation
//! recomputed from scratch.

use super::read::{Directory, EntryFilter, EntryPage};
use super::rules::check_shape_of;
use super::rules::{check_authority, Facts, FundsState, OrgFacts};
use super::{
    write_entry_canonical, BodyRef, ChainFields, ChainSpans, EntryView, SubmissionView,
    ENTRIES_PURPOSE, GENESIS_HASH, STATEMENTS_PURPOSE,
};
use crate::crypto::{self, sha256};
use crate::db::DbConn;
use crate::domain::{parse_time, EntryKind, Micros, Period};
use crate::error::AppResult;
use crate::money::parse_amount;
use crate::signing::signing_message;
use diesel::prelude::*;
use fundtrail_schema::rows::OrgKeyRow;
use fundtrail_schema::schema::org_keys;
use ring::digest;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// A registered public key, as verification needs it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct KeyView {
    pub org: String,
    pub key_id: String,
    /// 32-byte Ed25519 public key, standard base64.
    pub public_key: String,
    pub valid_from: String,
    pub valid_until: Option<String>,
    /// The org that registered the key: the org itself, or the admin (onboarding, recovery).
    pub registered_by: String,
}

/// What verification needs besides the entries: orgs, programs and keys.
#[derive(Debug, Default)]
pub struct Reference {
    pub orgs: HashMap<String, OrgFacts>,
    /// program code -> (owner org code, minor units)
    pub programs: HashMap<String, (String, u32)>,
    pub keys: HashMap<String, KeyView>,
}

/// A copy of the ledger to verify.
pub trait LedgerCopy {
    fn reference(&mut self) -> AppResult<Reference>;
    /// Entries with seq > `after`, in order, with their submissions.
    fn page(&mut self, after: i64) -> AppResult<EntryPage>;
    /// The database behind the copy and its directory (as loaded by `reference`), if the
    /// copy is one: verification then reads the stored columns directly instead of pages of
    /// views, with the same checks and the same reports.
    fn database(&mut self) -> Option<(&mut DbConn, &Directory)> {
        None
    }
}

/// A database file (or any connection).
pub struct DbCopy<'a> {
    pub conn: &'a mut DbConn,
    dir: Option<Directory>,
    /// Verify through `page` like any other copy (to compare the two paths in tests).
    pages_only: bool,
}

impl<'a> DbCopy<'a> {
    pub fn new(conn: &'a mut DbConn) -> DbCopy<'a> {
        DbCopy {
            conn,
            dir: None,
            pages_only: false,
        }
    }

    /// A copy that verification reads through [`LedgerCopy::page`], as it reads a server's
    /// export: the reference path the direct database path must agree with.
    pub fn through_pages(conn: &'a mut DbConn) -> DbCopy<'a> {
        DbCopy {
            pages_only: true,
            ..DbCopy::new(conn)
        }
    }
}

/// Key rows as API views.
pub fn key_views(conn: &mut DbConn, dir: &Directory) -> AppResult<Vec<KeyView>> {
    let rows: Vec<OrgKeyRow> = org_keys::table
        .select(OrgKeyRow::as_select())
        .order(org_keys::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|k| KeyView {
            org: dir
                .org(k.org_id)
                .map(|o| o.code.clone())
                .unwrap_or_default(),
            key_id: k.key_id,
            public_key: crypto::b64(&k.public_key),
            valid_from: crate::domain::format_micros(k.valid_from),
            valid_until: k.valid_until.map(crate::domain::format_micros),
            registered_by: dir
                .org(k.registered_by_org_id)
                .map(|o| o.code.clone())
                .unwrap_or_default(),
        })
        .collect())
}

impl LedgerCopy for DbCopy<'_> {
    fn reference(&mut self) -> AppResult<Reference> {
        let dir = Directory::load(self.conn)?;
        let mut r = Reference::default();
        for o in dir.orgs() {
            r.orgs.insert(o.code.clone(), dir.facts(o.id));
        }
        for p in dir.programs() {
            let owner = dir
                .org(p.owner_org_id)
                .map(|o| o.code.clone())
                .unwrap_or_default();
            r.programs.insert(p.code.clone(), (owner, p.minor_units));
        }
        for k in key_views(self.conn, &dir)? {
            r.keys.insert(k.key_id.clone(), k);
        }
        self.dir = Some(dir);
        Ok(r)
    }

    fn page(&mut self, after: i64) -> AppResult<EntryPage> {
        if self.dir.is_none() {
            self.dir = Some(Directory::load(self.conn)?);
        }
        let filter = EntryFilter {
            after: Some(after),
            limit: Some(super::read::PAGE_ENTRIES_MAX),
            ..Default::default()
        };
        super::read::list(self.conn, self.dir.as_ref().expect("loaded above"), &filter)
    }

    fn database(&mut self) -> Option<(&mut DbConn, &Directory)> {
        if self.pages_only {
            return None;
        }
        self.dir.as_ref().map(|d| (&mut *self.conn, d))
    }
}

/// Where and why the chain first fails.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub seq: i64,
    pub reason: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub entries_checked: i64,
    pub batches_checked: i64,
    pub head_seq: i64,
    pub head_hash: String,
    pub failure: Option<Failure>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// One entry as the verifier reads it, borrowed from a page of views or from a chunk of
/// stored rows, with what the database reader already worked out.
struct EntryIn<'a> {
    seq: i64,
    body: BodyRef<'a>,
    author: &'a str,
    batch: &'a str,
    recorded_at: &'a str,
    /// The stored `prev_hash` and `hash` as bytes (None if they are not 32 bytes).
    prev_hash: Option<[u8; 32]>,
    hash: Option<[u8; 32]>,
    /// `recorded_at` parsed (as `parse_time` does, `i64::MIN` if it does not parse).
    time: Option<Micros>,
    /// (amount, minor units) where `amount` is known to be that amount's canonical text.
    amount_minor: Option<(i64, u32)>,
}

impl<'a> EntryIn<'a> {
    fn of_view(e: &'a EntryView) -> EntryIn<'a> {
        EntryIn {
            seq: e.seq,
            body: BodyRef {
                kind: e.kind,
                program: &e.program,
                period: &e.period,
                source: e.source,
                from: e.from.as_deref(),
                to: e.to.as_deref(),
                recipient: e.recipient.as_deref(),
                amount: &e.amount,
                reference: &e.reference,
                memo: &e.memo,
                value_date: &e.value_date,
            },
            author: &e.author,
            batch: &e.batch,
            recorded_at: &e.recorded_at,
            prev_hash: hash_bytes(&e.prev_hash),
            hash: hash_bytes(&e.hash),
            time: None,
            amount_minor: None,
        }
    }
}

struct Batch {
    nonce: String,
    first_seq: i64,
    last_seq: i64,
    author: String,
    recorded_at: Micros,
    /// Bank facts (confirmations, returns) from a statement upload, signed through the upload's
    /// manifest; otherwise a ledger batch whose signed payload is rebuilt from its bodies.
    bank_facts: bool,
    /// SHA-256 of the payload `{"entries":[…` rebuilt so far (ledger batches only): the
    /// bytes of [`super::batch_payload_canonical`], fed body by body.
    payload: Option<digest::Context>,
}

/// Programs and orgs of the reference, by code, with the last code looked up remembered
/// (entries come in long runs of one program and one author).
struct Lookup {
    index: HashMap<String, usize>,
    last: (String, Option<usize>),
}

impl Lookup {
    fn new(codes: impl Iterator<Item = String>) -> Lookup {
        let index: HashMap<String, usize> = codes.enumerate().map(|(i, c)| (c, i)).collect();
        let empty = index.get("").copied();
        Lookup {
            index,
            last: (String::new(), empty),
        }
    }

    fn get(&mut self, code: &str) -> Option<usize> {
        if self.last.0 != code {
            self.last.0.clear();
            self.last.0.push_str(code);
            self.last.1 = self.index.get(code).copied();
        }
        self.last.1
    }
}

struct Verifier {
    reference: Reference,
    /// (owner code, minor units) of each program, indexed through `program_ix`.
    programs: Vec<(String, u32)>,
    program_ix: Lookup,
    orgs: Vec<OrgFacts>,
    author_ix: Lookup,
    to_ix: Lookup,
    state: FundsState,
    expected_seq: i64,
    prev_hash: [u8; 32],
    prev_time: Micros,
    submissions: HashMap<String, SubmissionView>,
    batch: Option<Batch>,
    seen_batches: HashSet<String>,
    failure: Option<Failure>,
    batches_checked: i64,
    /// The last `recorded_at` text and its value.
    last_time: (String, Micros),
    /// The last period text and what it parses to.
    last_period: (String, Option<Period>),
    /// Reused for canonical bytes.
    scratch: String,
}

/// A stored hash's 64 hex digits as bytes (None if they are not).
fn hash_bytes(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// Feeds the body's canonical JSON to `payload`: the pieces of the entry's canonical bytes
/// (`spans` of `canonical`) that are the body's.
fn feed_body(payload: &mut digest::Context, canonical: &str, spans: ChainSpans) {
    for piece in spans.body_pieces(canonical, 0) {
        payload.update(piece.as_bytes());
    }
}

/// Records a failure at `seq` unless an earlier (or equal) seq already failed.
fn fail_at(failure: &mut Option<Failure>, seq: i64, reason: String) {
    if failure.as_ref().is_none_or(|f| seq < f.seq) {
        *failure = Some(Failure { seq, reason });
    }
}

impl Verifier {
    fn new(reference: Reference, funds_capacity: usize) -> Verifier {
        let programs_sorted: Vec<(&String, &(String, u32))> = reference.programs.iter().collect();
        let programs = programs_sorted.iter().map(|(_, v)| (*v).clone()).collect();
        let program_ix = Lookup::new(programs_sorted.iter().map(|(c, _)| (*c).clone()));
        let orgs_listed: Vec<(&String, &OrgFacts)> = reference.orgs.iter().collect();
        let orgs = orgs_listed.iter().map(|(_, f)| (*f).clone()).collect();
        let org_codes = || orgs_listed.iter().map(|(c, _)| (*c).clone());
        let author_ix = Lookup::new(org_codes());
        let to_ix = Lookup::new(org_codes());
        Verifier {
            programs,
            program_ix,
            orgs,
            author_ix,
            to_ix,
            reference,
            state: FundsState::untracked(funds_capacity),
            expected_seq: 1,
            prev_hash: GENESIS_HASH,
            prev_time: i64::MIN,
            submissions: HashMap::new(),
            batch: None,
            seen_batches: HashSet::new(),
            failure: None,
            batches_checked: 0,
            last_time: (String::new(), i64::MIN),
            last_period: (String::new(), None),
            scratch: String::with_capacity(1024),
        }
    }

    fn fail(&mut self, seq: i64, reason: String) {
        fail_at(&mut self.failure, seq, reason);
    }

    /// Whether reading further can change the report: not once a failure is known and its
    /// batch is closed, as later entries cannot fail earlier.
    fn settled(&self) -> bool {
        self.failure.is_some()
            && self
                .batch
                .as_ref()
                .is_none_or(|b| b.first_seq > self.failure.as_ref().map(|f| f.seq).unwrap_or(0))
    }

    fn entry(&mut self, e: &EntryIn<'_>) {
        let seq = e.seq;
        if seq != self.expected_seq {
            return self.fail(
                self.expected_seq,
                format!(
                    "entry #{} is missing (found #{seq} next)",
                    self.expected_seq
                ),
            );
        }
        self.expected_seq += 1;
        if e.prev_hash != Some(self.prev_hash) {
            self.fail(
                seq,
                "prev_hash does not equal the previous entry's hash (the chain is broken here)"
                    .into(),
            );
        }
        // The entry's canonical bytes: the body's (for the batch's signed payload) are among
        // them.
        self.scratch.clear();
        let canonical = write_entry_canonical(
            &mut self.scratch,
            &e.body,
            &ChainFields {
                seq,
                author: e.author,
                batch: e.batch,
                recorded_at: e.recorded_at,
                prev_hash: &self.prev_hash,
            },
        );
        let recomputed = sha256(self.scratch.as_bytes());
        if e.hash != Some(recomputed) {
            self.fail(
                seq,
                "the stored hash does not match the entry's content (altered entry)".into(),
            );
        }
        // Continue the chain from the stored hash, so one altered entry is reported once.
        self.prev_hash = e.hash.unwrap_or(recomputed);
        let recorded_at = match e.time {
            Some(t) => t,
            None => {
                // Entries of a batch share their time: parse each new one once.
                if self.last_time.0 != e.recorded_at {
                    self.last_time.0.clear();
                    self.last_time.0.push_str(e.recorded_at);
                    self.last_time.1 = parse_time(e.recorded_at).unwrap_or(i64::MIN);
                }
                self.last_time.1
            }
        };
        if recorded_at < self.prev_time {
            self.fail(seq, "recorded_at goes back in time".into());
        }
        self.prev_time = recorded_at;

        // Rules.
        let Some(program) = self.program_ix.get(e.body.program) else {
            return self.fail(seq, format!("program {} is unknown", e.body.program));
        };
        let (owner, minor_units) = &self.programs[program];
        let minor_units = *minor_units;
        let amount_minor = match e.amount_minor {
            Some((amount, units)) if units == minor_units => amount,
            _ => match parse_amount(e.body.amount, minor_units) {
                Ok(a) => a,
                Err(err) => return fail_at(&mut self.failure, seq, format!("amount: {err}")),
            },
        };
        if self.last_period.0 != e.body.period {
            self.last_period.0.clear();
            self.last_period.0.push_str(e.body.period);
            self.last_period.1 = e.body.period.parse::<Period>().ok();
        }
        let Some(period) = self.last_period.1 else {
            return fail_at(
                &mut self.failure,
                seq,
                format!("period {} is malformed", e.body.period),
            );
        };
        let Some(author) = self.author_ix.get(e.author) else {
            return fail_at(
                &mut self.failure,
                seq,
                format!("author {} is unknown", e.author),
            );
        };
        for b in check_shape_of(e.body.kind, &e.body, e.author) {
            fail_at(
                &mut self.failure,
                seq,
                format!("{}: {} ({})", b.code.as_str(), b.message, b.field),
            );
        }
        let to = e.body.to.and_then(|t| self.to_ix.get(t));
        if let Err(b) = check_authority(
            e.body.kind,
            &self.orgs[author],
            to.map(|t| &self.orgs[t]),
            owner,
        ) {
            fail_at(
                &mut self.failure,
                seq,
                format!("{}: {}", b.code.as_str(), b.message),
            );
        }
        let facts = Facts {
            seq,
            kind: e.body.kind,
            program: e.body.program,
            period,
            source: e.body.source,
            to_org: e.body.to,
            author: e.author,
            amount_minor,
            minor_units,
        };
        if let Err(b) = self.state.apply(&facts) {
            self.fail(
                seq,
                format!("conservation: {}: {}", b.code.as_str(), b.message),
            );
        }

        // Batches are contiguous runs of entries sharing a nonce.
        if self.batch.as_ref().is_some_and(|b| b.nonce != e.batch) {
            self.finish_batch();
        }
        let bank_fact = matches!(e.body.kind, EntryKind::Confirmation | EntryKind::Return);
        match &mut self.batch {
            Some(b) => {
                if b.bank_facts != bank_fact {
                    fail_at(
                        &mut self.failure,
                        seq,
                        "a batch mixes bank confirmations/returns with other entries".into(),
                    );
                }
                if b.recorded_at != recorded_at {
                    fail_at(&mut self.failure, seq, "recorded_at differs from the rest of its batch (a batch is recorded at once)".into());
                }
                if b.author != e.author {
                    fail_at(
                        &mut self.failure,
                        seq,
                        format!(
                            "author {} differs from its batch's author {}",
                            e.author, b.author
                        ),
                    );
                }
                if let Some(payload) = &mut b.payload {
                    payload.update(b",");
                    feed_body(payload, &self.scratch, canonical);
                }
                b.last_seq = seq;
            }
            None => {
                if !self.seen_batches.contains(e.batch) {
                    self.seen_batches.insert(e.batch.to_string());
                } else {
                    self.fail(seq, format!("batch {} appears twice in the chain", e.batch));
                }
                let payload = (!bank_fact).then(|| {
                    let mut payload = digest::Context::new(&digest::SHA256);
                    payload.update(b"{\"entries\":[");
                    feed_body(&mut payload, &self.scratch, canonical);
                    payload
                });
                self.batch = Some(Batch {
                    nonce: e.batch.to_string(),
                    first_seq: seq,
                    last_seq: seq,
                    author: e.author.to_string(),
                    recorded_at,
                    bank_facts: bank_fact,
                    payload,
                });
            }
        }
    }

    fn finish_batch(&mut self) {
        let Some(b) = self.batch.take() else { return };
        self.batches_checked += 1;
        let Some(sub) = self.submissions.remove(&b.nonce) else {
            return self.fail(
                b.first_seq,
                format!("the signed submission {} is missing", b.nonce),
            );
        };
        let purpose = if b.bank_facts {
            STATEMENTS_PURPOSE
        } else {
            ENTRIES_PURPOSE
        };
        if sub.org != b.author || sub.purpose != purpose {
            return self.fail(
                b.first_seq,
                format!(
                    "submission {} was not a {} signed by {}",
                    b.nonce,
                    if b.bank_facts {
                        "statement upload"
                    } else {
                        "ledger batch"
                    },
                    b.author
                ),
            );
        }
        let Some(key) = self.reference.keys.get(&sub.key_id) else {
            return self.fail(b.first_seq, format!("key {} is not registered", sub.key_id));
        };
        if key.org != b.author {
            return self.fail(
                b.first_seq,
                format!(
                    "key {} belongs to {}, not {}",
                    sub.key_id, key.org, b.author
                ),
            );
        }
        let from = parse_time(&key.valid_from).unwrap_or(i64::MAX);
        let until = key.valid_until.as_deref().and_then(parse_time);
        if b.recorded_at < from || until.is_some_and(|u| b.recorded_at >= u) {
            return self.fail(
                b.first_seq,
                format!(
                    "key {} was not valid when the batch was recorded",
                    sub.key_id
                ),
            );
        }
        let signed_at = parse_time(&sub.signed_at).unwrap_or(i64::MIN);
        if signed_at.saturating_sub(b.recorded_at).abs() > crate::signing::SIGNED_AT_SKEW_MAX_MICROS
        {
            return self.fail(
                b.first_seq,
                format!(
                    "batch {} was signed at {}, too far from when it was recorded",
                    b.nonce, sub.signed_at
                ),
            );
        }
        // Bank facts are vouched for by the uploader's signature over the statement's manifest,
        // which names the file's SHA-256; the facts themselves are recomputable from that file.
        let digest: [u8; 32] = match (b.bank_facts, b.payload) {
            (false, Some(mut payload)) => {
                payload.update(b"]}");
                payload
                    .finish()
                    .as_ref()
                    .try_into()
                    .expect("SHA-256 is 32 bytes")
            }
            (false, None) => sha256(b"{\"entries\":[]}"),
            (true, _) => match &sub.manifest {
                Some(m) => sha256(m.as_bytes()),
                None => {
                    return self.fail(
                        b.first_seq,
                        format!(
                            "the signed manifest of statement upload {} is missing",
                            b.nonce
                        ),
                    )
                }
            },
        };
        let message = signing_message(
            &sub.purpose,
            &sub.org,
            &sub.key_id,
            &sub.nonce,
            &sub.signed_at,
            &digest,
        );
        let public_key = crypto::b64_decode(&key.public_key).unwrap_or_default();
        let signature = crypto::b64_decode(&sub.signature).unwrap_or_default();
        if !crypto::verify_signature(&public_key, &message, &signature) {
            // An entry of this batch that already failed (say, its hash), or the entry that cut the
            // batch short, explains the signature failure more precisely than the batch's first
            // seq would: that is the entry that was changed.
            let explained = self
                .failure
                .as_ref()
                .is_some_and(|f| (b.first_seq..=b.last_seq + 1).contains(&f.seq));
            if !explained {
                self.fail(
                    b.first_seq,
                    format!(
                        "the signature of batch {} (entries #{}-#{}) does not verify",
                        b.nonce, b.first_seq, b.last_seq
                    ),
                );
            }
        }
    }

    fn report(mut self, head_seq: i64) -> VerifyReport {
        self.finish_batch();
        VerifyReport {
            entries_checked: self.expected_seq - 1,
            batches_checked: self.batches_checked,
            head_seq,
            head_hash: hex::encode(self.prev_hash),
            failure: self.failure,
        }
    }
}

/// Verifies `copy` from the first entry to its head, calling `progress` with each checked seq.
pub fn verify(copy: &mut dyn LedgerCopy, progress: &mut dyn FnMut(i64)) -> AppResult<VerifyReport> {
    verify_upto(copy, i64::MAX, progress)
}

/// Verifies `copy` from the first entry to entry `seq_max` (a head seen earlier, so that a
/// check running beside other readers covers exactly their state; batches end at a head).
pub fn verify_upto(
    copy: &mut dyn LedgerCopy,
    seq_max: i64,
    progress: &mut dyn FnMut(i64),
) -> AppResult<VerifyReport> {
    let reference = copy.reference()?;
    if let Some((conn, dir)) = copy.database() {
        let mut v = Verifier::new(reference, 0);
        let head = stored::verify_rows(&mut v, conn, dir, seq_max, progress)?;
        return Ok(v.report(head));
    }
    let mut v = Verifier::new(reference, 0);
    let mut after = 0;
    loop {
        let page = copy.page(after)?;
        for s in page.submissions {
            v.submissions.insert(s.nonce.clone(), s);
        }
        let mut reached_max = false;
        for e in &page.entries {
            if e.seq > seq_max {
                reached_max = true;
                break;
            }
            v.entry(&EntryIn::of_view(e));
            after = e.seq;
        }
        progress(after);
        if reached_max || after >= seq_max {
            break;
        }
        if v.settled() {
            break;
        }
        if page.next_cursor.is_none() {
            break;
        }
    }
    Ok(v.report(after))
}

/// The raw baseline of verification: the canonical bytes of every stored entry (chained as
/// verification chains them), built untimed a chunk at a time, and SHA-256 over each entry's
/// bytes timed alone. Returns (entries, bytes hashed, seconds spent hashing).
pub fn sha256_baseline(
    conn: &mut DbConn,
    progress: &mut dyn FnMut(i64),
) -> AppResult<(i64, u64, f64)> {
    let dir = Directory::load(conn)?;
    stored::sha256_baseline(conn, &dir, progress)
}

/// Verification straight from the database's columns: one thread reads and decodes rows (ints,
/// blobs, text copied once into a reused buffer; codes resolved by id through the directory),
/// while the caller's thread hashes each entry and runs the checks above on them. What the checker sees and reports is what it would see through [`LedgerCopy::page`],
/// page by page: the same entries (those whose submission exists), the same errors, the same
/// stopping points.
mod stored {
    use super::*;
    use crate::domain::format_micros;
    use crate::error::AppError;
    use crate::ledger::push_int;
    use crate::money::{format_minor, AMOUNT_MINOR_MAX};
    use diesel::deserialize::{self, FromSql, FromSqlRow};
    use diesel::sql_types::{Binary, Text};
    use diesel::sqlite::{Sqlite, SqliteValue};
    use diesel::SqliteConnection;
    use fundtrail_schema::rows::{LedgerEntryRow, SubmissionRow};
    use fundtrail_schema::schema::{ledger_entries, statements, submissions};
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::sync::mpsc;

    /// Rows per query of the reader.
    const READ_ROWS: i64 = 4096;
    /// Entries per page of [`LedgerCopy::page`] (the checker stops where paging would).
    const PAGE: usize = super::super::read::PAGE_ENTRIES_MAX as usize;

    thread_local! {
        /// Where text columns are copied while a query is read: the chunk's text, lent.
        static ARENA: RefCell<String> = const { RefCell::new(String::new()) };
    }

    /// A text column, copied into the chunk's text: its byte range there (None if the
    /// stored bytes are not UTF-8, which reading it as a `String` refuses).
    #[derive(Debug, Clone, Copy, FromSqlRow)]
    pub(super) struct Text32(Option<(usize, usize)>);

    impl FromSql<Text, Sqlite> for Text32 {
        fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            // The stored bytes, checked once (`read_text` would check them, and replace invalid
            // bytes with U+FFFD, which would then have to be looked for).
            let Ok(text) = std::str::from_utf8(value.read_blob()) else {
                return Ok(Text32(None));
            };
            Ok(ARENA.with(|a| {
                let mut a = a.borrow_mut();
                let start = a.len();
                a.push_str(text);
                Text32(Some((start, a.len())))
            }))
        }
    }

    /// A stored hash: its bytes if there are 32 of them.
    #[derive(Debug, Clone, Copy, FromSqlRow)]
    pub(super) struct Hash32(Option<[u8; 32]>);

    impl FromSql<Binary, Sqlite> for Hash32 {
        fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            Ok(Hash32(value.read_blob().try_into().ok()))
        }
    }

    type RawRow = (
        i64,
        Text32,
        i64,
        Text32,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<Text32>,
        i64,
        Text32,
        Text32,
        i64,
        i64,
        Text32,
        i64,
        Hash32,
        Hash32,
    );

    /// A byte range of a chunk's text.
    #[derive(Debug, Clone, Copy, Default)]
    struct Span(usize, usize);

    impl Span {
        fn of(self, text: &str) -> &str {
            &text[self.0..self.1]
        }
    }

    /// One entry, decoded: its text fields are spans of the chunk's text.
    struct Row {
        seq: i64,
        kind: EntryKind,
        source: Option<i64>,
        program: Span,
        period: Span,
        from: Option<Span>,
        to: Option<Span>,
        recipient: Option<Span>,
        amount: Span,
        reference: Span,
        memo: Span,
        value_date: Span,
        author: Span,
        batch: Span,
        recorded_at: Span,
        prev_hash: Option<[u8; 32]>,
        hash: Option<[u8; 32]>,
        time: Micros,
        amount_minor: Option<(i64, u32)>,
    }

    impl Row {
        /// What the chain adds to the body, were `prev_hash` the previous entry's hash.
        fn chain<'a>(&self, text: &'a str, prev_hash: &'a [u8; 32]) -> ChainFields<'a> {
            ChainFields {
                seq: self.seq,
                author: self.author.of(text),
                batch: self.batch.of(text),
                recorded_at: self.recorded_at.of(text),
                prev_hash,
            }
        }

        fn body<'a>(&self, text: &'a str) -> BodyRef<'a> {
            BodyRef {
                kind: self.kind,
                program: self.program.of(text),
                period: self.period.of(text),
                source: self.source,
                from: self.from.map(|s| s.of(text)),
                to: self.to.map(|s| s.of(text)),
                recipient: self.recipient.map(|s| s.of(text)),
                amount: self.amount.of(text),
                reference: self.reference.of(text),
                memo: self.memo.of(text),
                value_date: self.value_date.of(text),
            }
        }

        fn entry<'a>(&self, text: &'a str) -> EntryIn<'a> {
            EntryIn {
                seq: self.seq,
                body: self.body(text),
                author: self.author.of(text),
                batch: self.batch.of(text),
                recorded_at: self.recorded_at.of(text),
                prev_hash: self.prev_hash,
                hash: self.hash,
                time: Some(self.time),
                amount_minor: self.amount_minor,
            }
        }
    }

    /// Why reading stopped early, and how far ahead of a page's start paging would have
    /// met it (paging loads one row more than it shows, and names entries only for those).
    struct ReadError {
        error: AppError,
        window: usize,
        /// Whether paging from the page's start reproduces the error (decoding problems).
        replay: bool,
    }

    /// Rows decoded together, handed from the reader to the checker and back for reuse.
    #[derive(Default)]
    struct Chunk {
        rows: Vec<Row>,
        text: String,
        /// Submissions of the batches that start in this chunk.
        submissions: Vec<SubmissionView>,
        /// After the rows: the reader stopped here.
        error: Option<ReadError>,
        last: bool,
    }

    impl Chunk {
        fn clear(&mut self) {
            self.rows.clear();
            self.text.clear();
            self.submissions.clear();
            self.error = None;
            self.last = false;
        }
    }

    /// Appends `minor` as `format_minor` writes it, for amounts `parse_amount` reads back to
    /// the same value; false (nothing written) for any other.
    pub(super) fn push_minor(out: &mut String, minor: i64, minor_units: u32) -> bool {
        if !(1..=AMOUNT_MINOR_MAX).contains(&minor) || minor_units > 4 {
            return false;
        }
        let scale = 10i64.pow(minor_units);
        push_int(out, minor / scale);
        if minor_units > 0 {
            out.push('.');
            let frac = minor % scale;
            let mut digit = scale / 10;
            while digit > 0 {
                out.push(char::from(b'0' + ((frac / digit) % 10) as u8));
                digit /= 10;
            }
        }
        true
    }

    struct Reader<'d> {
        dir: &'d Directory,
        cursor: i64,
        raw: Vec<RawRow>,
        /// Submissions by id (None: no such submission, so paging's join drops the entry).
        subs: HashMap<i64, Option<SubmissionView>>,
        last_sub: Option<i64>,
        /// The last `recorded_at`: stored value, text, parsed text.
        time: (i64, String, Micros),
    }

    fn push(text: &mut String, s: &str) -> Span {
        let start = text.len();
        text.push_str(s);
        Span(start, text.len())
    }

    fn push_org(text: &mut String, dir: &Directory, id: i64) -> Span {
        match dir.org(id) {
            Some(o) => push(text, &o.code),
            None => push(text, &format!("?org{id}")),
        }
    }

    impl<'d> Reader<'d> {
        fn new(dir: &'d Directory) -> Reader<'d> {
            Reader {
                dir,
                cursor: 0,
                raw: Vec::with_capacity(READ_ROWS as usize),
                subs: HashMap::new(),
                last_sub: None,
                time: (i64::MIN, String::new(), i64::MIN),
            }
        }

        /// Reads the next rows into `chunk`; false once there are none.
        fn fill(&mut self, conn: &mut SqliteConnection, chunk: &mut Chunk) -> bool {
            match self.try_fill(conn, chunk) {
                Ok(more) => more,
                Err(error) => {
                    chunk.error = Some(ReadError {
                        error,
                        window: 0,
                        replay: false,
                    });
                    false
                }
            }
        }

        fn try_fill(&mut self, conn: &mut SqliteConnection, chunk: &mut Chunk) -> AppResult<bool> {
            use diesel::connection::DefaultLoadingMode;
            self.raw.clear();
            ARENA.with(|a| std::mem::swap(&mut *a.borrow_mut(), &mut chunk.text));
            let loaded = (|| -> QueryResult<()> {
                let rows = ledger_entries::table
                    .filter(ledger_entries::seq.gt(self.cursor))
                    .order(ledger_entries::seq.asc())
                    .limit(READ_ROWS)
                    .select((
                        ledger_entries::seq,
                        ledger_entries::kind,
                        ledger_entries::program_id,
                        ledger_entries::period,
                        ledger_entries::source_seq,
                        ledger_entries::from_org_id,
                        ledger_entries::to_org_id,
                        ledger_entries::to_recipient,
                        ledger_entries::amount_minor,
                        ledger_entries::reference,
                        ledger_entries::memo,
                        ledger_entries::author_org_id,
                        ledger_entries::submission_id,
                        ledger_entries::value_date,
                        ledger_entries::recorded_at,
                        ledger_entries::prev_hash,
                        ledger_entries::hash,
                    ))
                    .load_iter::<RawRow, DefaultLoadingMode>(conn)?;
                for row in rows {
                    self.raw.push(row?);
                }
                Ok(())
            })();
            ARENA.with(|a| std::mem::swap(&mut *a.borrow_mut(), &mut chunk.text));
            loaded?;
            let Some(last) = self.raw.last() else {
                return Ok(false);
            };
            self.cursor = last.0;

            // The submissions of these rows, in one query.
            self.subs.retain(|id, _| Some(*id) == self.last_sub);
            let mut wanted: Vec<i64> = self
                .raw
                .iter()
                .map(|r| r.12)
                .filter(|id| !self.subs.contains_key(id))
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            if let (Some(&lo), Some(&hi)) = (wanted.first(), wanted.last()) {
                let joined = || {
                    submissions::table
                        .left_join(
                            statements::table.on(statements::submission_id.eq(submissions::id)),
                        )
                        .select((SubmissionRow::as_select(), statements::manifest.nullable()))
                        .order(submissions::id.asc())
                };
                // Batches are numbered as they are appended: the wanted ids are usually a dense
                // range, read through one statement prepared once (a list of ids is prepared
                // anew by every query).
                let dense = hi.saturating_sub(lo) < 2 * wanted.len() as i64 + 64;
                let found: Vec<(SubmissionRow, Option<String>)> = if dense {
                    joined()
                        .filter(submissions::id.between(lo, hi))
                        .load(conn)?
                } else {
                    joined()
                        .filter(submissions::id.eq_any(&wanted))
                        .load(conn)?
                };
                for id in &wanted {
                    self.subs.insert(*id, None);
                }
                for (s, manifest) in found {
                    let id = s.id;
                    if dense && wanted.binary_search(&id).is_err() {
                        continue;
                    }
                    let view = super::super::read::submission_view(self.dir, s, manifest);
                    self.subs.insert(id, Some(view));
                }
            }

            let raw = std::mem::take(&mut self.raw);
            for r in &raw {
                let (
                    seq,
                    kind,
                    program_id,
                    period,
                    source,
                    from_id,
                    to_id,
                    recipient,
                    amount_minor,
                    reference,
                    memo,
                    author_id,
                    submission_id,
                    value_date,
                    recorded_at,
                    prev_hash,
                    hash,
                ) = *r;
                // Paging joins entries to their submission: an entry without one is not there.
                let Some(Some(sub)) = self.subs.get(&submission_id) else {
                    continue;
                };
                let texts = [
                    Some(kind),
                    Some(period),
                    recipient,
                    Some(reference),
                    Some(memo),
                    Some(value_date),
                ];
                if texts.iter().flatten().any(|t| t.0.is_none()) {
                    // Not UTF-8: paging fails to load the page with this row; say it as it does.
                    let error = match ledger_entries::table
                        .filter(ledger_entries::seq.eq(seq))
                        .select(LedgerEntryRow::as_select())
                        .first::<LedgerEntryRow>(conn)
                    {
                        Err(e) => AppError::from(e),
                        Ok(_) => AppError::internal(format!("entry #{seq} is not UTF-8 text")),
                    };
                    chunk.error = Some(ReadError {
                        error,
                        window: PAGE + 1,
                        replay: true,
                    });
                    break;
                }
                let span = |t: Text32| {
                    let (a, b) = t.0.expect("checked above");
                    Span(a, b)
                };
                let Some(kind) = EntryKind::parse(span(kind).of(&chunk.text)) else {
                    chunk.error = Some(ReadError {
                        error: AppError::internal(format!("entry #{seq} has unknown kind")),
                        window: PAGE,
                        replay: true,
                    });
                    break;
                };
                if self.last_sub != Some(submission_id) {
                    self.last_sub = Some(submission_id);
                    chunk.submissions.push(sub.clone());
                }
                let text = &mut chunk.text;
                let batch = push(text, &sub.nonce);
                let program = self.dir.program(program_id);
                let minor_units = program.map(|p| p.minor_units).unwrap_or(2);
                let program = match program {
                    Some(p) => push(text, &p.code),
                    None => push(text, &format!("?program{program_id}")),
                };
                let amount_start = text.len();
                let amount_known = push_minor(text, amount_minor, minor_units);
                if !amount_known {
                    text.push_str(&format_minor(amount_minor, minor_units));
                }
                let amount = Span(amount_start, text.len());
                if self.time.0 != recorded_at || self.time.1.is_empty() {
                    let formatted = format_micros(recorded_at);
                    let parsed = parse_time(&formatted).unwrap_or(i64::MIN);
                    self.time = (recorded_at, formatted, parsed);
                }
                let recorded_at = push(text, &self.time.1);
                let row = Row {
                    seq,
                    kind,
                    source,
                    program,
                    period: span(period),
                    from: from_id.map(|id| push_org(text, self.dir, id)),
                    to: to_id.map(|id| push_org(text, self.dir, id)),
                    recipient: recipient.map(span),
                    amount,
                    reference: span(reference),
                    memo: span(memo),
                    value_date: span(value_date),
                    author: push_org(text, self.dir, author_id),
                    batch,
                    recorded_at,
                    prev_hash: prev_hash.0,
                    hash: hash.0,
                    time: self.time.2,
                    amount_minor: amount_known.then_some((amount_minor, minor_units)),
                };
                chunk.rows.push(row);
            }
            self.raw = raw;
            Ok(chunk.error.is_none())
        }
    }

    pub(super) fn sha256_baseline(
        db: &mut DbConn,
        dir: &Directory,
        progress: &mut dyn FnMut(i64),
    ) -> AppResult<(i64, u64, f64)> {
        let DbConn::Sqlite(conn) = db;
        let mut reader = Reader::new(dir);
        let mut chunk = Chunk::default();
        let mut bytes = String::new();
        let mut ends: Vec<usize> = Vec::new();
        let mut prev = GENESIS_HASH;
        let (mut entries, mut total, mut seconds) = (0i64, 0u64, 0f64);
        loop {
            chunk.clear();
            let more = reader.fill(conn, &mut chunk);
            if let Some(e) = chunk.error.take() {
                return Err(e.error);
            }
            bytes.clear();
            ends.clear();
            for row in &chunk.rows {
                write_entry_canonical(
                    &mut bytes,
                    &row.body(&chunk.text),
                    &row.chain(&chunk.text, &prev),
                );
                ends.push(bytes.len());
                prev = row.hash.unwrap_or(GENESIS_HASH);
            }
            let started = std::time::Instant::now();
            let mut start = 0;
            for &end in &ends {
                std::hint::black_box(sha256(&bytes.as_bytes()[start..end]));
                start = end;
            }
            seconds += started.elapsed().as_secs_f64();
            entries += chunk.rows.len() as i64;
            total += bytes.len() as u64;
            if let Some(last) = chunk.rows.last() {
                progress(last.seq);
            }
            if !more {
                return Ok((entries, total, seconds));
            }
        }
    }

    /// The reader thread: chunks until the end, an error, or the checker hangs up.
    fn read_chunks(
        conn: &mut SqliteConnection,
        dir: &Directory,
        to_checker: mpsc::SyncSender<Chunk>,
        recycled: mpsc::Receiver<Chunk>,
    ) {
        let mut reader = Reader::new(dir);
        loop {
            let mut chunk = recycled.try_recv().unwrap_or_default();
            chunk.clear();
            let more = reader.fill(conn, &mut chunk);
            chunk.last = !more;
            if to_checker.send(chunk).is_err() || !more {
                return;
            }
        }
    }

    /// Runs the checks of `v` over the stored entries up to `seq_max`; returns the last seq
    /// checked, as paging would have reached it.
    pub(super) fn verify_rows(
        v: &mut Verifier,
        db: &mut DbConn,
        dir: &Directory,
        seq_max: i64,
        progress: &mut dyn FnMut(i64),
    ) -> AppResult<i64> {
        let mut after = 0;
        let DbConn::Sqlite(conn) = &mut *db;
        let stopped: Option<ReadError> = std::thread::scope(|scope| {
            let (to_checker, from_reader) = mpsc::sync_channel::<Chunk>(2);
            let (to_reader, recycled) = mpsc::channel::<Chunk>();
            let conn = &mut *conn;
            scope.spawn(move || read_chunks(conn, dir, to_checker, recycled));
            let mut queue: VecDeque<Chunk> = VecDeque::new();
            // Rows received and rows checked (or passed over at seq_max), in all.
            let mut received = 0usize;
            let mut consumed = 0usize;
            let mut next_row = 0usize; // in queue.front()
            let mut ended = false;
            let mut error: Option<(usize, ReadError)> = None;
            loop {
                // Paging loads a page and one row more; have as many rows at hand.
                while !ended && received - consumed <= PAGE {
                    match from_reader.recv() {
                        Ok(mut chunk) => {
                            received += chunk.rows.len();
                            if let Some(e) = chunk.error.take() {
                                error = Some((received, e));
                            }
                            ended = chunk.last;
                            queue.push_back(chunk);
                        }
                        Err(_) => ended = true,
                    }
                }
                if let Some((at, e)) = &error {
                    if e.window == 0 || *at < consumed + e.window {
                        return error.map(|(_, e)| e);
                    }
                }
                let mut checked = 0;
                let mut reached_max = false;
                while checked < PAGE {
                    let Some(chunk) = queue.front_mut() else {
                        break;
                    };
                    if next_row == chunk.rows.len() {
                        let mut done = queue.pop_front().expect("looked at above");
                        done.clear();
                        let _ = to_reader.send(done);
                        next_row = 0;
                        continue;
                    }
                    for s in chunk.submissions.drain(..) {
                        v.submissions.insert(s.nonce.clone(), s);
                    }
                    let row = &chunk.rows[next_row];
                    if row.seq > seq_max {
                        reached_max = true;
                        break;
                    }
                    v.entry(&row.entry(&chunk.text));
                    after = row.seq;
                    next_row += 1;
                    consumed += 1;
                    checked += 1;
                }
                progress(after);
                if reached_max || after >= seq_max || v.settled() {
                    return None;
                }
                if checked < PAGE || (ended && received == consumed) {
                    return None;
                }
            }
        });
        match stopped {
            None => Ok(after),
            Some(e) if e.replay => {
                // Load the page as paging does, for the very error it meets.
                let filter = EntryFilter {
                    after: Some(after),
                    limit: Some(super::super::read::PAGE_ENTRIES_MAX),
                    ..Default::default()
                };
                match super::super::read::list(db, dir, &filter) {
                    Err(listed) => Err(listed),
                    Ok(_) => Err(e.error),
                }
            }
            Some(e) => Err(e.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stored::push_minor;
    use crate::ledger::push_int;
    use crate::money::{format_minor, parse_amount, AMOUNT_MINOR_MAX};

    #[test]
    fn amounts_are_written_as_format_minor_writes_them_and_read_back() {
        let mut values: Vec<i64> = (1..2000).collect();
        values.extend([
            9_999,
            10_000,
            123_456_789,
            99_999_999_999,
            AMOUNT_MINOR_MAX - 1,
            AMOUNT_MINOR_MAX,
        ]);
        for units in 0..=4 {
            for &v in &values {
                let mut out = String::new();
                assert!(push_minor(&mut out, v, units));
                assert_eq!(out, format_minor(v, units), "{v} {units}");
                assert_eq!(parse_amount(&out, units), Ok(v), "{v} {units}");
            }
            for v in [0, -1, -100, AMOUNT_MINOR_MAX + 1, i64::MIN, i64::MAX] {
                let mut out = String::new();
                assert!(!push_minor(&mut out, v, units));
                assert!(out.is_empty());
            }
        }
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for n in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            42,
            1 << 53,
            i64::MAX,
            i64::MIN,
            -(1 << 53),
        ] {
            let mut out = String::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }
}
