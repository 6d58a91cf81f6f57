//! Verifying the whole chain from any copy of it: a database file or a server's export.
//!
//! Checked for every entry, trusting nothing stored but the entries and submissions
//! themselves: dense sequence numbers, each `prev_hash` equal to the previous entry's hash,
//! each hash recomputed from the canonical bytes, each batch's signature by a key of its
//! author that was valid when the batch was recorded, the authority rules, and conservation
//! recomputed from scratch.

use super::read::{Directory, EntryFilter, EntryPage};
use super::rules::{check_authority, check_shape, Facts, FundsState, OrgFacts};
use super::{
    batch_payload_canonical, entry_hash, ChainFields, EntryBody, EntryView, SubmissionView,
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
}

/// A database file (or any connection).
pub struct DbCopy<'a> {
    pub conn: &'a mut DbConn,
    dir: Option<Directory>,
}

impl<'a> DbCopy<'a> {
    pub fn new(conn: &'a mut DbConn) -> DbCopy<'a> {
        DbCopy { conn, dir: None }
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

struct Batch {
    nonce: String,
    first_seq: i64,
    last_seq: i64,
    author: String,
    recorded_at: Micros,
    /// Bank facts (confirmations, returns) from a statement upload, signed through the upload's
    /// manifest; otherwise a ledger batch whose signed payload is rebuilt from `bodies`.
    bank_facts: bool,
    bodies: Vec<EntryBody>,
}

struct Verifier {
    reference: Reference,
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
}

/// A stored hash's 64 hex digits as bytes (None if they are not).
fn hash_bytes(hex_text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

impl Verifier {
    fn fail(&mut self, seq: i64, reason: String) {
        if self.failure.as_ref().is_none_or(|f| seq < f.seq) {
            self.failure = Some(Failure { seq, reason });
        }
    }

    fn entry(&mut self, e: &EntryView) {
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
        if hash_bytes(&e.prev_hash) != Some(self.prev_hash) {
            self.fail(
                seq,
                "prev_hash does not equal the previous entry's hash (the chain is broken here)"
                    .into(),
            );
        }
        let body = e.body();
        let recomputed = entry_hash(
            &body,
            &ChainFields {
                seq,
                author: &e.author,
                batch: &e.batch,
                recorded_at: &e.recorded_at,
                prev_hash: &self.prev_hash,
            },
        );
        let stored = hash_bytes(&e.hash);
        if stored != Some(recomputed) {
            self.fail(
                seq,
                "the stored hash does not match the entry's content (altered entry)".into(),
            );
        }
        // Continue the chain from the stored hash, so one altered entry is reported once.
        self.prev_hash = stored.unwrap_or(recomputed);
        // Entries of a batch share their time: parse each new one once.
        if self.last_time.0 != e.recorded_at {
            self.last_time = (
                e.recorded_at.clone(),
                parse_time(&e.recorded_at).unwrap_or(i64::MIN),
            );
        }
        let recorded_at = self.last_time.1;
        if recorded_at < self.prev_time {
            self.fail(seq, "recorded_at goes back in time".into());
        }
        self.prev_time = recorded_at;

        // Rules.
        let Some((owner, minor_units)) = self.reference.programs.get(&e.program).cloned() else {
            return self.fail(seq, format!("program {} is unknown", e.program));
        };
        let amount_minor = match parse_amount(&e.amount, minor_units) {
            Ok(a) => a,
            Err(err) => return self.fail(seq, format!("amount: {err}")),
        };
        let Ok(period) = e.period.parse::<Period>() else {
            return self.fail(seq, format!("period {} is malformed", e.period));
        };
        let Some(author) = self.reference.orgs.get(&e.author).cloned() else {
            return self.fail(seq, format!("author {} is unknown", e.author));
        };
        for b in check_shape(e.kind, &body, &e.author) {
            self.fail(
                seq,
                format!("{}: {} ({})", b.code.as_str(), b.message, b.field),
            );
        }
        let to =
            e.to.as_ref()
                .and_then(|t| self.reference.orgs.get(t))
                .cloned();
        if let Err(b) = check_authority(e.kind, &author, to.as_ref(), &owner) {
            self.fail(seq, format!("{}: {}", b.code.as_str(), b.message));
        }
        let facts = Facts {
            seq,
            kind: e.kind,
            program: &e.program,
            period,
            source: e.source,
            to_org: e.to.as_deref(),
            author: &e.author,
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
        let bank_fact = matches!(e.kind, EntryKind::Confirmation | EntryKind::Return);
        match self
            .batch
            .as_ref()
            .map(|b| (b.recorded_at, b.author.clone(), b.bank_facts))
        {
            Some((batch_time, batch_author, batch_bank_facts)) => {
                if batch_bank_facts != bank_fact {
                    self.fail(
                        seq,
                        "a batch mixes bank confirmations/returns with other entries".into(),
                    );
                }
                if batch_time != recorded_at {
                    self.fail(seq, "recorded_at differs from the rest of its batch (a batch is recorded at once)".into());
                }
                if batch_author != e.author {
                    self.fail(
                        seq,
                        format!(
                            "author {} differs from its batch's author {batch_author}",
                            e.author
                        ),
                    );
                }
                if let Some(b) = &mut self.batch {
                    if !b.bank_facts {
                        b.bodies.push(body);
                    }
                    b.last_seq = seq;
                }
            }
            None => {
                if !self.seen_batches.insert(e.batch.clone()) {
                    self.fail(seq, format!("batch {} appears twice in the chain", e.batch));
                }
                self.batch = Some(Batch {
                    nonce: e.batch.clone(),
                    first_seq: seq,
                    last_seq: seq,
                    author: e.author.clone(),
                    recorded_at,
                    bank_facts: bank_fact,
                    bodies: if bank_fact { Vec::new() } else { vec![body] },
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
        let digest = if b.bank_facts {
            match &sub.manifest {
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
            }
        } else {
            sha256(batch_payload_canonical(&b.bodies).as_bytes())
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
    let mut v = Verifier {
        reference,
        state: FundsState::new(),
        expected_seq: 1,
        prev_hash: GENESIS_HASH,
        prev_time: i64::MIN,
        submissions: HashMap::new(),
        batch: None,
        seen_batches: HashSet::new(),
        failure: None,
        batches_checked: 0,
        last_time: (String::new(), i64::MIN),
    };
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
            v.entry(e);
            after = e.seq;
        }
        progress(after);
        if reached_max || after >= seq_max {
            break;
        }
        // Stop once a failure is known and its batch is closed: later entries cannot fail earlier.
        if v.failure.is_some()
            && v.batch
                .as_ref()
                .is_none_or(|b| b.first_seq > v.failure.as_ref().map(|f| f.seq).unwrap_or(0))
        {
            break;
        }
        if page.next_cursor.is_none() {
            break;
        }
    }
    v.finish_batch();
    Ok(VerifyReport {
        entries_checked: v.expected_seq - 1,
        batches_checked: v.batches_checked,
        head_seq: after,
        head_hash: hex::encode(v.prev_hash),
        failure: v.failure,
    })
}
