-- Fundtrail schema, SQLite flavour. A PostgreSQL twin lives in migrations/postgres/ under the
-- same migration names. Times are unix microseconds (BIGINT, UTC); money is BIGINT minor units
-- (cents for CNY) next to the program's `minor_units`; never a float.

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'finance_bureau', 'local_office', 'inspector')),
    parent_id   INTEGER REFERENCES orgs (id),
    created_at  BIGINT  NOT NULL
);
CREATE INDEX orgs_parent ON orgs (parent_id);

-- Ed25519 public keys. A key signs for its org while valid_from <= t < valid_until, so keys can
-- be rotated without invalidating entries signed earlier.
CREATE TABLE org_keys (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs (id),
    key_id      TEXT    NOT NULL UNIQUE,
    public_key  BLOB    NOT NULL CHECK (length(public_key) = 32),
    valid_from  BIGINT  NOT NULL,
    valid_until BIGINT,
    -- The org whose signed request registered it: the org itself (rotation) or the admin
    -- (onboarding, or recovery of a lost key). Published with the key, so a replaced key shows.
    registered_by_org_id INTEGER NOT NULL REFERENCES orgs (id),
    created_at  BIGINT  NOT NULL
);
CREATE INDEX org_keys_org ON org_keys (org_id);

-- Bearer tokens, stored as SHA-256 of the secret (tokens are 256-bit random, so no salt/KDF).
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES orgs (id),
    token_sha256  BLOB    NOT NULL UNIQUE,
    label         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_tokens_org ON api_tokens (org_id);

-- Every signed write the service accepted: the envelope that was signed, minus the payload
-- (whose SHA-256 is kept). Ledger entries point at the submission (batch) that carried them.
-- The unique nonce is what makes a replayed submission fail.
CREATE TABLE submissions (
    id              INTEGER PRIMARY KEY,
    nonce           TEXT    NOT NULL UNIQUE,
    org_id          INTEGER NOT NULL REFERENCES orgs (id),
    key_id          TEXT    NOT NULL,
    purpose         TEXT    NOT NULL,
    payload_sha256  BLOB    NOT NULL,
    signed_at       TEXT    NOT NULL,
    signature       BLOB    NOT NULL,
    recorded_at     BIGINT  NOT NULL
);

CREATE TABLE programs (
    id                     INTEGER PRIMARY KEY,
    code                   TEXT    NOT NULL UNIQUE,
    name                   TEXT    NOT NULL,
    fiscal_year            INTEGER NOT NULL,
    currency               TEXT    NOT NULL,
    minor_units            INTEGER NOT NULL CHECK (minor_units BETWEEN 0 AND 4),
    standard_amount_minor  BIGINT  NOT NULL CHECK (standard_amount_minor >= 0),
    period_granularity     TEXT    NOT NULL CHECK (period_granularity IN ('month', 'quarter', 'year')),
    owner_org_id           INTEGER NOT NULL REFERENCES orgs (id),
    created_at             BIGINT  NOT NULL
);

-- The registry. Personal data (name, ID number, bank account) is one AEAD-sealed blob; the
-- pseudonym (keyed HMAC of the ID number) is all the ledger and list views ever show.
-- account_tag is a keyed HMAC of the normalised bank account, so shared accounts can be found
-- without decrypting anything.
CREATE TABLE recipients (
    id             INTEGER PRIMARY KEY,
    pseudonym      TEXT    NOT NULL UNIQUE,
    home_org_id    INTEGER NOT NULL REFERENCES orgs (id),
    status         TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'deceased')),
    status_date    TEXT,
    account_tag    TEXT    NOT NULL,
    personal_data  BLOB    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX recipients_home ON recipients (home_org_id);
CREATE INDEX recipients_account_tag ON recipients (account_tag);

-- Who read whose personal data, when and why. Append-only.
CREATE TABLE personal_data_reads (
    id            INTEGER PRIMARY KEY,
    recipient_id  INTEGER NOT NULL REFERENCES recipients (id),
    org_id        INTEGER NOT NULL REFERENCES orgs (id),
    token_id      INTEGER REFERENCES api_tokens (id),
    reason        TEXT    NOT NULL,
    read_at       BIGINT  NOT NULL
);
CREATE INDEX personal_data_reads_recipient ON personal_data_reads (recipient_id);

-- The ledger. Append-only (see triggers); seq is dense from 1; hash = SHA-256 over the entry's
-- canonical bytes, which include prev_hash (docs/ledger-format.md).
CREATE TABLE ledger_entries (
    seq            INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL CHECK (kind IN ('budget', 'allocation', 'disbursement', 'reversal', 'confirmation', 'return')),
    program_id     INTEGER NOT NULL REFERENCES programs (id),
    period         TEXT    NOT NULL,
    source_seq     INTEGER REFERENCES ledger_entries (seq),
    from_org_id    INTEGER REFERENCES orgs (id),
    to_org_id      INTEGER REFERENCES orgs (id),
    to_recipient   TEXT,
    amount_minor   BIGINT  NOT NULL CHECK (amount_minor > 0),
    reference      TEXT    NOT NULL,
    memo           TEXT    NOT NULL,
    author_org_id  INTEGER NOT NULL REFERENCES orgs (id),
    submission_id  INTEGER NOT NULL REFERENCES submissions (id),
    value_date     TEXT    NOT NULL,
    recorded_at    BIGINT  NOT NULL,
    prev_hash      BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash           BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (program_id, reference)
);
CREATE INDEX ledger_entries_source ON ledger_entries (source_seq);
CREATE INDEX ledger_entries_program_period ON ledger_entries (program_id, period);
CREATE INDEX ledger_entries_to_org ON ledger_entries (to_org_id);
CREATE INDEX ledger_entries_author ON ledger_entries (author_org_id);
CREATE INDEX ledger_entries_recipient ON ledger_entries (to_recipient);

-- Derived, rebuildable state for conservation checks: how much of each budget and allocation
-- is still available to draw on, and which entries were reversed (payments get a row only
-- when reversed: no row means the whole amount, not reversed). Written in the same
-- transaction as the append; `fundtrail verify` recomputes it from the ledger alone.
CREATE TABLE ledger_funds (
    seq              INTEGER PRIMARY KEY REFERENCES ledger_entries (seq),
    remaining_minor  BIGINT  NOT NULL CHECK (remaining_minor >= 0),
    reversed_by      INTEGER REFERENCES ledger_entries (seq)
);

-- The database itself refuses to rewrite history.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;
CREATE TRIGGER submissions_no_update BEFORE UPDATE ON submissions
BEGIN SELECT RAISE(ABORT, 'submissions is append-only'); END;
CREATE TRIGGER submissions_no_delete BEFORE DELETE ON submissions
BEGIN SELECT RAISE(ABORT, 'submissions is append-only'); END;
CREATE TRIGGER personal_data_reads_no_update BEFORE UPDATE ON personal_data_reads
BEGIN SELECT RAISE(ABORT, 'personal_data_reads is append-only'); END;
CREATE TRIGGER personal_data_reads_no_delete BEFORE DELETE ON personal_data_reads
BEGIN SELECT RAISE(ABORT, 'personal_data_reads is append-only'); END;
-- Codes are what the ledger's canonical bytes name; they never change once entries use them.
CREATE TRIGGER orgs_code_fixed BEFORE UPDATE OF code ON orgs
BEGIN SELECT RAISE(ABORT, 'org codes are permanent'); END;
CREATE TRIGGER programs_no_update BEFORE UPDATE ON programs
BEGIN SELECT RAISE(ABORT, 'programs are permanent'); END;
CREATE TRIGGER org_keys_public_key_fixed BEFORE UPDATE OF public_key, key_id, org_id, valid_from, registered_by_org_id ON org_keys
BEGIN SELECT RAISE(ABORT, 'a registered key can only be retired'); END;
CREATE TRIGGER org_keys_retire_only BEFORE UPDATE OF valid_until ON org_keys
WHEN NEW.valid_until IS NULL OR (OLD.valid_until IS NOT NULL AND NEW.valid_until > OLD.valid_until)
BEGIN SELECT RAISE(ABORT, 'a key can be retired, never un-retired or extended'); END;
CREATE TRIGGER org_keys_no_delete BEFORE DELETE ON org_keys
BEGIN SELECT RAISE(ABORT, 'keys are never deleted; retire them'); END;
