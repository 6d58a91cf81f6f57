-- Bank statements: the program accounts orgs hold, the statement files uploaded for them, and
-- every row read from those files with what it was matched to on the ledger.

-- A program bank account. `account` is normalised (ASCII letters and digits, upper-case), so a
-- statement naming `6222 0212 3456` finds the account registered as `62220212 3456`.
-- These are offices' accounts, not citizens': they are stored in clear.
CREATE TABLE bank_accounts (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs (id),
    account     TEXT    NOT NULL UNIQUE,
    currency    TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX bank_accounts_org ON bank_accounts (org_id);

-- One uploaded file, imported whole. The raw file is kept, encrypted, in the statement file
-- store under its SHA-256; `manifest` is the canonical JSON the uploader signed (it names the
-- file's SHA-256), so the confirmation and return entries the import wrote (entries
-- first_seq..last_seq, all carried by `submission_id`) can be checked against the uploader's
-- signature and recomputed from the file.
CREATE TABLE statements (
    id                INTEGER PRIMARY KEY,
    file_sha256       BLOB    NOT NULL UNIQUE CHECK (length(file_sha256) = 32),
    size_bytes        BIGINT  NOT NULL,
    file_name         TEXT    NOT NULL,
    format            TEXT    NOT NULL,
    manifest          TEXT    NOT NULL,
    org_id            INTEGER NOT NULL REFERENCES orgs (id),
    submission_id     INTEGER NOT NULL UNIQUE REFERENCES submissions (id),
    imported_at       BIGINT  NOT NULL,
    rows_total        BIGINT  NOT NULL,
    rows_duplicate    BIGINT  NOT NULL,
    confirmed_strong  BIGINT  NOT NULL,
    confirmed_weak    BIGINT  NOT NULL,
    returned          BIGINT  NOT NULL,
    unmatched         BIGINT  NOT NULL,
    -- Rows of this statement are bank_rows first_row_id..last_row_id (NULL: no rows).
    first_row_id      INTEGER,
    last_row_id       INTEGER,
    -- Ledger entries the import appended (NULL: none).
    first_seq         INTEGER,
    last_seq          INTEGER
);

-- The statements inside a file (camt Stmt/Ntfctn, MT940 message, CSV file): period and
-- balances as the bank states them.
CREATE TABLE statement_sections (
    id                INTEGER PRIMARY KEY,
    statement_id      INTEGER NOT NULL REFERENCES statements (id) DEFERRABLE INITIALLY DEFERRED,
    account_id        INTEGER NOT NULL REFERENCES bank_accounts (id),
    location          TEXT    NOT NULL,
    bank_statement_id TEXT,
    currency          TEXT,
    from_date         TEXT,
    to_date           TEXT,
    opening_minor     BIGINT,
    closing_minor     BIGINT
);
CREATE INDEX statement_sections_statement ON statement_sections (statement_id);

-- An import writes its rows and sections first and the statement (with its totals) last, so
-- the statement row is never updated: hence the deferred foreign keys to it.

-- Every transaction row of every imported file. Citizens' names and account numbers are
-- personal data: only a mask (for people) and a keyed tag (for matching, the same HMAC as
-- recipients.account_tag) are stored; the full row stays in the encrypted raw file.
-- A row seen before in an overlapping statement (same fingerprint on the same account) is kept
-- as `duplicate` pointing at the first one, and counts once.
CREATE TABLE bank_rows (
    id                           INTEGER PRIMARY KEY,
    statement_id                 INTEGER NOT NULL REFERENCES statements (id) DEFERRABLE INITIALLY DEFERRED,
    location                     TEXT    NOT NULL,
    account_id                   INTEGER NOT NULL REFERENCES bank_accounts (id),
    booking_date                 TEXT    NOT NULL,
    value_date                   TEXT,
    amount_minor                 BIGINT  NOT NULL,
    currency                     TEXT    NOT NULL,
    counterparty_name_masked     TEXT,
    counterparty_account_masked  TEXT,
    counterparty_account_tag     TEXT,
    reference                    TEXT,
    bank_txn_id                  TEXT,
    text                         TEXT,
    reversal                     BOOLEAN NOT NULL,
    return_reason                TEXT,
    fingerprint                  BLOB    NOT NULL CHECK (length(fingerprint) = 16),
    status                       TEXT    NOT NULL CHECK (status IN ('confirmed', 'returned', 'unmatched', 'duplicate')),
    match_strength               TEXT    CHECK (match_strength IN ('strong', 'weak')),
    -- The disbursement the row was matched to, and the confirmation/return entry written for it.
    matched_seq                  INTEGER REFERENCES ledger_entries (seq),
    entry_seq                    INTEGER REFERENCES ledger_entries (seq),
    duplicate_of                 INTEGER REFERENCES bank_rows (id),
    -- Why a row is unmatched, as a stable snake_case word.
    note                         TEXT
);
-- Every row, duplicates included: an import asks, per chunk, which of its fingerprints the
-- account has seen, in earlier statements (duplicates) or earlier in the same file (a repeated
-- identical row counts on). The importer keeps one original per (account, fingerprint) under
-- the write lock.
CREATE INDEX bank_rows_fingerprint ON bank_rows (account_id, fingerprint);
CREATE INDEX bank_rows_matched ON bank_rows (matched_seq) WHERE matched_seq IS NOT NULL;

-- Imports are history too.
CREATE TRIGGER statements_no_update BEFORE UPDATE ON statements
BEGIN SELECT RAISE(ABORT, 'statements are append-only'); END;
CREATE TRIGGER statements_no_delete BEFORE DELETE ON statements
BEGIN SELECT RAISE(ABORT, 'statements are append-only'); END;
CREATE TRIGGER statement_sections_no_update BEFORE UPDATE ON statement_sections
BEGIN SELECT RAISE(ABORT, 'statement_sections is append-only'); END;
CREATE TRIGGER statement_sections_no_delete BEFORE DELETE ON statement_sections
BEGIN SELECT RAISE(ABORT, 'statement_sections is append-only'); END;
CREATE TRIGGER bank_rows_no_update BEFORE UPDATE ON bank_rows
BEGIN SELECT RAISE(ABORT, 'bank_rows is append-only'); END;
CREATE TRIGGER bank_rows_no_delete BEFORE DELETE ON bank_rows
BEGIN SELECT RAISE(ABORT, 'bank_rows is append-only'); END;
CREATE TRIGGER bank_accounts_fixed BEFORE UPDATE OF org_id, account, currency ON bank_accounts
BEGIN SELECT RAISE(ABORT, 'a bank account belongs to one org for good'); END;
CREATE TRIGGER bank_accounts_no_delete BEFORE DELETE ON bank_accounts
BEGIN SELECT RAISE(ABORT, 'bank accounts are never deleted'); END;
