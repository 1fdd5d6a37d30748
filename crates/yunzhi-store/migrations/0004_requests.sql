-- Requests and their approval (Art. 9-12), the cloud resources they
-- produce, and the in-app notification inbox.

CREATE TABLE requests (
    id {{ID}},
    unit_id BIGINT NOT NULL REFERENCES units (id),
    system_id BIGINT NOT NULL REFERENCES systems (id),
    kind TEXT NOT NULL CHECK (kind IN ('new', 'expansion', 'reclaim', 'temporary', 'extension')),
    state TEXT NOT NULL CHECK (state IN ('in_review', 'returned', 'approved', 'fulfilled', 'rejected', 'withdrawn')),
    -- 1 at submission, +1 at each resubmission after a return.
    round BIGINT NOT NULL,
    -- Index into `route` of the step whose turn it is.
    step BIGINT NOT NULL,
    -- The roles that decide, in order, comma-separated.
    route TEXT NOT NULL,
    -- The current content (items, justification, ...), as JSON.
    content TEXT NOT NULL,
    exception BIGINT NOT NULL,
    demand_vcpu BIGINT NOT NULL,
    demand_memory_gib BIGINT NOT NULL,
    demand_storage_gib BIGINT NOT NULL,
    submitted_at BIGINT NOT NULL,
    due_on TEXT NOT NULL,
    approved_at BIGINT,
    finished_at BIGINT,
    created_by BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX requests_unit ON requests (unit_id, id);
CREATE INDEX requests_system ON requests (system_id, state);
CREATE INDEX requests_state ON requests (state, due_on);

-- Each decision; one per step of a round, so two racing approvers cannot
-- both decide the same step.
CREATE TABLE request_steps (
    id {{ID}},
    request_id BIGINT NOT NULL REFERENCES requests (id),
    round BIGINT NOT NULL,
    step BIGINT NOT NULL,
    role TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    decided_by BIGINT NOT NULL,
    decided_by_name TEXT NOT NULL,
    decided_at BIGINT NOT NULL,
    CONSTRAINT request_steps_round_step_key UNIQUE (request_id, round, step)
);

-- The content of each submission, so the history keeps every version.
CREATE TABLE request_versions (
    request_id BIGINT NOT NULL REFERENCES requests (id),
    round BIGINT NOT NULL,
    content TEXT NOT NULL,
    submitted_by BIGINT NOT NULL,
    submitted_by_name TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, round)
);

CREATE TABLE resources (
    id {{ID}},
    unit_id BIGINT NOT NULL REFERENCES units (id),
    system_id BIGINT NOT NULL REFERENCES systems (id),
    request_id BIGINT NOT NULL REFERENCES requests (id),
    catalog_item_id BIGINT NOT NULL REFERENCES catalog_items (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    platform_id BIGINT REFERENCES platforms (id),
    state TEXT NOT NULL CHECK (state IN ('provisioning', 'active', 'suspended', 'reclaimed')),
    vcpu BIGINT NOT NULL,
    memory_gib BIGINT NOT NULL,
    storage_gib BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    temporary BIGINT NOT NULL,
    expires_on TEXT,
    handed_over_at BIGINT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX resources_system ON resources (system_id, state);
CREATE INDEX resources_unit ON resources (unit_id, id);
CREATE INDEX resources_platform ON resources (platform_id, state);

-- Which resources a reclaim or an extension names.
CREATE TABLE request_resources (
    request_id BIGINT NOT NULL REFERENCES requests (id),
    resource_id BIGINT NOT NULL REFERENCES resources (id),
    PRIMARY KEY (request_id, resource_id)
);

-- The in-app inbox: one row per recipient.
CREATE TABLE notifications (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    -- Deduplicates the scheduler's notices: one per (user, key).
    dedup_key TEXT,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    CONSTRAINT notifications_user_dedup_key UNIQUE (user_id, dedup_key)
);
CREATE INDEX notifications_user ON notifications (user_id, id);
