-- A campaign's selection is kept with its chunks instead of as a `pending` row per device: a
-- device gets its row in campaign_devices when its outcome is written (or, on PostgreSQL, when
-- it is marked `sending`), and a device of the selection without a row is pending. Writing a
-- row per device at creation, then rewriting it and moving its index entry at its outcome,
-- was a third of a campaign's database work per device.
--
-- `campaigns.devices`: how many devices the campaign reaches. `campaign_chunks.macs`: the MACs
-- of the chunk's range, each as its 12 hex digits, one after another in order.
-- Portable SQL: SQLite (3.44+ for string_agg with ORDER BY) and PostgreSQL both accept it.
ALTER TABLE campaigns ADD COLUMN devices BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_chunks ADD COLUMN macs TEXT NOT NULL DEFAULT '';

-- Existing campaigns: their selection is their rows, whatever their state.
UPDATE campaigns SET devices = (SELECT COUNT(*) FROM campaign_devices d WHERE d.campaign_id = campaigns.id);
UPDATE campaign_chunks SET macs = COALESCE((
    SELECT string_agg(d.mac, '' ORDER BY d.mac) FROM campaign_devices d
    WHERE d.campaign_id = campaign_chunks.campaign_id
      AND d.mac >= campaign_chunks.first_mac AND d.mac <= campaign_chunks.last_mac), '');

-- Rows of devices never sent to say nothing the selection does not.
DELETE FROM campaign_devices WHERE state = 'pending' AND attempts = 0;
