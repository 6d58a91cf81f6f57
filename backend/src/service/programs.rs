//! Welfare programs: what is paid, in which currency, by which periods, at what standard.

use super::{check_code, check_text};
use crate::db::{write_transaction, DbConn};
use crate::domain::{format_micros, Granularity, Micros, Role};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::read::Directory;
use crate::money::{format_minor, parse_amount_lenient};
use crate::signing::{self, Verified};
use diesel::prelude::*;
use fundtrail_schema::rows::{NewProgram, ProgramRow};
use fundtrail_schema::schema::programs;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Payload of `POST /api/v1/programs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgramRequest {
    /// 2-32 of A-Z, 0-9, - and _, e.g. `DIBAO-2026`.
    pub code: String,
    pub name: String,
    pub fiscal_year: i32,
    /// ISO 4217, default CNY.
    pub currency: Option<String>,
    /// Decimals of the currency; default from the currency (2 for CNY).
    pub minor_units: Option<u32>,
    /// The standard amount per recipient per period, e.g. `780.00`.
    pub standard_amount: String,
    pub period_granularity: Granularity,
}

/// A program as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProgramView {
    pub code: String,
    pub name: String,
    pub fiscal_year: i32,
    pub currency: String,
    pub minor_units: u32,
    pub standard_amount: String,
    pub period_granularity: Granularity,
    /// The finance bureau that registered (and alone budgets) it.
    pub owner: String,
    pub created_at: String,
}

fn default_minor_units(currency: &str) -> Option<u32> {
    match currency {
        "CNY" | "USD" | "EUR" | "HKD" | "GBP" => Some(2),
        "JPY" | "KRW" => Some(0),
        _ => None,
    }
}

fn view(dir: &Directory, p: ProgramRow) -> ProgramView {
    ProgramView {
        standard_amount: format_minor(p.standard_amount_minor, p.minor_units as u32),
        owner: dir
            .org(p.owner_org_id)
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        code: p.code,
        name: p.name,
        fiscal_year: p.fiscal_year,
        currency: p.currency,
        minor_units: p.minor_units as u32,
        period_granularity: Granularity::parse(&p.period_granularity).unwrap_or(Granularity::Month),
        created_at: format_micros(p.created_at),
    }
}

/// `POST /api/v1/programs` (finance bureau; it becomes the owner).
pub fn create(conn: &mut DbConn, v: &Verified, now: Micros) -> AppResult<ProgramView> {
    v.actor.require(&[Role::FinanceBureau])?;
    let req: NewProgramRequest = v.payload_as()?;
    check_code("code", &req.code)?;
    check_text("name", &req.name, 100)?;
    if !(2000..=2200).contains(&req.fiscal_year) {
        return Err(AppError::invalid(
            "fiscal_year",
            "fiscal_year must be between 2000 and 2200",
        ));
    }
    let currency = req.currency.clone().unwrap_or_else(|| "CNY".into());
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::invalid(
            "currency",
            "currency must be an ISO 4217 code such as CNY",
        ));
    }
    let minor_units = match req.minor_units.or_else(|| default_minor_units(&currency)) {
        Some(m) if m <= 4 => m,
        Some(_) => return Err(AppError::invalid("minor_units", "minor_units must be 0-4")),
        None => {
            return Err(AppError::invalid(
                "minor_units",
                format!("give minor_units for currency {currency}"),
            ))
        }
    };
    let standard = parse_amount_lenient(&req.standard_amount, minor_units).map_err(|e| {
        AppError::new(ErrorCode::InvalidAmount, e.to_string()).field("standard_amount")
    })?;
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        let exists: i64 = programs::table
            .filter(programs::code.eq(&req.code))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Err(AppError::new(
                ErrorCode::AlreadyExists,
                format!("program {} already exists", req.code),
            )
            .field("code"));
        }
        let id: i64 = diesel::insert_into(programs::table)
            .values(NewProgram {
                code: &req.code,
                name: &req.name,
                fiscal_year: req.fiscal_year,
                currency: &currency,
                minor_units: minor_units as i32,
                standard_amount_minor: standard,
                period_granularity: req.period_granularity.as_str(),
                owner_org_id: v.actor.org_id,
                created_at: now,
            })
            .returning(programs::id)
            .get_result(conn)?;
        let row = programs::table
            .find(id)
            .select(ProgramRow::as_select())
            .first(conn)?;
        Ok(view(&Directory::load(conn)?, row))
    })
}

/// `GET /api/v1/programs`.
pub fn list(conn: &mut DbConn) -> AppResult<Vec<ProgramView>> {
    let dir = Directory::load(conn)?;
    let rows: Vec<ProgramRow> = programs::table
        .select(ProgramRow::as_select())
        .order(programs::code)
        .load(conn)?;
    Ok(rows.into_iter().map(|p| view(&dir, p)).collect())
}

/// `GET /api/v1/programs/{code}`.
pub fn get(conn: &mut DbConn, code: &str) -> AppResult<ProgramView> {
    let dir = Directory::load(conn)?;
    let row = programs::table
        .filter(programs::code.eq(code))
        .select(ProgramRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("program {code}")))?;
    Ok(view(&dir, row))
}
