//! The recipient registry. Personal data is sealed at rest; everything else the service shows
//! names a recipient only by pseudonym. Every read of personal data is logged with who, when
//! and why, and the log itself is append-only.

use super::check_text;
use crate::auth::Actor;
use crate::crypto::PersonalDataKeys;
use crate::db::{write_transaction, DbConn};
use crate::domain::{format_micros, parse_date, Micros, RecipientStatus, Role};
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::idcard;
use crate::ledger::read::Directory;
use crate::money::{format_minor, parse_amount};
use crate::signing::{self, Verified};
use diesel::prelude::*;
use fundtrail_schema::rows::{NewPersonalDataRead, NewRecipient, RecipientRow};
use fundtrail_schema::schema::{orgs, personal_data_reads, recipients};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};

/// Most recipients one registration request may carry.
pub const REGISTER_BATCH_MAX: usize = 10_000;
/// Most rows one listing page returns.
pub const LIST_PAGE_MAX: i64 = 1000;

/// One recipient to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecipientItem {
    pub name: String,
    /// 18-character resident ID number (GB 11643), checksum verified.
    pub id_number: String,
    /// Bank account or card number the payment goes to.
    pub bank_account: String,
    /// Bank name, e.g. 中国农业银行.
    pub bank_name: Option<String>,
    /// Default active.
    pub status: Option<RecipientStatus>,
    /// Date the status took effect (required for suspended and deceased), YYYY-MM-DD.
    pub status_date: Option<String>,
    /// What this recipient is due per period when it is not the program's standard amount
    /// (e.g. 低保 pays the gap to the local standard), 2 decimals: "520.00". Reconciliation
    /// flags payments that differ from it (`entitlement_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<String>,
}

/// Payload of `POST /api/v1/recipients`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub recipients: Vec<NewRecipientItem>,
}

/// The pseudonyms assigned, in request order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub pseudonyms: Vec<String>,
}

/// Payload of `POST /api/v1/recipients/{pseudonym}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: RecipientStatus,
    /// YYYY-MM-DD; required unless active.
    pub status_date: Option<String>,
}

/// Payload of `POST /api/v1/recipients/resolve`: ID numbers from an office's payroll.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub id_numbers: Vec<String>,
}

/// Pseudonyms for the ID numbers, in order; null where the ID is not a recipient of the
/// caller's office.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Resolved {
    pub pseudonyms: Vec<Option<String>>,
}

/// A recipient as lists show it: no personal data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RecipientView {
    pub pseudonym: String,
    pub home_office: String,
    pub status: RecipientStatus,
    pub status_date: Option<String>,
    /// Due per period, when set at registration (otherwise the program's standard).
    pub entitlement: Option<String>,
    pub registered_at: String,
}

/// Personal data, returned only with a logged reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PersonalData {
    pub name: String,
    pub id_number: String,
    pub bank_account: String,
    pub bank_name: Option<String>,
}

/// One logged read of a recipient's personal data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessLogEntry {
    pub org: String,
    pub reason: String,
    pub read_at: String,
}

/// Filters for listing recipients.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecipientFilter {
    /// Home office code (a local office always sees only its own).
    pub org: Option<String>,
    pub status: Option<RecipientStatus>,
    /// Cursor: pseudonyms after this one.
    pub after: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<i64>,
}

/// A page of recipients.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecipientPage {
    pub recipients: Vec<RecipientView>,
    pub next_cursor: Option<String>,
}

fn check_status(status: RecipientStatus, date: Option<&str>) -> Result<(), (&'static str, String)> {
    match (status, date) {
        (RecipientStatus::Active, _) => Ok(()),
        (_, None) => Err((
            "status_date",
            format!("a {status} recipient needs the status_date"),
        )),
        (_, Some(d)) if parse_date(d).is_none() => Err((
            "status_date",
            format!("`{d}` is not a date in the form YYYY-MM-DD"),
        )),
        _ => Ok(()),
    }
}

fn bank_account_ok(account: &str) -> bool {
    let digits = account.chars().filter(char::is_ascii_alphanumeric).count();
    (6..=34).contains(&digits)
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
}

/// `POST /api/v1/recipients` (a local office registers its own recipients).
pub fn register(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    v: &Verified,
    now: Micros,
) -> AppResult<Registered> {
    v.actor.require(&[Role::LocalOffice])?;
    let req: RegisterRequest = v.payload_as()?;
    if req.recipients.is_empty() || req.recipients.len() > REGISTER_BATCH_MAX {
        return Err(AppError::new(
            ErrorCode::BatchTooLarge,
            format!("send 1-{REGISTER_BATCH_MAX} recipients per request"),
        )
        .field("recipients"));
    }
    let mut problems = Vec::new();
    let mut rows = Vec::with_capacity(req.recipients.len());
    let mut seen = HashSet::new();
    for (i, r) in req.recipients.iter().enumerate() {
        let mut bad = |code, field: &str, message: String| {
            problems.push(Problem {
                error: code,
                message,
                field: Some(field.into()),
                item: Some(i),
                location: None,
            })
        };
        let id = match idcard::validate(&r.id_number) {
            Ok(id) => id,
            Err(e) => {
                bad(ErrorCode::InvalidIdNumber, "id_number", e.to_string());
                continue;
            }
        };
        if let Err(e) = check_text("name", &r.name, 64) {
            bad(ErrorCode::InvalidField, "name", e.first.message);
        }
        if !bank_account_ok(&r.bank_account) {
            bad(
                ErrorCode::InvalidField,
                "bank_account",
                "bank_account must be 6-34 letters or digits (spaces and dashes allowed)".into(),
            );
        }
        if let Some(name) = &r.bank_name {
            if let Err(e) = check_text("bank_name", name, 64) {
                bad(ErrorCode::InvalidField, "bank_name", e.first.message);
            }
        }
        let status = r.status.unwrap_or(RecipientStatus::Active);
        if let Err((field, msg)) = check_status(status, r.status_date.as_deref()) {
            bad(ErrorCode::InvalidField, field, msg);
        }
        let entitlement_minor = match r.entitlement.as_deref().map(|t| parse_amount(t, 2)) {
            None => None,
            Some(Ok(minor)) => Some(minor),
            Some(Err(e)) => {
                bad(e.code(), "entitlement", e.to_string());
                None
            }
        };
        let pseudonym = keys.pseudonym(&id);
        if !seen.insert(pseudonym.clone()) {
            bad(
                ErrorCode::DuplicateRecipient,
                "id_number",
                "the same ID number appears twice in this request".into(),
            );
            continue;
        }
        let personal = PersonalData {
            name: r.name.clone(),
            id_number: id,
            bank_account: r.bank_account.clone(),
            bank_name: r.bank_name.clone(),
        };
        let plain = serde_json::to_vec(&personal).expect("personal data serializes");
        rows.push(NewRecipient {
            personal_data: keys.seal(&pseudonym, &plain),
            account_tag: keys.account_tag(&r.bank_account),
            pseudonym,
            home_org_id: v.actor.org_id,
            status: status.as_str().into(),
            status_date: if status == RecipientStatus::Active {
                None
            } else {
                r.status_date.clone()
            },
            created_at: now,
            updated_at: now,
            entitlement_minor,
        });
    }
    if !problems.is_empty() {
        return Err(AppError::batch(problems));
    }
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        let pseudonyms: Vec<String> = rows.iter().map(|r| r.pseudonym.clone()).collect();
        let existing: Vec<String> = recipients::table
            .filter(recipients::pseudonym.eq_any(&pseudonyms))
            .select(recipients::pseudonym)
            .load(conn)?;
        if !existing.is_empty() {
            let existing: HashSet<&String> = existing.iter().collect();
            let problems = pseudonyms
                .iter()
                .enumerate()
                .filter(|(_, p)| existing.contains(p))
                .map(|(i, _)| Problem {
                    error: ErrorCode::DuplicateRecipient,
                    message: "this person is already registered (by this or another office)"
                        .to_string(),
                    field: Some("id_number".into()),
                    item: Some(i),
                    location: None,
                })
                .collect();
            return Err(AppError::batch(problems));
        }
        crate::insert_rows!(conn, recipients::table, &rows);
        Ok(Registered { pseudonyms })
    })
}

fn find(conn: &mut DbConn, pseudonym: &str) -> AppResult<RecipientRow> {
    recipients::table
        .filter(recipients::pseudonym.eq(pseudonym))
        .select(RecipientRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("recipient {pseudonym}")))
}

fn view(dir: &Directory, r: &RecipientRow) -> RecipientView {
    RecipientView {
        pseudonym: r.pseudonym.clone(),
        home_office: dir
            .org(r.home_org_id)
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        status: RecipientStatus::parse(&r.status).unwrap_or(RecipientStatus::Suspended),
        status_date: r.status_date.clone(),
        entitlement: r.entitlement_minor.map(|m| format_minor(m, 2)),
        registered_at: format_micros(r.created_at),
    }
}

/// `POST /api/v1/recipients/{pseudonym}/status` (the home office).
pub fn set_status(
    conn: &mut DbConn,
    v: &Verified,
    pseudonym: &str,
    now: Micros,
) -> AppResult<RecipientView> {
    v.actor.require(&[Role::LocalOffice])?;
    let req: StatusRequest = v.payload_as()?;
    check_status(req.status, req.status_date.as_deref())
        .map_err(|(f, m)| AppError::invalid(f, m))?;
    let row = find(conn, pseudonym)?;
    if row.home_org_id != v.actor.org_id {
        return Err(AppError::forbidden(
            "only the recipient's home office may change their status",
        ));
    }
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        let date = if req.status == RecipientStatus::Active {
            None
        } else {
            req.status_date.clone()
        };
        diesel::update(recipients::table.find(row.id))
            .set((
                recipients::status.eq(req.status.as_str()),
                recipients::status_date.eq(date),
                recipients::updated_at.eq(now),
            ))
            .execute(conn)?;
        let row = find(conn, pseudonym)?;
        Ok(view(&Directory::load(conn)?, &row))
    })
}

/// `POST /api/v1/recipients/resolve` (a local office, for its own recipients).
pub fn resolve(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    actor: &Actor,
    req: &ResolveRequest,
) -> AppResult<Resolved> {
    actor.require(&[Role::LocalOffice])?;
    if req.id_numbers.len() > REGISTER_BATCH_MAX {
        return Err(AppError::new(
            ErrorCode::BatchTooLarge,
            format!("resolve at most {REGISTER_BATCH_MAX} ID numbers per request"),
        )
        .field("id_numbers"));
    }
    let mut candidates = Vec::with_capacity(req.id_numbers.len());
    for (i, id) in req.id_numbers.iter().enumerate() {
        let id = idcard::validate(id).map_err(|e| {
            AppError::from(Problem {
                error: ErrorCode::InvalidIdNumber,
                message: e.to_string(),
                field: Some("id_numbers".into()),
                item: Some(i),
                location: None,
            })
        })?;
        candidates.push(keys.pseudonym(&id));
    }
    let own: HashSet<String> = recipients::table
        .filter(recipients::pseudonym.eq_any(&candidates))
        .filter(recipients::home_org_id.eq(actor.org_id))
        .select(recipients::pseudonym)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    Ok(Resolved {
        pseudonyms: candidates
            .into_iter()
            .map(|p| own.contains(&p).then_some(p))
            .collect(),
    })
}

/// `GET /api/v1/recipients`.
pub fn list(
    conn: &mut DbConn,
    actor: &Actor,
    filter: &RecipientFilter,
) -> AppResult<RecipientPage> {
    let dir = Directory::load(conn)?;
    let limit = filter.limit.unwrap_or(100);
    if !(1..=LIST_PAGE_MAX).contains(&limit) {
        return Err(AppError::new(
            ErrorCode::InvalidQuery,
            format!("limit must be 1-{LIST_PAGE_MAX}"),
        )
        .field("limit"));
    }
    let mut q = recipients::table
        .select(RecipientRow::as_select())
        .order(recipients::pseudonym)
        .limit(limit + 1)
        .into_boxed();
    let org_id = match &filter.org {
        Some(code) => Some(
            dir.org_by_code(code)
                .ok_or_else(|| {
                    AppError::new(ErrorCode::InvalidQuery, format!("unknown org {code}"))
                        .field("org")
                })?
                .id,
        ),
        None => None,
    };
    if actor.role == Role::LocalOffice {
        if org_id.is_some_and(|o| o != actor.org_id) {
            return Err(AppError::forbidden(
                "a local office sees only its own recipients",
            ));
        }
        q = q.filter(recipients::home_org_id.eq(actor.org_id));
    } else if let Some(o) = org_id {
        q = q.filter(recipients::home_org_id.eq(o));
    }
    if let Some(s) = filter.status {
        q = q.filter(recipients::status.eq(s.as_str()));
    }
    if let Some(a) = &filter.after {
        q = q.filter(recipients::pseudonym.gt(a.clone()));
    }
    let mut rows = q.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(RecipientPage {
        next_cursor: if more {
            rows.last().map(|r| r.pseudonym.clone())
        } else {
            None
        },
        recipients: rows.iter().map(|r| view(&dir, r)).collect(),
    })
}

/// `GET /api/v1/recipients/{pseudonym}`.
pub fn get(conn: &mut DbConn, actor: &Actor, pseudonym: &str) -> AppResult<RecipientView> {
    let row = find(conn, pseudonym)?;
    if actor.role == Role::LocalOffice && row.home_org_id != actor.org_id {
        return Err(AppError::forbidden(
            "a local office sees only its own recipients",
        ));
    }
    Ok(view(&Directory::load(conn)?, &row))
}

/// Most characters a stated reason may have, and fewest.
pub const REASON_CHARS_MIN: usize = 5;
pub const REASON_CHARS_MAX: usize = 500;

/// `GET /api/v1/recipients/{pseudonym}/personal-data?reason=…`: the home office or an
/// inspector, with a reason; the read is logged before the data is returned.
pub fn read_personal(
    conn: &mut DbConn,
    keys: &PersonalDataKeys,
    actor: &Actor,
    pseudonym: &str,
    reason: &str,
    now: Micros,
) -> AppResult<PersonalData> {
    actor.require(&[Role::LocalOffice, Role::Inspector])?;
    let reason = reason.trim();
    let n = reason.chars().count();
    if !(REASON_CHARS_MIN..=REASON_CHARS_MAX).contains(&n) || reason.chars().any(char::is_control) {
        return Err(AppError::new(ErrorCode::InvalidQuery, format!("state why you read this personal data: reason must be {REASON_CHARS_MIN}-{REASON_CHARS_MAX} characters")).field("reason"));
    }
    let row = find(conn, pseudonym)?;
    if actor.role == Role::LocalOffice && row.home_org_id != actor.org_id {
        return Err(AppError::forbidden(
            "a local office may read only its own recipients' personal data",
        ));
    }
    let plain = keys
        .open(&row.pseudonym, &row.personal_data)
        .ok_or_else(|| {
            AppError::internal(format!(
                "personal data of {pseudonym} does not decrypt: wrong master key or altered row"
            ))
        })?;
    let data: PersonalData = serde_json::from_slice(&plain)
        .map_err(|_| AppError::internal("personal data is unreadable"))?;
    write_transaction(conn, |conn| {
        diesel::insert_into(personal_data_reads::table)
            .values(NewPersonalDataRead {
                recipient_id: row.id,
                org_id: actor.org_id,
                token_id: actor.token_id,
                reason,
                read_at: now,
            })
            .execute(conn)?;
        Ok(())
    })?;
    Ok(data)
}

/// `GET /api/v1/recipients/{pseudonym}/access-log`: admin, inspectors and the home office.
pub fn access_log(
    conn: &mut DbConn,
    actor: &Actor,
    pseudonym: &str,
) -> AppResult<Vec<AccessLogEntry>> {
    let row = find(conn, pseudonym)?;
    if !(matches!(actor.role, Role::Admin | Role::Inspector) || actor.org_id == row.home_org_id) {
        return Err(AppError::forbidden(
            "only admins, inspectors and the home office may see this log",
        ));
    }
    let rows: Vec<(String, String, i64)> = personal_data_reads::table
        .inner_join(orgs::table.on(orgs::id.eq(personal_data_reads::org_id)))
        .filter(personal_data_reads::recipient_id.eq(row.id))
        .select((
            orgs::code,
            personal_data_reads::reason,
            personal_data_reads::read_at,
        ))
        .order(personal_data_reads::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(org, reason, at)| AccessLogEntry {
            org,
            reason,
            read_at: format_micros(at),
        })
        .collect())
}
