-- +goose Up
CREATE TABLE repositories (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    location   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Which repository may serve which blob: a blob is stored once but visible only where it
-- was pushed or mounted.
CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT NOT NULL REFERENCES blobs(digest),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    id             INTEGER PRIMARY KEY,
    repository_id  BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT NOT NULL DEFAULT '',
    subject_digest TEXT,
    annotations    TEXT,
    size           BIGINT NOT NULL,
    payload        BLOB NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

-- Everything a manifest points at: blobs (config, layers) and child manifests (index).
CREATE TABLE manifest_references (
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    digest      TEXT NOT NULL,
    kind        SMALLINT NOT NULL, -- 1 blob, 2 manifest
    PRIMARY KEY (manifest_id, digest, kind)
);
CREATE INDEX manifest_references_digest ON manifest_references(digest);

CREATE TABLE tags (
    repository_id   BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_manifest ON tags(repository_id, manifest_digest);

CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    handle        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    hash_state    BLOB,
    started_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX uploads_updated ON uploads(updated_at);

-- +goose Down
DROP TABLE uploads;
DROP TABLE tags;
DROP TABLE manifest_references;
DROP TABLE manifests;
DROP TABLE repository_blobs;
DROP TABLE blobs;
DROP TABLE repositories;
