//! The reconciliation report: what `fundtrail reconcile` and `GET /reconciliations/{id}/report`
//! hand out. Plain data, serialized with a fixed field order and sorted contents, so the same
//! ledger state and parameters give byte-identical JSON (no generation time, no job id inside).
//!
//! Amounts are exact decimal strings in the program's currency (never floats).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Format version of the JSON report; bumped when a field changes meaning.
pub const REPORT_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Report {
    pub report_version: u32,
    /// The ledger state the report was computed on.
    pub ledger_state: LedgerState,
    pub params: Params,
    /// One line per program in scope: the headline figures.
    pub summary: Vec<ProgramSummary>,
    /// One row per (program, org) of the tree in scope, parents before children.
    pub funnel: Vec<FunnelNode>,
    /// The identities the funnel must satisfy, each recomputed and stated.
    pub checks: Vec<FunnelCheck>,
    /// Sorted by type (in `FindingType::ALL` order), then program, org, reference, first evidence.
    pub findings: Vec<Finding>,
}

/// Names the data the report was computed on, so anyone holding a copy can recompute it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LedgerState {
    /// Sequence number of the last ledger entry.
    pub seq: i64,
    /// Its hash (hex): the head of the chain.
    pub head_hash: String,
    /// Bank statement rows stored (they live beside the chain).
    pub bank_rows: i64,
    /// Citizen complaints filed.
    pub complaints: i64,
}

/// What the report was asked for, defaults filled in: running the same parameters against the
/// same state gives the same bytes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Params {
    /// Program code, or null for every program.
    pub program: Option<String>,
    /// Period (`2026`, `2026-Q4`, `2026-11`), or null for all. Entries whose period overlaps it
    /// are in scope (an annual budget is in scope of each of its months).
    pub period: Option<String>,
    /// Root of the subtree, or null for the whole tree.
    pub org: Option<String>,
    /// Ages are computed from value dates as of this day (YYYY-MM-DD); nothing dated later counts.
    pub as_of: String,
    /// An org may hold an allocation this many days before `held_too_long` fires.
    pub hold_days_max: i64,
    /// A payment may wait this many days for its bank confirmation before `unconfirmed` fires.
    pub unconfirmed_days_max: i64,
    /// Differences up to this amount are not mismatches (decimal string, e.g. "0.00").
    pub amount_tolerance: String,
    /// More distinct recipients than this on one bank account fire `shared_account`.
    pub recipients_per_account_max: i64,
}

/// Headline figures for one program.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProgramSummary {
    pub program: String,
    pub program_name: String,
    pub currency: String,
    /// Money that entered the tree in scope (what the root received).
    pub received: String,
    /// Paid to recipients (net of reversals).
    pub disbursed: String,
    /// Confirmed by the bank as paid out.
    pub confirmed: String,
    /// Came back from the bank.
    pub returned: String,
    /// Still held by orgs of the tree.
    pub held: String,
    /// Reached people: confirmed by the bank, less what came back.
    pub reached_recipients: String,
    /// Paid out on the ledger or the bank with nothing to explain it (see `FunnelNode`).
    pub unexplained: String,
    /// Findings of this program and the amount they put at risk.
    pub findings: i64,
    pub amount_at_risk: String,
}

/// One node of the tree, for one program. Every amount is in the program's currency.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FunnelNode {
    pub program: String,
    pub currency: String,
    pub org: String,
    pub org_name: String,
    /// Parent in the tree (null at the root of the scope).
    pub parent: Option<String>,
    /// Depth below the scope's root (0 = root).
    pub depth: u32,
    /// Budgets and allocations it received, net of reversals.
    pub received: String,
    /// Allocations it passed down, net of reversals.
    pub passed_down: String,
    /// Payments it made to recipients, net of reversals.
    pub disbursed: String,
    /// Of those, confirmed by the bank (the amounts the bank moved).
    pub confirmed: String,
    /// Payments the bank sent back, recorded as returns.
    pub returned: String,
    /// received + returned - passed_down - disbursed.
    pub held: String,
    /// Overdue unconfirmed payments, confirmed-amount differences, bank outflows with no
    /// ledger entry, and balance differences between consecutive statements, on this node's
    /// own payments and accounts.
    pub unexplained: String,
    /// The same figures summed over the node and everything below it.
    pub subtree: SubtreeTotals,
    /// Findings whose org is this node.
    pub findings: i64,
}

/// A node's figures summed over its subtree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SubtreeTotals {
    pub disbursed: String,
    pub confirmed: String,
    pub returned: String,
    pub held: String,
    pub unexplained: String,
}

/// An identity the funnel satisfies, recomputed; `holds` false is itself an `integrity` finding.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FunnelCheck {
    pub program: String,
    /// `node` (received + returned = passed_down + disbursed + held at each node) or `tree`
    /// (what the root received = disbursed - returned + held, summed over the tree).
    pub check: String,
    /// Nodes (or trees) checked.
    pub checked: i64,
    pub holds: bool,
    /// The first node where it does not hold, if any.
    pub first_failure: Option<String>,
}

/// The leakage types, in report order.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingType {
    Integrity,
    UnrecordedOutflow,
    ReturnedNotRecredited,
    StatementGap,
    AmountMismatch,
    AccountMismatch,
    GhostRecipient,
    DuplicatePayment,
    SharedAccount,
    EntitlementMismatch,
    Unconfirmed,
    HeldTooLong,
    Complaint,
}

impl FindingType {
    pub const ALL: [FindingType; 13] = [
        FindingType::Integrity,
        FindingType::UnrecordedOutflow,
        FindingType::ReturnedNotRecredited,
        FindingType::StatementGap,
        FindingType::AmountMismatch,
        FindingType::AccountMismatch,
        FindingType::GhostRecipient,
        FindingType::DuplicatePayment,
        FindingType::SharedAccount,
        FindingType::EntitlementMismatch,
        FindingType::Unconfirmed,
        FindingType::HeldTooLong,
        FindingType::Complaint,
    ];

    /// The stable snake_case name used in JSON, CSV and the product brief.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingType::Integrity => "integrity",
            FindingType::UnrecordedOutflow => "unrecorded_outflow",
            FindingType::ReturnedNotRecredited => "returned_not_recredited",
            FindingType::StatementGap => "statement_gap",
            FindingType::AmountMismatch => "amount_mismatch",
            FindingType::AccountMismatch => "account_mismatch",
            FindingType::GhostRecipient => "ghost_recipient",
            FindingType::DuplicatePayment => "duplicate_payment",
            FindingType::SharedAccount => "shared_account",
            FindingType::EntitlementMismatch => "entitlement_mismatch",
            FindingType::Unconfirmed => "unconfirmed",
            FindingType::HeldTooLong => "held_too_long",
            FindingType::Complaint => "complaint",
        }
    }

    pub fn parse(text: &str) -> Option<FindingType> {
        FindingType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// How urgent a finding is.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// One flag, with what it rests on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Finding {
    #[serde(rename = "type")]
    pub finding_type: FindingType,
    pub severity: Severity,
    pub program: String,
    /// Period of the payment or allocation concerned (null for bank-only findings).
    pub period: Option<String>,
    /// The org responsible: the one that holds the money, paid, or owns the bank account.
    pub org: String,
    /// The amount at risk, in `currency`.
    pub amount: String,
    pub currency: String,
    /// The payment concerned, when there is one.
    pub payment_reference: Option<String>,
    /// The recipient's pseudonym, when one is concerned (never personal data).
    pub recipient: Option<String>,
    /// One sentence an inspector can read (English; the HTML report localises the rule).
    pub detail: String,
    pub evidence: Evidence,
}

/// What a finding rests on: entries anyone can look up, bank rows in their files, the rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Evidence {
    pub rule: Rule,
    pub ledger: Vec<LedgerEvidence>,
    pub bank_rows: Vec<BankRowEvidence>,
    pub complaints: Vec<ComplaintEvidence>,
    /// Statements that do not join (`statement_gap`): the earlier one, then the later one.
    /// Left out of the JSON when empty, so reports without such findings keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementEvidence>,
}

/// The rule that fired and its threshold.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Rule {
    /// Same as the finding type, or a more specific name (`ghost_recipient.deceased`).
    pub name: String,
    /// The parameter that decided it (`hold_days_max`), if any.
    pub parameter: Option<String>,
    /// Its value as used (`30`, `0.00`).
    pub threshold: Option<String>,
    /// The measured value that crossed it (`45` days, `80.00` difference, `5` recipients).
    pub observed: Option<String>,
}

/// A ledger entry a finding rests on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LedgerEvidence {
    pub seq: i64,
    pub kind: String,
    pub reference: String,
    pub amount: String,
    pub value_date: String,
}

/// A bank statement row a finding rests on: which file, where in it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct BankRowEvidence {
    pub statement_id: i64,
    pub file_name: String,
    /// `line 12` for CSV and MT940, an XML path for camt.
    pub location: String,
    pub booking_date: String,
    /// Signed: negative is money out of the account.
    pub amount: String,
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
    pub reference: Option<String>,
}

/// A statement (one section of an imported file) a finding rests on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct StatementEvidence {
    pub statement_id: i64,
    pub file_name: String,
    /// Where the section starts in the file (`line 1`, an XML path).
    pub location: String,
    /// The program account (the org's own account, not personal data).
    pub account: String,
    /// The bank's statement number, when it gives one.
    pub bank_statement_id: Option<String>,
    /// First and last day the statement covers (YYYY-MM-DD).
    pub from_date: String,
    pub to_date: String,
    /// As the bank states them, when it does.
    pub opening_balance: Option<String>,
    pub closing_balance: Option<String>,
}

/// A citizen's complaint a finding rests on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ComplaintEvidence {
    pub complaint_id: i64,
    /// `not_received` or `wrong_amount`.
    pub kind: String,
    /// What the citizen says arrived (wrong_amount only).
    pub amount_received: Option<String>,
    /// Day it was filed (YYYY-MM-DD, UTC).
    pub filed_on: String,
}
