-- A counter that moves whenever anything the efficiency analysis reads
-- about the live hosts may have changed: any write to `resources`, or to
-- `systems` (a host's system name and its declared periodic load, Art. 8).
-- The analysis keeps the live hosts between its hourly passes and reads
-- them again only when this counter has moved. Triggers rather than
-- application code, so that every write path, today's and tomorrow's,
-- moves it.
--
-- SQLite only: SQLite has one writer at a time, so one counter row costs
-- nothing. On PostgreSQL a single counter row would serialise every
-- transaction that writes a resource (and could deadlock two that lock
-- other rows first); there the store reads the rows' own transaction ids
-- (`xmin`) instead, which move with every committed change.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('live_hosts', 0);

CREATE TRIGGER live_hosts_on_resource_insert AFTER INSERT ON resources
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'live_hosts';
END;
CREATE TRIGGER live_hosts_on_resource_update AFTER UPDATE ON resources
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'live_hosts';
END;
CREATE TRIGGER live_hosts_on_resource_delete AFTER DELETE ON resources
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'live_hosts';
END;
CREATE TRIGGER live_hosts_on_system_update AFTER UPDATE ON systems
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'live_hosts';
END;
CREATE TRIGGER live_hosts_on_system_delete AFTER DELETE ON systems
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'live_hosts';
END;
