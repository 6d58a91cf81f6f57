//! Orgs, their keys and their API tokens.

use super::{check_code, check_text};
use crate::auth::Actor;
use crate::crypto::{self, key_id_for};
use crate::db::{write_transaction, DbConn};
use crate::domain::{format_micros, parse_time, Micros, Role};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::read::Directory;
use crate::ledger::verify::{key_views, KeyView};
use crate::signing::{self, Verified};
use diesel::prelude::*;
use fundtrail_schema::rows::{ApiTokenRow, NewApiToken, NewOrg, NewOrgKey, OrgRow};
use fundtrail_schema::schema::{api_tokens, org_keys, orgs};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An org as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct OrgView {
    pub code: String,
    pub name: String,
    pub role: Role,
    pub parent: Option<String>,
    pub created_at: String,
}

/// Payload of `POST /api/v1/orgs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgRequest {
    /// 2-32 of A-Z, 0-9, - and _.
    pub code: String,
    pub name: String,
    pub role: Role,
    /// Code of the org directly above (money flows down this tree).
    pub parent: Option<String>,
    /// The org's first Ed25519 public key (standard base64), if known now.
    pub public_key: Option<String>,
}

/// Payload of `POST /api/v1/orgs/{code}/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// 32-byte Ed25519 public key, standard base64.
    pub public_key: String,
    /// When it starts to be valid (RFC 3339); default now. Never in the past.
    pub valid_from: Option<String>,
    /// When it stops (RFC 3339); default never.
    pub valid_until: Option<String>,
}

/// Payload of `POST /api/v1/orgs/{code}/keys/{key_id}/retire`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireKeyRequest {
    /// When it stops being valid (RFC 3339); default now. Never in the past, so signatures
    /// already made stay valid.
    pub at: Option<String>,
}

/// Payload of `POST /api/v1/orgs/{code}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// What the token is for, e.g. the clerk or script that uses it.
    pub label: String,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub org: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A newly issued token: the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    pub id: i64,
    pub org: String,
    pub label: String,
    /// The bearer token. Store it now: only its hash is kept.
    pub token: String,
}

pub fn org_view(dir: &Directory, o: &OrgRow) -> OrgView {
    OrgView {
        code: o.code.clone(),
        name: o.name.clone(),
        role: Role::parse(&o.role).unwrap_or(Role::Inspector),
        parent: o.parent_id.and_then(|p| dir.org(p)).map(|p| p.code.clone()),
        created_at: format_micros(o.created_at),
    }
}

fn find_org(conn: &mut DbConn, code: &str) -> AppResult<OrgRow> {
    orgs::table
        .filter(orgs::code.eq(code))
        .select(OrgRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("org {code}")))
}

fn decode_public_key(field: &str, text: &str) -> AppResult<Vec<u8>> {
    crypto::b64_decode(text.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            AppError::invalid(
                field,
                "public_key must be a 32-byte Ed25519 key in standard base64",
            )
        })
}

fn insert_key(
    conn: &mut DbConn,
    registered_by: i64,
    org_id: i64,
    public_key: &[u8],
    valid_from: Micros,
    valid_until: Option<Micros>,
    now: Micros,
) -> AppResult<String> {
    let key_id = key_id_for(public_key);
    let exists: i64 = org_keys::table
        .filter(org_keys::key_id.eq(&key_id))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Err(AppError::new(
            ErrorCode::AlreadyExists,
            format!("key {key_id} is already registered"),
        )
        .field("public_key"));
    }
    diesel::insert_into(org_keys::table)
        .values(NewOrgKey {
            org_id,
            key_id: &key_id,
            public_key,
            valid_from,
            valid_until,
            registered_by_org_id: registered_by,
            created_at: now,
        })
        .execute(conn)?;
    Ok(key_id)
}

/// Creates an org without a signature: only for `fundtrail init`, which bootstraps the
/// operator (there is no key to sign with yet). Returns the org id.
pub fn bootstrap_org(
    conn: &mut DbConn,
    code: &str,
    name: &str,
    role: Role,
    public_key: &[u8],
    now: Micros,
) -> AppResult<i64> {
    check_code("code", code)?;
    write_transaction(conn, |conn| {
        let id: i64 = diesel::insert_into(orgs::table)
            .values(NewOrg {
                code,
                name,
                role: role.as_str(),
                parent_id: None,
                created_at: now,
            })
            .returning(orgs::id)
            .get_result(conn)?;
        insert_key(conn, id, id, public_key, now, None, now)?;
        Ok(id)
    })
}

/// Issues a token without a signature (bootstrap and local tools only).
pub fn issue_token_local(
    conn: &mut DbConn,
    org_id: i64,
    label: &str,
    now: Micros,
) -> AppResult<(i64, String)> {
    let token = crypto::new_api_token();
    let digest = crypto::token_digest(&token);
    let id = diesel::insert_into(api_tokens::table)
        .values(NewApiToken {
            org_id,
            token_sha256: &digest,
            label,
            created_at: now,
            revoked_at: None,
        })
        .returning(api_tokens::id)
        .get_result(conn)?;
    Ok((id, token))
}

/// `POST /api/v1/orgs` (admin).
pub fn create(conn: &mut DbConn, v: &Verified, now: Micros) -> AppResult<OrgView> {
    v.actor.require(&[Role::Admin])?;
    let req: NewOrgRequest = v.payload_as()?;
    check_code("code", &req.code)?;
    check_text("name", &req.name, 100)?;
    let key = req
        .public_key
        .as_deref()
        .map(|k| decode_public_key("public_key", k))
        .transpose()?;
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        let parent = match &req.parent {
            Some(p) => Some(find_org(conn, p).map_err(|_| {
                AppError::new(
                    ErrorCode::UnknownOrg,
                    format!("parent org {p} is not registered"),
                )
                .field("parent")
            })?),
            None => None,
        };
        if matches!(req.role, Role::FinanceBureau | Role::LocalOffice) {
            if let Some(p) = &parent {
                if !matches!(
                    Role::parse(&p.role),
                    Some(Role::FinanceBureau | Role::LocalOffice)
                ) {
                    return Err(AppError::invalid(
                        "parent",
                        format!(
                            "a {} sits below a finance bureau or local office, not a {}",
                            req.role, p.role
                        ),
                    ));
                }
            }
        }
        let exists: i64 = orgs::table
            .filter(orgs::code.eq(&req.code))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Err(AppError::new(
                ErrorCode::AlreadyExists,
                format!("org {} already exists", req.code),
            )
            .field("code"));
        }
        let id: i64 = diesel::insert_into(orgs::table)
            .values(NewOrg {
                code: &req.code,
                name: &req.name,
                role: req.role.as_str(),
                parent_id: parent.as_ref().map(|p| p.id),
                created_at: now,
            })
            .returning(orgs::id)
            .get_result(conn)?;
        if let Some(k) = &key {
            insert_key(conn, v.actor.org_id, id, k, now, None, now)?;
        }
        let row = orgs::table
            .find(id)
            .select(OrgRow::as_select())
            .first(conn)?;
        let dir = Directory::load(conn)?;
        Ok(org_view(&dir, &row))
    })
}

/// `GET /api/v1/orgs`.
pub fn list(conn: &mut DbConn) -> AppResult<Vec<OrgView>> {
    let dir = Directory::load(conn)?;
    let rows: Vec<OrgRow> = orgs::table
        .select(OrgRow::as_select())
        .order(orgs::code)
        .load(conn)?;
    Ok(rows.iter().map(|o| org_view(&dir, o)).collect())
}

/// `GET /api/v1/orgs/{code}`.
pub fn get(conn: &mut DbConn, code: &str) -> AppResult<OrgView> {
    let row = find_org(conn, code)?;
    let dir = Directory::load(conn)?;
    Ok(org_view(&dir, &row))
}

fn time_or_now(field: &str, text: Option<&str>, now: Micros) -> AppResult<Micros> {
    match text {
        None => Ok(now),
        Some(t) => parse_time(t)
            .ok_or_else(|| AppError::invalid(field, format!("{field} must be an RFC 3339 time"))),
    }
}

/// `POST /api/v1/orgs/{code}/keys`: the org itself (rotation), or the admin for an org with
/// no valid key (first key, or recovery after the old one was retired).
pub fn add_key(conn: &mut DbConn, v: &Verified, code: &str, now: Micros) -> AppResult<KeyView> {
    let org = find_org(conn, code)?;
    v.actor.require_admin_or_self(org.id)?;
    let req: NewKeyRequest = v.payload_as()?;
    let key = decode_public_key("public_key", &req.public_key)?;
    // Never back-dated: a new key must not make old signatures it did not make look valid.
    let valid_from = time_or_now("valid_from", req.valid_from.as_deref(), now)?.max(now);
    let valid_until = req
        .valid_until
        .as_deref()
        .map(|t| time_or_now("valid_until", Some(t), now))
        .transpose()?;
    if valid_until.is_some_and(|u| u <= valid_from) {
        return Err(AppError::invalid(
            "valid_until",
            "valid_until must be after valid_from",
        ));
    }
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        // The admin registers an org's first key, or replaces one that was retired (lost or
        // compromised). While the org has a valid key, only the org itself, signing with that
        // key, adds keys: otherwise the operator could give itself a key and sign as the org.
        if v.actor.org_id != org.id {
            let valid_keys: i64 = org_keys::table
                .filter(org_keys::org_id.eq(org.id))
                .filter(
                    org_keys::valid_until
                        .is_null()
                        .or(org_keys::valid_until.gt(now)),
                )
                .count()
                .get_result(conn)?;
            if valid_keys > 0 {
                return Err(AppError::forbidden(format!(
                    "{code} has a valid key: it registers new keys itself, signed with that key \
                     (an admin may only replace a key that was retired as lost or compromised)"
                )));
            }
        }
        let key_id = insert_key(
            conn,
            v.actor.org_id,
            org.id,
            &key,
            valid_from,
            valid_until,
            now,
        )?;
        let dir = Directory::load(conn)?;
        key_views(conn, &dir)?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| AppError::internal("inserted key vanished"))
    })
}

/// `POST /api/v1/orgs/{code}/keys/{key_id}/retire` (admin or the org itself).
pub fn retire_key(
    conn: &mut DbConn,
    v: &Verified,
    code: &str,
    key_id: &str,
    now: Micros,
) -> AppResult<KeyView> {
    let org = find_org(conn, code)?;
    v.actor.require_admin_or_self(org.id)?;
    let req: RetireKeyRequest = v.payload_as()?;
    let at = time_or_now("at", req.at.as_deref(), now)?.max(now);
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        let current: Option<Option<i64>> = org_keys::table
            .filter(org_keys::key_id.eq(key_id))
            .filter(org_keys::org_id.eq(org.id))
            .select(org_keys::valid_until)
            .first(conn)
            .optional()?;
        match current {
            None => return Err(AppError::not_found(format!("key {key_id} of org {code}"))),
            Some(Some(until)) if until <= at => {} // already retired no later than asked
            Some(_) => {
                diesel::update(org_keys::table.filter(org_keys::key_id.eq(key_id)))
                    .set(org_keys::valid_until.eq(Some(at)))
                    .execute(conn)?;
            }
        }
        let dir = Directory::load(conn)?;
        key_views(conn, &dir)?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| AppError::internal("key vanished"))
    })
}

/// `GET /api/v1/keys` and `GET /api/v1/orgs/{code}/keys`.
pub fn keys(conn: &mut DbConn, code: Option<&str>) -> AppResult<Vec<KeyView>> {
    if let Some(c) = code {
        find_org(conn, c)?;
    }
    let dir = Directory::load(conn)?;
    Ok(key_views(conn, &dir)?
        .into_iter()
        .filter(|k| code.is_none_or(|c| k.org == c))
        .collect())
}

/// `POST /api/v1/orgs/{code}/tokens` (admin or the org itself).
pub fn create_token(
    conn: &mut DbConn,
    v: &Verified,
    code: &str,
    now: Micros,
) -> AppResult<IssuedToken> {
    let org = find_org(conn, code)?;
    v.actor.require_admin_or_self(org.id)?;
    let req: NewTokenRequest = v.payload_as()?;
    check_text("label", &req.label, 100)?;
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        let (id, token) = issue_token_local(conn, org.id, &req.label, now)?;
        Ok(IssuedToken {
            id,
            org: org.code.clone(),
            label: req.label.clone(),
            token,
        })
    })
}

/// `GET /api/v1/orgs/{code}/tokens` (admin or the org itself).
pub fn list_tokens(conn: &mut DbConn, actor: &Actor, code: &str) -> AppResult<Vec<TokenView>> {
    let org = find_org(conn, code)?;
    actor.require_admin_or_self(org.id)?;
    let rows: Vec<ApiTokenRow> = api_tokens::table
        .filter(api_tokens::org_id.eq(org.id))
        .select(ApiTokenRow::as_select())
        .order(api_tokens::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            org: org.code.clone(),
            label: t.label,
            created_at: format_micros(t.created_at),
            revoked_at: t.revoked_at.map(format_micros),
        })
        .collect())
}

/// `POST /api/v1/tokens/{id}/revoke` (admin or the token's org).
pub fn revoke_token(conn: &mut DbConn, v: &Verified, id: i64, now: Micros) -> AppResult<TokenView> {
    let row: ApiTokenRow = api_tokens::table
        .find(id)
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("token {id}")))?;
    v.actor.require_admin_or_self(row.org_id)?;
    write_transaction(conn, |conn| {
        signing::record(conn, v, now)?;
        if row.revoked_at.is_none() {
            diesel::update(api_tokens::table.find(id))
                .set(api_tokens::revoked_at.eq(Some(now)))
                .execute(conn)?;
        }
        let org = orgs::table
            .find(row.org_id)
            .select(orgs::code)
            .first::<String>(conn)?;
        Ok(TokenView {
            id,
            org,
            label: row.label.clone(),
            created_at: format_micros(row.created_at),
            revoked_at: Some(format_micros(row.revoked_at.unwrap_or(now))),
        })
    })
}
