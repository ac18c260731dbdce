-- Named API tokens and the audit trail.
--
-- A token is 256 random bits; only its SHA-256 is kept (hex), so a copy of the database grants
-- nothing. `last_used_at` is written at most about once a minute per token.
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at BIGINT
);

-- Every admin change: who (the actor's name), what (action, target kind and target, and a JSON
-- detail with the changed keys, secrets masked) and when. Written in the transaction of the
-- change it records. Ids increase with time; listings page backwards by id.
CREATE TABLE IF NOT EXISTS audit (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target_kind, target, id);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, id);
