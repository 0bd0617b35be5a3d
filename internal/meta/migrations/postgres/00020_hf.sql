-- +goose Up
-- The Hugging Face mirror (package hf). repo_type is model or dataset, repo the Hub's
-- repository id (org/name) as the client spelled it.
--
-- A revision (branch, tag or commit) asked for, and the commit it resolved to when
-- fetched_at; info is the Hub's /api/{type}s/{repo}/revision/{rev} answer, served
-- while fresh and, when the Hub is down or rate-limits, stale.
CREATE TABLE hf_revisions (
    repo_type  TEXT COLLATE "C" NOT NULL,
    repo       TEXT COLLATE "C" NOT NULL,
    revision   TEXT NOT NULL,
    query      TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    info       TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    PRIMARY KEY (repo_type, repo, revision, query)
);

-- A tree listing at a commit (immutable): the Hub's /api/{type}s/{repo}/tree/{commit}
-- pages joined into one JSON array.
CREATE TABLE hf_trees (
    repo_type  TEXT COLLATE "C" NOT NULL,
    repo       TEXT COLLATE "C" NOT NULL,
    commit_sha TEXT NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    query      TEXT NOT NULL,
    listing    TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    PRIMARY KEY (repo_type, repo, commit_sha, path, query)
);

-- A file at a commit: its bytes are the blob digest (sha256) linked into the
-- repository local_repo of the blob store; etag and linked are what the Hub answered
-- (X-Linked-Etag for LFS files, the git blob id otherwise). last_pulled_at orders
-- eviction.
CREATE TABLE hf_files (
    repo_type      TEXT COLLATE "C" NOT NULL,
    repo           TEXT COLLATE "C" NOT NULL,
    commit_sha     TEXT NOT NULL,
    path           TEXT COLLATE "C" NOT NULL,
    local_repo     TEXT NOT NULL,
    digest         TEXT NOT NULL,
    size           BIGINT NOT NULL,
    etag           TEXT NOT NULL,
    linked         BOOLEAN NOT NULL,
    fetched_at     BIGINT NOT NULL,
    last_pulled_at BIGINT NOT NULL,
    PRIMARY KEY (repo_type, repo, commit_sha, path)
);
CREATE INDEX hf_files_digest ON hf_files (local_repo, digest);
CREATE INDEX hf_files_pulled ON hf_files (last_pulled_at);

-- +goose Down
DROP TABLE hf_files;
DROP TABLE hf_trees;
DROP TABLE hf_revisions;
