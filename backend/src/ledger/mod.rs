//! The ledger: entries, their canonical bytes and hashes, the conservation rules, appending
//! signed batches, reading, and verifying the whole chain.
//!
//! The format is specified in docs/ledger-format.md; [`body_canonical`] and
//! [`entry_canonical`] are its reference implementation and are tested against the generic
//! RFC 8785 encoder in [`crate::canonical`].

pub mod append;
pub mod read;
pub mod rules;
pub mod verify;

use crate::canonical::write_string;
use crate::crypto::sha256;
use crate::domain::EntryKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The purpose string of a ledger batch's signature.
pub const ENTRIES_PURPOSE: &str = "POST /api/v1/entries";
/// The purpose string of a statement upload's signature; the confirmations and returns the
/// import derives are carried by that submission.
pub const STATEMENTS_PURPOSE: &str = "POST /api/v1/statements";
/// The `prev_hash` of entry 1.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
/// Most entries one signed batch may carry.
pub const BATCH_ENTRIES_MAX: usize = 10_000;
/// Longest memo, in bytes.
pub const MEMO_BYTES_MAX: usize = 280;
/// Longest payment reference (ISO 20022 EndToEndId is 35).
pub const REFERENCE_CHARS_MAX: usize = 35;
/// Whether `r` may be a payment reference: 1-35 of `A-Za-z0-9-_./+` (what ISO 20022's
/// EndToEndId and Chinese banks' 附言 carry through unchanged).
///
/// ```
/// use fundtrail::ledger::reference_ok;
/// assert!(reference_ok("DB202611-TWN-AP-CG-0001"));
/// assert!(!reference_ok("12月 低保"));
/// assert!(!reference_ok(""));
/// ```
pub fn reference_ok(r: &str) -> bool {
    !r.is_empty()
        && r.chars().count() <= REFERENCE_CHARS_MAX
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c))
}

/// How a memo says that a payment repeats one already made for the same recipient, program
/// and period on purpose, and why: `再次发放：<reason>` (or `second payment: <reason>`).
/// It lives in the memo, which the office signs and the chain keeps, so the reason is on the
/// ledger and no verifier needs a new field.
pub const SECOND_PAYMENT_MARKERS: [&str; 3] = ["再次发放：", "再次发放:", "second payment:"];

/// The reason a memo gives for a deliberate second payment, if it starts with a marker and
/// names one.
///
/// ```
/// use fundtrail::ledger::second_payment_reason;
/// assert_eq!(second_payment_reason("再次发放：首次发放被银行退回"), Some("首次发放被银行退回"));
/// assert_eq!(second_payment_reason("second payment: arrears for October"), Some("arrears for October"));
/// assert_eq!(second_payment_reason("再次发放："), None);
/// assert_eq!(second_payment_reason("12月"), None);
/// ```
pub fn second_payment_reason(memo: &str) -> Option<&str> {
    let memo = memo.trim_start();
    SECOND_PAYMENT_MARKERS.iter().find_map(|marker| {
        let head = memo.get(..marker.len())?;
        let reason = memo[marker.len()..].trim();
        (head.eq_ignore_ascii_case(marker) && !reason.is_empty()).then_some(reason)
    })
}

/// The keys of an entry body, all always present.
pub const BODY_KEYS: [&str; 11] = [
    "kind",
    "program",
    "period",
    "source",
    "from",
    "to",
    "recipient",
    "amount",
    "reference",
    "memo",
    "value_date",
];

/// One entry as its author signs it. Every key is always present (`null` where it does not
/// apply), so the signed bytes can be rebuilt from what is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    pub kind: EntryKind,
    /// Program code.
    pub program: String,
    /// Payment period: `2026`, `2026-Q4` or `2026-11`.
    pub period: String,
    /// Sequence number of the entry this one draws on (or reverses); null for a budget.
    pub source: Option<i64>,
    /// Org the money leaves (the author, for allocations and disbursements).
    pub from: Option<String>,
    /// Org the money goes to (budgets, allocations).
    pub to: Option<String>,
    /// Recipient pseudonym (disbursements).
    pub recipient: Option<String>,
    /// Decimal string with exactly the currency's decimals, e.g. `780.00`.
    pub amount: String,
    /// Payment reference, unique within the program (1-35 of `A-Za-z0-9-_./+`).
    pub reference: String,
    /// Free text, up to 280 bytes; `""` for none.
    pub memo: String,
    /// Business date the entry takes effect, `YYYY-MM-DD`.
    pub value_date: String,
}

impl EntryBody {
    /// A body of `kind` with no source, parties or memo yet; add them with the setters.
    pub fn new(
        kind: EntryKind,
        program: &str,
        period: &str,
        amount: &str,
        reference: &str,
        value_date: &str,
    ) -> EntryBody {
        EntryBody {
            kind,
            program: program.into(),
            period: period.into(),
            source: None,
            from: None,
            to: None,
            recipient: None,
            amount: amount.into(),
            reference: reference.into(),
            memo: String::new(),
            value_date: value_date.into(),
        }
    }
    pub fn source(mut self, seq: i64) -> EntryBody {
        self.source = Some(seq);
        self
    }
    pub fn from(mut self, org: &str) -> EntryBody {
        self.from = Some(org.into());
        self
    }
    pub fn to(mut self, org: &str) -> EntryBody {
        self.to = Some(org.into());
        self
    }
    pub fn recipient(mut self, pseudonym: &str) -> EntryBody {
        self.recipient = Some(pseudonym.into());
        self
    }
    pub fn memo(mut self, memo: &str) -> EntryBody {
        self.memo = memo.into();
        self
    }
}

/// The payload of `POST /api/v1/entries`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntriesPayload {
    pub entries: Vec<EntryBody>,
}

/// What the chain adds to a body when the entry is appended.
#[derive(Debug, Clone, Copy)]
pub struct ChainFields<'a> {
    pub seq: i64,
    pub author: &'a str,
    /// The nonce of the signed submission (batch) that carried the entry.
    pub batch: &'a str,
    /// Canonical RFC 3339 text, microseconds, `Z`.
    pub recorded_at: &'a str,
    pub prev_hash: &'a [u8; 32],
}

/// A body's fields, borrowed: what the canonical writers read, whether the body was parsed
/// from a request, rebuilt from a stored row or read from an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef<'a> {
    pub kind: EntryKind,
    pub program: &'a str,
    pub period: &'a str,
    pub source: Option<i64>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub recipient: Option<&'a str>,
    pub amount: &'a str,
    pub reference: &'a str,
    pub memo: &'a str,
    pub value_date: &'a str,
}

impl EntryBody {
    /// The body's fields, borrowed.
    pub fn borrowed(&self) -> BodyRef<'_> {
        BodyRef {
            kind: self.kind,
            program: &self.program,
            period: &self.period,
            source: self.source,
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            recipient: self.recipient.as_deref(),
            amount: &self.amount,
            reference: &self.reference,
            memo: &self.memo,
            value_date: &self.value_date,
        }
    }
}

fn opt_string(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => write_string(out, s),
        None => out.push_str("null"),
    }
}

/// Appends `n` in plain decimal (as `{n}` formats it), without going through `fmt`.
pub fn push_int(out: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("digits are ASCII"));
}

fn opt_int(out: &mut String, v: Option<i64>) {
    match v {
        Some(n) => push_int(out, n),
        None => out.push_str("null"),
    }
}

/// Writes `"key":` pairs of the body in RFC 8785 key order, with `extra` merged in order.
/// Keys are ASCII, so UTF-16 order is byte order; the test below checks against the
/// generic encoder.
fn write_sorted(
    out: &mut String,
    body: &BodyRef<'_>,
    chain: Option<&ChainFields<'_>>,
) -> ChainSpans {
    let mut spans = [0usize; 8];
    out.push_str("{\"amount\":");
    write_string(out, body.amount);
    if let Some(c) = chain {
        spans[0] = out.len();
        out.push_str(",\"author\":");
        write_string(out, c.author);
        out.push_str(",\"batch\":");
        write_string(out, c.batch);
        spans[1] = out.len();
    }
    out.push_str(",\"from\":");
    opt_string(out, body.from);
    out.push_str(",\"kind\":\"");
    out.push_str(body.kind.as_str());
    out.push_str("\",\"memo\":");
    write_string(out, body.memo);
    out.push_str(",\"period\":");
    write_string(out, body.period);
    if let Some(c) = chain {
        let mut hex_digits = [0u8; 64];
        hex::encode_to_slice(c.prev_hash, &mut hex_digits).expect("twice the length");
        spans[2] = out.len();
        out.push_str(",\"prev_hash\":\"");
        out.push_str(std::str::from_utf8(&hex_digits).expect("hex is ASCII"));
        out.push('"');
        spans[3] = out.len();
    }
    out.push_str(",\"program\":");
    write_string(out, body.program);
    out.push_str(",\"recipient\":");
    opt_string(out, body.recipient);
    if let Some(c) = chain {
        spans[4] = out.len();
        out.push_str(",\"recorded_at\":");
        write_string(out, c.recorded_at);
        spans[5] = out.len();
    }
    out.push_str(",\"reference\":");
    write_string(out, body.reference);
    if let Some(c) = chain {
        spans[6] = out.len();
        out.push_str(",\"seq\":");
        push_int(out, c.seq);
        spans[7] = out.len();
    }
    out.push_str(",\"source\":");
    opt_int(out, body.source);
    out.push_str(",\"to\":");
    opt_string(out, body.to);
    out.push_str(",\"value_date\":");
    write_string(out, body.value_date);
    out.push('}');
    ChainSpans(spans)
}

/// Where [`write_entry_canonical`] put the chain fields (`author` and `batch`, `prev_hash`,
/// `recorded_at`, `seq`, each with its leading comma): the rest of what it wrote is exactly
/// the body's canonical JSON, as [`write_body_canonical`] writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainSpans([usize; 8]);

impl ChainSpans {
    /// The pieces of `written[start..]` (what one `write_entry_canonical` appended at
    /// `start`) that make up the body's canonical JSON, in order.
    pub fn body_pieces<'a>(&self, written: &'a str, start: usize) -> [&'a str; 5] {
        let s = &self.0;
        [
            &written[start..s[0]],
            &written[s[1]..s[2]],
            &written[s[3]..s[4]],
            &written[s[5]..s[6]],
            &written[s[7]..],
        ]
    }
}

/// Appends the canonical JSON of a body (what goes into the signed payload) to `out`.
pub fn write_body_canonical(out: &mut String, body: &BodyRef<'_>) {
    write_sorted(out, body, None);
}

/// Appends the canonical JSON of a chained entry (what its hash covers) to `out`.
/// Returns where the chain fields went (see [`ChainSpans`]).
pub fn write_entry_canonical(
    out: &mut String,
    body: &BodyRef<'_>,
    chain: &ChainFields<'_>,
) -> ChainSpans {
    write_sorted(out, body, Some(chain))
}

/// The canonical JSON of a body: what goes into the signed payload.
pub fn body_canonical(body: &EntryBody) -> String {
    let mut out = String::with_capacity(320);
    write_sorted(&mut out, &body.borrowed(), None);
    out
}

/// The canonical JSON of a chained entry: what its hash covers.
pub fn entry_canonical(body: &EntryBody, chain: &ChainFields<'_>) -> String {
    let mut out = String::with_capacity(480);
    write_sorted(&mut out, &body.borrowed(), Some(chain));
    out
}

/// The entry's hash: SHA-256 of [`entry_canonical`].
pub fn entry_hash(body: &EntryBody, chain: &ChainFields<'_>) -> [u8; 32] {
    sha256(entry_canonical(body, chain).as_bytes())
}

/// The canonical JSON of a batch payload `{"entries":[…]}`, whose SHA-256 is signed.
pub fn batch_payload_canonical<'a>(bodies: impl IntoIterator<Item = &'a EntryBody>) -> String {
    let mut out = String::from("{\"entries\":[");
    for (i, body) in bodies.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_sorted(&mut out, &body.borrowed(), None);
    }
    out.push_str("]}");
    out
}

/// One entry as the API and exports show it: everything needed to recompute its hash and,
/// with its batch's `SubmissionView`, its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EntryView {
    pub seq: i64,
    pub kind: EntryKind,
    pub program: String,
    pub period: String,
    pub source: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub recipient: Option<String>,
    pub amount: String,
    pub currency: String,
    pub reference: String,
    pub memo: String,
    pub value_date: String,
    /// Org that authored and signed the entry.
    pub author: String,
    /// Nonce of the signed submission that carried it.
    pub batch: String,
    pub recorded_at: String,
    pub prev_hash: String,
    pub hash: String,
    /// Sequence number of the reversal that voided this entry, if any (derived state, not hashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_by: Option<i64>,
}

impl EntryView {
    /// The body its author signed.
    pub fn body(&self) -> EntryBody {
        EntryBody {
            kind: self.kind,
            program: self.program.clone(),
            period: self.period.clone(),
            source: self.source,
            from: self.from.clone(),
            to: self.to.clone(),
            recipient: self.recipient.clone(),
            amount: self.amount.clone(),
            reference: self.reference.clone(),
            memo: self.memo.clone(),
            value_date: self.value_date.clone(),
        }
    }
}

/// A signed submission (batch) as the API and exports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmissionView {
    pub nonce: String,
    pub org: String,
    pub key_id: String,
    pub purpose: String,
    pub signed_at: String,
    /// Hex SHA-256 of the payload's canonical JSON.
    pub payload_sha256: String,
    /// Standard base64.
    pub signature: String,
    pub recorded_at: String,
    /// For a statement upload: the canonical JSON the uploader signed (it names the file's
    /// SHA-256); `payload_sha256` is its digest. The entries such a submission carries are
    /// the bank facts the import derived from that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::to_canonical_string;

    fn body() -> EntryBody {
        EntryBody {
            kind: EntryKind::Disbursement,
            program: "DIBAO-2026".into(),
            period: "2026-11".into(),
            source: Some(7),
            from: Some("TWN-01".into()),
            to: None,
            recipient: Some("R0123456789abcdef01234567".into()),
            amount: "780.00".into(),
            reference: "DB202611-0001".into(),
            memo: "低保 \"11月\"\n".into(),
            value_date: "2026-11-05".into(),
        }
    }

    #[test]
    fn fast_writers_equal_the_generic_rfc8785_encoder() {
        let b = body();
        let generic = to_canonical_string(&serde_json::to_value(&b).unwrap()).unwrap();
        assert_eq!(body_canonical(&b), generic);

        let prev = [0xab; 32];
        let chain = ChainFields {
            seq: 42,
            author: "TWN-01",
            batch: "nonce-0123456789abcdef",
            recorded_at: "2026-11-24T20:06:35.123456Z",
            prev_hash: &prev,
        };
        let mut v = serde_json::to_value(&b).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.insert("seq".into(), 42.into());
        obj.insert("author".into(), "TWN-01".into());
        obj.insert("batch".into(), "nonce-0123456789abcdef".into());
        obj.insert("recorded_at".into(), "2026-11-24T20:06:35.123456Z".into());
        obj.insert("prev_hash".into(), hex::encode(prev).into());
        assert_eq!(
            entry_canonical(&b, &chain),
            to_canonical_string(&v).unwrap()
        );

        let mut none = b.clone();
        none.source = None;
        none.from = None;
        none.recipient = None;
        none.to = Some("CITY-A".into());
        let generic = to_canonical_string(&serde_json::to_value(&none).unwrap()).unwrap();
        assert_eq!(body_canonical(&none), generic);

        let payload = serde_json::json!({"entries": [b, none]});
        assert_eq!(
            batch_payload_canonical([&b, &none]),
            to_canonical_string(&payload).unwrap()
        );
    }

    #[test]
    fn an_entry_without_its_chain_spans_is_its_body() {
        let prev = [0x5c; 32];
        let mut none = body();
        none.source = None;
        none.from = None;
        none.recipient = None;
        none.to = Some("CITY-A".into());
        for b in [body(), none] {
            for seq in [1, 42, i64::MAX] {
                let chain = ChainFields {
                    seq,
                    author: "TWN-\"01",
                    batch: "nonce-0123456789abcdef",
                    recorded_at: "2026-11-24T20:06:35.123456Z",
                    prev_hash: &prev,
                };
                let mut out = String::from("prefix");
                let spans = write_entry_canonical(&mut out, &b.borrowed(), &chain);
                assert_eq!(&out[6..], entry_canonical(&b, &chain));
                assert_eq!(spans.body_pieces(&out, 6).concat(), body_canonical(&b));
            }
        }
    }

    #[test]
    fn a_payload_fed_body_by_body_hashes_as_the_whole() {
        // Verification hashes a batch's payload incrementally: `{"entries":[` + body + `,` +
        // body … + `]}`; it must be the digest of `batch_payload_canonical`.
        let b = body();
        let mut other = b.clone();
        other.memo = String::new();
        other.source = None;
        for bodies in [vec![&b], vec![&b, &other, &b]] {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            for (i, body) in bodies.iter().enumerate() {
                let mut part = String::from(if i == 0 { "{\"entries\":[" } else { "," });
                write_body_canonical(&mut part, &body.borrowed());
                ctx.update(part.as_bytes());
            }
            ctx.update(b"]}");
            assert_eq!(
                ctx.finish().as_ref(),
                sha256(batch_payload_canonical(bodies.iter().copied()).as_bytes())
            );
        }
    }

    #[test]
    fn body_keys_are_exactly_the_serialized_keys() {
        let v = serde_json::to_value(body()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = BODY_KEYS.to_vec();
        keys.sort();
        expected.sort();
        assert_eq!(keys, expected);
    }

    #[test]
    fn every_hashed_field_changes_the_hash() {
        let b = body();
        let prev = [1; 32];
        let chain = ChainFields {
            seq: 1,
            author: "A",
            batch: "n",
            recorded_at: "t",
            prev_hash: &prev,
        };
        let h = entry_hash(&b, &chain);
        let mut variants: Vec<[u8; 32]> = Vec::new();
        let mut m = b.clone();
        m.amount = "780.01".into();
        variants.push(entry_hash(&m, &chain));
        let mut m = b.clone();
        m.memo.push(' ');
        variants.push(entry_hash(&m, &chain));
        let mut m = b.clone();
        m.source = Some(8);
        variants.push(entry_hash(&m, &chain));
        let other = [2; 32];
        variants.push(entry_hash(
            &b,
            &ChainFields {
                prev_hash: &other,
                ..chain
            },
        ));
        variants.push(entry_hash(&b, &ChainFields { seq: 2, ..chain }));
        variants.push(entry_hash(
            &b,
            &ChainFields {
                author: "B",
                ..chain
            },
        ));
        variants.push(entry_hash(
            &b,
            &ChainFields {
                batch: "m",
                ..chain
            },
        ));
        variants.push(entry_hash(
            &b,
            &ChainFields {
                recorded_at: "u",
                ..chain
            },
        ));
        for v in variants {
            assert_ne!(v, h);
        }
    }
}
