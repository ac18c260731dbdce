-- One row per device and file for what the device last fetched and what was last rendered for
-- it, instead of a row in each of two tables (`device_fetched`, `rendered_files`) under the
-- same key. A fleet fetching at random writes each of its rows at a random place of a large
-- B-tree; two tables keyed alike were two such writes per device and file, one of them (the
-- change time of a first rendering) for the same fetch. One table makes it one.
--
-- `hash` and `at` are the last fetch (NULL until the device fetches the file); `rendered_hash`
-- and `changed_at` the last rendering and since when its content is unchanged, the file's
-- `Last-Modified` (NULL until it is rendered, or after the device is deleted).
CREATE TABLE IF NOT EXISTS device_files (
    mac TEXT NOT NULL,
    file TEXT NOT NULL,
    hash TEXT,
    at BIGINT,
    rendered_hash TEXT,
    changed_at BIGINT,
    PRIMARY KEY (mac, file)
);

INSERT INTO device_files (mac, file, hash, at, rendered_hash, changed_at)
SELECT k.mac, k.file, f.hash, f.at, r.hash, r.changed_at
FROM (SELECT mac, file FROM device_fetched UNION SELECT mac, file FROM rendered_files) k
LEFT JOIN device_fetched f ON f.mac = k.mac AND f.file = k.file
LEFT JOIN rendered_files r ON r.mac = k.mac AND r.file = k.file;

DROP TABLE device_fetched;
DROP TABLE rendered_files;

-- The campaign confirmation's index (0033), on fetched rows only: a rendering that no device
-- fetched yet is not in it, so writing one costs no entry here.
CREATE INDEX IF NOT EXISTS device_files_at ON device_files (at, mac, file) WHERE at IS NOT NULL;
