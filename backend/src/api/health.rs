//! `GET /api/v1/health`: is the service up, and where is the chain's head.

use super::AppState;
use crate::error::AppResult;
use crate::ledger::read::{head as ledger_head, LedgerHead};
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    pub version: String,
    pub ledger: LedgerHead,
}

/// Liveness and the ledger head. Public.
#[utoipa::path(tag = "health", responses((status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let head = state.run(|conn, _| ledger_head(conn)).await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ledger: head,
    }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(health);
}
