//! The ledger: entries, the head, balances.

use super::{AppState, Auth};
use crate::domain::now_micros;
use crate::error::{AppResult, ErrorBody};
use crate::ledger::append::{append, AppendOutcome};
use crate::ledger::read::{
    self, Balance, Directory, EntryDetail, EntryFilter, EntryPage, LedgerHead,
};
use crate::ledger::ENTRIES_PURPOSE;
use crate::signing::SignedRequest;
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

/// Entries, oldest first, with the signed batches they came in. Any role.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(EntryFilter), responses((status = 200, body = EntryPage), (status = 400, body = ErrorBody)))]
#[get("/entries")]
pub async fn list_entries(
    state: web::Data<AppState>,
    _auth: Auth,
    filter: web::Query<EntryFilter>,
) -> AppResult<HttpResponse> {
    let page = state
        .run(move |c, _| {
            let dir = Directory::load(c)?;
            read::list(c, &dir, &filter)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Appends a signed batch of up to 10,000 entries, all or nothing. Roles: finance_bureau
/// (budget, allocation, reversal), local_office (allocation, disbursement, reversal).
/// Payload: `{"entries": [EntryBody, …]}`.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), request_body(content = SignedRequest, description = "payload: EntriesPayload"),
    responses((status = 201, body = AppendOutcome), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/entries")]
pub async fn append_entries(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<serde_json::Value>,
) -> AppResult<HttpResponse> {
    let out = state
        .signed_write(
            auth,
            ENTRIES_PURPOSE.to_string(),
            body.into_inner(),
            |c, s, v, now| {
                // One appender per process; BEGIN IMMEDIATE orders appenders across processes.
                let _writer = s
                    .ledger_writer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                // The signature was checked before the lock; record the time the append happens.
                append(c, v, now_micros().max(now))
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(out))
}

/// One entry with its chain links and batch. Any role.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(("seq" = i64, Path)), responses((status = 200, body = EntryDetail), (status = 404, body = ErrorBody)))]
#[get("/entries/{seq}")]
pub async fn get_entry(
    state: web::Data<AppState>,
    _auth: Auth,
    seq: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let seq = seq.into_inner();
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| {
                let dir = Directory::load(c)?;
                read::detail(c, &dir, seq)
            })
            .await?,
    ))
}

/// The chain head: last sequence number and hash. Any role.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), responses((status = 200, body = LedgerHead)))]
#[get("/ledger/head")]
pub async fn head(state: web::Data<AppState>, _auth: Auth) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.run(|c, _| read::head(c)).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    /// Program code.
    pub program: Option<String>,
    /// Org code.
    pub org: Option<String>,
}

/// What each org received, passed down, disbursed and still holds, per program. Any role.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(BalanceQuery), responses((status = 200, body = [Balance]), (status = 400, body = ErrorBody)))]
#[get("/balances")]
pub async fn balances(
    state: web::Data<AppState>,
    _auth: Auth,
    q: web::Query<BalanceQuery>,
) -> AppResult<HttpResponse> {
    let out = state
        .run(move |c, _| {
            let dir = Directory::load(c)?;
            read::balances(c, &dir, q.program.as_deref(), q.org.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list_entries)
        .service(append_entries)
        .service(get_entry)
        .service(head)
        .service(balances);
}
