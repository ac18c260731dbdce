-- What the nodes sharing one database need to agree on to guard device files together (used
-- on PostgreSQL; a single SQLite node keeps this state in memory).
--
-- Secrets every node must hold the same (the key Digest nonces are signed with): created once by
-- the first node to start, never listed.
CREATE TABLE IF NOT EXISTS cluster_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Nonce counts accepted per Digest nonce (RFC 7616 §3.4): the highest, and a bitmap of the 64
-- counts below it (bit i: count highest - 1 - i). Only nonces that carried a correct response get
-- a row; rows go when the nonce expires. `issued_at` is in seconds since the epoch.
CREATE TABLE IF NOT EXISTS digest_nonces (
    nonce TEXT PRIMARY KEY,
    issued_at BIGINT NOT NULL,
    highest BIGINT NOT NULL,
    below BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS digest_nonces_issued ON digest_nonces (issued_at);
-- Authentication failures per source (an address, or an IPv6 /64), counted by every node:
-- `blocked_until` set while the source is refused; `blocked_at` is when this block began (ms).
CREATE TABLE IF NOT EXISTS throttle_sources (
    source TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    blocked_until BIGINT,
    blocked_at BIGINT
);
CREATE INDEX IF NOT EXISTS throttle_sources_blocked ON throttle_sources (blocked_until);
-- Unauthenticated challenges of a known device that its own later success may take back.
CREATE TABLE IF NOT EXISTS throttle_forgivable (
    source TEXT NOT NULL,
    mac TEXT NOT NULL,
    pending BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (source, mac)
);
-- The Plug-and-Play multicast responder of each segment: the node that last took the segment's
-- advisory lock (the lock itself says whether it still holds it).
CREATE TABLE IF NOT EXISTS pnp_responders (
    segment TEXT PRIMARY KEY,
    lock_key BIGINT NOT NULL,
    holder TEXT NOT NULL,
    since BIGINT NOT NULL
);
-- The content of stored files (firmware, resources), so every node can serve a file uploaded
-- through another: chunks of at most 1 MiB, read and written one at a time. `file_blobs` is
-- written after the last chunk, in the same transaction: a blob listed there is complete.
CREATE TABLE IF NOT EXISTS file_blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    chunks BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_blob_chunks (
    sha256 TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sha256, seq)
);
