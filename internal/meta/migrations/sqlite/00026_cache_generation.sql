-- +goose Up
-- The in-process read cache (package metacache, used by meta's GetManifest and
-- RepositoryBlob) must drop what a write made stale, whichever package wrote it (gc,
-- tagrules, retention, inventory write their own statements) and whether or not a
-- cascade did it. These triggers count every change to what the cache holds; the store
-- reads the count after a write and flushes when it moved. Only changes that can make
-- a cached answer wrong count: new rows do not (nothing absent is cached), and columns
-- no cached read returns (pull counts, repositories.updated_at) do not either, so a
-- busy push or pull load does not empty the cache. PostgreSQL has no such counter:
-- replicas share that database, and there the store reads it exactly (no cache).
CREATE TABLE cache_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO cache_generation (id, n) VALUES (1, 0);

-- +goose StatementBegin
CREATE TRIGGER cache_tags_delete AFTER DELETE ON tags
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_tags_update AFTER UPDATE OF manifest_digest, updated_at ON tags
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_manifests_delete AFTER DELETE ON manifests
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_manifests_update AFTER UPDATE OF digest, media_type, size, payload, last_pulled_at ON manifests
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_repository_blobs_delete AFTER DELETE ON repository_blobs
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_repository_blobs_update AFTER UPDATE ON repository_blobs
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_blobs_delete AFTER DELETE ON blobs
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_blobs_update AFTER UPDATE OF size, location ON blobs
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_repositories_delete AFTER DELETE ON repositories
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER cache_repositories_update AFTER UPDATE OF id, name ON repositories
BEGIN
    UPDATE cache_generation SET n = n + 1 WHERE id = 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER cache_tags_delete;
DROP TRIGGER cache_tags_update;
DROP TRIGGER cache_manifests_delete;
DROP TRIGGER cache_manifests_update;
DROP TRIGGER cache_repository_blobs_delete;
DROP TRIGGER cache_repository_blobs_update;
DROP TRIGGER cache_blobs_delete;
DROP TRIGGER cache_blobs_update;
DROP TRIGGER cache_repositories_delete;
DROP TRIGGER cache_repositories_update;
DROP TABLE cache_generation;
