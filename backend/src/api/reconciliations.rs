//! Reconciliation jobs: start one, watch it, fetch its report as JSON, CSV or HTML.

use super::{AppState, Auth};
use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::reconcile::jobs::JobView;
use crate::reconcile::render::Lang;
use crate::reconcile::report::Report;
use crate::reconcile::{write_report, Format, ReconcileRequest};
use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

/// Starts a reconciliation over a program, a period and a subtree (each optional: all).
/// Inspectors and the admin may reconcile anything; finance bureaus and local offices only
/// their own subtree (their default). Answers 202 with the job; poll it for progress.
#[utoipa::path(tag = "reconciliation", security(("bearer" = [])), request_body = ReconcileRequest,
    responses((status = 202, body = JobView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/reconciliations")]
pub async fn start(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<ReconcileRequest>,
) -> AppResult<HttpResponse> {
    auth.0.require(&[
        Role::Inspector,
        Role::FinanceBureau,
        Role::LocalOffice,
        Role::Admin,
    ])?;
    let req = body.into_inner();
    let view = state
        .run(move |c, s| {
            let today = chrono::Utc::now().date_naive();
            s.jobs.submit(c, &auth.0, &req, today)
        })
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("location", format!("/api/v1/reconciliations/{}", view.id)))
        .json(view))
}

/// The newest reconciliation jobs (at most 100): inspectors and the admin see all, others
/// their own org's.
#[utoipa::path(tag = "reconciliation", security(("bearer" = [])),
    responses((status = 200, body = [JobView]), (status = 401, body = ErrorBody)))]
#[get("/reconciliations")]
pub async fn list(state: web::Data<AppState>, auth: Auth) -> AppResult<HttpResponse> {
    let jobs = state.run(move |c, s| s.jobs.list(c, &auth.0)).await?;
    Ok(HttpResponse::Ok().json(jobs))
}

/// A job's status and progress. The requester, inspectors and the admin; others get 404.
#[utoipa::path(tag = "reconciliation", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
#[get("/reconciliations/{id}")]
pub async fn status(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let view = state.run(move |c, s| s.jobs.view(c, &auth.0, id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// How to hand out a report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default: the stored bytes, identical for identical state and parameters),
    /// `csv` (the findings, UTF-8 with BOM) or `html` (a printable page).
    pub format: Option<String>,
    /// Labels of CSV and HTML: `zh-CN` (default) or `en`.
    pub lang: Option<String>,
}

/// The report of a finished job (409 `not_ready` before that).
#[utoipa::path(tag = "reconciliation", security(("bearer" = [])), params(("id" = i64, Path), ReportQuery),
    responses((status = 200, body = Report, description = "JSON, or text/csv, or text/html"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[get("/reconciliations/{id}/report")]
pub async fn report(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<ReportQuery>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let lang = match query.lang.as_deref() {
        None => Lang::default(),
        Some(text) => Lang::parse(text).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidQuery,
                format!("lang `{text}`: use zh-CN or en"),
            )
            .field("lang")
        })?,
    };
    let format_text = query.format.clone().unwrap_or_else(|| "json".into());
    let format = Format::parse(&format_text).ok_or_else(|| {
        AppError::new(
            ErrorCode::InvalidQuery,
            format!("format `{format_text}`: use json, csv or html"),
        )
        .field("format")
    })?;
    let (content_type, body) = state
        .run(move |c, s| {
            let bytes = s.jobs.report(c, &s.files, &auth.0, id)?;
            let content_type = match format {
                Format::Json => return Ok(("application/json", bytes)),
                Format::Csv => "text/csv; charset=utf-8",
                Format::Html => "text/html; charset=utf-8",
            };
            let report: Report = serde_json::from_slice(&bytes)
                .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
            let mut out = Vec::new();
            write_report(&report, format, lang, &mut out)
                .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
            Ok((content_type, out))
        })
        .await?;
    Ok(HttpResponse::Ok().content_type(content_type).body(body))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(start)
        .service(list)
        .service(status)
        .service(report);
}
