//! The REST API under `/api/v1`: one file per endpoint group, shared plumbing here. Only this
//! module turns things into HTTP and JSON responses.

pub mod accounts;
pub mod entries;
pub mod health;
pub mod orgs;
pub mod programs;
pub mod public;
pub mod recipients;
pub mod reconciliations;
pub mod statements;

use crate::auth::{authenticate, Actor};
use crate::crypto::PersonalDataKeys;
use crate::db::{DbConn, Pool};
use crate::domain::{now_micros, Micros};
use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::filestore::FileStore;
use crate::signing::{self, SignedRequest, Verified};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Largest request body. A full batch of 10,000 entries with 280-byte memos is under 6 MiB;
/// JSON parsed into values takes several times its size, so keep this tight.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Shared state of the service.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub personal_data: Arc<PersonalDataKeys>,
    /// One ledger writer per process; the database's write lock covers other processes.
    pub ledger_writer: Arc<Mutex<()>>,
    /// Uploaded statement files, encrypted, by SHA-256.
    pub files: FileStore,
    /// The reconciliation worker.
    pub jobs: crate::reconcile::jobs::Jobs,
    /// Per-address allowance of the public endpoints.
    pub public_limiter: Arc<public::RateLimiter>,
}

impl AppState {
    /// Runs `f` on a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn, &AppState) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        web::block(move || {
            let mut conn = state.pool.get()?;
            f(&mut conn, &state)
        })
        .await
        .map_err(|e| AppError::internal(format!("worker failed: {e}")))?
    }
}

impl AppState {
    /// Runs a signed write: reads the envelope from `body`, verifies it for `purpose` as the
    /// caller's org, then runs `write` with it, all on the blocking pool.
    pub async fn signed_write<T, F>(
        &self,
        auth: Auth,
        purpose: String,
        body: serde_json::Value,
        write: F,
    ) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn, &AppState, &Verified, Micros) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let request = signed(body)?;
        self.run(move |conn, state| {
            let now = now_micros();
            let verified = signing::verify(conn, &auth.0, &purpose, request, now)?;
            write(conn, state, &verified, now)
        })
        .await
    }
}

/// The authenticated caller of a request (`Authorization: Bearer <token>`).
pub struct Auth(pub Actor);

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Auth, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("state missing"))?;
            let token = header
                .as_deref()
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty() && t.len() <= 200)
                .ok_or_else(|| AppError::unauthorized("send `Authorization: Bearer <token>`"))?;
            state
                .run(move |conn, _| authenticate(conn, &token))
                .await
                .map(Auth)
        })
    }
}

/// Reads a signed request from a JSON body, telling an unsigned body apart from a malformed one.
pub fn signed(body: serde_json::Value) -> AppResult<SignedRequest> {
    if !body.is_object() || body.get("signature").is_none() || body.get("payload").is_none() {
        return Err(AppError::new(
            ErrorCode::Unsigned,
            "this endpoint takes a signed request {payload, org, key_id, nonce, signed_at, signature}; see docs/ledger-format.md",
        ));
    }
    serde_json::from_value(body)
        .map_err(|e| AppError::new(ErrorCode::InvalidJson, format!("signed request: {e}")))
}

/// Adds the bearer scheme, and the `/api/v1` prefix that handlers get from their scope (the
/// path macros only see the part after it).
struct Finish;
impl Modify for Finish {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let paths = std::mem::take(&mut openapi.paths.paths);
        openapi.paths.paths = paths
            .into_iter()
            .map(|(path, item)| (format!("/api/v1{path}"), item))
            .collect();
    }
}

/// The OpenAPI document, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fundtrail API",
        description = "Public welfare money on a signed, hash-chained ledger. Writes are signed requests \
                       (see docs/ledger-format.md); every call but health and public/ needs a bearer token.",
    ),
    paths(
        health::health,
        orgs::list_orgs, orgs::create_org, orgs::get_org,
        orgs::list_all_keys, orgs::list_keys, orgs::add_key, orgs::retire_key,
        orgs::list_tokens, orgs::create_token, orgs::revoke_token,
        programs::list_programs, programs::create_program, programs::get_program,
        recipients::list_recipients, recipients::register_recipients, recipients::resolve_recipients,
        recipients::get_recipient, recipients::set_status, recipients::personal_data, recipients::access_log,
        entries::list_entries, entries::append_entries, entries::get_entry, entries::head, entries::balances,
        accounts::list_accounts, accounts::register_account,
        statements::upload_statement, statements::list_statements, statements::get_statement,
        reconciliations::start, reconciliations::list, reconciliations::status, reconciliations::report,
        public::payment_status, public::file_complaint,
    ),
    components(schemas(
        ErrorBody, ErrorCode, SignedRequest,
        // Payloads of the signed requests, by endpoint.
        crate::service::orgs::NewOrgRequest, crate::service::orgs::NewKeyRequest,
        crate::service::orgs::RetireKeyRequest, crate::service::orgs::NewTokenRequest,
        crate::service::programs::NewProgramRequest, crate::service::recipients::RegisterRequest,
        crate::service::recipients::NewRecipientItem, crate::service::recipients::StatusRequest,
        crate::ledger::EntriesPayload, crate::ledger::EntryBody,
        crate::statements::accounts::NewAccountRequest, crate::statements::Manifest,
    )),
    modifiers(&Finish),
    tags(
        (name = "health"), (name = "orgs", description = "Orgs, their signing keys and API tokens"),
        (name = "programs"), (name = "recipients", description = "The registry; personal data only with a logged reason"),
        (name = "ledger", description = "Entries, the chain head, balances"),
        (name = "statements", description = "Program bank accounts, bank statement uploads and what they matched"),
        (name = "reconciliation", description = "Reconciliation jobs and their reports: where money is stuck, missing or misdirected"),
        (name = "public", description = "For recipients: one payment's status, and complaints; no token, rate-limited"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

fn json_error(err: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let e = match &err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("request bodies are limited to {REQUEST_BYTES_MAX} bytes"),
        ),
        E::ContentType => AppError::new(
            ErrorCode::InvalidJson,
            "send Content-Type: application/json",
        ),
        E::Deserialize(d) => AppError::new(ErrorCode::InvalidJson, format!("malformed JSON: {d}")),
        other => AppError::new(
            ErrorCode::InvalidJson,
            format!("cannot read the body: {other}"),
        ),
    };
    e.into()
}

async fn to_docs() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("location", "/docs/"))
        .finish()
}

/// Registers every route, extractor configuration and the docs.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(REQUEST_BYTES_MAX)
            .error_handler(|e, _| json_error(e)),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        AppError::new(ErrorCode::InvalidQuery, format!("query string: {e}")).into()
    }))
    .app_data(
        web::PathConfig::default().error_handler(|e, _| {
            AppError::new(ErrorCode::InvalidPath, format!("path: {e}")).into()
        }),
    )
    // Before the /api/v1 scope, which would otherwise answer /api/v1/openapi.json with 404.
    .service(
        utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
            .url("/api/v1/openapi.json", ApiDoc::openapi()),
    )
    .service(
        web::scope("/api/v1")
            .configure(health::routes)
            .configure(orgs::routes)
            .configure(programs::routes)
            .configure(recipients::routes)
            .configure(entries::routes)
            .configure(accounts::routes)
            .configure(statements::routes)
            .configure(reconciliations::routes)
            .configure(public::routes),
    )
    .route("/", web::get().to(to_docs))
    // The UI lives under /docs/; the address without the slash is what people type.
    .route("/docs", web::get().to(to_docs))
    .default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(AppError::not_found(format!(
            "route {} {}",
            req.method(),
            req.path()
        )))
    }));
}
