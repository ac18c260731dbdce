-- When each device's first-fetch window was last re-opened (`sipprov device unlock`), so that
-- a restart keeps the windows an operator opened. One row per device, by upsert.
CREATE TABLE IF NOT EXISTS device_unlocks (
    mac TEXT PRIMARY KEY,
    opened_at BIGINT NOT NULL
);
