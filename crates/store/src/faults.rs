//! How the store behaves when the database cannot write: a full disk, a read-only file
//! system, a failing or unreachable database.
//!
//! Three rules:
//! - **No poisoned connection.** A connection whose transaction could not be ended never goes
//!   back into the pool (see [`close_connections_left_in_a_transaction`]), so writes work again
//!   as soon as the database can take them, without a restart.
//! - **Say which failures pass.** [`StoreError::unavailable`] tells a failure of the database
//!   itself (it will pass once the disk has room, the file system is writable or the server is
//!   back: callers retry it or answer 503) from one about the data (a duplicate, a corrupt row).
//! - **Refuse to start read-only.** [`Store::check_writable`] makes a real write at start-up,
//!   so a server that could not record anything refuses to start instead of dropping every
//!   audit record in silence.

use sqlx::any::AnyPoolOptions;
use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;
use sqlx::Connection;

use crate::{Store, StoreError};

/// Pool hooks that close, rather than reuse, a connection whose transaction could not be ended.
///
/// When a COMMIT fails (SQLite's "database or disk is full", an I/O error), SQLite may already
/// have rolled the transaction back itself; the ROLLBACK that sqlx then queues on drop fails with
/// "no transaction is active", and sqlx's own count of open transactions on that connection stays
/// at one. Back in the pool, such a connection refuses every later `BEGIN IMMEDIATE` ("attempted
/// to call begin_with at non-zero transaction depth"): one full disk used to poison writes until
/// a restart. On release, a connection still counted in a transaction has its queued rollback
/// flushed (the `ping` runs after it on the connection); if it is still counted in one then, it
/// is closed and the pool opens a fresh one when needed. The check is repeated before every
/// acquire, so no path hands such a connection out.
pub(crate) fn close_connections_left_in_a_transaction(options: AnyPoolOptions) -> AnyPoolOptions {
    options
        .after_release(|conn, _| {
            Box::pin(async move {
                // The common case costs nothing: no transaction was left, so no rollback is queued.
                if !conn.is_in_transaction() {
                    return Ok(true);
                }
                conn.ping().await?;
                Ok(!left_in_a_transaction(conn, "released"))
            })
        })
        .before_acquire(|conn, _| Box::pin(async move { Ok(!left_in_a_transaction(conn, "idle")) }))
}

/// Whether sqlx still counts a transaction open on `conn`; logs it when so.
fn left_in_a_transaction(conn: &sqlx::AnyConnection, when: &str) -> bool {
    let open = conn.is_in_transaction();
    if open {
        tracing::warn!("closing a database connection {when} inside a transaction that could not be ended");
    }
    open
}

impl StoreError {
    /// When the database itself failed (it cannot write now, or cannot be reached), what to
    /// tell the operator: `database write failed: database or disk is full`. Such a failure
    /// passes once its cause is fixed, so it is worth retrying; `None` for errors about the
    /// data or the request, which retrying would only repeat.
    pub fn unavailable(&self) -> Option<String> {
        let e = self.sqlx_error()?;
        match e {
            sqlx::Error::Database(db) => {
                database_failure(db.as_ref()).map(|what| format!("database {what}: {}", db.message()))
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Some(format!("database unavailable: {e}")),
            _ => None,
        }
    }

    /// Whether the database refused to write (full, read-only, I/O error), as opposed to being
    /// unreachable or busy: at start-up that means "not writable", not "not there".
    pub fn cannot_write(&self) -> bool {
        matches!(self.sqlx_error(), Some(sqlx::Error::Database(db)) if database_failure(db.as_ref()) == Some(WRITE_FAILED))
    }

    /// The database's own error, also from inside a failed migration.
    fn sqlx_error(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Database(e) | StoreError::Migration(sqlx::migrate::MigrateError::Execute(e)) => Some(e),
            _ => None,
        }
    }
}

const WRITE_FAILED: &str = "write failed";

/// Which kind of database failure an error reports ("write failed", "busy", …), if it is one.
fn database_failure(db: &dyn DatabaseError) -> Option<&'static str> {
    if let Some(e) = db.try_downcast_ref::<SqliteError>() {
        // Primary result codes (https://www.sqlite.org/rescode.html); the low byte of an
        // extended code is its primary code.
        let code = e.code().and_then(|c| c.parse::<u32>().ok())? & 0xff;
        return match code {
            8 | 10 | 13 | 14 => Some(WRITE_FAILED), // READONLY, IOERR, FULL, CANTOPEN
            5 | 6 => Some("busy"),                  // BUSY, LOCKED
            7 => Some("out of memory"),             // NOMEM
            _ => None,
        };
    }
    if let Some(e) = db.try_downcast_ref::<PgDatabaseError>() {
        // SQLSTATE classes (PostgreSQL manual, appendix A "Error Codes").
        let state = e.code();
        let class = state.get(..2).unwrap_or_default();
        return match class {
            // insufficient resources (53100 disk_full), system error (58030 io_error)
            "53" | "58" => Some(WRITE_FAILED),
            "25" if state == "25006" => Some(WRITE_FAILED), // read_only_sql_transaction
            "08" | "57" => Some("unavailable"),             // connection exception, operator intervention
            "40" => Some("busy"),                           // serialization failure, deadlock
            _ => None,
        };
    }
    None
}

impl Store {
    /// Proves the database takes writes: starts a write transaction, updates no row of the
    /// device history (which still needs the write lock and a writable file) and rolls back.
    /// A read-only SQLite file or file system fails here (a read-only PostgreSQL database
    /// already fails [`Store::open`]: the migrations' bookkeeping writes).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE device_events SET kind = kind WHERE id = -1").execute(&mut *tx).await?;
        tx.rollback().await?;
        Ok(())
    }
}
