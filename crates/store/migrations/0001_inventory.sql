-- Inventory: devices, groups and global settings. Portable SQL: SQLite and PostgreSQL both accept it.
-- Settings are JSON objects in TEXT columns: one row holds one level, written atomically.
-- Times are milliseconds since the Unix epoch (BIGINT): the sqlx Any driver has no date type.
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS global_settings (
    id INTEGER PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS devices (
    mac TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    model TEXT NOT NULL,
    group_name TEXT,
    contact TEXT,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    last_ip TEXT,
    last_file TEXT,
    last_hash TEXT,
    reported_model TEXT,
    reported_firmware TEXT
);
CREATE INDEX IF NOT EXISTS devices_group ON devices (group_name);

-- What each device was last served, per file, and when that content last changed:
-- the source of Last-Modified across restarts.
CREATE TABLE IF NOT EXISTS rendered_files (
    mac TEXT NOT NULL,
    file TEXT NOT NULL,
    hash TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (mac, file)
);

-- Device history: fetches, refusals, notifications. detail is a JSON object.
CREATE TABLE IF NOT EXISTS device_events (
    id BIGINT PRIMARY KEY,
    mac TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS device_events_mac ON device_events (mac, at);
