//! Multi-row statements: placeholders, chunking and per-key deduplication.
//!
//! A batch write sends a handful of statements instead of one per row: with SQLite each
//! statement is a round trip to sqlx's worker thread (a channel hop and a thread wake-up),
//! and with PostgreSQL a network round trip.
//!
//! Two things keep those statements cheap:
//! - **Anonymous placeholders on SQLite.** Statements are written with `?` for every parameter,
//!   bound in textual order; [`numbered`] turns them into `$1, $2, …` for PostgreSQL. On SQLite
//!   they stay `?`: sqlx looks up the name of every named parameter (`$n`), and SQLite finds a
//!   name by scanning all of them, so binding a statement with *n* named parameters costs n².
//! - **A few fixed sizes.** [`chunks`] cuts a batch into chunks of 256, 64, 16, 4 or 1 rows, so
//!   each statement's text is one of a few, which sqlx prepares once per connection and caches;
//!   a size per batch would mean parsing and planning a new statement every time.
//!
//! ```text
//! repeat("(?, ?)", 2)                        →  (?, ?), (?, ?)
//! numbered("… IN (?, ?)", Backend::Postgres) →  … IN ($1, $2)
//! chunks(300 rows)                           →  256, 16, 16, 4, 4, 4
//! ```

use std::collections::HashMap;
use std::hash::Hash;

use crate::Backend;

/// Most bound parameters in one statement: far under both databases' limits (32,766 for the
/// bundled SQLite, 65,535 for PostgreSQL).
pub(crate) const MAX_PARAMS: usize = 2048;

/// The chunk sizes, largest first.
const SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// Splits `rows` into chunks of the fixed [`SIZES`] (largest that fits first), none binding
/// more than [`MAX_PARAMS`] at `per_row` parameters a row.
pub(crate) fn chunks<T>(rows: &[T], per_row: usize) -> impl Iterator<Item = &[T]> {
    chunks_of_at_most(rows, per_row, usize::MAX)
}

/// [`chunks`], none longer than `max_rows` either.
pub(crate) fn chunks_of_at_most<T>(rows: &[T], per_row: usize, max_rows: usize) -> impl Iterator<Item = &[T]> {
    let cap = (MAX_PARAMS / per_row.max(1)).clamp(1, max_rows.max(1));
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = SIZES.iter().copied().find(|&s| s <= cap && s <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// `rows` copies of `pattern`, comma-separated: a VALUES list, or `?, ?, ?` for an `IN` list.
pub(crate) fn repeat(pattern: &str, rows: usize) -> String {
    let mut out = String::with_capacity(rows * (pattern.len() + 2));
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push_str(pattern);
    }
    out
}

/// The statement for `backend`: every `?` (the statement must hold no other) numbered `$1`,
/// `$2`, … in textual order for PostgreSQL, kept anonymous for SQLite.
pub(crate) fn numbered(sql: &str, backend: Backend) -> String {
    if backend == Backend::Sqlite {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + sql.len() / 4);
    for (i, part) in sql.split('?').enumerate() {
        if i > 0 {
            out.push('$');
            out.push_str(&i.to_string());
        }
        out.push_str(part);
    }
    out
}

/// The rows with the last occurrence of each key kept, in the order of those last
/// occurrences, the keys hashed by `S`. An upsert or an `UPDATE … FROM (VALUES …)` must not
/// meet the same key twice: PostgreSQL refuses the upsert, and either database would apply an
/// arbitrary one of the rows to the update, where the caller's order says the latest wins. A
/// campaign's outcomes are keyed by MAC, which `sipprov_model::BuildMacHasher` hashes in a
/// multiply where SipHash cost about 300 instructions an outcome (callgrind,
/// bench/sip-instructions.sh).
pub(crate) fn last_per_key_hashed<'a, T, K: Hash + Eq, S: std::hash::BuildHasher + Default>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut last: HashMap<K, usize, S> = HashMap::with_capacity_and_hasher(rows.len(), S::default());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    rows.iter().enumerate().filter(|(i, row)| last.get(&key(row)) == Some(i)).map(|(_, row)| row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_anonymous_on_sqlite_and_numbered_on_postgres() {
        let sql = format!("INSERT INTO t VALUES {}", repeat("(?, CAST(? AS TEXT), 'x')", 2));
        assert_eq!(
            numbered(&sql, Backend::Sqlite),
            "INSERT INTO t VALUES (?, CAST(? AS TEXT), 'x'), (?, CAST(? AS TEXT), 'x')"
        );
        assert_eq!(
            numbered(&sql, Backend::Postgres),
            "INSERT INTO t VALUES ($1, CAST($2 AS TEXT), 'x'), ($3, CAST($4 AS TEXT), 'x')"
        );
        assert_eq!(repeat("?", 3), "?, ?, ?");
        assert_eq!(repeat("?", 0), "");
    }

    #[test]
    fn chunks_take_fixed_sizes_under_the_parameter_cap() {
        let rows: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = chunks(&rows, 1).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 16, 16, 4, 4, 4]);
        let rows: Vec<u32> = (0..10_000).collect();
        let sizes: Vec<usize> = chunks(&rows, 9).map(<[u32]>::len).collect();
        assert!(sizes.iter().all(|n| n * 9 <= MAX_PARAMS && SIZES.contains(n)), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 10_000);
        assert_eq!(chunks(&rows[..0], 4).count(), 0);
        // A row wider than the cap still goes, one per statement.
        assert_eq!(chunks(&rows[..2], MAX_PARAMS * 2).map(<[u32]>::len).collect::<Vec<_>>(), [1, 1]);
        // A cap on rows (the background writer's) keeps to the same fixed sizes under it.
        let sizes: Vec<usize> = chunks_of_at_most(&rows, 1, 64).map(<[u32]>::len).collect();
        assert!(sizes.iter().all(|&n| n <= 64) && sizes.iter().sum::<usize>() == rows.len(), "{sizes:?}");
        assert_eq!(&sizes[..2], [64, 64]);
    }

    #[test]
    fn the_last_row_per_key_wins_in_order() {
        let rows = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let kept: Vec<_> = last_per_key_hashed::<_, _, std::collections::hash_map::RandomState>(&rows, |r| r.0)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(kept, vec![("a", 3), ("c", 4), ("b", 5)]);
        let macs = rows.map(|(k, n)| (sipprov_model::Mac::from_bytes([0, 0, 0, 0, 0, k.as_bytes()[0]]), n));
        let kept: Vec<_> = last_per_key_hashed::<_, _, sipprov_model::BuildMacHasher>(&macs, |r| r.0)
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(kept, vec![3, 4, 5]);
    }
}
