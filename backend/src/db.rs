//! Database connections: one [`DbConn`] over every enabled backend (SQLite now, PostgreSQL as
//! the scale path), a pool, migrations, and the one write transaction the ledger uses.

use crate::error::{AppError, AppResult};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::Connection as _;
use diesel_migrations::MigrationHarness as _;

/// A connection to whichever backend this build supports. Queries are written once against
/// it; backend-specific SQL matches on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    #[cfg(feature = "sqlite")]
    Sqlite(diesel::SqliteConnection),
}

/// The pool type the service uses.
pub type Pool = r2d2::Pool<Manager>;

/// Rows per multi-row INSERT of [`insert_rows!`].
pub const INSERT_ARRAY_ROWS: usize = 64;

/// Inserts a slice of diesel rows into `table`: fixed-size arrays of [`INSERT_ARRAY_ROWS`]
/// through one multi-row statement, the remainder row by row. Diesel caches a prepared
/// statement only when its shape is known at compile time, so both statements are prepared
/// once per connection (measured: 1000-row statements built per call spent ~15% of an append
/// parsing SQL). Multi-row INSERT is backend-specific in diesel (MultiBackend has no batch
/// insert), so this goes to the concrete connection. Errors return through `?`. (Public so
/// that the benchmarks' plain-insert baselines insert the same way.)
#[macro_export]
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows = $rows;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => {
                let mut arrays = rows.chunks_exact($crate::db::INSERT_ARRAY_ROWS);
                for chunk in &mut arrays {
                    let array: &[_; $crate::db::INSERT_ARRAY_ROWS] =
                        chunk.try_into().expect("chunks_exact yields whole arrays");
                    diesel::insert_into($table).values(array).execute(c)?;
                }
                for row in arrays.remainder() {
                    diesel::insert_into($table).values(row).execute(c)?;
                }
            }
        }
    }};
}

/// Opens connections with the settings Fundtrail relies on.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
}

/// Opens one connection and applies the per-connection settings.
pub fn connect(url: &str) -> AppResult<DbConn> {
    let mut conn = DbConn::establish(url)
        .map_err(|e| AppError::internal(format!("cannot open database {url}: {e}")))?;
    match &mut conn {
        // WAL lets readers work while one writer appends; synchronous=FULL makes each commit
        // durable on power loss, not only on a process crash. busy_timeout makes a second
        // writer (another process) wait for the lock instead of failing at once. temp_store in
        // memory keeps the statement journals of multi-row inserts (and sorts) off the disk:
        // they only ever serve a rollback of the running statement, never durability. A 32 MiB
        // auto-checkpoint (8192 pages, not 1000) copies a page rewritten by several batches
        // into the database once instead of once per batch; commits stay as durable.
        DbConn::Sqlite(c) => c
            .batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; \
                 PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; \
                 PRAGMA wal_autocheckpoint = 8192;",
            )
            .map_err(|e| AppError::internal(format!("cannot configure database {url}: {e}")))?,
    }
    Ok(conn)
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = AppError;

    fn connect(&self) -> Result<DbConn, AppError> {
        connect(&self.url)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), AppError> {
        conn.batch_execute("SELECT 1").map_err(AppError::from)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        // A connection returned mid-transaction (a panic in a handler) must not be reused.
        match conn {
            DbConn::Sqlite(c) => !matches!(
                AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
                Ok(None)
            ),
        }
    }
}

/// A pool over `url` with `size_max` connections.
pub fn pool(url: &str, size_max: u32) -> AppResult<Pool> {
    r2d2::Pool::builder()
        .max_size(size_max)
        .connection_timeout(std::time::Duration::from_secs(30))
        .build(Manager {
            url: url.to_string(),
        })
        .map_err(|e| AppError::internal(format!("cannot open database {url}: {e}")))
}

/// Applies pending migrations.
pub fn migrate(conn: &mut DbConn) -> AppResult<()> {
    let result = match conn {
        DbConn::Sqlite(c) => c
            .run_pending_migrations(fundtrail_schema::SQLITE_MIGRATIONS)
            .map(|_| ()),
    };
    result.map_err(|e| AppError::internal(format!("migration failed: {e}")))
}

/// Runs `f` in a transaction that holds the database's write lock from its first statement,
/// so that what `f` reads (the chain head, balances) cannot change before it commits. On
/// SQLite this is `BEGIN IMMEDIATE`; on PostgreSQL it will be a transaction that first takes
/// the ledger's advisory lock. Any error rolls everything back.
pub fn write_transaction<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> AppResult<T>,
) -> AppResult<T> {
    match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?,
    }
    let result = f(conn);
    match conn {
        DbConn::Sqlite(c) => match result {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(c)?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = AnsiTransactionManager::rollback_transaction(c) {
                    tracing::error!(error = %rollback, "rollback failed");
                }
                Err(e)
            }
        },
    }
}
