-- +goose Up
-- Signature policies (package trust). One policy per project or mirror upstream; spec
-- is the policy document as JSON (config.TrustPolicy).
CREATE TABLE trust_policies (
    name       TEXT PRIMARY KEY,
    scope_kind TEXT NOT NULL,   -- project or upstream
    scope      TEXT NOT NULL,
    spec       TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (scope_kind, scope)
);

-- One counter every replica polls: a policy change or a signature arriving bumps it,
-- which makes every cached verdict stale on every replica.
CREATE TABLE trust_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO trust_state (id, generation) VALUES (1, 1);

-- Verdicts shared between replicas: valid while generation is the current one.
CREATE TABLE trust_verdicts (
    repository  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    passed      INTEGER NOT NULL,
    detail      TEXT NOT NULL,
    verified_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

-- +goose Down
DROP TABLE trust_verdicts;
DROP TABLE trust_state;
DROP TABLE trust_policies;
