//! Program bank accounts.

use super::{AppState, Auth};
use crate::error::{AppResult, ErrorBody};
use crate::signing::SignedRequest;
use crate::statements::accounts::{self, AccountFilter, AccountView, ACCOUNTS_PURPOSE};
use actix_web::{get, post, web, HttpResponse};

/// Registered program bank accounts. Any role.
#[utoipa::path(tag = "statements", security(("bearer" = [])), params(AccountFilter), responses((status = 200, body = [AccountView]), (status = 400, body = ErrorBody)))]
#[get("/bank-accounts")]
pub async fn list_accounts(
    state: web::Data<AppState>,
    _auth: Auth,
    filter: web::Query<AccountFilter>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(move |c, _| accounts::list(c, &filter)).await?))
}

/// Registers a bank account that holds an org's program money; statements for it belong to
/// that org. The org itself, or the admin. Payload: `NewAccountRequest`.
#[utoipa::path(tag = "statements", security(("bearer" = [])), request_body(content = SignedRequest, description = "payload: NewAccountRequest"),
    responses((status = 201, body = AccountView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/bank-accounts")]
pub async fn register_account(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let view = state
        .signed_write(
            auth,
            ACCOUNTS_PURPOSE.to_string(),
            body.into_inner(),
            |c, _, v, now| accounts::register(c, v, now),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_accounts).service(register_account);
}
