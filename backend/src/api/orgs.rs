//! Orgs, keys and tokens.

use super::{AppState, Auth};
use crate::error::{AppResult, ErrorBody};
use crate::ledger::verify::KeyView;
use crate::service::orgs::{self, IssuedToken, OrgView, TokenView};
use crate::signing::SignedRequest;
use actix_web::{get, post, web, HttpResponse};

/// All orgs. Any role.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), responses((status = 200, body = [OrgView]), (status = 401, body = ErrorBody)))]
#[get("/orgs")]
pub async fn list_orgs(state: web::Data<AppState>, _auth: Auth) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(|c, _| orgs::list(c)).await?))
}

/// Registers an org. Role: admin. Payload: `NewOrgRequest`.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), request_body(content = SignedRequest, description = "payload: NewOrgRequest"),
    responses((status = 201, body = OrgView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/orgs")]
pub async fn create_org(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let view = state
        .signed_write(
            auth,
            "POST /api/v1/orgs".to_string(),
            body.into_inner(),
            move |c, _, v, now| orgs::create(c, v, now),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One org. Any role.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("code" = String, Path)), responses((status = 200, body = OrgView), (status = 404, body = ErrorBody)))]
#[get("/orgs/{code}")]
pub async fn get_org(
    state: web::Data<AppState>,
    _auth: Auth,
    code: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(move |c, _| orgs::get(c, &code)).await?))
}

/// Every registered public key, with its validity. Any role.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), responses((status = 200, body = [KeyView])))]
#[get("/keys")]
pub async fn list_all_keys(state: web::Data<AppState>, _auth: Auth) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(|c, _| orgs::keys(c, None)).await?))
}

/// An org's public keys. Any role.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("code" = String, Path)), responses((status = 200, body = [KeyView]), (status = 404, body = ErrorBody)))]
#[get("/orgs/{code}/keys")]
pub async fn list_keys(
    state: web::Data<AppState>,
    _auth: Auth,
    code: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(move |c, _| orgs::keys(c, Some(&code))).await?))
}

/// Registers a public key for an org. Roles: admin, or the org itself (key rotation).
/// Payload: `NewKeyRequest`.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("code" = String, Path)), request_body(content = SignedRequest, description = "payload: NewKeyRequest"),
    responses((status = 201, body = KeyView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/orgs/{code}/keys")]
pub async fn add_key(
    state: web::Data<AppState>,
    auth: Auth,
    code: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let code = code.into_inner();
    let view = state
        .signed_write(
            auth,
            format!("POST /api/v1/orgs/{code}/keys"),
            body.into_inner(),
            move |c, _, v, now| orgs::add_key(c, v, &code, now),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Retires a key from a time on (never in the past). Roles: admin, or the org itself.
/// Payload: `RetireKeyRequest`.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("code" = String, Path), ("key_id" = String, Path)), request_body(content = SignedRequest, description = "payload: RetireKeyRequest"),
    responses((status = 200, body = KeyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/orgs/{code}/keys/{key_id}/retire")]
pub async fn retire_key(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(String, String)>,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let (code, key_id) = path.into_inner();
    let view = state
        .signed_write(
            auth,
            format!("POST /api/v1/orgs/{code}/keys/{key_id}/retire"),
            body.into_inner(),
            move |c, _, v, now| orgs::retire_key(c, v, &code, &key_id, now),
        )
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// An org's tokens (never their secrets). Roles: admin, or the org itself.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("code" = String, Path)), responses((status = 200, body = [TokenView]), (status = 403, body = ErrorBody)))]
#[get("/orgs/{code}/tokens")]
pub async fn list_tokens(
    state: web::Data<AppState>,
    auth: Auth,
    code: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| orgs::list_tokens(c, &auth.0, &code))
            .await?,
    ))
}

/// Issues an API token for an org; the secret is in this response only. Roles: admin, or the
/// org itself. Payload: `NewTokenRequest`.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("code" = String, Path)), request_body(content = SignedRequest, description = "payload: NewTokenRequest"),
    responses((status = 201, body = IssuedToken), (status = 403, body = ErrorBody)))]
#[post("/orgs/{code}/tokens")]
pub async fn create_token(
    state: web::Data<AppState>,
    auth: Auth,
    code: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let code = code.into_inner();
    let view = state
        .signed_write(
            auth,
            format!("POST /api/v1/orgs/{code}/tokens"),
            body.into_inner(),
            move |c, _, v, now| orgs::create_token(c, v, &code, now),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Revokes a token. Roles: admin, or the token's org. Payload: `{}`.
#[utoipa::path(tag = "orgs", security(("bearer" = [])), params(("id" = i64, Path)), request_body(content = SignedRequest, description = "payload: {}"),
    responses((status = 200, body = TokenView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/tokens/{id}/revoke")]
pub async fn revoke_token(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let view = state
        .signed_write(
            auth,
            format!("POST /api/v1/tokens/{id}/revoke"),
            body.into_inner(),
            move |c, _, v, now| orgs::revoke_token(c, v, id, now),
        )
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_orgs)
        .service(create_org)
        .service(get_org)
        .service(list_all_keys)
        .service(list_keys)
        .service(add_key)
        .service(retire_key)
        .service(list_tokens)
        .service(create_token)
        .service(revoke_token);
}
