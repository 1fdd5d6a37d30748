-- Real platforms: how to reach each (driver settings as JSON, in plain
-- text) and with what credentials (sealed with SM4-GCM under the key kept
-- outside the database, never returned by the API).
ALTER TABLE platforms ADD COLUMN config TEXT;
ALTER TABLE platforms ADD COLUMN credentials TEXT;
-- What the platform itself last reported of its capacity and use (JSON,
-- from Placement, libvirt's node info or the simulator), beside what the
-- Big Data Center configured.
ALTER TABLE platforms ADD COLUMN reported TEXT;

-- What the platform calls the resource once it made it.
ALTER TABLE resources ADD COLUMN remote_id TEXT;

-- Findings (发现): things the platform noticed that need a person's eyes:
-- resources on a platform that Yunzhi does not know (orphan_resource),
-- resources Yunzhi believes live that the platform lacks, and later the
-- efficiency analysis (idle, zombie, agent missing ...). One open finding
-- per subject and kind: `dedup_key` is unique.
CREATE TABLE findings (
    id {{ID}},
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'confirmed', 'dismissed', 'resolved')),
    unit_id BIGINT REFERENCES units (id),
    system_id BIGINT REFERENCES systems (id),
    resource_id BIGINT REFERENCES resources (id),
    platform_id BIGINT REFERENCES platforms (id),
    title TEXT NOT NULL,
    evidence TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    resolved_at BIGINT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT findings_dedup_key UNIQUE (dedup_key)
);
CREATE INDEX findings_unit ON findings (unit_id, id);
CREATE INDEX findings_state ON findings (state, id);

-- Every attempt at a job: who ran it, when, and how it ended. An attempt
-- whose worker died is `abandoned` when the next one takes the job over.
CREATE TABLE job_attempts (
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN ('running', 'done', 'failed', 'abandoned')),
    error TEXT,
    PRIMARY KEY (job_id, attempt)
);
