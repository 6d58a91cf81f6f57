//! Bank statements: upload (the file is the body, the signed manifest a header), and what
//! each import matched.

use super::{AppState, Auth};
use crate::domain::now_micros;
use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::filestore::StoreError;
use crate::ledger::STATEMENTS_PURPOSE;
use crate::signing::{self, SignedRequest};
use crate::statements::import::{self, ImportRequest};
use crate::statements::read::{
    self, ImportResult, RowFilter, StatementDetail, StatementFilter, StatementView,
};
use crate::statements::Manifest;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use std::io::Write as _;

/// The header that carries the signed request (standard base64 of its JSON) of an upload.
pub const SIGNATURE_HEADER: &str = "fundtrail-signature";

/// Reads the signed request from the upload's header.
fn signed_header(req: &HttpRequest) -> AppResult<SignedRequest> {
    let value = req.headers().get(SIGNATURE_HEADER).ok_or_else(|| {
        AppError::new(
            ErrorCode::Unsigned,
            format!("send the file as the body and the signed manifest in the `{SIGNATURE_HEADER}` header (base64 of the signed request JSON); `fundtrail import` does this"),
        )
    })?;
    let bytes = value
        .to_str()
        .ok()
        .and_then(|v| crate::crypto::b64_decode(v.trim()).ok())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidJson,
                format!("`{SIGNATURE_HEADER}` is not standard base64"),
            )
        })?;
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::new(ErrorCode::InvalidJson, format!("`{SIGNATURE_HEADER}`: {e}")))?;
    super::signed(body)
}

fn store_error(e: StoreError, size_bytes: u64) -> AppError {
    // A write past the limit comes back as an io::Error carrying StoreError::TooLarge.
    let too_large = match &e {
        StoreError::TooLarge { .. } => true,
        StoreError::Io(io) => io.get_ref().is_some_and(|r| r.is::<StoreError>()),
        StoreError::Corrupt(_) => false,
    };
    match e {
        _ if too_large => AppError::new(
            ErrorCode::DigestMismatch,
            format!("the body is longer than the {size_bytes} bytes the manifest signs"),
        )
        .field("size_bytes"),
        other => {
            tracing::error!(error = %other, "statement file store");
            AppError::internal("the statement file could not be stored")
        }
    }
}

/// Uploads and imports a bank statement file, all or nothing. The body is the file itself
/// (`application/octet-stream`); the `Fundtrail-Signature` header carries, in standard base64,
/// a signed request whose payload is the `Manifest` (the file's SHA-256, size, name, format,
/// and account if the file names none). Role: the org whose registered account the statement
/// covers. A file imported before is answered with its first result (200, nothing changes);
/// a new import answers 201. Bad rows: 422 listing each with its `location`.
#[utoipa::path(tag = "statements", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the statement file"),
    params(("Fundtrail-Signature" = String, Header, description = "standard base64 of a SignedRequest whose payload is a Manifest")),
    responses((status = 201, body = ImportResult), (status = 200, body = ImportResult, description = "the same file was imported before"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/statements")]
pub async fn upload_statement(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    mut body: web::Payload,
) -> AppResult<HttpResponse> {
    let request = signed_header(&req)?;
    let (verified, manifest, digest, existing) = state
        .run(move |conn, _| {
            let now = now_micros();
            let verified = signing::verify(conn, &auth.0, STATEMENTS_PURPOSE, request, now)?;
            let manifest: Manifest = verified.payload_as()?;
            let digest = manifest.validate()?;
            let existing = import::existing(conn, &digest, verified.actor.org_id)?;
            Ok((verified, manifest, digest, existing))
        })
        .await?;
    if let Some(id) = existing {
        // Read the body the client is sending (at most the signed size) before answering, so
        // the connection ends cleanly; nothing of it is kept.
        let mut seen: u64 = 0;
        while let Some(chunk) = body.next().await {
            seen += chunk.map(|c| c.len() as u64).unwrap_or(u64::MAX);
            if seen > manifest.size_bytes {
                break;
            }
        }
        let statement = state.run(move |c, _| read::summary(c, id)).await?;
        return Ok(HttpResponse::Ok().json(ImportResult {
            already_imported: true,
            statement,
        }));
    }

    // Stream the body into the encrypted store; never hold the file in memory.
    let size_bytes = manifest.size_bytes;
    let mut writer = state
        .files
        .writer(size_bytes)
        .map_err(|e| store_error(e.into(), size_bytes))?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::new(
                ErrorCode::InvalidJson,
                format!("reading the body failed: {e}"),
            )
        })?;
        writer
            .write_all(&chunk)
            .map_err(|e| store_error(e.into(), size_bytes))?;
    }
    let staged = web::block(move || writer.finish())
        .await
        .map_err(|e| AppError::internal(format!("worker failed: {e}")))?
        .map_err(|e| store_error(e, size_bytes))?;
    if staged.sha256 != digest || staged.size_bytes != size_bytes {
        return Err(AppError::new(
            ErrorCode::DigestMismatch,
            format!(
                "the body ({} bytes, SHA-256 {}) is not the file the manifest signs ({size_bytes} bytes, SHA-256 {})",
                staged.size_bytes,
                hex::encode(staged.sha256),
                manifest.file_sha256
            ),
        )
        .field("file_sha256"));
    }
    let created_file = web::block(move || staged.commit())
        .await
        .map_err(|e| AppError::internal(format!("worker failed: {e}")))?
        .map_err(|e| store_error(e.into(), size_bytes))?;

    let outcome = state
        .run(move |conn, state| {
            // One ledger writer per process; BEGIN IMMEDIATE orders writers across processes.
            let _writer = state.ledger_writer.lock().unwrap_or_else(|p| p.into_inner());
            let input = state.files.reader(&digest).map_err(|e| store_error(e, size_bytes))?;
            let manifest_text = crate::canonical::to_canonical_string(&verified.payload)
                .map_err(|e| AppError::invalid("payload", e.to_string()))?;
            tracing::info!(file = %manifest.file_name, bytes = size_bytes, "statement import started");
            let (id, imported) = import::import(
                conn,
                &state.personal_data,
                &ImportRequest { verified: &verified, manifest_text: &manifest_text, manifest: &manifest, file_sha256: digest },
                input,
                now_micros(),
                &mut |_| {},
            )?;
            Ok((read::summary(conn, id)?, imported))
        })
        .await;
    match outcome {
        Ok((statement, true)) => Ok(HttpResponse::Created().json(ImportResult {
            already_imported: false,
            statement,
        })),
        Ok((statement, false)) => Ok(HttpResponse::Ok().json(ImportResult {
            already_imported: true,
            statement,
        })),
        Err(e) => {
            // A refused import leaves nothing behind, not even the file it refused.
            if created_file {
                if let Err(err) = state.files.remove(&digest) {
                    tracing::warn!(error = %err, "could not remove a refused statement file");
                }
            }
            Err(e)
        }
    }
}

/// Imported statements the caller may read (its own, its subtree's; inspectors all), newest first.
#[utoipa::path(tag = "statements", security(("bearer" = [])), params(StatementFilter), responses((status = 200, body = [StatementView]), (status = 400, body = ErrorBody)))]
#[get("/statements")]
pub async fn list_statements(
    state: web::Data<AppState>,
    auth: Auth,
    filter: web::Query<StatementFilter>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| read::list(c, &auth.0, &filter))
            .await?,
    ))
}

/// One statement: its summary (rows, matched strong/weak, returned, unmatched by reason) and
/// a page of its rows. The uploading org, orgs above it, inspectors and the admin.
#[utoipa::path(tag = "statements", security(("bearer" = [])), params(("id" = i64, Path), RowFilter),
    responses((status = 200, body = StatementDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/statements/{id}")]
pub async fn get_statement(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    filter: web::Query<RowFilter>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    Ok(HttpResponse::Ok().json(
        state
            .run(move |c, _| read::detail(c, &auth.0, id, &filter))
            .await?,
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(upload_statement)
        .service(list_statements)
        .service(get_statement);
}
