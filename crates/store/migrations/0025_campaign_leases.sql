-- Campaigns and rollouts across the nodes of one database.
--
-- A campaign's devices are split, when it is created, into chunks: ranges of MACs
-- (first_mac to last_mac, both included). A node sends a chunk under a lease (holder, until
-- lease_until, ms since the epoch) that it renews while it works on it; a chunk whose lease
-- ran out is claimed by another node, which sends again to its devices without an outcome.
-- `sent` is 1 once every device of the chunk has an outcome (a retry sets it back to 0).
CREATE TABLE IF NOT EXISTS campaign_chunks (
    campaign_id BIGINT NOT NULL,
    chunk BIGINT NOT NULL,
    first_mac TEXT NOT NULL,
    last_mac TEXT NOT NULL,
    sent BIGINT NOT NULL,
    holder TEXT,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, chunk)
);

-- Campaigns created before chunks existed are one chunk each, over every MAC (MACs are
-- stored as 12 hexadecimal digits, which sort between these bounds).
INSERT INTO campaign_chunks (campaign_id, chunk, first_mac, last_mac, sent, holder, lease_until)
SELECT id, 0, '', 'zzzzzzzzzzzz', 0, NULL, 0 FROM campaigns;

-- Named leases of one holder at a time: the rollout a node drives (`rollout:7`), the node that
-- watches a campaign's confirmations once every chunk is sent (`campaign:12`).
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
