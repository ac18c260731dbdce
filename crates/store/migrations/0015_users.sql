-- Web console users: a name, one role (admin, operator, read-only) and an Argon2id password
-- hash in PHC form (`$argon2id$v=19$m=...`); the password itself is never stored.
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
