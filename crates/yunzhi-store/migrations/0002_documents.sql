-- Evidence files of information systems (Art. 8, 9, 22). Kept in the
-- database, not beside it, so that a backup, a replica or a second server
-- on the same PostgreSQL has them too, and an upload commits atomically
-- with its audit record.

CREATE TABLE documents (
    id {{ID}},
    unit_id BIGINT NOT NULL REFERENCES units (id),
    system_id BIGINT NOT NULL REFERENCES systems (id),
    kind TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    content {{BLOB}} NOT NULL,
    uploaded_by BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX documents_system ON documents (system_id, id);
