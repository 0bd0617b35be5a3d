-- +goose Up
-- Background jobs (upload purging, cache eviction, later GC) run on one replica at a
-- time: the replica holding a job's unexpired lease runs it.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE leases;
