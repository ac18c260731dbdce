-- A campaign's report (counts per outcome, the failing devices) is read every few hundred
-- milliseconds while it runs, by the console, `resync --wait` and the engine itself. With an
-- index on (campaign_id, state) only, each read visited every device row of the campaign. With
-- the confirmation time and the notification time in the index, the counts per state are read
-- from the index alone, and the confirmed, the out-of-time and the failed devices are each a
-- range of it: a read costs a pass over small index entries plus the size of those ranges.
-- Writes update one index entry per device, as before.
DROP INDEX IF EXISTS campaign_devices_state;
CREATE INDEX IF NOT EXISTS campaign_devices_progress ON campaign_devices (campaign_id, state, confirmed_at, notified_at);
