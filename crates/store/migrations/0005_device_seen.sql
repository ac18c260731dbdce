-- What each device last fetched moves from columns of `devices` to a table of its own,
-- written by upsert (`INSERT … ON CONFLICT (mac) DO UPDATE`): the batched fetch log then
-- finds each row through the primary key. A multi-row `UPDATE devices … FROM (VALUES …)`
-- made SQLite, which keeps no statistics, scan every device for every chunk of rows.
CREATE TABLE IF NOT EXISTS device_seen (
    mac TEXT PRIMARY KEY,
    last_seen_at BIGINT NOT NULL,
    last_ip TEXT NOT NULL,
    last_file TEXT NOT NULL,
    last_hash TEXT NOT NULL,
    reported_model TEXT,
    reported_firmware TEXT
);

INSERT INTO device_seen (mac, last_seen_at, last_ip, last_file, last_hash, reported_model, reported_firmware)
SELECT mac, last_seen_at, COALESCE(last_ip, ''), COALESCE(last_file, ''), COALESCE(last_hash, ''),
       reported_model, reported_firmware
FROM devices WHERE last_seen_at IS NOT NULL;

ALTER TABLE devices DROP COLUMN last_seen_at;
ALTER TABLE devices DROP COLUMN last_ip;
ALTER TABLE devices DROP COLUMN last_file;
ALTER TABLE devices DROP COLUMN last_hash;
ALTER TABLE devices DROP COLUMN reported_model;
ALTER TABLE devices DROP COLUMN reported_firmware;
