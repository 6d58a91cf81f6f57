//! Fundtrail's database schema: diesel table definitions and the embedded migrations.
//!
//! This crate knows nothing about HTTP, JSON or the domain rules; it only says what is stored.
//! Migrations live per backend under `migrations/<backend>/` with identical names, so the same
//! schema version means the same thing on SQLite and (later) PostgreSQL.
//!
//! Conventions: times are unix microseconds (`BigInt`, UTC); money is `BigInt` minor units;
//! dates are ISO `YYYY-MM-DD` text; hashes and keys are raw bytes.

pub mod rows;
pub mod schema;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

/// The SQLite migrations, compiled into the binary.
#[cfg(feature = "sqlite")]
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
