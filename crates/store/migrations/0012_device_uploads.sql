-- Files phones upload (Polycom `<mac>-phone.cfg`, logs; Yealink `<mac>-local.cfg`): the latest
-- of each name per device, with when it came, its size and SHA-256. The server bounds the size
-- of each file and of a device's total, and the names are the few each vendor declares.
CREATE TABLE IF NOT EXISTS device_uploads (
    mac TEXT NOT NULL,
    name TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    content BYTEA NOT NULL,
    PRIMARY KEY (mac, name)
);
