-- Campaign confirmation keyed by file: a device is confirmed when it fetches its own config
-- file after its NOTIFY (the server only serves the current rendering, and device_fetched only
-- records successful fetches), instead of matching a SHA-256 rendered at NOTIFY time.
-- Portable SQL: SQLite (3.25+ for RENAME COLUMN) and PostgreSQL both accept it.
--
-- Existing rows keep whatever they had: a campaign notified before this migration holds a
-- hash under the new name expected_file, which no fetched file name matches, so its devices
-- that were not yet confirmed stay unconfirmed until `campaign retry` notifies them again.
ALTER TABLE campaign_devices RENAME COLUMN expected_hash TO expected_file;

-- The SHA-256 of what the device fetched, recorded at confirmation, for the report.
ALTER TABLE campaign_devices ADD COLUMN fetched_hash TEXT;
