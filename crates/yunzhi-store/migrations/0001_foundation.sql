-- Yunzhi's foundation schema. One text for both backends: {{ID}} becomes
-- SQLite's rowid alias or a PostgreSQL identity column, {{REAL}} a double.
-- Times are epoch milliseconds (BIGINT), dates `YYYY-MM-DD` text, flags 0/1.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE units (
    id {{ID}},
    name TEXT NOT NULL,
    credit_code TEXT NOT NULL,
    contacts TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT units_credit_code_key UNIQUE (credit_code)
);

CREATE TABLE systems (
    id {{ID}},
    unit_id BIGINT NOT NULL REFERENCES units (id),
    name TEXT NOT NULL,
    mlps_level BIGINT NOT NULL CHECK (mlps_level BETWEEN 1 AND 3),
    project_ref TEXT,
    arch TEXT NOT NULL CHECK (arch IN ('x86_64', 'aarch64')),
    quota_vcpu BIGINT NOT NULL CHECK (quota_vcpu >= 0),
    quota_memory_gib BIGINT NOT NULL CHECK (quota_memory_gib >= 0),
    quota_storage_gib BIGINT NOT NULL CHECK (quota_storage_gib >= 0),
    quota_basis TEXT NOT NULL,
    periodic_load TEXT,
    description TEXT,
    state TEXT NOT NULL CHECK (state IN ('draft', 'approved', 'online', 'retired')),
    golive TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT systems_unit_name_key UNIQUE (unit_id, name)
);
CREATE INDEX systems_unit ON systems (unit_id, id);

CREATE TABLE platforms (
    id {{ID}},
    name TEXT NOT NULL,
    arch TEXT NOT NULL CHECK (arch IN ('x86_64', 'aarch64')),
    driver TEXT NOT NULL,
    endpoint TEXT,
    capacity_vcpu BIGINT NOT NULL,
    capacity_memory_gib BIGINT NOT NULL,
    capacity_storage_gib BIGINT NOT NULL,
    overcommit_cpu {{REAL}} NOT NULL,
    overcommit_memory {{REAL}} NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('enabled', 'draining', 'disabled')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT platforms_name_key UNIQUE (name)
);

CREATE TABLE catalog_items (
    id {{ID}},
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    arch TEXT,
    spec TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT catalog_items_code_key UNIQUE (code)
);

-- Which platforms offer which catalog items (Art. 5).
CREATE TABLE catalog_offers (
    catalog_item_id BIGINT NOT NULL REFERENCES catalog_items (id),
    platform_id BIGINT NOT NULL REFERENCES platforms (id),
    PRIMARY KEY (catalog_item_id, platform_id)
);

CREATE TABLE users (
    id {{ID}},
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    unit_id BIGINT REFERENCES units (id),
    totp_secret TEXT,
    failed_logins BIGINT NOT NULL,
    locked_until BIGINT,
    demo BIGINT NOT NULL,
    disabled BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

-- Sessions are found by the SM3 digest of their bearer token, so a copy of
-- the database does not hand out live tokens.
CREATE TABLE sessions (
    id {{ID}},
    token_hash TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    source TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);

-- A replayable answer for each (user, Idempotency-Key).
CREATE TABLE idempotency (
    user_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- The audit log: an SM3 hash chain. `id` is assigned from audit_head in the
-- same transaction as the change it records, so ids have no gaps.
CREATE TABLE audit (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    actor TEXT NOT NULL,
    roles TEXT NOT NULL,
    source TEXT,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT,
    unit_id BIGINT,
    before TEXT,
    after TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_object ON audit (object_type, object_id, id);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Background work (provisioning, expiry, sync...): claimed by one worker at a
-- time, retried with backoff, deduplicated by `dedup_key`.
CREATE TABLE jobs (
    id {{ID}},
    kind TEXT NOT NULL,
    dedup_key TEXT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    locked_by TEXT,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT jobs_dedup_key_key UNIQUE (dedup_key)
);
CREATE INDEX jobs_due ON jobs (state, run_at);
