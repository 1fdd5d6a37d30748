-- Evidence attached to a request (Art. 9: the project approval's supporting
-- material), beside the system's own documents.
ALTER TABLE documents ADD COLUMN request_id BIGINT REFERENCES requests (id);
CREATE INDEX documents_request ON documents (request_id, id);
