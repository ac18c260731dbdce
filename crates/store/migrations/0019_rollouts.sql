-- Firmware rollouts: one row per rollout, one per (rollout, device), and the firmware pins the
-- render reads. A rollout moves a group to a firmware version in waves (wave 0 is the canary);
-- a device row moves waiting -> upgrading (pinned, notified, window open) -> succeeded | failed,
-- or is skipped at creation (no file for its model), cancelled by an abort or rolled back.
-- Windows are wall-clock times (started_at + window_ms), so a restart resumes them.
CREATE TABLE IF NOT EXISTS rollouts (
    id BIGINT PRIMARY KEY,
    group_name TEXT NOT NULL,
    version TEXT NOT NULL,
    previous_version TEXT,
    canary BIGINT NOT NULL,
    wave_percent BIGINT NOT NULL,
    window_ms BIGINT NOT NULL,
    halt_percent BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    wave BIGINT NOT NULL,
    count_from_wave BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX IF NOT EXISTS rollouts_group ON rollouts (group_name, state);

CREATE TABLE IF NOT EXISTS rollout_devices (
    rollout_id BIGINT NOT NULL,
    mac TEXT NOT NULL,
    wave BIGINT NOT NULL,
    state TEXT NOT NULL,
    from_version TEXT,
    reason TEXT,
    started_at BIGINT,
    notified_at BIGINT,
    decided_at BIGINT,
    PRIMARY KEY (rollout_id, mac)
);
CREATE INDEX IF NOT EXISTS rollout_devices_wave ON rollout_devices (rollout_id, wave, state);

-- The firmware version a rollout holds a device to, above its merged `firmware.version`.
CREATE TABLE IF NOT EXISTS firmware_pins (
    mac TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    rollout_id BIGINT NOT NULL
);
