-- Monitoring (Art. 13): agents on the cloud hosts, their readings rolled up
-- by hour and by day, and the office's process against idle and zombie
-- systems (Art. 14).

-- One-time enrolment codes: only their SM3 digest is kept.
CREATE TABLE enrollment_codes (
    code_digest TEXT PRIMARY KEY,
    resource_id BIGINT NOT NULL REFERENCES resources (id),
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- The agent of a host: its credential (digest only) and what it last said.
CREATE TABLE agents (
    resource_id BIGINT PRIMARY KEY REFERENCES resources (id),
    credential_digest TEXT NOT NULL,
    hostname TEXT,
    machine_id TEXT,
    enrolled_at BIGINT NOT NULL,
    version TEXT,
    binary_sm3 TEXT,
    boot_id TEXT,
    last_sequence BIGINT NOT NULL,
    last_report_at BIGINT,
    last_sample_at BIGINT,
    sequence_resets BIGINT NOT NULL,
    last_clock_skew_ms BIGINT,
    dropped_batches BIGINT NOT NULL,
    CONSTRAINT agents_credential_key UNIQUE (credential_digest)
);

-- Bearer tokens for Prometheus remote-write senders (digest only).
CREATE TABLE ingest_tokens (
    id {{ID}},
    name TEXT NOT NULL,
    token_digest TEXT NOT NULL,
    created_by BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CONSTRAINT ingest_tokens_digest_key UNIQUE (token_digest)
);

-- Prometheus remote-write requests, kept as they came (snappy protobuf)
-- before they are acknowledged, then turned into readings in order.
CREATE TABLE remote_write_inbox (
    id {{ID}},
    token_id BIGINT NOT NULL REFERENCES ingest_tokens (id),
    received_at BIGINT NOT NULL,
    body {{BLOB}} NOT NULL,
    processed_at BIGINT
);
CREATE INDEX remote_write_inbox_pending ON remote_write_inbox (processed_at, id);

-- Rollups, updated as readings arrive. `cpu_hist` counts readings per
-- whole CPU percent (101 buckets, JSON), from which p95 is read for any
-- span by adding histograms; network and disk are bytes moved.
CREATE TABLE metric_hourly (
    resource_id BIGINT NOT NULL,
    hour BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    cpu_sum {{REAL}} NOT NULL,
    cpu_min {{REAL}} NOT NULL,
    cpu_max {{REAL}} NOT NULL,
    cpu_hist TEXT NOT NULL,
    memory_sum {{REAL}} NOT NULL,
    memory_max {{REAL}} NOT NULL,
    net_bytes {{REAL}} NOT NULL,
    disk_bytes {{REAL}} NOT NULL,
    sessions_max BIGINT NOT NULL,
    PRIMARY KEY (resource_id, hour)
);

CREATE TABLE metric_daily (
    resource_id BIGINT NOT NULL,
    day TEXT NOT NULL,
    samples BIGINT NOT NULL,
    cpu_sum {{REAL}} NOT NULL,
    cpu_min {{REAL}} NOT NULL,
    cpu_max {{REAL}} NOT NULL,
    cpu_hist TEXT NOT NULL,
    memory_sum {{REAL}} NOT NULL,
    memory_max {{REAL}} NOT NULL,
    net_bytes {{REAL}} NOT NULL,
    disk_bytes {{REAL}} NOT NULL,
    sessions_max BIGINT NOT NULL,
    PRIMARY KEY (resource_id, day)
);

-- The office's review of a finding (Art. 14).
ALTER TABLE findings ADD COLUMN reviewed_by BIGINT;
ALTER TABLE findings ADD COLUMN review_comment TEXT;
ALTER TABLE findings ADD COLUMN reviewed_at BIGINT;

-- A warning to a unit, from a confirmed finding: rectify or explain by the
-- deadline; a refusal leads to a suspension the office approves.
CREATE TABLE warnings (
    id {{ID}},
    finding_id BIGINT NOT NULL REFERENCES findings (id),
    unit_id BIGINT NOT NULL REFERENCES units (id),
    system_id BIGINT REFERENCES systems (id),
    resource_id BIGINT REFERENCES resources (id),
    state TEXT NOT NULL,
    title TEXT NOT NULL,
    requirement TEXT NOT NULL,
    deadline TEXT NOT NULL,
    issued_by BIGINT,
    issued_at BIGINT NOT NULL,
    answer TEXT,
    answer_comment TEXT,
    answered_by BIGINT,
    answered_at BIGINT,
    history TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT warnings_finding_key UNIQUE (finding_id)
);
CREATE INDEX warnings_unit ON warnings (unit_id, id);
