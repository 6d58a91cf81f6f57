//! The money rules, shared by appending (which refuses an entry that breaks them) and
//! verifying (which recomputes them over the whole chain and trusts no stored state).
//!
//! Conservation: what is drawn from an entry never exceeds it; only the org that holds the
//! money (the entry's receiver) may pass it on; a reversal voids a whole entry that nothing
//! has been drawn from, and gives its amount back to the entry it came from.
//!
//! Bank facts: a `confirmation` records that the bank paid a disbursement (once per payment,
//! for whatever amount the bank really paid, so a short payment shows); a `return` records
//! that the bank sent (part of) a payment back, and puts that money back on the source the
//! payment was drawn from, where its author can pay it again. Both are written by statement
//! imports, under the uploader's signature over the statement file.

use crate::domain::{EntryKind, Period, Role};
use crate::error::ErrorCode;
use crate::money::format_minor;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// A rule that an entry breaks: code, message, and the body field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub code: ErrorCode,
    pub message: String,
    pub field: &'static str,
}

fn broken(code: ErrorCode, field: &'static str, message: String) -> Broken {
    Broken {
        code,
        message,
        field,
    }
}

/// What the rules need to know of an entry that money can be drawn from or reversed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funds {
    pub kind: EntryKind,
    /// Codes are shared (`FundsState::intern`): a province's ledger holds millions of funds
    /// and a few thousand distinct codes.
    pub program: Arc<str>,
    pub period: Period,
    /// The org holding the money: the receiver of a budget or allocation.
    pub holder: Option<Arc<str>>,
    pub author: Arc<str>,
    pub amount_minor: i64,
    pub remaining_minor: i64,
    pub reversed_by: Option<i64>,
    pub source: Option<i64>,
    /// The confirmation of a disbursement, once the bank statement shows it paid.
    pub confirmed_by: Option<i64>,
}

/// The facts of an entry being checked.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub seq: i64,
    pub kind: EntryKind,
    pub program: &'a str,
    pub period: Period,
    pub source: Option<i64>,
    pub to_org: Option<&'a str>,
    pub author: &'a str,
    pub amount_minor: i64,
    /// Decimals of the program's currency, for messages.
    pub minor_units: u32,
}

/// Hashes a sequence number by one multiplication (Fibonacci hashing). Keys are entry numbers
/// the ledger assigned densely, so SipHash's protection against chosen keys buys nothing here,
/// and verification looks up a few million of them.
#[derive(Debug, Default, Clone, Copy)]
pub struct SeqHasher(u64);

impl std::hash::Hasher for SeqHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.write_i64(n as i64);
    }
    fn finish(&self) -> u64 {
        // The product's high bits mix every input bit; bring them down to where the table
        // takes its index from.
        self.0.rotate_left(32)
    }
}

type SeqMap<V> = HashMap<i64, V, std::hash::BuildHasherDefault<SeqHasher>>;

/// Funds of the entries in play, with a record of which changed.
#[derive(Debug, Default)]
pub struct FundsState {
    funds: SeqMap<Funds>,
    changed: BTreeSet<i64>,
    /// Set by [`FundsState::untracked`]: nobody will ask what changed.
    untracked: bool,
    codes: HashSet<Arc<str>>,
    /// The codes interned last: entries come in runs of one program and author.
    recent: [Option<Arc<str>>; 4],
    recent_next: usize,
}

impl FundsState {
    pub fn new() -> FundsState {
        FundsState::default()
    }

    /// A state that does not record which funds changed ([`FundsState::changed`] stays
    /// empty), with room for `capacity` funds: for recomputing a whole chain.
    pub fn untracked(capacity: usize) -> FundsState {
        FundsState {
            funds: SeqMap::with_capacity_and_hasher(capacity, Default::default()),
            untracked: true,
            ..FundsState::default()
        }
    }

    fn note_changed(&mut self, seq: i64) {
        if !self.untracked {
            self.changed.insert(seq);
        }
    }

    /// Adds what is known of an existing entry (loaded from storage).
    pub fn load(&mut self, seq: i64, funds: Funds) {
        self.funds.insert(seq, funds);
    }

    pub fn get(&self, seq: i64) -> Option<&Funds> {
        self.funds.get(&seq)
    }

    /// Records what storage says: payment `seq` was confirmed by entry `by`.
    pub fn mark_confirmed(&mut self, seq: i64, by: i64) {
        if let Some(f) = self.funds.get_mut(&seq) {
            f.confirmed_by = Some(by);
        }
    }

    /// Entries whose remaining amount or reversal changed since they were loaded.
    pub fn changed(&self) -> impl Iterator<Item = (i64, &Funds)> {
        self.changed
            .iter()
            .filter_map(|s| self.funds.get(s).map(|f| (*s, f)))
    }

    /// The shared copy of an org or program code.
    pub fn intern(&mut self, code: &str) -> Arc<str> {
        if let Some(c) = self.recent.iter().flatten().find(|c| ***c == *code) {
            return c.clone();
        }
        let c = match self.codes.get(code) {
            Some(c) => c.clone(),
            None => {
                let c: Arc<str> = Arc::from(code);
                self.codes.insert(c.clone());
                c
            }
        };
        self.recent[self.recent_next] = Some(c.clone());
        self.recent_next = (self.recent_next + 1) % self.recent.len();
        c
    }

    /// Checks `f` against the funds it draws on, and if it passes, applies it: draws, voids,
    /// releases, and registers the new entry as drawable or reversible.
    pub fn apply(&mut self, f: &Facts<'_>) -> Result<(), Broken> {
        match f.kind {
            EntryKind::Budget => {}
            EntryKind::Allocation | EntryKind::Disbursement => self.draw(f)?,
            EntryKind::Reversal => self.reverse(f)?,
            EntryKind::Confirmation => self.confirm(f)?,
            EntryKind::Return => self.give_back(f)?,
        }
        if f.kind.is_reversible() {
            let funds = Funds {
                kind: f.kind,
                program: self.intern(f.program),
                period: f.period,
                holder: f.to_org.map(|o| self.intern(o)),
                author: self.intern(f.author),
                amount_minor: f.amount_minor,
                remaining_minor: f.amount_minor,
                reversed_by: None,
                source: f.source,
                confirmed_by: None,
            };
            self.funds.insert(f.seq, funds);
        }
        Ok(())
    }

    fn source_of(&self, f: &Facts<'_>) -> Result<(i64, &Funds), Broken> {
        let seq = f.source.ok_or_else(|| {
            broken(
                ErrorCode::UnknownSource,
                "source",
                format!("a {} needs a source entry", f.kind),
            )
        })?;
        let src = self.funds.get(&seq).ok_or_else(|| {
            broken(
                ErrorCode::UnknownSource,
                "source",
                format!("source entry #{seq} does not exist or holds no money"),
            )
        })?;
        if *src.program != *f.program {
            return Err(broken(
                ErrorCode::ProgramMismatch,
                "program",
                format!(
                    "source entry #{seq} belongs to program {}, not {}",
                    src.program, f.program
                ),
            ));
        }
        if let Some(by) = src.reversed_by {
            return Err(broken(
                ErrorCode::AlreadyReversed,
                "source",
                format!("source entry #{seq} was reversed by entry #{by}"),
            ));
        }
        Ok((seq, src))
    }

    fn draw(&mut self, f: &Facts<'_>) -> Result<(), Broken> {
        let (seq, src) = self.source_of(f)?;
        if !src.kind.is_drawable() {
            return Err(broken(
                ErrorCode::NotDrawable,
                "source",
                format!(
                    "entry #{seq} is a {}; money is drawn from budgets and allocations",
                    src.kind
                ),
            ));
        }
        if src.holder.as_deref() != Some(f.author) {
            return Err(broken(
                ErrorCode::WrongHolder,
                "source",
                format!(
                    "the money of entry #{seq} is held by {}, not {}",
                    src.holder.as_deref().unwrap_or("nobody"),
                    f.author
                ),
            ));
        }
        if !src.period.contains(&f.period) {
            return Err(broken(
                ErrorCode::InvalidPeriod,
                "period",
                format!(
                    "period {} is not within source entry #{seq}'s period {}",
                    f.period, src.period
                ),
            ));
        }
        if src.remaining_minor < f.amount_minor {
            return Err(broken(
                ErrorCode::Overdraw,
                "amount",
                format!(
                    "draws {} from entry #{seq}, which has only {} left",
                    format_minor(f.amount_minor, f.minor_units),
                    format_minor(src.remaining_minor, f.minor_units)
                ),
            ));
        }
        let src = self.funds.get_mut(&seq).expect("source looked up above");
        src.remaining_minor -= f.amount_minor;
        debug_assert!(src.remaining_minor >= 0);
        self.note_changed(seq);
        Ok(())
    }

    fn reverse(&mut self, f: &Facts<'_>) -> Result<(), Broken> {
        let (seq, src) = self.source_of(f)?;
        if !src.kind.is_reversible() {
            return Err(broken(
                ErrorCode::NotDrawable,
                "source",
                format!("entry #{seq} is a {}, which cannot be reversed", src.kind),
            ));
        }
        if *src.author != *f.author {
            return Err(broken(
                ErrorCode::WrongHolder,
                "source",
                format!("only entry #{seq}'s author {} may reverse it", src.author),
            ));
        }
        if src.remaining_minor != src.amount_minor {
            let taken = format_minor(src.amount_minor - src.remaining_minor, f.minor_units);
            return Err(broken(
                ErrorCode::SourceAlreadyDrawn,
                "source",
                if src.kind == EntryKind::Disbursement {
                    format!("{taken} of payment #{seq} already came back from the bank; it cannot be reversed")
                } else {
                    format!("{taken} has been drawn from entry #{seq}; reverse those entries first")
                },
            ));
        }
        if src.amount_minor != f.amount_minor {
            return Err(broken(
                ErrorCode::AmountMismatch,
                "amount",
                format!("a reversal must be for the whole amount of entry #{seq}"),
            ));
        }
        if src.period != f.period {
            return Err(broken(
                ErrorCode::InvalidPeriod,
                "period",
                format!(
                    "a reversal carries the period of entry #{seq} ({})",
                    src.period
                ),
            ));
        }
        let parent = src.source;
        let amount = src.amount_minor;
        if let Some(p) = parent {
            let parent_funds = self.funds.get_mut(&p).ok_or_else(|| {
                broken(
                    ErrorCode::UnknownSource,
                    "source",
                    format!("entry #{p} (source of #{seq}) is unknown"),
                )
            })?;
            parent_funds.remaining_minor += amount;
            debug_assert!(parent_funds.remaining_minor <= parent_funds.amount_minor);
            self.note_changed(p);
        }
        let src = self.funds.get_mut(&seq).expect("source looked up above");
        src.reversed_by = Some(f.seq);
        self.note_changed(seq);
        Ok(())
    }

    /// The disbursement a bank fact is about, written by that payment's author.
    fn payment_of(&self, f: &Facts<'_>) -> Result<(i64, &Funds), Broken> {
        let seq = f.source.ok_or_else(|| {
            broken(
                ErrorCode::UnknownSource,
                "source",
                format!("a {} names the disbursement it is about", f.kind),
            )
        })?;
        let src = self
            .funds
            .get(&seq)
            .filter(|s| s.kind == EntryKind::Disbursement && *s.program == *f.program)
            .ok_or_else(|| {
                broken(
                    ErrorCode::UnknownSource,
                    "source",
                    format!(
                        "entry #{seq} is not a disbursement of program {}",
                        f.program
                    ),
                )
            })?;
        if *src.author != *f.author {
            return Err(broken(
                ErrorCode::WrongHolder,
                "source",
                format!(
                    "only entry #{seq}'s author {} records what its bank did with it",
                    src.author
                ),
            ));
        }
        if src.period != f.period {
            return Err(broken(
                ErrorCode::InvalidPeriod,
                "period",
                format!(
                    "a {} carries the period of entry #{seq} ({})",
                    f.kind, src.period
                ),
            ));
        }
        Ok((seq, src))
    }

    /// A bank confirmation: at most one per payment. The payment may since have been reversed
    /// on the ledger: the bank paid anyway, and that is a fact to record, not refuse.
    fn confirm(&mut self, f: &Facts<'_>) -> Result<(), Broken> {
        let (seq, src) = self.payment_of(f)?;
        if let Some(by) = src.confirmed_by {
            return Err(broken(
                ErrorCode::AlreadyConfirmed,
                "source",
                format!("payment #{seq} was already confirmed by entry #{by}"),
            ));
        }
        self.funds
            .get_mut(&seq)
            .expect("payment looked up above")
            .confirmed_by = Some(f.seq);
        Ok(())
    }

    /// A bank return: at most what is left of the payment comes back, to the entry the payment
    /// was drawn from. A reversed payment never left, so nothing of it can come back.
    fn give_back(&mut self, f: &Facts<'_>) -> Result<(), Broken> {
        let (seq, src) = self.payment_of(f)?;
        if let Some(by) = src.reversed_by {
            return Err(broken(
                ErrorCode::AlreadyReversed,
                "source",
                format!("payment #{seq} was reversed by entry #{by}; it cannot also come back"),
            ));
        }
        if f.amount_minor > src.remaining_minor {
            return Err(broken(
                ErrorCode::Overdraw,
                "amount",
                format!(
                    "returns {} of payment #{seq}, of which only {} has not come back already",
                    format_minor(f.amount_minor, f.minor_units),
                    format_minor(src.remaining_minor, f.minor_units)
                ),
            ));
        }
        let parent = src.source.ok_or_else(|| {
            broken(
                ErrorCode::UnknownSource,
                "source",
                format!("payment #{seq} has no source"),
            )
        })?;
        let parent_funds = self.funds.get_mut(&parent).ok_or_else(|| {
            broken(
                ErrorCode::UnknownSource,
                "source",
                format!("entry #{parent} (source of #{seq}) is unknown"),
            )
        })?;
        parent_funds.remaining_minor += f.amount_minor;
        debug_assert!(parent_funds.remaining_minor <= parent_funds.amount_minor);
        self.note_changed(parent);
        let src = self.funds.get_mut(&seq).expect("payment looked up above");
        src.remaining_minor -= f.amount_minor;
        debug_assert!(src.remaining_minor >= 0);
        self.note_changed(seq);
        Ok(())
    }
}

/// The reference of the confirmation of payment `seq` (one per payment).
pub fn confirmation_reference(payment_seq: i64) -> String {
    format!("{CONFIRMATION_PREFIX}{payment_seq}")
}

/// The reference of the return of payment `seq` (one per payment).
pub fn return_reference(payment_seq: i64) -> String {
    format!("{RETURN_PREFIX}{payment_seq}")
}

/// Reference prefixes kept for bank facts; offices cannot use them.
pub const CONFIRMATION_PREFIX: &str = "CFM-";
pub const RETURN_PREFIX: &str = "RTN-";

/// True if `reference` is reserved for bank facts.
pub fn reference_reserved(reference: &str) -> bool {
    reference.starts_with(CONFIRMATION_PREFIX) || reference.starts_with(RETURN_PREFIX)
}

/// Checks which of `source`, `from`, `to` and `recipient` an entry of `kind` has, and that
/// money leaves only its author. Returns every problem found.
pub fn check_shape(kind: EntryKind, body: &super::EntryBody, author: &str) -> Vec<Broken> {
    check_shape_of(kind, &body.borrowed(), author)
}

/// [`check_shape`] over a borrowed body (verification reads millions of them).
pub fn check_shape_of(kind: EntryKind, body: &super::BodyRef<'_>, author: &str) -> Vec<Broken> {
    let wanted = |field: &str| match field {
        "source" => kind != EntryKind::Budget,
        "from" => matches!(kind, EntryKind::Allocation | EntryKind::Disbursement),
        "to" => matches!(
            kind,
            EntryKind::Budget | EntryKind::Allocation | EntryKind::Return
        ),
        _ => matches!(
            kind,
            EntryKind::Disbursement | EntryKind::Confirmation | EntryKind::Return
        ),
    };
    let present = [
        ("source", body.source.is_some()),
        ("from", body.from.is_some()),
        ("to", body.to.is_some()),
        ("recipient", body.recipient.is_some()),
    ];
    let mut out = Vec::new();
    for (field, is_present) in present {
        if is_present && !wanted(field) {
            out.push(broken(
                ErrorCode::InvalidField,
                field,
                format!("a {kind} has no `{field}`; send null"),
            ));
        } else if !is_present && wanted(field) {
            out.push(broken(
                ErrorCode::InvalidField,
                field,
                format!("a {kind} needs `{field}`"),
            ));
        }
    }
    if let Some(from) = body.from.filter(|f| *f != author) {
        out.push(broken(
            ErrorCode::WrongHolder,
            "from",
            format!("money can only leave the signing org {author}, not {from}"),
        ));
    }
    // A return brings the money back to the payer, which is the signing org.
    if let Some(to) = body
        .to
        .filter(|t| kind == EntryKind::Return && *t != author)
    {
        out.push(broken(
            ErrorCode::WrongHolder,
            "to",
            format!("returned money comes back to the signing org {author}, not {to}"),
        ));
    }
    // Bank facts have fixed references (one of each per payment), and nothing else may use them.
    let fixed = match (kind, body.source) {
        (EntryKind::Confirmation, Some(s)) => Some(confirmation_reference(s)),
        (EntryKind::Return, Some(s)) => Some(return_reference(s)),
        _ => None,
    };
    match fixed {
        Some(r) if r != body.reference => out.push(broken(
            ErrorCode::InvalidReference,
            "reference",
            format!("a {kind} of entry #{} has reference {r}", body.source.unwrap_or(0)),
        )),
        None if reference_reserved(body.reference) => out.push(broken(
            ErrorCode::InvalidReference,
            "reference",
            format!(
                "references starting {CONFIRMATION_PREFIX} or {RETURN_PREFIX} are kept for bank confirmations and returns"
            ),
        )),
        _ => {}
    }
    out
}

/// What the authority rules need to know of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgFacts {
    pub code: String,
    pub role: Role,
    pub parent: Option<String>,
}

/// Checks that `author` may write an entry of `kind` sending money to `to` in a program
/// owned by `program_owner`.
pub fn check_authority(
    kind: EntryKind,
    author: &OrgFacts,
    to: Option<&OrgFacts>,
    program_owner: &str,
) -> Result<(), Broken> {
    let role_may = match kind {
        EntryKind::Budget => author.role == Role::FinanceBureau,
        EntryKind::Allocation | EntryKind::Reversal => {
            matches!(author.role, Role::FinanceBureau | Role::LocalOffice)
        }
        EntryKind::Disbursement | EntryKind::Confirmation | EntryKind::Return => {
            author.role == Role::LocalOffice
        }
    };
    if !role_may {
        return Err(broken(
            ErrorCode::KindNotAllowed,
            "kind",
            format!(
                "an org with role {} may not write {} entries",
                author.role, kind
            ),
        ));
    }
    match kind {
        EntryKind::Budget if author.code != program_owner => Err(broken(
            ErrorCode::KindNotAllowed,
            "kind",
            format!("only the program's owner {program_owner} may budget it"),
        )),
        EntryKind::Budget if to.map(|t| t.code.as_str()) != Some(author.code.as_str()) => {
            Err(broken(
                ErrorCode::InvalidField,
                "to",
                "a budget is received by the bureau that writes it".to_string(),
            ))
        }
        EntryKind::Allocation => match to {
            None => Err(broken(
                ErrorCode::UnknownOrg,
                "to",
                "the receiving org is unknown".into(),
            )),
            Some(t) if t.parent.as_deref() != Some(author.code.as_str()) => Err(broken(
                ErrorCode::NotAChildOrg,
                "to",
                format!(
                    "{} is not directly below {}; money moves down the tree one level at a time",
                    t.code, author.code
                ),
            )),
            Some(t) if !matches!(t.role, Role::FinanceBureau | Role::LocalOffice) => Err(broken(
                ErrorCode::InvalidField,
                "to",
                format!(
                    "{} is an {} org; money is allocated to finance bureaus and local offices",
                    t.code, t.role
                ),
            )),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        seq: i64,
        kind: EntryKind,
        source: Option<i64>,
        to: Option<&'a str>,
        author: &'a str,
        amount: i64,
    ) -> Facts<'a> {
        Facts {
            seq,
            kind,
            program: "P",
            period: Period::Month(2026, 11),
            source,
            to_org: to,
            author,
            amount_minor: amount,
            minor_units: 2,
        }
    }

    #[test]
    fn a_payment_is_confirmed_once_and_returns_give_back_at_most_what_went_out() {
        let mut s = FundsState::new();
        let budget = facts(1, EntryKind::Budget, None, Some("TOWN"), "TOWN", 1000);
        s.apply(&budget).unwrap();
        let pay = |seq, amount| facts(seq, EntryKind::Disbursement, Some(1), None, "TOWN", amount);
        s.apply(&pay(2, 300)).unwrap();
        s.apply(&pay(3, 200)).unwrap();
        assert_eq!(s.get(1).unwrap().remaining_minor, 500);
        let fact = |seq, kind, source, author, amount| {
            facts(seq, kind, Some(source), None, author, amount)
        };
        // Confirmed for what the bank paid (a short payment too), once.
        s.apply(&fact(4, EntryKind::Confirmation, 2, "TOWN", 250))
            .unwrap();
        let e = s
            .apply(&fact(5, EntryKind::Confirmation, 2, "TOWN", 300))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AlreadyConfirmed);
        // Only the payer's bank facts; only about payments.
        let e = s
            .apply(&fact(5, EntryKind::Confirmation, 3, "OTHER", 200))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongHolder);
        let e = s
            .apply(&fact(5, EntryKind::Confirmation, 1, "TOWN", 200))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownSource);
        // A return gives the money back to the source, never more than went out.
        let e = s
            .apply(&fact(5, EntryKind::Return, 3, "TOWN", 201))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Overdraw);
        s.apply(&fact(5, EntryKind::Return, 3, "TOWN", 150))
            .unwrap();
        assert_eq!(s.get(1).unwrap().remaining_minor, 650);
        s.apply(&fact(6, EntryKind::Return, 3, "TOWN", 50)).unwrap();
        let e = s
            .apply(&fact(7, EntryKind::Return, 3, "TOWN", 1))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Overdraw);
        assert_eq!(s.get(1).unwrap().remaining_minor, 700);
        // A returned payment cannot also be reversed; a reversed one cannot come back.
        let rev = |seq, source, amount| {
            facts(seq, EntryKind::Reversal, Some(source), None, "TOWN", amount)
        };
        assert_eq!(
            s.apply(&rev(7, 3, 200)).unwrap_err().code,
            ErrorCode::SourceAlreadyDrawn
        );
        s.apply(&rev(7, 2, 300)).unwrap();
        let e = s
            .apply(&fact(8, EntryKind::Return, 2, "TOWN", 10))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AlreadyReversed);
        assert_eq!(s.get(1).unwrap().remaining_minor, 1000);
    }

    #[test]
    fn draws_never_exceed_the_source_and_reversals_release() {
        let mut s = FundsState::new();
        s.apply(&facts(
            1,
            EntryKind::Budget,
            None,
            Some("PROV"),
            "PROV",
            1000,
        ))
        .unwrap();
        s.apply(&facts(
            2,
            EntryKind::Allocation,
            Some(1),
            Some("CITY"),
            "PROV",
            600,
        ))
        .unwrap();
        let e = s
            .apply(&facts(
                3,
                EntryKind::Allocation,
                Some(1),
                Some("CITY"),
                "PROV",
                401,
            ))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Overdraw);
        s.apply(&facts(
            3,
            EntryKind::Allocation,
            Some(1),
            Some("CITY"),
            "PROV",
            400,
        ))
        .unwrap();
        assert_eq!(s.get(1).unwrap().remaining_minor, 0);
        // CITY cannot draw on PROV's budget; PROV cannot draw on CITY's allocation.
        assert_eq!(
            s.apply(&facts(
                4,
                EntryKind::Allocation,
                Some(1),
                Some("X"),
                "CITY",
                1
            ))
            .unwrap_err()
            .code,
            ErrorCode::WrongHolder
        );
        assert_eq!(
            s.apply(&facts(
                4,
                EntryKind::Allocation,
                Some(2),
                Some("X"),
                "PROV",
                1
            ))
            .unwrap_err()
            .code,
            ErrorCode::WrongHolder
        );
        // Reverse #3 (by its author): its 400 goes back to #1.
        assert_eq!(
            s.apply(&facts(4, EntryKind::Reversal, Some(3), None, "CITY", 400))
                .unwrap_err()
                .code,
            ErrorCode::WrongHolder
        );
        assert_eq!(
            s.apply(&facts(4, EntryKind::Reversal, Some(3), None, "PROV", 399))
                .unwrap_err()
                .code,
            ErrorCode::AmountMismatch
        );
        s.apply(&facts(4, EntryKind::Reversal, Some(3), None, "PROV", 400))
            .unwrap();
        assert_eq!(s.get(1).unwrap().remaining_minor, 400);
        assert_eq!(
            s.apply(&facts(5, EntryKind::Reversal, Some(3), None, "PROV", 400))
                .unwrap_err()
                .code,
            ErrorCode::AlreadyReversed
        );
        assert_eq!(
            s.apply(&facts(
                5,
                EntryKind::Allocation,
                Some(3),
                Some("Y"),
                "CITY",
                1
            ))
            .unwrap_err()
            .code,
            ErrorCode::AlreadyReversed
        );
        // #2 has nothing drawn yet; after a draw it cannot be reversed.
        s.apply(&facts(
            5,
            EntryKind::Disbursement,
            Some(2),
            None,
            "CITY",
            10,
        ))
        .unwrap();
        assert_eq!(
            s.apply(&facts(6, EntryKind::Reversal, Some(2), None, "PROV", 600))
                .unwrap_err()
                .code,
            ErrorCode::SourceAlreadyDrawn
        );
        assert_eq!(
            s.apply(&facts(6, EntryKind::Disbursement, Some(5), None, "CITY", 1))
                .unwrap_err()
                .code,
            ErrorCode::NotDrawable
        );
        assert_eq!(
            s.apply(&facts(
                6,
                EntryKind::Disbursement,
                Some(99),
                None,
                "CITY",
                1
            ))
            .unwrap_err()
            .code,
            ErrorCode::UnknownSource
        );
        let changed: Vec<i64> = s.changed().map(|(seq, _)| seq).collect();
        assert_eq!(changed, vec![1, 2, 3]);
    }

    #[test]
    fn each_kind_has_exactly_its_parties() {
        use crate::ledger::EntryBody;
        let fields = |b: &EntryBody, author: &str| -> Vec<&'static str> {
            check_shape(b.kind, b, author)
                .iter()
                .map(|x| x.field)
                .collect()
        };
        let pay = EntryBody::new(
            EntryKind::Disbursement,
            "P",
            "2026-11",
            "1.00",
            "R",
            "2026-11-01",
        )
        .source(1)
        .from("TOWN")
        .recipient("Rx");
        assert!(fields(&pay, "TOWN").is_empty());
        assert_eq!(fields(&pay, "OTHER"), vec!["from"]);
        assert_eq!(fields(&pay.clone().to("CITY"), "TOWN"), vec!["to"]);
        let budget = EntryBody::new(EntryKind::Budget, "P", "2026", "1.00", "B", "2026-01-01");
        assert_eq!(fields(&budget, "PROV"), vec!["to"]);
        assert_eq!(
            fields(&budget.clone().to("PROV").source(3), "PROV"),
            vec!["source"]
        );
        let reversal = EntryBody::new(
            EntryKind::Reversal,
            "P",
            "2026-11",
            "1.00",
            "V",
            "2026-11-02",
        )
        .source(9);
        assert!(fields(&reversal, "TOWN").is_empty());
        assert_eq!(
            fields(&reversal.clone().recipient("Rx"), "TOWN"),
            vec!["recipient"]
        );
    }

    #[test]
    fn authority_follows_roles_and_the_tree() {
        let prov = OrgFacts {
            code: "PROV".into(),
            role: Role::FinanceBureau,
            parent: None,
        };
        let city = OrgFacts {
            code: "CITY".into(),
            role: Role::FinanceBureau,
            parent: Some("PROV".into()),
        };
        let town = OrgFacts {
            code: "TOWN".into(),
            role: Role::LocalOffice,
            parent: Some("CITY".into()),
        };
        let audit = OrgFacts {
            code: "AUD".into(),
            role: Role::Inspector,
            parent: None,
        };
        assert!(check_authority(EntryKind::Budget, &prov, Some(&prov), "PROV").is_ok());
        assert_eq!(
            check_authority(EntryKind::Budget, &city, Some(&city), "PROV")
                .unwrap_err()
                .code,
            ErrorCode::KindNotAllowed
        );
        assert!(check_authority(EntryKind::Allocation, &prov, Some(&city), "PROV").is_ok());
        assert_eq!(
            check_authority(EntryKind::Allocation, &prov, Some(&town), "PROV")
                .unwrap_err()
                .code,
            ErrorCode::NotAChildOrg
        );
        assert_eq!(
            check_authority(EntryKind::Disbursement, &city, None, "PROV")
                .unwrap_err()
                .code,
            ErrorCode::KindNotAllowed
        );
        assert!(check_authority(EntryKind::Disbursement, &town, None, "PROV").is_ok());
        for kind in EntryKind::ALL {
            assert!(check_authority(*kind, &audit, Some(&city), "PROV").is_err());
        }
    }
}
