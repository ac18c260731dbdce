-- The fleet summary reads the refusals of the last 24 hours, and nothing else reads events by
-- kind and time. The index on (kind, at) of migration 0017 took an entry for every event (each
-- fetch event, each campaign NOTIFY's outcome) to serve that one read; a partial index holds
-- refusals only, and keeps the read bounded however long the history grows.
-- Portable SQL: partial indexes are in SQLite (3.8+) and PostgreSQL alike.
DROP INDEX IF EXISTS device_events_kind_at;
CREATE INDEX IF NOT EXISTS device_events_refused_at ON device_events (at) WHERE kind = 'refused';
