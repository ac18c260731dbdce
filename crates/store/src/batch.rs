//! Multi-row statements: placeholder lists, chunking and per-key deduplication.
//!
//! A batch write sends a handful of statements instead of one per row: with SQLite each
//! statement is a round trip to sqlx's worker thread (a channel hop and a thread wake-up),
//! and with PostgreSQL a network round trip. Rows are bound as parameters, numbered `$n`
//! so the same SQL text works on both databases.
//!
//! Both databases cap the parameters of one statement (32,766 for the bundled SQLite,
//! 65,535 for PostgreSQL); [`chunks`] keeps every statement at or under [`MAX_PARAMS`].
//!
//! ```text
//! row_values("($1, ?, 'pending', 0)", 2, 2)  →  ($1, $2, 'pending', 0), ($1, $3, 'pending', 0)
//! in_list(3, 2)                               →  $2, $3, $4
//! ```

use std::collections::HashMap;
use std::hash::Hash;

/// Most bound parameters in one statement: far under both databases' limits, and large
/// enough that a 100,000-row import takes a few dozen statements.
pub(crate) const MAX_PARAMS: usize = 4000;

/// Splits `rows` into slices that each fit in one statement binding `per_row` parameters per
/// row plus `fixed` parameters shared by the statement (such as a campaign id in `$1`).
pub(crate) fn chunks<T>(rows: &[T], per_row: usize, fixed: usize) -> std::slice::Chunks<'_, T> {
    let size = (MAX_PARAMS.saturating_sub(fixed) / per_row.max(1)).max(1);
    rows.chunks(size)
}

/// `rows` copies of the row `pattern`, comma-separated, each `?` in it replaced by the next
/// parameter number from `first` on. Anything else in the pattern is kept as written, so it
/// may name shared parameters (`$1`), literals or casts; it must not hold a `?` of its own.
pub(crate) fn row_values(pattern: &str, rows: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * (pattern.len() + 8));
    let mut next = first;
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        for (i, part) in pattern.split('?').enumerate() {
            if i > 0 {
                out.push('$');
                out.push_str(&next.to_string());
                next += 1;
            }
            out.push_str(part);
        }
    }
    out
}

/// `$first, $first+1, …`: `count` placeholders for an `IN (…)` list.
pub(crate) fn in_list(count: usize, first: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// The rows with the last occurrence of each key kept, in the order of those last
/// occurrences. An upsert or an `UPDATE … FROM (VALUES …)` must not meet the same key twice:
/// PostgreSQL refuses the upsert, and either database would apply an arbitrary one of the rows
/// to the update, where the caller's order says the latest wins.
pub(crate) fn last_per_key<'a, T, K: Hash + Eq>(rows: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut last: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    rows.iter().enumerate().filter(|(i, row)| last.get(&key(row)) == Some(i)).map(|(_, row)| row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_on_from_the_first() {
        assert_eq!(row_values("(?, ?)", 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(row_values("($1, ?, 'pending', 0)", 2, 2), "($1, $2, 'pending', 0), ($1, $3, 'pending', 0)");
        assert_eq!(row_values("(CAST(? AS TEXT))", 1, 5), "(CAST($5 AS TEXT))");
        assert_eq!(row_values("(?)", 0, 1), "");
        assert_eq!(in_list(3, 2), "$2, $3, $4");
        assert_eq!(in_list(0, 2), "");
    }

    #[test]
    fn chunks_stay_under_the_parameter_cap() {
        let rows: Vec<u32> = (0..10_000).collect();
        let fixed = 1;
        let sizes: Vec<usize> = chunks(&rows, 7, fixed).map(<[u32]>::len).collect();
        assert!(sizes.iter().all(|n| n * 7 + fixed <= MAX_PARAMS), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 10_000);
        assert_eq!(chunks(&rows, 1, 0).count(), 3);
        assert_eq!(chunks(&rows[..0], 4, 0).count(), 0);
    }

    #[test]
    fn the_last_row_per_key_wins_in_order() {
        let rows = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let kept: Vec<_> = last_per_key(&rows, |r| r.0).into_iter().copied().collect();
        assert_eq!(kept, vec![("a", 3), ("c", 4), ("b", 5)]);
    }
}
