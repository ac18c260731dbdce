-- On SQLite the fetch log writes each device's last-seen row (`device_seen`) less often than its
-- fetch events: every fetch event with an id above this mark is not yet reflected in
-- `device_seen`, and the store replays those events into it when it opens (a kill -9 between two
-- last-seen writes loses nothing: the events are written every interval). One row. Every
-- existing fetch event is already in `device_seen` (written with each batch until now).
-- PostgreSQL nodes keep writing `device_seen` with every batch (other nodes read it), and the
-- mark stays unused there.
CREATE TABLE IF NOT EXISTS fetch_seen_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    event_id BIGINT NOT NULL
);
INSERT INTO fetch_seen_mark (id, event_id) SELECT 1, COALESCE(MAX(id), 0) FROM device_events;
