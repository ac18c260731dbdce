-- How many identical fetches an open fetch event stands for, and when the last was: the fetch
-- log raises these every interval while a phone keeps polling the same file (SQLite). They were
-- kept in the event's `detail` (`count`, `last_at`), and raising them rewrote the whole event row,
-- about 250 bytes, for every polling device every interval; a row here is a few bytes, so an
-- interval dirties a fraction of the pages. Readers take `count` and `last_at` from here when a
-- row exists, else from `detail` (events written before this table, and events never extended).
CREATE TABLE IF NOT EXISTS fetch_event_counts (
    event_id BIGINT PRIMARY KEY,
    count BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
