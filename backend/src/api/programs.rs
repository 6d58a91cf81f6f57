//! Programs.

use super::{AppState, Auth};
use crate::error::{AppResult, ErrorBody};
use crate::service::programs::{self, ProgramView};
use crate::signing::SignedRequest;
use actix_web::{get, post, web, HttpResponse};

/// All programs. Any role.
#[utoipa::path(tag = "programs", security(("bearer" = [])), responses((status = 200, body = [ProgramView])))]
#[get("/programs")]
pub async fn list_programs(state: web::Data<AppState>, _auth: Auth) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(|c, _| programs::list(c)).await?))
}

/// Registers a program; the calling bureau owns it and alone may budget it.
/// Role: finance_bureau. Payload: `NewProgramRequest`.
#[utoipa::path(tag = "programs", security(("bearer" = [])), request_body(content = SignedRequest, description = "payload: NewProgramRequest"),
    responses((status = 201, body = ProgramView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/programs")]
pub async fn create_program(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let view = state
        .signed_write(
            auth,
            "POST /api/v1/programs".to_string(),
            body.into_inner(),
            move |c, _, v, now| programs::create(c, v, now),
        )
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One program. Any role.
#[utoipa::path(tag = "programs", security(("bearer" = [])), params(("code" = String, Path)), responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
#[get("/programs/{code}")]
pub async fn get_program(
    state: web::Data<AppState>,
    _auth: Auth,
    code: web::Path<String>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(move |c, _| programs::get(c, &code)).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_programs)
        .service(create_program)
        .service(get_program);
}
