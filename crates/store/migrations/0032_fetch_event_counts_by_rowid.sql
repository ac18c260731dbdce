-- `fetch_event_counts` keyed by SQLite's rowid. Declared `BIGINT PRIMARY KEY`, its key was a
-- separate index beside the table (only a column declared exactly `INTEGER PRIMARY KEY` is an
-- alias for the rowid: SQLite, "CREATE TABLE", section "ROWIDs and the INTEGER PRIMARY KEY"), so
-- each interval's upsert of a polling device's count searched and wrote two B-trees; now one.
-- PostgreSQL reads the table but never writes it (the fetch log extends events only on SQLite),
-- so its narrower INTEGER never holds an id there.
CREATE TABLE IF NOT EXISTS fetch_event_counts_by_rowid (
    event_id INTEGER PRIMARY KEY,
    count BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
INSERT INTO fetch_event_counts_by_rowid (event_id, count, last_at)
    SELECT event_id, count, last_at FROM fetch_event_counts;
DROP TABLE fetch_event_counts;
ALTER TABLE fetch_event_counts_by_rowid RENAME TO fetch_event_counts;
