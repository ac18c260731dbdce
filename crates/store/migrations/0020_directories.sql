-- Remote phone directories: a named, ordered list of contacts a phone shows in its directory
-- (rendered in each vendor's format when a device fetches it). A directory's contacts are
-- replaced as a whole, in one transaction, by an import or an API write.
CREATE TABLE IF NOT EXISTS directories (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- `position` keeps the order the contacts were given in (from 0); the numbers are by kind.
CREATE TABLE IF NOT EXISTS directory_contacts (
    directory TEXT NOT NULL REFERENCES directories (name) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    office TEXT,
    mobile TEXT,
    other TEXT,
    PRIMARY KEY (directory, position)
);
