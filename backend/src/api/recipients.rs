//! The recipient registry.

use super::{AppState, Auth};
use crate::domain::now_micros;
use crate::error::{AppResult, ErrorBody};
use crate::service::recipients::{
    self, AccessLogEntry, PersonalData, RecipientFilter, RecipientPage, RecipientView, Registered,
    ResolveRequest, Resolved,
};
use crate::signing::SignedRequest;
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

/// Recipients, by pseudonym (no personal data). A local office sees its own; other roles all.
#[utoipa::path(tag = "recipients", security(("bearer" = [])), params(RecipientFilter), responses((status = 200, body = RecipientPage), (status = 400, body = ErrorBody)))]
#[get("/recipients")]
pub async fn list_recipients(
    state: web::Data<AppState>,
    auth: Auth,
    filter: web::Query<RecipientFilter>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| recipients::list(c, &auth.0, &filter))
            .await?,
    ))
}

/// Registers recipients of the calling office (up to 10,000 per request; all or nothing).
/// Role: local_office. Payload: `RegisterRequest`.
#[utoipa::path(tag = "recipients", security(("bearer" = [])), request_body(content = SignedRequest, description = "payload: RegisterRequest"),
    responses((status = 201, body = Registered), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/recipients")]
pub async fn register_recipients(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let out = state
        .signed_write(
            auth,
            "POST /api/v1/recipients".to_string(),
            body.into_inner(),
            move |c, s, v, now| recipients::register(c, &s.personal_data, v, now),
        )
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// Pseudonyms for ID numbers from the calling office's payroll (null if not its recipient).
/// Role: local_office. A read: not signed.
#[utoipa::path(tag = "recipients", security(("bearer" = [])), request_body = ResolveRequest, responses((status = 200, body = Resolved), (status = 422, body = ErrorBody)))]
#[post("/recipients/resolve")]
pub async fn resolve_recipients(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<ResolveRequest>,
) -> AppResult<HttpResponse> {
    let out = state
        .run(move |c, s| recipients::resolve(c, &s.personal_data, &auth.0, &body))
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// One recipient (no personal data).
#[utoipa::path(tag = "recipients", security(("bearer" = [])), params(("pseudonym" = String, Path)), responses((status = 200, body = RecipientView), (status = 404, body = ErrorBody)))]
#[get("/recipients/{pseudonym}")]
pub async fn get_recipient(
    state: web::Data<AppState>,
    auth: Auth,
    p: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| recipients::get(c, &auth.0, &p))
            .await?,
    ))
}

/// Sets a recipient's status (active, suspended, deceased with its date). Role: local_office
/// (the home office). Payload: `StatusRequest`.
#[utoipa::path(tag = "recipients", security(("bearer" = [])), params(("pseudonym" = String, Path)), request_body(content = SignedRequest, description = "payload: StatusRequest"),
    responses((status = 200, body = RecipientView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/recipients/{pseudonym}/status")]
pub async fn set_status(
    state: web::Data<AppState>,
    auth: Auth,
    p: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let p = p.into_inner();
    let out = state
        .signed_write(
            auth,
            format!("POST /api/v1/recipients/{p}/status"),
            body.into_inner(),
            move |c, _, v, now| recipients::set_status(c, v, &p, now),
        )
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReasonQuery {
    /// Why you read this (5-500 characters); logged and shown to the citizen.
    pub reason: String,
}

/// A recipient's personal data. Roles: inspector, or local_office (home office). The read is
/// logged with the reason before the data is returned.
#[utoipa::path(tag = "recipients", security(("bearer" = [])), params(("pseudonym" = String, Path), ReasonQuery),
    responses((status = 200, body = PersonalData), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[get("/recipients/{pseudonym}/personal-data")]
pub async fn personal_data(
    state: web::Data<AppState>,
    auth: Auth,
    p: web::Path<String>,
    q: web::Query<ReasonQuery>,
) -> AppResult<HttpResponse> {
    let out = state
        .run(move |c, s| {
            recipients::read_personal(c, &s.personal_data, &auth.0, &p, &q.reason, now_micros())
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(out))
}

/// Who read a recipient's personal data, when and why. Roles: admin, inspector, home office.
#[utoipa::path(tag = "recipients", security(("bearer" = [])), params(("pseudonym" = String, Path)), responses((status = 200, body = [AccessLogEntry]), (status = 403, body = ErrorBody)))]
#[get("/recipients/{pseudonym}/access-log")]
pub async fn access_log(
    state: web::Data<AppState>,
    auth: Auth,
    p: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| recipients::access_log(c, &auth.0, &p))
            .await?,
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `resolve` before `{pseudonym}` so the literal path wins.
    cfg.service(list_recipients)
        .service(register_recipients)
        .service(resolve_recipients)
        .service(get_recipient)
        .service(set_status)
        .service(personal_data)
        .service(access_log);
}
