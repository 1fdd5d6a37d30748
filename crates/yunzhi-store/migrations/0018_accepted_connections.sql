-- TCP connections a host accepted over the span (its listening processes
-- at work: zombie evidence). NULL when no reading counted them: rows
-- written before, and senders that do not count them.
ALTER TABLE metric_hourly ADD COLUMN accepted BIGINT;
ALTER TABLE metric_daily ADD COLUMN accepted BIGINT;
