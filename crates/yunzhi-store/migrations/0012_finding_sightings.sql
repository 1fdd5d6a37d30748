-- When the analysis last saw each finding it had seen before with the same
-- evidence. Kept apart from `findings` because it changes every hour for
-- every held finding: moving a column of `findings` rewrites the whole
-- row, its evidence (every day of the window, ≈ 10 KB) included — 41 MB
-- an hour for 4,000 findings — where this row is a few bytes. A finding's
-- last sighting is the later of this and `findings.last_seen_at` (set when
-- its evidence is written).
CREATE TABLE finding_sightings (
    finding_id BIGINT PRIMARY KEY REFERENCES findings (id) ON DELETE CASCADE,
    seen_at BIGINT NOT NULL
);
