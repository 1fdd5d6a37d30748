-- Memory use and network and disk throughput get what CPU use has: the
-- least, the most, and a histogram to read p95 from; and the time the
-- readings stand for, over which bytes moved average to throughput.
-- NULL on rows written before: read as "not known" (no quantile, no average).
ALTER TABLE metric_hourly ADD COLUMN memory_min {{REAL}};
ALTER TABLE metric_hourly ADD COLUMN memory_hist TEXT;
ALTER TABLE metric_hourly ADD COLUMN seconds {{REAL}};
ALTER TABLE metric_hourly ADD COLUMN net_min_bps {{REAL}};
ALTER TABLE metric_hourly ADD COLUMN net_max_bps {{REAL}};
ALTER TABLE metric_hourly ADD COLUMN net_hist TEXT;
ALTER TABLE metric_hourly ADD COLUMN disk_min_bps {{REAL}};
ALTER TABLE metric_hourly ADD COLUMN disk_max_bps {{REAL}};
ALTER TABLE metric_hourly ADD COLUMN disk_hist TEXT;
ALTER TABLE metric_daily ADD COLUMN memory_min {{REAL}};
ALTER TABLE metric_daily ADD COLUMN memory_hist TEXT;
ALTER TABLE metric_daily ADD COLUMN seconds {{REAL}};
ALTER TABLE metric_daily ADD COLUMN net_min_bps {{REAL}};
ALTER TABLE metric_daily ADD COLUMN net_max_bps {{REAL}};
ALTER TABLE metric_daily ADD COLUMN net_hist TEXT;
ALTER TABLE metric_daily ADD COLUMN disk_min_bps {{REAL}};
ALTER TABLE metric_daily ADD COLUMN disk_max_bps {{REAL}};
ALTER TABLE metric_daily ADD COLUMN disk_hist TEXT;
