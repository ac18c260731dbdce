-- The nodes sharing this database, each writing its heartbeat every few seconds. `id` is the
-- process's identity (name/pid/random): a node restarted under the same name is a new row.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    http_addr TEXT NOT NULL,
    api_addr TEXT NOT NULL
);

-- The change feed: one row per change to something the nodes keep in memory, written in the
-- transaction of the change. `id` is allocated densely in commit order (a writer holds the
-- table's lock from allocating to committing), so a reader that saw id N has seen every id
-- below it. `kind` names what changed, `key` which one (a MAC, a name; empty for all);
-- `origin` is the node that made it, which has applied it already. Old rows are pruned.
CREATE TABLE IF NOT EXISTS change_feed (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL
);

-- Other nodes read the fetches recorded since they last looked (the listings' last-seen).
CREATE INDEX IF NOT EXISTS device_seen_at ON device_seen (last_seen_at);
