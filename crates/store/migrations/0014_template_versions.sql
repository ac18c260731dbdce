-- Template overrides as versions: every change (set, rollback, reset) is a new row, never an
-- update, so the history is complete. The highest version of a name is the one that serves; a
-- NULL body means "back to the built-in template". Every node reading the same database serves
-- the same overrides.
CREATE TABLE IF NOT EXISTS template_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT,
    created_at BIGINT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT,
    PRIMARY KEY (name, version)
);
