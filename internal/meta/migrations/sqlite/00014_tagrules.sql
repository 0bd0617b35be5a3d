-- +goose Up
-- Tag rules (package tagrules): retention policies and immutable-tag rules per project.
-- spec is the retention policy document as JSON (tagrules.Policy); last_result the
-- summary of its last run, for `berth admin retention list`.
CREATE TABLE retention_policies (
    project     TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    last_run_at BIGINT NOT NULL DEFAULT 0,
    last_result TEXT NOT NULL DEFAULT ''
);

-- A tag in project whose name matches tags and whose repository path (after the
-- project) matches repositories may not be moved to another manifest or deleted.
CREATE TABLE immutable_rules (
    id           INTEGER PRIMARY KEY,
    project      TEXT NOT NULL,
    tags         TEXT NOT NULL,
    repositories TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (project, tags, repositories)
);

-- +goose Down
DROP TABLE immutable_rules;
DROP TABLE retention_policies;
