//! Program bank accounts: which org's money an account holds, so that a statement for it
//! belongs to that org and its rows are matched to that org's payments.

use super::normalize_account;
use crate::db::{write_transaction, DbConn};
use crate::domain::{format_micros, Micros, Role};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::read::Directory;
use crate::service::check_text;
use crate::signing::{self, Verified};
use diesel::prelude::*;
use fundtrail_schema::rows::{BankAccountRow, NewBankAccount};
use fundtrail_schema::schema::bank_accounts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest account number, in characters after normalisation (IBAN is 34).
pub const ACCOUNT_CHARS_MAX: usize = 34;

/// The signature purpose of registering a bank account.
pub const ACCOUNTS_PURPOSE: &str = "POST /api/v1/bank-accounts";

/// Payload of `POST /api/v1/bank-accounts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// The org whose program money the account holds: the signer, or any org for the admin.
    pub org: String,
    /// Account number or IBAN; spaces and dashes are ignored.
    pub account: String,
    /// ISO 4217, default CNY.
    pub currency: Option<String>,
    /// For people, e.g. `城关镇低保资金专户`.
    pub label: String,
}

/// A bank account as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AccountView {
    pub org: String,
    /// Normalised: letters and digits, upper-case.
    pub account: String,
    pub currency: String,
    pub label: String,
    pub created_at: String,
}

/// Filter of `GET /api/v1/bank-accounts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountFilter {
    /// Only this org's accounts.
    pub org: Option<String>,
}

fn view(dir: &Directory, a: BankAccountRow) -> AccountView {
    AccountView {
        org: dir
            .org(a.org_id)
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        account: a.account,
        currency: a.currency,
        label: a.label,
        created_at: format_micros(a.created_at),
    }
}

/// `POST /api/v1/bank-accounts`: an org registers an account holding its program money (or
/// the admin does it for the org).
pub fn register(conn: &mut DbConn, v: &Verified, now: Micros) -> AppResult<AccountView> {
    let req: NewAccountRequest = v.payload_as()?;
    let account = normalize_account(&req.account);
    if account.is_empty() || account.len() > ACCOUNT_CHARS_MAX {
        return Err(AppError::invalid(
            "account",
            format!("an account number has 1-{ACCOUNT_CHARS_MAX} letters and digits"),
        ));
    }
    let currency = req.currency.clone().unwrap_or_else(|| "CNY".into());
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::invalid(
            "currency",
            "currency must be an ISO 4217 code such as CNY",
        ));
    }
    check_text("label", &req.label, 100)?;
    write_transaction(conn, |conn| {
        let dir = Directory::load(conn)?;
        let org = dir.org_by_code(&req.org).ok_or_else(|| {
            AppError::new(
                ErrorCode::UnknownOrg,
                format!("org {} is not registered", req.org),
            )
            .field("org")
        })?;
        if org.id != v.actor.org_id && v.actor.role != Role::Admin {
            return Err(AppError::forbidden(format!(
                "{} may register only its own accounts",
                v.actor.org_code
            )));
        }
        signing::record(conn, v, now)?;
        let holder: Option<i64> = bank_accounts::table
            .filter(bank_accounts::account.eq(&account))
            .select(bank_accounts::org_id)
            .first(conn)
            .optional()?;
        if let Some(holder) = holder {
            let code = dir.org(holder).map(|o| o.code.as_str()).unwrap_or("?");
            return Err(AppError::new(
                ErrorCode::AlreadyExists,
                format!("account {account} is already registered to {code}"),
            )
            .field("account"));
        }
        let id: i64 = diesel::insert_into(bank_accounts::table)
            .values(NewBankAccount {
                org_id: org.id,
                account: &account,
                currency: &currency,
                label: &req.label,
                created_at: now,
            })
            .returning(bank_accounts::id)
            .get_result(conn)?;
        let row = bank_accounts::table
            .find(id)
            .select(BankAccountRow::as_select())
            .first(conn)?;
        Ok(view(&dir, row))
    })
}

/// `GET /api/v1/bank-accounts`.
pub fn list(conn: &mut DbConn, filter: &AccountFilter) -> AppResult<Vec<AccountView>> {
    let dir = Directory::load(conn)?;
    let mut q = bank_accounts::table
        .select(BankAccountRow::as_select())
        .order(bank_accounts::id)
        .into_boxed();
    if let Some(code) = &filter.org {
        let org = dir.org_by_code(code).ok_or_else(|| {
            AppError::new(ErrorCode::InvalidQuery, format!("unknown org {code}")).field("org")
        })?;
        q = q.filter(bank_accounts::org_id.eq(org.id));
    }
    Ok(q.load(conn)?.into_iter().map(|a| view(&dir, a)).collect())
}
