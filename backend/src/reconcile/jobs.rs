//! Reconciliation jobs for the API: a request becomes a `reconciliations` row, one worker
//! thread computes reports one at a time (a report over a province takes a core and some
//! hundreds of MiB; two at once would only slow both), and the JSON report goes to the
//! encrypted file store under its SHA-256. Progress is kept in memory while a job runs; the
//! row records every state change, so a restart finds what was interrupted and says so.

use super::engine;
use super::report::{Params, Report};
use super::ReconcileRequest;
use crate::auth::Actor;
use crate::db::{write_transaction, DbConn, Pool};
use crate::domain::{format_micros, now_micros, Role};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::filestore::FileStore;
use crate::ledger::read::Directory;
use diesel::prelude::*;
use fundtrail_schema::schema::reconciliations;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;

/// Largest report kept (a report lists findings, not rows: this is millions of findings).
pub const REPORT_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Most jobs `GET /api/v1/reconciliations` lists.
pub const JOBS_LISTED_MAX: i64 = 100;
/// Most jobs waiting at once; beyond that a new request is refused (503), not queued.
pub const QUEUED_JOBS_MAX: i64 = 32;

/// Where a running job is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct JobProgress {
    /// One of `engine::STAGES`, or `queued` / `done`.
    pub stage: String,
    pub done: u64,
    /// 0 when unknown.
    pub total: u64,
    /// Whole job, 0-100.
    pub percent: u32,
}

/// A job's error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// What `GET /api/v1/reconciliations/{id}` answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    pub requested_by: String,
    pub params: Params,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub progress: JobProgress,
    /// The ledger state the report was computed on (when done).
    pub ledger_seq: Option<i64>,
    pub head_hash: Option<String>,
    pub findings: Option<i64>,
    pub report_bytes: Option<i64>,
    /// SHA-256 (hex) of the JSON report, so a downloaded copy can be checked.
    pub report_sha256: Option<String>,
    pub error: Option<JobError>,
    /// Where the report is, once done (`?format=json|csv|html&lang=zh-CN|en`).
    pub report_url: String,
}

#[derive(Queryable)]
struct JobRow {
    id: i64,
    requested_by_org_id: i64,
    params: String,
    status: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    ledger_seq: Option<i64>,
    head_hash: Option<String>,
    report_sha256: Option<Vec<u8>>,
    report_bytes: Option<i64>,
    findings: Option<i64>,
    error_code: Option<String>,
    error_message: Option<String>,
}

/// The job runner shared by the API's handlers.
#[derive(Clone)]
pub struct Jobs {
    live: Arc<Mutex<HashMap<i64, JobProgress>>>,
    queue: mpsc::Sender<i64>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jobs")
    }
}

impl Jobs {
    /// Starts the worker. Jobs that were running when the service stopped are marked failed
    /// (`interrupted`); jobs still queued are run again.
    pub fn start(pool: Pool, files: FileStore) -> AppResult<Jobs> {
        let (queue, rx) = mpsc::channel::<i64>();
        let live: Arc<Mutex<HashMap<i64, JobProgress>>> = Arc::default();
        let mut conn = pool.get()?;
        let waiting: Vec<i64> = write_transaction(&mut conn, |c| {
            diesel::update(reconciliations::table.filter(reconciliations::status.eq("running")))
                .set((
                    reconciliations::status.eq("failed"),
                    reconciliations::finished_at.eq(now_micros()),
                    reconciliations::error_code.eq("interrupted"),
                    reconciliations::error_message
                        .eq("the service stopped while this job ran; start it again"),
                ))
                .execute(c)?;
            Ok(reconciliations::table
                .filter(reconciliations::status.eq("queued"))
                .order(reconciliations::id)
                .select(reconciliations::id)
                .load(c)?)
        })?;
        drop(conn);
        for id in waiting {
            let _ = queue.send(id);
        }
        let worker_live = live.clone();
        std::thread::Builder::new()
            .name("reconcile".into())
            .spawn(move || {
                for id in rx {
                    run_job(&pool, &files, &worker_live, id);
                }
            })
            .map_err(|e| AppError::internal(format!("cannot start the reconcile worker: {e}")))?;
        Ok(Jobs { live, queue })
    }

    /// Checks who may ask for what, records the job and queues it.
    pub fn submit(
        &self,
        conn: &mut DbConn,
        actor: &Actor,
        req: &ReconcileRequest,
        today: chrono::NaiveDate,
    ) -> AppResult<JobView> {
        let dir = Directory::load(conn)?;
        let mut req = req.clone();
        authorize_scope(&dir, actor, &mut req)?;
        let params = req.resolve(&dir, today)?;
        let params_json = serde_json::to_string(&params).expect("params serialize");
        let id = write_transaction(conn, |c| {
            let waiting: i64 = reconciliations::table
                .filter(reconciliations::status.eq_any(["queued", "running"]))
                .count()
                .get_result(c)?;
            if waiting >= QUEUED_JOBS_MAX {
                return Err(AppError::new(
                    ErrorCode::Unavailable,
                    format!("{waiting} reconciliations are waiting; try again when they are done"),
                ));
            }
            Ok(diesel::insert_into(reconciliations::table)
                .values((
                    reconciliations::requested_by_org_id.eq(actor.org_id),
                    reconciliations::params.eq(&params_json),
                    reconciliations::status.eq("queued"),
                    reconciliations::created_at.eq(now_micros()),
                ))
                .returning(reconciliations::id)
                .get_result::<i64>(c)?)
        })?;
        self.queue
            .send(id)
            .map_err(|_| AppError::internal("the reconcile worker has stopped"))?;
        self.view_in(conn, &dir, actor, id)
    }

    /// The newest jobs the caller may see (inspectors and the admin: all; others: their org's),
    /// at most `JOBS_LISTED_MAX`.
    pub fn list(&self, conn: &mut DbConn, actor: &Actor) -> AppResult<Vec<JobView>> {
        let mut q = reconciliations::table
            .order(reconciliations::id.desc())
            .limit(JOBS_LISTED_MAX)
            .into_boxed();
        if !matches!(actor.role, Role::Inspector | Role::Admin) {
            q = q.filter(reconciliations::requested_by_org_id.eq(actor.org_id));
        }
        let rows: Vec<JobRow> = q.load(conn)?;
        let dir = Directory::load(conn)?;
        let live = self.live.lock().expect("progress lock").clone();
        rows.into_iter()
            .map(|row| {
                let progress = live.get(&row.id).cloned();
                view(&dir, row, progress)
            })
            .collect()
    }

    /// A job's status, for its requester, inspectors and the admin (others: 404).
    pub fn view(&self, conn: &mut DbConn, actor: &Actor, id: i64) -> AppResult<JobView> {
        let dir = Directory::load(conn)?;
        self.view_in(conn, &dir, actor, id)
    }

    fn view_in(
        &self,
        conn: &mut DbConn,
        dir: &Directory,
        actor: &Actor,
        id: i64,
    ) -> AppResult<JobView> {
        let row = find(conn, actor, id)?;
        let live = self.live.lock().expect("progress lock").get(&id).cloned();
        view(dir, row, live)
    }

    /// The JSON report of a finished job as stored, read back from the file store and checked
    /// against its digest (callers parse it only to render it as CSV or HTML).
    pub fn report(
        &self,
        conn: &mut DbConn,
        files: &FileStore,
        actor: &Actor,
        id: i64,
    ) -> AppResult<Vec<u8>> {
        let row = find(conn, actor, id)?;
        let sha: [u8; 32] = match (row.status.as_str(), row.report_sha256) {
            ("done", Some(sha)) => sha
                .try_into()
                .map_err(|_| AppError::internal("bad report digest"))?,
            (status, _) => {
                return Err(AppError::new(
                    ErrorCode::NotReady,
                    format!("reconciliation {id} is {status}; the report is there once it is done"),
                ))
            }
        };
        let mut bytes = Vec::new();
        files
            .reader(&sha)
            .map_err(|e| AppError::internal(format!("report {id}: {e}")))?
            .read_to_end(&mut bytes)
            .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
        if crate::crypto::sha256(&bytes) != sha {
            return Err(AppError::internal(format!(
                "report {id} does not match its digest"
            )));
        }
        Ok(bytes)
    }
}

/// Inspectors and the admin may reconcile anything; finance bureaus and offices their own
/// subtree (which is also their default scope).
pub fn authorize_scope(
    dir: &Directory,
    actor: &Actor,
    req: &mut ReconcileRequest,
) -> AppResult<()> {
    match actor.role {
        Role::Inspector | Role::Admin => Ok(()),
        Role::FinanceBureau | Role::LocalOffice => {
            let code = req.org.get_or_insert_with(|| actor.org_code.clone());
            let within = dir
                .org_by_code(code)
                .is_some_and(|o| dir.is_within(o.id, actor.org_id));
            if within {
                Ok(())
            } else {
                Err(AppError::forbidden(format!(
                    "{} may reconcile only its own subtree; {code} is outside it",
                    actor.org_code
                ))
                .field("org"))
            }
        }
    }
}

fn find(conn: &mut DbConn, actor: &Actor, id: i64) -> AppResult<JobRow> {
    let row: JobRow = reconciliations::table
        .find(id)
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found(format!("reconciliation {id}")))?;
    let may = matches!(actor.role, Role::Inspector | Role::Admin)
        || row.requested_by_org_id == actor.org_id;
    if !may {
        return Err(AppError::not_found(format!("reconciliation {id}")));
    }
    Ok(row)
}

fn view(dir: &Directory, row: JobRow, live: Option<JobProgress>) -> AppResult<JobView> {
    // The service wrote these parameters itself: unreadable ones are its fault, not a client's.
    let params: Params = serde_json::from_str(&row.params)
        .map_err(|e| AppError::internal(format!("reconciliation {} params: {e}", row.id)))?;
    let progress = match (row.status.as_str(), live) {
        ("running", Some(p)) => p,
        (status, _) => JobProgress {
            stage: status.into(),
            done: 0,
            total: 0,
            percent: if status == "done" { 100 } else { 0 },
        },
    };
    Ok(JobView {
        id: row.id,
        status: row.status,
        requested_by: dir
            .org(row.requested_by_org_id)
            .map(|o| o.code.clone())
            .unwrap_or_default(),
        params,
        created_at: format_micros(row.created_at),
        started_at: row.started_at.map(format_micros),
        finished_at: row.finished_at.map(format_micros),
        progress,
        ledger_seq: row.ledger_seq,
        head_hash: row.head_hash,
        findings: row.findings,
        report_bytes: row.report_bytes,
        report_sha256: row.report_sha256.map(hex::encode),
        error: row.error_code.map(|code| JobError {
            code,
            message: row.error_message.unwrap_or_default(),
        }),
        report_url: format!("/api/v1/reconciliations/{}/report", row.id),
    })
}

/// Percent of the whole job from a stage's progress (stages weighted by typical cost).
pub fn percent(stage: &str, done: u64, total: u64) -> u32 {
    const WEIGHTS: [(&str, u32, u32); 5] = [
        ("registry", 0, 5),
        ("ledger", 5, 35),
        ("bank", 35, 45),
        ("integrity", 45, 90),
        ("rules", 90, 99),
    ];
    let Some((_, from, to)) = WEIGHTS.iter().find(|(s, _, _)| *s == stage) else {
        return 0;
    };
    let within = (done.min(total) * 100).checked_div(total).unwrap_or(0) as u32;
    from + (to - from) * within / 100
}

fn run_job(pool: &Pool, files: &FileStore, live: &Mutex<HashMap<i64, JobProgress>>, id: i64) {
    // Claim the job: another server process over the same database may have queued or taken it.
    let claimed = pool.get().map_err(AppError::from).and_then(|mut conn| {
        write_transaction(&mut conn, |c| {
            let n = diesel::update(
                reconciliations::table
                    .find(id)
                    .filter(reconciliations::status.eq("queued")),
            )
            .set((
                reconciliations::status.eq("running"),
                reconciliations::started_at.eq(now_micros()),
            ))
            .execute(c)?;
            if n == 0 {
                return Ok(None);
            }
            Ok(Some(
                reconciliations::table
                    .find(id)
                    .select(reconciliations::params)
                    .first::<String>(c)?,
            ))
        })
    });
    let params = match claimed {
        Ok(Some(params)) => params,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(job = id, error = %e.first.message, "cannot start the job");
            return;
        }
    };
    let outcome = (|| -> AppResult<(Report, [u8; 32], u64)> {
        let mut conn = pool.get()?;
        let params: Params = serde_json::from_str(&params)
            .map_err(|e| AppError::internal(format!("job {id} params: {e}")))?;
        let report = engine::run(&mut conn, &params, &mut |stage, done, total| {
            live.lock().expect("progress lock").insert(
                id,
                JobProgress {
                    stage: stage.into(),
                    done,
                    total,
                    percent: percent(stage, done, total),
                },
            );
        })?;
        let mut writer = files
            .writer(REPORT_BYTES_MAX)
            .map_err(|e| AppError::internal(format!("report store: {e}")))?;
        super::write_report(
            &report,
            super::Format::Json,
            Default::default(),
            &mut writer,
        )
        .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
        writer
            .flush()
            .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
        let staged = writer
            .finish()
            .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
        let (sha, size) = (staged.sha256, staged.size_bytes);
        staged
            .commit()
            .map_err(|e| AppError::internal(format!("report {id}: {e}")))?;
        Ok((report, sha, size))
    })();
    live.lock().expect("progress lock").remove(&id);
    let Ok(mut conn) = pool.get() else {
        tracing::error!(job = id, "no connection to record the job's end");
        return;
    };
    let recorded = write_transaction(&mut conn, |c| {
        let q = diesel::update(reconciliations::table.find(id));
        match &outcome {
            Ok((report, sha, size)) => q
                .set((
                    reconciliations::status.eq("done"),
                    reconciliations::finished_at.eq(now_micros()),
                    reconciliations::ledger_seq.eq(report.ledger_state.seq),
                    reconciliations::head_hash.eq(&report.ledger_state.head_hash),
                    reconciliations::report_sha256.eq(sha.to_vec()),
                    reconciliations::report_bytes.eq(*size as i64),
                    reconciliations::findings.eq(report.findings.len() as i64),
                ))
                .execute(c)?,
            Err(e) => q
                .set((
                    reconciliations::status.eq("failed"),
                    reconciliations::finished_at.eq(now_micros()),
                    reconciliations::error_code.eq(e.code().as_str()),
                    reconciliations::error_message.eq(&e.first.message),
                ))
                .execute(c)?,
        };
        Ok(())
    });
    match (&outcome, recorded) {
        (_, Err(e)) => {
            tracing::error!(job = id, error = %e.first.message, "cannot record the job's end")
        }
        (Ok((report, _, size)), Ok(())) => tracing::info!(
            job = id,
            findings = report.findings.len(),
            bytes = size,
            "reconciliation done"
        ),
        (Err(e), Ok(())) => {
            tracing::warn!(job = id, error = %e.first.message, "reconciliation failed")
        }
    }
}
