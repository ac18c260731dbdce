-- The fleet summary counts recent refusals by kind and time ("refusals in the last 24 h"): an
-- index on (kind, at) keeps that read bounded however long the history grows.
CREATE INDEX IF NOT EXISTS device_events_kind_at ON device_events (kind, at);
