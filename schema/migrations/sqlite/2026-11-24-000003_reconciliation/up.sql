-- Reconciliation: what a recipient is entitled to, what citizens report, and the jobs that
-- compute reports.

-- A recipient's standard amount per period, when it differs from the program's (低保 pays the
-- gap to the local standard, so amounts vary by household). NULL: the program's standard.
ALTER TABLE recipients ADD COLUMN entitlement_minor BIGINT
    CHECK (entitlement_minor IS NULL OR entitlement_minor >= 0);

-- A recipient's report that a payment did not arrive or arrived short. Filed through the
-- public endpoint with the payment reference and the recipient's own ID number (whose keyed
-- pseudonym must be the payment's); no personal data is stored, only the payment it concerns.
-- One complaint per payment and kind; append-only.
CREATE TABLE complaints (
    id                     INTEGER PRIMARY KEY,
    program_id             INTEGER NOT NULL REFERENCES programs (id),
    payment_seq            INTEGER NOT NULL REFERENCES ledger_entries (seq),
    kind                   TEXT    NOT NULL CHECK (kind IN ('not_received', 'wrong_amount')),
    amount_received_minor  BIGINT  CHECK (amount_received_minor IS NULL OR amount_received_minor >= 0),
    -- Keyed hash of the client address: lets an operator see floods without keeping addresses.
    client_tag             TEXT    NOT NULL,
    filed_at               BIGINT  NOT NULL,
    UNIQUE (payment_seq, kind)
);
CREATE TRIGGER complaints_no_update BEFORE UPDATE ON complaints
BEGIN SELECT RAISE(ABORT, 'complaints is append-only'); END;
CREATE TRIGGER complaints_no_delete BEFORE DELETE ON complaints
BEGIN SELECT RAISE(ABORT, 'complaints is append-only'); END;

-- Reconciliation jobs. The report itself lives in the encrypted file store under its SHA-256;
-- this row says who asked for what, how far it got and on which ledger state it ran.
CREATE TABLE reconciliations (
    id                   INTEGER PRIMARY KEY,
    requested_by_org_id  INTEGER NOT NULL REFERENCES orgs (id),
    params               TEXT    NOT NULL,
    status               TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    created_at           BIGINT  NOT NULL,
    started_at           BIGINT,
    finished_at          BIGINT,
    ledger_seq           BIGINT,
    head_hash            TEXT,
    report_sha256        BLOB,
    report_bytes         BIGINT,
    findings             BIGINT,
    error_code           TEXT,
    error_message        TEXT
);
CREATE INDEX reconciliations_org ON reconciliations (requested_by_org_id);
