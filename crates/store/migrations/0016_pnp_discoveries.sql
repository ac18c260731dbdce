-- PnP sightings of devices waiting in the discovered group (`pnp.mode = "any"`): what the
-- phone's SUBSCRIBEs reported and when, for the operator who approves them into a group. A row
-- goes when its device is approved or removed.
CREATE TABLE IF NOT EXISTS pnp_discoveries (
    mac TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    model TEXT NOT NULL,
    firmware TEXT,
    source TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
