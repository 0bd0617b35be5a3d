-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    admin         SMALLINT NOT NULL DEFAULT 0,
    source        TEXT NOT NULL DEFAULT 'local', -- local or ldap
    disabled      SMALLINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

-- A project is the first path component of its repositories.
CREATE TABLE projects (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    public     SMALLINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- principal is user:<name> or group:<ldap group>.
CREATE TABLE members (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    principal  TEXT NOT NULL,
    role       TEXT NOT NULL,
    PRIMARY KEY (project_id, principal)
);

CREATE TABLE robots (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,   -- robot$ci or robot$project+ci
    project_id  BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    permissions TEXT NOT NULL,          -- JSON [{"project": "...", "actions": ["pull"]}]
    expires_at  BIGINT NOT NULL DEFAULT 0,
    disabled    SMALLINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- Token signing keys, shared by every replica.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    private_pem TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    result     TEXT NOT NULL,
    remote     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE signing_keys;
DROP TABLE robots;
DROP TABLE members;
DROP TABLE projects;
DROP TABLE users;
