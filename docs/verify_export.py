#!/usr/bin/env python3
"""Independent verifier for a Fundtrail ledger export (`fundtrail export`, JSON Lines).

The format is specified in docs/ledger-format.md; this script implements its section 6,
checks 1-4, with nothing but Python's standard library plus, for Ed25519 signatures, the
optional `cryptography` package. It shares no code with the server on purpose.

    python3 docs/verify_export.py EXPORT.jsonl [--require-signatures] [--json]   (- = stdin)
    python3 docs/verify_export.py --self-test      # recompute the worked example of section 5

Exit status: 0 verified, 1 verification failed (or malformed input), 2 usage / I/O error or
--require-signatures without `cryptography`. On failure, "entries", "batches" and "head" count
only the whole batches verified before the first failure. An export cut short after a batch
still verifies: compare the printed head with one published independently.
"""
import argparse, base64, datetime, hashlib, json, re, sys
from pathlib import Path

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    Ed25519PublicKey = None
NO_CRYPTO = "signatures NOT checked: pip install cryptography"

GENESIS = "0" * 64
PURPOSE = "POST /api/v1/entries"
# Section 7: confirmations and returns are derived from an uploaded bank statement and carried
# by the upload's submission, whose signed payload is its manifest (naming the file's SHA-256).
STATEMENTS_PURPOSE = "POST /api/v1/statements"
BANK_FACTS = ("confirmation", "return")
DOMAIN = "fundtrail/signed-request/v1"
STR, INT, NULL = (str,), (int,), (type(None),)
# Section 2: the body an author signs, with the JSON types each key may take.
BODY = {"kind": STR, "program": STR, "period": STR, "source": INT + NULL, "from": STR + NULL,
        "to": STR + NULL, "recipient": STR + NULL, "amount": STR, "reference": STR, "memo": STR,
        "value_date": STR}
# Section 4: the chain fields; the hash covers BODY + CHAIN (not currency, hash, reversed_by).
CHAIN = {"seq": INT, "author": STR, "batch": STR, "recorded_at": STR, "prev_hash": STR}
ENTRY = {**BODY, **CHAIN, "hash": STR}
SUBMISSION = {k: STR for k in ("nonce", "org", "key_id", "purpose", "signed_at", "payload_sha256", "signature")}
KEY = {"key_id": STR, "org": STR, "public_key": STR, "valid_from": STR, "valid_until": STR + NULL}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


def canonical(value):
    """Section 1: for values made of strings, integers and null, this is RFC 8785 exactly."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def payload_canonical(body_bytes):
    """The batch payload {"entries": [body, ...]}, from the bodies' canonical bytes in seq order."""
    return b'{"entries":[' + b",".join(body_bytes) + b"]}"


def signing_message(sub, payload_digest):
    """Section 3: what the author signed, with the digest recomputed from the entries."""
    return canonical({"domain": DOMAIN, "purpose": sub["purpose"], "org": sub["org"], "key_id": sub["key_id"],
                      "nonce": sub["nonce"], "signed_at": sub["signed_at"], "payload_sha256": payload_digest})


def key_id_for(public_key):
    return "ed25519:" + sha256_hex(public_key)[:16]


def is_time(text):
    """RFC 3339 UTC with six fractional digits: such strings compare correctly as text."""
    if not isinstance(text, str) or not TIME.match(text):
        return False
    try:
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return True


class BadLine(Exception):
    """A line that cannot be read as what it claims to be (reported by line number)."""

    def __init__(self, reason, lineno=None):
        super().__init__(reason)
        self.lineno = lineno  # None: the line being read


def strict_object(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):  # two values for one key: which one was hashed?
        raise BadLine("duplicate key in object")
    return obj


def parse_line(raw):
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=strict_object, parse_constant=float)
    except UnicodeDecodeError as e:
        raise BadLine(f"not UTF-8 (byte {e.start + 1})") from None
    except json.JSONDecodeError as e:
        raise BadLine(f"not valid JSON ({e.msg} at column {e.colno})") from None
    except ValueError as e:  # e.g. an integer too long to convert
        raise BadLine(f"not valid JSON ({e})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise BadLine('not a JSON object with a string "type"')
    return obj


def require(obj, fields):
    """Check presence and JSON type of each field (bool is not an int; no floats anywhere)."""
    for name, types in fields.items():
        if name not in obj:
            raise BadLine(f'{obj["type"]} has no "{name}"')
        v = obj[name]
        if isinstance(v, bool) or not isinstance(v, types):
            raise BadLine(f'{obj["type"]} field "{name}" has the wrong type')
        if isinstance(v, int) and abs(v) > 2**53 - 1:
            raise BadLine(f'{obj["type"]} field "{name}" is out of range')


class Batch:
    def __init__(self, nonce, author, seq, recorded_at):
        self.nonce, self.author, self.first_seq, self.recorded_at = nonce, author, seq, recorded_at
        self.bodies = []  # canonical bytes, in seq order (ledger batches only)
        self.count = 0
        self.bank = None  # True: bank facts from a statement upload
        self.last = None  # (seq, hash) of its last entry


class Verifier:
    def __init__(self, check_signatures):
        self.check_signatures = check_signatures
        self.keys, self.subs, self.sub_lines = {}, {}, {}  # sub_lines: nonce -> line, until used
        self.closed = set()  # nonces of finished batches, which must not come back (grows per batch)
        self.expected_seq, self.prev_hash, self.prev_time = 1, GENESIS, ""
        self.batch = None
        self.failures = []  # (seq, reason), in the order found
        self.entries, self.batches, self.head = 0, 0, (0, GENESIS)  # verified prefix

    def fail(self, seq, reason):
        self.failures.append((seq, reason))

    def first_failure(self):
        return min(self.failures, key=lambda f: f[0]) if self.failures else None  # ties: first found

    def done(self):
        """Later lines cannot fail at a smaller seq once the failing batch is closed."""
        f = self.first_failure()
        return f is not None and (self.batch is None or self.batch.first_seq > f[0])

    def line(self, obj, lineno):
        kind = obj["type"]
        if kind == "entry":
            self.entry(obj)
        elif kind in ("submission", "key"):
            require(obj, SUBMISSION if kind == "submission" else KEY)
            table, ident = (self.subs, obj["nonce"]) if kind == "submission" else (self.keys, obj["key_id"])
            # Export pages repeat the submission of a batch that spans two pages: same line, harmless.
            if ident in table and table[ident] != obj:
                raise BadLine(f"two different {kind}s for {ident}")
            table[ident] = obj
            if kind == "submission" and ident not in self.closed:
                self.sub_lines.setdefault(ident, lineno)
        elif kind == "header":
            if obj.get("format") != "fundtrail-export/v1":
                raise BadLine(f'unsupported export format {obj.get("format")!r}')
        elif kind not in ("org", "program"):
            raise BadLine(f"unknown line type {kind!r}")

    def entry(self, e):
        require(e, ENTRY)
        try:
            body = canonical({k: e[k] for k in BODY})
            hashed = canonical({k: e[k] for k in (*BODY, *CHAIN)})
        except UnicodeEncodeError:  # a lone surrogate such as "\ud800" has no UTF-8 form
            raise BadLine("entry has a string that is not valid Unicode") from None
        seq, nonce = e["seq"], e["batch"]
        # Check the entry before closing the batch it may cut short: if this entry was altered
        # (say, moved to another batch), its own failure explains that batch's bad signature.
        if not self.failures:
            self.check_chain(e, seq, hashed)
        if self.batch is None or self.batch.nonce != nonce:
            self.close_batch()
            if self.failures:
                return  # done() now holds
            if nonce in self.closed:
                self.fail(seq, f"batch {nonce} appears again after another batch (batches must be contiguous)")
            self.batch = Batch(nonce, e["author"], seq, e["recorded_at"])
        elif e["author"] != self.batch.author:  # the batch's one signature speaks for one author
            self.fail(seq, f"author {e['author']} differs from its batch's author {self.batch.author}")
        bank = e["kind"] in BANK_FACTS
        if self.batch.bank is None:
            self.batch.bank = bank
        elif self.batch.bank != bank:
            self.fail(seq, "a batch mixes bank confirmations/returns with other entries")
        if not bank:
            self.batch.bodies.append(body)
        self.batch.count += 1
        self.batch.last = (seq, e["hash"])

    def check_chain(self, e, seq, hashed):
        """Checks 1-3 of section 6 for one entry."""
        if seq != self.expected_seq:
            n = self.expected_seq
            what = f"entry #{n} is missing (found #{seq})" if seq > n else f"expected entry #{n} next, found #{seq}"
            return self.fail(n, what)
        if not is_time(e["recorded_at"]):
            self.fail(seq, f"recorded_at {e['recorded_at']!r} is not RFC 3339 UTC with six fractional digits")
        elif e["recorded_at"] < self.prev_time:
            self.fail(seq, f"recorded_at {e['recorded_at']} is earlier than the previous entry's {self.prev_time}")
        if e["prev_hash"] != self.prev_hash:
            self.fail(seq, "prev_hash does not equal the previous entry's hash (the chain is broken here)")
        elif sha256_hex(hashed) != e["hash"]:
            self.fail(seq, "hash does not match the entry's content (altered entry)")
        self.expected_seq, self.prev_hash, self.prev_time = seq + 1, e["hash"], e["recorded_at"]

    def close_batch(self):
        b, self.batch = self.batch, None
        if b is None:
            return
        self.closed.add(b.nonce)
        clean = not any(f[0] <= b.last[0] for f in self.failures)
        reason = self.batch_problem(b)
        # An entry of the batch, or the one that cut it short, that already failed names the
        # altered entry more precisely than the batch's first seq (as `fundtrail verify` does).
        explained = any(b.first_seq <= f[0] <= b.last[0] + 1 for f in self.failures)
        if reason and not explained:
            self.fail(b.first_seq, f"batch {b.nonce} (entries #{b.first_seq}-#{b.last[0]}): {reason}")
        elif clean:
            self.entries += b.count
            self.batches += 1
            self.head = b.last

    def batch_problem(self, b):
        """Check 4 of section 6; returns what is wrong, or None."""
        sub = self.subs.pop(b.nonce, None)  # drop it: memory stays bounded by one export page
        self.sub_lines.pop(b.nonce, None)
        if sub is None:
            return "its signed submission is missing from the export"
        if sub["org"] != b.author:
            return f"submission was signed by {sub['org']}, but the entries say {b.author}"
        purpose = STATEMENTS_PURPOSE if b.bank else PURPOSE
        if sub["purpose"] != purpose:
            return f"submission purpose is {sub['purpose']!r}, not {purpose!r}"
        if b.bank:
            manifest = sub.get("manifest")
            if not isinstance(manifest, str):
                return "the statement upload's signed manifest is missing"
            digest = sha256_hex(manifest.encode("utf-8"))
            if digest != sub["payload_sha256"]:
                return "its manifest is not the one that was signed"
        else:
            digest = sha256_hex(payload_canonical(b.bodies))
            if digest != sub["payload_sha256"]:
                return "its entries do not rebuild the signed payload (altered, added or removed entries)"
        key = self.keys.get(sub["key_id"])
        if key is None:
            return f"key {sub['key_id']} is not in the export"
        if key["org"] != b.author:
            return f"key {sub['key_id']} belongs to {key['org']}, not {b.author}"
        if not is_time(key["valid_from"]) or not (key["valid_until"] is None or is_time(key["valid_until"])):
            return f"key {sub['key_id']} has a malformed validity period"
        until = key["valid_until"] or "~"  # "~" sorts after every timestamp: no end
        if not key["valid_from"] <= b.recorded_at < until:
            return f"key {sub['key_id']} was not valid at {b.recorded_at}"
        try:
            public_key = base64.b64decode(key["public_key"], validate=True)
            signature = base64.b64decode(sub["signature"], validate=True)
        except ValueError:
            return "public key or signature is not valid base64"
        if len(public_key) != 32 or key_id_for(public_key) != sub["key_id"]:
            return f"key {sub['key_id']} is not the id of its 32-byte public key"
        if self.check_signatures and not verify_signature(public_key, signature, signing_message(sub, digest)):
            return "the signature does not verify"
        return None

    def finish(self):
        self.close_batch()
        # A signed batch whose entries are all gone means the export lost entries (e.g. at its end).
        if not self.failures and self.sub_lines:
            nonce, lineno = min(self.sub_lines.items(), key=lambda kv: kv[1])
            raise BadLine(f"submission {nonce} has no entries in the export", lineno)


def verify_signature(public_key, signature, message):
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def verify_stream(stream, check_signatures):
    """Returns (verifier, bad_line) where bad_line is None or (lineno, reason)."""
    v, lineno = Verifier(check_signatures), 0
    try:
        for lineno, raw in enumerate(stream, 1):
            if raw.strip():
                v.line(parse_line(raw), lineno)
            if v.done():
                return v, None
        v.finish()
    except BadLine as e:
        if v.failures:  # an entry before this line has already failed; that comes first
            return v, None
        return v, (e.lineno or lineno, str(e))
    return v, None


def report(v, bad_line, as_json, check_signatures):
    f = v.first_failure()
    failure = {"seq": f[0], "reason": f[1]} if f else None
    if bad_line:
        failure = {"seq": None, "line": bad_line[0], "reason": bad_line[1]}
    if as_json:
        print(json.dumps({"ok": failure is None, "entries": v.entries, "batches": v.batches,
                          "head_seq": v.head[0], "head_hash": v.head[1],
                          "signatures_checked": check_signatures, "failure": failure}, ensure_ascii=False))
    elif f:
        print(f"FAILED at entry #{f[0]}: {f[1]}")
    elif bad_line:
        print(f"FAILED at line {bad_line[0]}: {bad_line[1]}")
    else:
        print(f"ok: {v.entries} entries in {v.batches} batches verified; head #{v.head[0]} {v.head[1]}")
    for seq, reason in v.failures:
        if f and (seq, reason) != f:  # the first failure often explains these: say so, but aside
            print(f"note: also at entry #{seq}: {reason}", file=sys.stderr)
    if not check_signatures:
        print(NO_CRYPTO, file=sys.stderr if as_json else sys.stdout)
    return 0 if failure is None else 1


def self_test():
    """Recompute the worked example of section 5 from the spec itself."""
    text = (Path(__file__).resolve().parent / "ledger-format.md").read_text(encoding="utf-8")

    def block(name):
        m = re.search(rf"<!-- example-{name} -->\s*```[^\n]*\n(.*?)\n```", text, re.S)
        if not m:
            raise SystemExit(f"self-test: no example-{name} block in ledger-format.md")
        return m.group(1)

    try:
        entry, sub = json.loads(block("entry")), json.loads(block("submission"))
        hashed = canonical({k: entry[k] for k in (*BODY, *CHAIN)})
        payload = payload_canonical([canonical({k: entry[k] for k in BODY})])
        digest, message = sha256_hex(payload), signing_message(sub, sha256_hex(payload))
        public_key, signature = base64.b64decode(block("public-key")), base64.b64decode(sub["signature"])
    except (KeyError, ValueError) as e:
        print(f"FAIL: the example blocks cannot be read ({e!r})")
        return 1
    checks = [
        ("canonical entry equals example-canonical", hashed == block("canonical").encode("utf-8")),
        ("its SHA-256 equals example-hash", sha256_hex(hashed) == block("hash").strip()),
        ("example-hash equals the entry's hash", block("hash").strip() == entry["hash"]),
        ("payload equals example-payload", payload == block("payload").encode("utf-8")),
        ("payload SHA-256 equals the submission's payload_sha256", digest == sub["payload_sha256"]),
        ("signing message equals example-message", message == block("message").encode("utf-8")),
        ("key_id is derived from example-public-key", key_id_for(public_key) == sub["key_id"]),
    ]
    if Ed25519PublicKey:
        checks.append(("signature verifies with example-public-key", verify_signature(public_key, signature, message)))
    for name, passed in checks:
        print(f"{'pass' if passed else 'FAIL'}: {name}")
    if not Ed25519PublicKey:
        print(NO_CRYPTO)
    return 0 if all(p for _, p in checks) else 1


def main():
    ap = argparse.ArgumentParser(description="Verify a Fundtrail ledger export (docs/ledger-format.md).")
    ap.add_argument("export", nargs="?", help="JSON Lines export, or - for standard input")
    ap.add_argument("--require-signatures", action="store_true", help="exit 2 if `cryptography` is missing")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--self-test", action="store_true", help="recompute the worked example in ledger-format.md")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.export is None:
        ap.error("EXPORT is required (or --self-test)")
    check_signatures = Ed25519PublicKey is not None
    if args.require_signatures and not check_signatures:
        print(NO_CRYPTO, file=sys.stderr)
        return 2
    try:
        stream = sys.stdin.buffer if args.export == "-" else open(args.export, "rb")
    except OSError as e:
        print(f"error: cannot read {args.export}: {e.strerror}", file=sys.stderr)
        return 2
    with stream:
        v, bad_line = verify_stream(stream, check_signatures)
    return report(v, bad_line, args.json, check_signatures)


if __name__ == "__main__":
    sys.exit(main())
