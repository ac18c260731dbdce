-- Fleet re-sync campaigns: one row per campaign, one per (campaign, device).
-- A device row moves pending -> sending -> notified | failed; "sending" is written before the
-- NOTIFY leaves, so after a crash exactly the devices without an outcome are sent again.
CREATE TABLE IF NOT EXISTS campaigns (
    id BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    start_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    reboot BIGINT NOT NULL,
    rate BIGINT NOT NULL,
    max_in_flight BIGINT NOT NULL,
    confirm_window_ms BIGINT NOT NULL,
    selector TEXT NOT NULL,
    finished_at BIGINT
);

CREATE TABLE IF NOT EXISTS campaign_devices (
    campaign_id BIGINT NOT NULL,
    mac TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    result TEXT,
    status BIGINT,
    reason TEXT,
    expected_hash TEXT,
    notified_at BIGINT,
    confirmed_at BIGINT,
    PRIMARY KEY (campaign_id, mac)
);
CREATE INDEX IF NOT EXISTS campaign_devices_state ON campaign_devices (campaign_id, state);

-- The last hash each device fetched, per file: what --changed and confirmation compare against.
CREATE TABLE IF NOT EXISTS device_fetched (
    mac TEXT NOT NULL,
    file TEXT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (mac, file)
);
