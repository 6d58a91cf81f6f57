//! Starting the HTTP service.

use crate::api::{self, AppState};
use crate::config;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::filestore::FileStore;
use crate::reconcile::jobs::Jobs;
use actix_web::dev::Service as _;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Connections in the pool: enough for concurrent readers; writers queue on the lock.
pub const POOL_CONNECTIONS_MAX: u32 = 8;

/// Opens the database (migrating it) and loads the master key.
pub fn state(db_path: &Path) -> AppResult<AppState> {
    drop(config::open_existing(db_path)?); // creates nothing; migrates
    let master = config::load_master_key(db_path)?;
    let pool = db::pool(&config::db_url(db_path), POOL_CONNECTIONS_MAX)?;
    let files =
        FileStore::open(&config::files_dir(db_path), master.file_store_secret()).map_err(|e| {
            AppError::internal(format!(
                "cannot open the statement file store {}: {e}",
                config::files_dir(db_path).display()
            ))
        })?;
    Ok(AppState {
        jobs: Jobs::start(pool.clone(), files.clone())?,
        pool,
        personal_data: Arc::new(master.personal_data_keys()),
        ledger_writer: Arc::new(Mutex::new(())),
        files,
        public_limiter: Arc::default(),
    })
}

/// Builds the server on an already bound listener (tests bind port 0).
pub fn build(
    state: AppState,
    listener: TcpListener,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap_fn(|req, srv| {
                let method = req.method().clone();
                let path = req.path().to_string();
                let started = std::time::Instant::now();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    tracing::info!(%method, %path, status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
                    Ok(res)
                }
            })
            .configure(api::configure)
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run())
}
