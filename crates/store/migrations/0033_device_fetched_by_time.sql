-- Campaign confirmation reads the fetches recorded since its previous check, in pages, rather
-- than every notified device of the campaign at each check: at a million devices that pass
-- held the write lock for seconds. The index orders `device_fetched` by time, with the key as a
-- tie-breaker so that a page can resume after its last row ("(at, mac, file) > (?, ?, ?)").
-- A device's row moves in it only when the fetch log writes that row, at most once an interval.
CREATE INDEX IF NOT EXISTS device_fetched_at ON device_fetched (at, mac, file);
