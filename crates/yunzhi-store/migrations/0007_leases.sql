-- Leadership for work that one server of several should do at a time (the
-- scheduler's tick): a named lease, held until it runs out or is renewed.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until BIGINT NOT NULL
);
