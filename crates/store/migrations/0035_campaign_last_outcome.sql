-- When a campaign's latest outcome was recorded (ms since the epoch): written by the
-- transaction that records a batch of outcomes, as its last statement before its commit, so
-- that a report read in one snapshot with the counts names the time of the last batch it
-- counts. NULL until the first outcome; campaigns whose outcomes were all recorded before this
-- column existed keep NULL (their recording time was never kept).
ALTER TABLE campaigns ADD COLUMN last_outcome_at BIGINT;
