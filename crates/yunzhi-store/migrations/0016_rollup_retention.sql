-- Rollups older than the retention window (400 days by default) are
-- deleted once a day; these indexes let that delete find them without
-- walking every host's rows.
CREATE INDEX metric_hourly_hour ON metric_hourly (hour);
CREATE INDEX metric_daily_day ON metric_daily (day);
