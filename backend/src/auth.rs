//! Who is calling: bearer tokens resolve to an [`Actor`] (an org with a role). Role checks
//! live at each endpoint through [`Actor::require`].

use crate::crypto::token_digest;
use crate::db::DbConn;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use diesel::prelude::*;
use fundtrail_schema::schema::{api_tokens, orgs};

/// An authenticated caller: the org its token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub org_id: i64,
    pub org_code: String,
    pub role: Role,
    /// The token used, when the call came over HTTP (None for local tools).
    pub token_id: Option<i64>,
}

impl Actor {
    /// Refuses the call unless the actor has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(AppError::forbidden(format!(
                "role {} may not do this (allowed: {})",
                self.role,
                allowed.join(", ")
            )))
        }
    }

    /// Refuses the call unless the actor is `admin` or the org `org_id` itself.
    pub fn require_admin_or_self(&self, org_id: i64) -> AppResult<()> {
        if self.role == Role::Admin || self.org_id == org_id {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only an admin or the org itself may do this",
            ))
        }
    }

    /// The actor for an org acting locally (demo loader, CLI on a database file).
    pub fn for_org(conn: &mut DbConn, code: &str) -> AppResult<Actor> {
        let (id, code, role): (i64, String, String) = orgs::table
            .filter(orgs::code.eq(code))
            .select((orgs::id, orgs::code, orgs::role))
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::not_found(format!("org {code}")))?;
        Ok(Actor {
            org_id: id,
            org_code: code,
            role: parse_role(&role)?,
            token_id: None,
        })
    }
}

fn parse_role(text: &str) -> AppResult<Role> {
    Role::parse(text).ok_or_else(|| AppError::internal(format!("unknown role {text} in database")))
}

/// Resolves a bearer token; unknown and revoked tokens are refused alike.
pub fn authenticate(conn: &mut DbConn, token: &str) -> AppResult<Actor> {
    let digest = token_digest(token);
    let found: Option<(i64, Option<i64>, i64, String, String)> = api_tokens::table
        .inner_join(orgs::table)
        .filter(api_tokens::token_sha256.eq(&digest[..]))
        .select((
            api_tokens::id,
            api_tokens::revoked_at,
            orgs::id,
            orgs::code,
            orgs::role,
        ))
        .first(conn)
        .optional()?;
    match found {
        Some((token_id, None, org_id, org_code, role)) => Ok(Actor {
            org_id,
            org_code,
            role: parse_role(&role)?,
            token_id: Some(token_id),
        }),
        _ => Err(AppError::unauthorized(
            "the API token is unknown or revoked",
        )),
    }
}
