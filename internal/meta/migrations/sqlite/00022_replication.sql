-- +goose Up
-- Replication rules (package replication): copy artifact graphs to (push) or from (pull)
-- another registry, by hand, on a schedule or on push events. spec is the rule as JSON
-- (replication.Rule) without its password, which is sealed in password (never returned).
CREATE TABLE replication_rules (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    spec       TEXT NOT NULL,
    password   TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One run of a rule; items are the artifacts it copied (or failed to).
CREATE TABLE replication_executions (
    id          INTEGER PRIMARY KEY,
    rule_id     BIGINT NOT NULL,
    cause       TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL DEFAULT 0,
    copied      INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    bytes       BIGINT NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX replication_executions_rule ON replication_executions(rule_id, id);

CREATE TABLE replication_items (
    id           INTEGER PRIMARY KEY,
    execution_id BIGINT NOT NULL,
    source       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    digest       TEXT NOT NULL,
    state        TEXT NOT NULL,
    referrers    INTEGER NOT NULL DEFAULT 0,
    bytes        BIGINT NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    at           BIGINT NOT NULL
);
CREATE INDEX replication_items_execution ON replication_items(execution_id, id);

-- +goose Down
DROP TABLE replication_items;
DROP TABLE replication_executions;
DROP TABLE replication_rules;
