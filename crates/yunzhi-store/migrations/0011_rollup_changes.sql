-- When each daily rollup last changed (real time, epoch milliseconds), so
-- that the hourly analysis reads only the days that changed since its
-- previous pass instead of the whole fleet's window every hour.
ALTER TABLE metric_daily ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX metric_daily_changed ON metric_daily (changed_at);
