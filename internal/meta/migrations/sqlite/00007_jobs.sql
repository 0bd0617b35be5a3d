-- +goose Up
-- Durable background work (package jobs): one row per task. dedupe_key makes enqueueing
-- idempotent: the same (kind, dedupe_key) is one task, re-queued rather than duplicated.
-- A running task holds a lease; a worker that dies leaves it to expire, and any replica
-- takes the task again after lease_until.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    payload      BLOB,
    state        TEXT NOT NULL,            -- queued | running | failed | done
    due_at       BIGINT NOT NULL,          -- unix ms; a queued task runs from then on
    rerun_at     BIGINT,                   -- enqueued again while running: queued again for then
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    worker       TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (kind, dedupe_key)
);
CREATE INDEX jobs_queued ON jobs(due_at) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs(lease_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs(updated_at) WHERE state IN ('done', 'failed');

-- +goose Down
DROP TABLE jobs;
