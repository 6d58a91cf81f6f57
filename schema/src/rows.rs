//! Row structs: what one row of each table looks like to Rust. API types live in the backend
//! and are converted from these; nothing here is serialized to JSON.

use crate::schema::*;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = orgs)]
pub struct OrgRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub role: String,
    pub parent_id: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = orgs, treat_none_as_default_value = false)]
pub struct NewOrg<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub parent_id: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = org_keys)]
pub struct OrgKeyRow {
    pub id: i64,
    pub org_id: i64,
    pub key_id: String,
    pub public_key: Vec<u8>,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub registered_by_org_id: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = org_keys, treat_none_as_default_value = false)]
pub struct NewOrgKey<'a> {
    pub org_id: i64,
    pub key_id: &'a str,
    pub public_key: &'a [u8],
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub registered_by_org_id: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: i64,
    pub org_id: i64,
    pub token_sha256: Vec<u8>,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_tokens, treat_none_as_default_value = false)]
pub struct NewApiToken<'a> {
    pub org_id: i64,
    pub token_sha256: &'a [u8],
    pub label: &'a str,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = submissions)]
pub struct SubmissionRow {
    pub id: i64,
    pub nonce: String,
    pub org_id: i64,
    pub key_id: String,
    pub purpose: String,
    pub payload_sha256: Vec<u8>,
    pub signed_at: String,
    pub signature: Vec<u8>,
    pub recorded_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = submissions)]
pub struct NewSubmission<'a> {
    pub nonce: &'a str,
    pub org_id: i64,
    pub key_id: &'a str,
    pub purpose: &'a str,
    pub payload_sha256: &'a [u8],
    pub signed_at: &'a str,
    pub signature: &'a [u8],
    pub recorded_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = programs)]
pub struct ProgramRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub fiscal_year: i32,
    pub currency: String,
    pub minor_units: i32,
    pub standard_amount_minor: i64,
    pub period_granularity: String,
    pub owner_org_id: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = programs)]
pub struct NewProgram<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub fiscal_year: i32,
    pub currency: &'a str,
    pub minor_units: i32,
    pub standard_amount_minor: i64,
    pub period_granularity: &'a str,
    pub owner_org_id: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = recipients)]
pub struct RecipientRow {
    pub id: i64,
    pub pseudonym: String,
    pub home_org_id: i64,
    pub status: String,
    pub status_date: Option<String>,
    pub account_tag: String,
    pub personal_data: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    pub entitlement_minor: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = recipients, treat_none_as_default_value = false)]
pub struct NewRecipient {
    pub pseudonym: String,
    pub home_org_id: i64,
    pub status: String,
    pub status_date: Option<String>,
    pub account_tag: String,
    pub personal_data: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    pub entitlement_minor: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = personal_data_reads)]
pub struct PersonalDataReadRow {
    pub id: i64,
    pub recipient_id: i64,
    pub org_id: i64,
    pub token_id: Option<i64>,
    pub reason: String,
    pub read_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = personal_data_reads, treat_none_as_default_value = false)]
pub struct NewPersonalDataRead<'a> {
    pub recipient_id: i64,
    pub org_id: i64,
    pub token_id: Option<i64>,
    pub reason: &'a str,
    pub read_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_entries, treat_none_as_default_value = false)]
pub struct LedgerEntryRow {
    pub seq: i64,
    pub kind: String,
    pub program_id: i64,
    pub period: String,
    pub source_seq: Option<i64>,
    pub from_org_id: Option<i64>,
    pub to_org_id: Option<i64>,
    pub to_recipient: Option<String>,
    pub amount_minor: i64,
    pub reference: String,
    pub memo: String,
    pub author_org_id: i64,
    pub submission_id: i64,
    pub value_date: String,
    pub recorded_at: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_funds, treat_none_as_default_value = false)]
pub struct LedgerFundsRow {
    pub seq: i64,
    pub remaining_minor: i64,
    pub reversed_by: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bank_accounts)]
pub struct BankAccountRow {
    pub id: i64,
    pub org_id: i64,
    pub account: String,
    pub currency: String,
    pub label: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = bank_accounts, treat_none_as_default_value = false)]
pub struct NewBankAccount<'a> {
    pub org_id: i64,
    pub account: &'a str,
    pub currency: &'a str,
    pub label: &'a str,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = statements, treat_none_as_default_value = false)]
pub struct StatementRow {
    pub id: i64,
    pub file_sha256: Vec<u8>,
    pub size_bytes: i64,
    pub file_name: String,
    pub format: String,
    pub manifest: String,
    pub org_id: i64,
    pub submission_id: i64,
    pub imported_at: i64,
    pub rows_total: i64,
    pub rows_duplicate: i64,
    pub confirmed_strong: i64,
    pub confirmed_weak: i64,
    pub returned: i64,
    pub unmatched: i64,
    pub first_row_id: Option<i64>,
    pub last_row_id: Option<i64>,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = statement_sections, treat_none_as_default_value = false)]
pub struct StatementSectionRow {
    pub id: i64,
    pub statement_id: i64,
    pub account_id: i64,
    pub location: String,
    pub bank_statement_id: Option<String>,
    pub currency: Option<String>,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub opening_minor: Option<i64>,
    pub closing_minor: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bank_rows, treat_none_as_default_value = false)]
pub struct BankRow {
    pub id: i64,
    pub statement_id: i64,
    pub location: String,
    pub account_id: i64,
    pub booking_date: String,
    pub value_date: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub counterparty_name_masked: Option<String>,
    pub counterparty_account_masked: Option<String>,
    pub counterparty_account_tag: Option<String>,
    pub reference: Option<String>,
    pub bank_txn_id: Option<String>,
    pub text: Option<String>,
    pub reversal: bool,
    pub return_reason: Option<String>,
    pub fingerprint: Vec<u8>,
    pub status: String,
    pub match_strength: Option<String>,
    pub matched_seq: Option<i64>,
    pub entry_seq: Option<i64>,
    pub duplicate_of: Option<i64>,
    pub note: Option<String>,
}
