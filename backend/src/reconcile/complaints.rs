//! The citizens' side: a recipient looks up one payment with the reference from their bank
//! notice and their own ID number, and can report it as not received or wrong. Nothing
//! personal is shown or stored: the ID number is only turned into its keyed pseudonym, which
//! must be the payment's; a wrong reference and a wrong ID number get the same answer.

use crate::crypto::PersonalDataKeys;
use crate::db::{write_transaction, DbConn};
use crate::domain::{format_micros, EntryKind, Micros};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::idcard;
use crate::ledger::read::Directory;
use crate::money::{format_minor, parse_amount_lenient};
use diesel::prelude::*;
use fundtrail_schema::schema::{complaints, ledger_entries};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest payment reference (the ledger's limit).
pub const REFERENCE_CHARS_MAX: usize = 35;

/// `POST /api/v1/public/payment-status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentQuery {
    /// Program code, as on the bank notice or the office's letter.
    pub program: String,
    /// The payment reference (附言) on the bank notice.
    pub reference: String,
    /// The recipient's own 18-character ID number; never stored or shown.
    pub id_number: String,
}

/// What a recipient may see of their payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PaymentStatus {
    pub program: String,
    pub program_name: String,
    pub period: String,
    pub amount: String,
    pub currency: String,
    /// Day the office paid it.
    pub paid_on: String,
    /// `confirmed` (the bank paid it out), `awaiting_bank`, `returned` (the bank sent it back)
    /// or `reversed` (the office cancelled it).
    pub status: String,
    /// Day the bank booked it, when confirmed.
    pub confirmed_on: Option<String>,
    /// What the bank moved, when confirmed.
    pub confirmed_amount: Option<String>,
    /// Complaints already filed on it (`not_received`, `wrong_amount`).
    pub complaints: Vec<String>,
}

/// `POST /api/v1/public/complaints`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRequest {
    pub program: String,
    pub reference: String,
    pub id_number: String,
    /// `not_received` or `wrong_amount`.
    pub kind: String,
    /// For `wrong_amount`: what arrived, e.g. "700.00".
    pub amount_received: Option<String>,
}

/// A complaint on record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ComplaintFiled {
    pub complaint_id: i64,
    pub kind: String,
    pub filed_at: String,
    /// True when this complaint had been filed before (nothing new was written).
    pub already_filed: bool,
}

struct Payment {
    seq: i64,
    program_id: i64,
    minor_units: u32,
    amount: i64,
}

fn not_found() -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        "no payment with this reference for this ID number",
    )
}

fn find(
    conn: &mut DbConn,
    dir: &Directory,
    keys: &PersonalDataKeys,
    program: &str,
    reference: &str,
    id_number: &str,
) -> AppResult<(Payment, String, String, String)> {
    let id = idcard::validate(id_number)
        .map_err(|e| AppError::new(ErrorCode::InvalidIdNumber, e.to_string()).field("id_number"))?;
    if reference.is_empty()
        || reference.chars().count() > REFERENCE_CHARS_MAX
        || reference.chars().any(char::is_control)
    {
        return Err(AppError::new(
            ErrorCode::InvalidReference,
            format!("reference must be 1-{REFERENCE_CHARS_MAX} characters"),
        )
        .field("reference"));
    }
    let p = dir.program_by_code(program).ok_or_else(|| {
        AppError::new(
            ErrorCode::UnknownProgram,
            format!("program {program} is not registered"),
        )
        .field("program")
    })?;
    let row: Option<(i64, i64, String, String, Option<String>)> = ledger_entries::table
        .filter(ledger_entries::program_id.eq(p.id))
        .filter(ledger_entries::reference.eq(reference))
        .filter(ledger_entries::kind.eq(EntryKind::Disbursement.as_str()))
        .select((
            ledger_entries::seq,
            ledger_entries::amount_minor,
            ledger_entries::period,
            ledger_entries::value_date,
            ledger_entries::to_recipient,
        ))
        .first(conn)
        .optional()?;
    let pseudonym = keys.pseudonym(&id);
    match row {
        Some((seq, amount, period, date, Some(to))) if to == pseudonym => Ok((
            Payment {
                seq,
                program_id: p.id,
                minor_units: p.minor_units,
                amount,
            },
            period,
            date,
            p.currency.clone(),
        )),
        _ => Err(not_found()),
    }
}

/// The status of one payment, for its recipient.
pub fn status(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    q: &PaymentQuery,
) -> AppResult<PaymentStatus> {
    let dir = Directory::load(conn)?;
    let (payment, period, paid_on, currency) =
        find(conn, &dir, keys, &q.program, &q.reference, &q.id_number)?;
    let later: Vec<(String, i64, String)> = ledger_entries::table
        .filter(ledger_entries::source_seq.eq(payment.seq))
        .order(ledger_entries::seq)
        .select((
            ledger_entries::kind,
            ledger_entries::amount_minor,
            ledger_entries::value_date,
        ))
        .load(conn)?;
    let of = |k: EntryKind| later.iter().find(|(kind, _, _)| kind == k.as_str());
    let confirmation = of(EntryKind::Confirmation);
    let status = if of(EntryKind::Reversal).is_some() {
        "reversed"
    } else if of(EntryKind::Return).is_some() {
        "returned"
    } else if confirmation.is_some() {
        "confirmed"
    } else {
        "awaiting_bank"
    };
    let filed: Vec<String> = complaints::table
        .filter(complaints::payment_seq.eq(payment.seq))
        .order(complaints::id)
        .select(complaints::kind)
        .load(conn)?;
    let program = dir.program(payment.program_id).expect("found above");
    Ok(PaymentStatus {
        program: program.code.clone(),
        program_name: program.name.clone(),
        period,
        amount: format_minor(payment.amount, payment.minor_units),
        currency,
        paid_on,
        status: status.into(),
        confirmed_on: confirmation.map(|c| c.2.clone()),
        confirmed_amount: confirmation.map(|c| format_minor(c.1, payment.minor_units)),
        complaints: filed,
    })
}

/// What a citizen says arrived: an amount, or zero ("0", "0.00").
fn received_amount(text: &str, minor_units: u32) -> AppResult<i64> {
    let t = text.trim();
    let zero =
        !t.is_empty() && t.matches('.').count() <= 1 && t.chars().all(|c| c == '0' || c == '.');
    if zero {
        return Ok(0);
    }
    parse_amount_lenient(t, minor_units)
        .map_err(|e| AppError::new(e.code(), e.to_string()).field("amount_received"))
}

/// Files a complaint (once per payment and kind: filing again answers the first one).
pub fn file(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    req: &ComplaintRequest,
    client_tag: &str,
    now: Micros,
) -> AppResult<ComplaintFiled> {
    let dir = Directory::load(conn)?;
    let (payment, _, _, _) = find(
        conn,
        &dir,
        keys,
        &req.program,
        &req.reference,
        &req.id_number,
    )?;
    let received = match (req.kind.as_str(), req.amount_received.as_deref()) {
        ("not_received", None) => None,
        ("not_received", Some(_)) => {
            return Err(AppError::invalid(
                "amount_received",
                "amount_received goes with wrong_amount only",
            ))
        }
        ("wrong_amount", None) => {
            return Err(AppError::invalid(
                "amount_received",
                "say what arrived: amount_received, e.g. \"700.00\" (\"0\" if nothing)",
            ))
        }
        ("wrong_amount", Some(text)) => Some(received_amount(text, payment.minor_units)?),
        (other, _) => {
            return Err(AppError::invalid(
                "kind",
                format!("kind `{other}` must be not_received or wrong_amount"),
            ))
        }
    };
    if received == Some(payment.amount) {
        return Err(AppError::invalid(
            "amount_received",
            "that is the amount paid: nothing is wrong with it",
        ));
    }
    write_transaction(conn, |conn| {
        let existing: Option<(i64, i64)> = complaints::table
            .filter(complaints::payment_seq.eq(payment.seq))
            .filter(complaints::kind.eq(&req.kind))
            .select((complaints::id, complaints::filed_at))
            .first(conn)
            .optional()?;
        if let Some((id, at)) = existing {
            return Ok(ComplaintFiled {
                complaint_id: id,
                kind: req.kind.clone(),
                filed_at: format_micros(at),
                already_filed: true,
            });
        }
        let id: i64 = diesel::insert_into(complaints::table)
            .values((
                complaints::program_id.eq(payment.program_id),
                complaints::payment_seq.eq(payment.seq),
                complaints::kind.eq(&req.kind),
                complaints::amount_received_minor.eq(received),
                complaints::client_tag.eq(client_tag),
                complaints::filed_at.eq(now),
            ))
            .returning(complaints::id)
            .get_result(conn)?;
        Ok(ComplaintFiled {
            complaint_id: id,
            kind: req.kind.clone(),
            filed_at: format_micros(now),
            already_filed: false,
        })
    })
}
