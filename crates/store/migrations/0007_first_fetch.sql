-- When each device used its first-fetch window: its first successful unauthenticated fetch of its
-- own file. A window is open only while no fetch was recorded since it opened (device added, or
-- `sipprov device unlock`), so the row is written (by a conditional upsert) before the file is
-- sent, and of two concurrent fetches only one gets it.
CREATE TABLE IF NOT EXISTS device_first_fetch (
    mac TEXT PRIMARY KEY,
    fetched_at BIGINT NOT NULL
);

-- HTTP credentials the server generated for a device that has none set, written into its first
-- file (vendors whose templates carry them) so the phone authenticates from then on. Kept here,
-- never in the device's settings, so listings and history never show them.
CREATE TABLE IF NOT EXISTS device_credentials (
    mac TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
