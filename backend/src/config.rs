//! Where things live and how the service starts: database path, bind address, the master
//! key, and `fundtrail init`.

use crate::crypto::{write_secret_file, MasterKey, SigningKey};
use crate::db::{self, DbConn};
use crate::domain::{now_micros, Role};
use crate::error::{AppError, AppResult};
use crate::service::orgs;
use diesel::prelude::*;
use fundtrail_schema::schema::orgs as orgs_table;
use std::path::{Path, PathBuf};

/// Default database file, relative to the working directory.
pub const DB_PATH_DEFAULT: &str = "data/fundtrail.db";
/// Default listen address: loopback only, so a fresh install is not exposed by accident.
pub const BIND_DEFAULT: &str = "127.0.0.1:8080";
/// Code of the operator's own admin org, created by `init`.
pub const OPERATOR_CODE: &str = "OPERATOR";

/// The directory that holds the database and its secrets.
pub fn data_dir(db_path: &Path) -> PathBuf {
    match db_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where uploaded statement files are kept (encrypted, by SHA-256), beside the database.
pub fn files_dir(db_path: &Path) -> PathBuf {
    data_dir(db_path).join("statement-files")
}

/// The SQLite URL diesel opens for `path`.
pub fn db_url(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The master key: `FUNDTRAIL_MASTER_KEY` (64 hex digits) if set, else `<data dir>/master.key`.
pub fn load_master_key(db_path: &Path) -> AppResult<MasterKey> {
    if let Ok(hex) = std::env::var("FUNDTRAIL_MASTER_KEY") {
        return MasterKey::from_hex(&hex)
            .map_err(|e| AppError::internal(format!("FUNDTRAIL_MASTER_KEY: {e}")));
    }
    let path = data_dir(db_path).join("master.key");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        AppError::internal(format!(
            "cannot read the master key {} ({e}); run `fundtrail init` or set FUNDTRAIL_MASTER_KEY",
            path.display()
        ))
    })?;
    MasterKey::from_hex(&text).map_err(|e| AppError::internal(format!("{}: {e}", path.display())))
}

/// Opens an existing database (never creates one) and applies pending migrations.
pub fn open_existing(db_path: &Path) -> AppResult<DbConn> {
    if !db_path.exists() {
        return Err(AppError::not_found(format!(
            "database {} (run `fundtrail init` first)",
            db_path.display()
        )));
    }
    let mut conn = db::connect(&db_url(db_path))?;
    db::migrate(&mut conn)?;
    Ok(conn)
}

/// What `init` made.
#[derive(Debug)]
pub struct Initialized {
    pub operator_key_path: PathBuf,
    pub operator_token_path: PathBuf,
    pub operator_token: String,
}

/// Whether the database at `db_path` already has its operator.
pub fn is_initialized(db_path: &Path) -> AppResult<bool> {
    if !db_path.exists() {
        return Ok(false);
    }
    let mut conn = db::connect(&db_url(db_path))?;
    db::migrate(&mut conn)?;
    let n: i64 = orgs_table::table
        .filter(orgs_table::code.eq(OPERATOR_CODE))
        .count()
        .get_result(&mut conn)?;
    Ok(n > 0)
}

/// Creates the database, the master key (unless given by env), the operator's admin org with
/// its signing key, and a first admin token. Refuses to run twice.
pub fn init(db_path: &Path) -> AppResult<Initialized> {
    if is_initialized(db_path)? {
        return Err(AppError::new(
            crate::error::ErrorCode::AlreadyExists,
            format!("{} is already initialized", db_path.display()),
        ));
    }
    let dir = data_dir(db_path);
    std::fs::create_dir_all(&dir)
        .map_err(|e| AppError::internal(format!("cannot create {}: {e}", dir.display())))?;
    fn io(what: &Path) -> impl Fn(std::io::Error) -> AppError + '_ {
        move |e| AppError::internal(format!("cannot write {}: {e}", what.display()))
    }
    let master_path = dir.join("master.key");
    if std::env::var("FUNDTRAIL_MASTER_KEY").is_err() && !master_path.exists() {
        write_secret_file(&master_path, MasterKey::generate().to_hex().as_bytes())
            .map_err(io(&master_path))?;
    }
    load_master_key(db_path)?;
    let mut conn = db::connect(&db_url(db_path))?;
    db::migrate(&mut conn)?;
    let now = now_micros();
    let key = SigningKey::generate(OPERATOR_CODE);
    let org_id = orgs::bootstrap_org(
        &mut conn,
        OPERATOR_CODE,
        "Fundtrail operator",
        Role::Admin,
        key.public_key(),
        now,
    )?;
    let key_path = dir.join("operator.key");
    key.save(&key_path).map_err(io(&key_path))?;
    let (_, token) = orgs::issue_token_local(&mut conn, org_id, "operator (created by init)", now)?;
    let token_path = dir.join("operator.token");
    write_secret_file(&token_path, format!("{token}\n").as_bytes()).map_err(io(&token_path))?;
    Ok(Initialized {
        operator_key_path: key_path,
        operator_token_path: token_path,
        operator_token: token,
    })
}
