-- The catalog of stored files (firmware images, ringtones, wallpapers, language files): one row
-- per served name. The content lives outside the database, content-addressed by its SHA-256
-- (`<data_dir>/files/sha256/<hex>`), so identical uploads under two names share one blob; the
-- blob goes when no row names its hash any more. `models` is a JSON array of model names;
-- `added_at` is in seconds since the epoch.
CREATE TABLE IF NOT EXISTS resource_files (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    vendor TEXT,
    models TEXT NOT NULL,
    version TEXT,
    access TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    added_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resource_files_sha256 ON resource_files (sha256);
