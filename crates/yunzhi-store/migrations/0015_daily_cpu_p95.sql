-- A day's CPU p95, read off its histogram whenever the daily rollup is
-- written, so that the efficiency analysis reads every figure it judges a
-- day by as a plain number: its first pass after a start reads the whole
-- fleet's window (900 000 rows for 10 000 hosts × 90 days), and fetching
-- and walking each row's histogram was most of that read's cost.
-- NULL on rows written before this column existed; the reader reads those
-- rows' histograms instead, so nothing needs recomputing here.
ALTER TABLE metric_daily ADD COLUMN cpu_p95 {{REAL}};
