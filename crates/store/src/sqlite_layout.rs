//! SQLite-only table layouts, applied at every open after the portable migrations.
//!
//! The migrations (`migrations/`) are one set of SQL for SQLite and PostgreSQL. The two tables
//! the fetch log writes for every device that fetched (`device_seen`, `device_files`) are keyed
//! by the device (and file), and SQLite stores such a table as two
//! B-trees: the rows under a hidden integer rowid, and the declared key as an index pointing at
//! it (SQLite, "Clustered Indexes and the WITHOUT ROWID Optimization", section 1). An upsert then
//! finds the key in the index and the row in the table, two pages at unrelated places; with a
//! million devices fetching at random that is two page reads and two page writes per row.
//! Declared `WITHOUT ROWID`, the table *is* its key's B-tree: one of each. PostgreSQL has no
//! such clause, hence a step of its own here, after the migrations.
//!
//! Each table is rebuilt once, in one transaction: a new table with the same columns (checked
//! against the migrated one, so that a later migration adding a column fails here, loudly,
//! until its layout below is updated), the rows copied in key order, the old table dropped, the
//! new one renamed, and the old one's indexes made again. A database already laid out is only
//! read.
//!
//! Indexes that only PostgreSQL nodes read are dropped here: `device_seen_at` orders the
//! last-seen rows by time for the cluster's followers (`Store::seen_since`), which run on
//! PostgreSQL only, and on SQLite it was one more B-tree written per device that fetched.

use sqlx::{AnyPool, Executor, Row};

use crate::StoreError;

/// A table stored as its key's B-tree: its name, and its definition under a temporary name.
struct Keyed {
    table: &'static str,
    create: &'static str,
}

/// The tables rebuilt `WITHOUT ROWID`, with the columns the migrations give them.
const KEYED: [Keyed; 2] = [
    Keyed {
        table: "device_seen",
        create: "CREATE TABLE device_seen_keyed (mac TEXT NOT NULL PRIMARY KEY, last_seen_at BIGINT NOT NULL, \
                 last_ip TEXT NOT NULL, last_file TEXT NOT NULL, last_hash TEXT NOT NULL, reported_model TEXT, \
                 reported_firmware TEXT) WITHOUT ROWID",
    },
    Keyed {
        table: "device_files",
        create: "CREATE TABLE device_files_keyed (mac TEXT NOT NULL, file TEXT NOT NULL, hash TEXT, at BIGINT, \
                 rendered_hash TEXT, changed_at BIGINT, PRIMARY KEY (mac, file)) WITHOUT ROWID",
    },
];

/// Indexes no SQLite reader uses (see the module's doc).
const POSTGRES_ONLY_INDEXES: [&str; 1] = ["device_seen_at"];

/// Lays out `pool`'s SQLite database as above; reads only when it already is.
pub(crate) async fn apply(pool: &AnyPool) -> Result<(), StoreError> {
    let mut pending = Vec::new();
    for keyed in &KEYED {
        if !is_without_rowid(pool, keyed.table).await? {
            pending.push(keyed);
        }
    }
    let mut dropped = Vec::new();
    for index in POSTGRES_ONLY_INDEXES {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?")
            .bind(index)
            .fetch_one(pool)
            .await?;
        if exists > 0 {
            dropped.push(index);
        }
    }
    if pending.is_empty() && dropped.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for index in dropped {
        (&mut *tx).execute(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {index}"))).await?;
    }
    for keyed in pending {
        rebuild(&mut tx, keyed).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether `table` is declared `WITHOUT ROWID` (SQLite keeps each table's `CREATE` text).
async fn is_without_rowid(pool: &AnyPool, table: &str) -> Result<bool, StoreError> {
    let sql: Option<String> = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind(table)
        .fetch_optional(pool)
        .await?;
    let sql = sql.ok_or_else(|| StoreError::Corrupt(format!("table {table} is missing after the migrations")))?;
    Ok(sql.to_ascii_uppercase().contains("WITHOUT ROWID"))
}

/// Rebuilds one table `WITHOUT ROWID` inside `tx` (see the module's doc).
async fn rebuild(tx: &mut sqlx::Transaction<'_, sqlx::Any>, keyed: &Keyed) -> Result<(), StoreError> {
    let table = keyed.table;
    let temporary = format!("{table}_keyed");
    let indexes: Vec<(String, String)> =
        sqlx::query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL")
            .bind(table)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("sql")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    (&mut **tx).execute(keyed.create).await?;
    let columns = column_list(tx, table).await?;
    let new_columns = column_list(tx, &temporary).await?;
    if columns != new_columns {
        return Err(StoreError::Corrupt(format!(
            "the SQLite layout of {table} does not match its migrations: columns ({}) against ({})",
            describe(&columns),
            describe(&new_columns)
        )));
    }
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let names = names.join(", ");
    let mut key: Vec<&Column> = columns.iter().filter(|c| c.key_position > 0).collect();
    key.sort_by_key(|c| c.key_position);
    let key: Vec<&str> = key.iter().map(|c| c.name.as_str()).collect();
    let copy = format!("INSERT INTO {temporary} ({names}) SELECT {names} FROM {table} ORDER BY {}", key.join(", "));
    (&mut **tx).execute(sqlx::AssertSqlSafe(copy)).await?;
    (&mut **tx).execute(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).await?;
    (&mut **tx).execute(sqlx::AssertSqlSafe(format!("ALTER TABLE {temporary} RENAME TO {table}"))).await?;
    for (name, sql) in indexes {
        if !POSTGRES_ONLY_INDEXES.contains(&name.as_str()) {
            (&mut **tx).execute(sqlx::AssertSqlSafe(sql)).await?;
        }
    }
    Ok(())
}

/// A column as `PRAGMA table_info` describes it.
#[derive(Debug, PartialEq, Eq)]
struct Column {
    name: String,
    declared: String,
    not_null: bool,
    /// Its place in the primary key, from 1; 0 when not part of it.
    key_position: i64,
}

async fn column_list(tx: &mut sqlx::Transaction<'_, sqlx::Any>, table: &str) -> Result<Vec<Column>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({table})"))).fetch_all(&mut **tx).await?;
    let mut columns = rows
        .iter()
        .map(|r| {
            Ok(Column {
                name: r.try_get("name")?,
                declared: r.try_get::<String, _>("type")?.to_ascii_uppercase(),
                // A key column of a WITHOUT ROWID table is NOT NULL whether declared so or not;
                // those of the rowid table are declared NOT NULL in the migrations but `mac` of
                // `device_seen`, which is its `PRIMARY KEY` and never NULL in practice.
                not_null: r.try_get::<i64, _>("notnull")? != 0 || r.try_get::<i64, _>("pk")? > 0,
                key_position: r.try_get("pk")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    columns.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(columns)
}

fn describe(columns: &[Column]) -> String {
    let parts: Vec<String> = columns.iter().map(|c| format!("{} {}", c.name, c.declared)).collect();
    parts.join(", ")
}
