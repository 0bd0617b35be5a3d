-- +goose Up
-- Byte quotas per project (package quota). A project's usage is the sum of the sizes of
-- the distinct blobs its repositories hold: linked (pushed, mounted) or referenced by a
-- manifest there, each counted once however many repositories and manifests share it.
-- Triggers keep it in the same transaction as every change of those rows, so it is exact
-- under any concurrency and on every code path (pushes, deletes, GC, mirror eviction),
-- and the trigger that counts a new blob refuses the change when it takes the project
-- past its quota: committed usage never exceeds a quota.
--
-- The project of a repository is its name's first path component.

-- A project's quota; no row: unlimited.
CREATE TABLE quota_limits (
    project     TEXT PRIMARY KEY,
    limit_bytes BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The distinct blobs each project holds: refs counts the links and manifest references
-- keeping it there; size is the blob's (0 while a sparse manifest references a blob not
-- stored).
CREATE TABLE quota_blobs (
    project TEXT NOT NULL,
    digest  TEXT NOT NULL,
    refs    BIGINT NOT NULL,
    size    BIGINT NOT NULL,
    PRIMARY KEY (project, digest)
);
CREATE INDEX quota_blobs_digest ON quota_blobs(digest);

-- Per project: the sum of quota_blobs.size and their count.
CREATE TABLE quota_usage (
    project TEXT PRIMARY KEY,
    bytes   BIGINT NOT NULL,
    blobs   BIGINT NOT NULL
);

-- What is stored before this migration.
INSERT INTO quota_blobs (project, digest, refs, size)
SELECT x.project, x.digest, COUNT(*), COALESCE((SELECT b.size FROM blobs b WHERE b.digest = x.digest), 0) FROM (
    SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END AS project, rb.digest
        FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
    UNION ALL
    SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END, mr.digest
        FROM manifest_references mr JOIN manifests m ON m.id = mr.manifest_id JOIN repositories r ON r.id = m.repository_id
        WHERE mr.kind = 1
) x GROUP BY x.project, x.digest;
INSERT INTO quota_usage (project, bytes, blobs) SELECT project, SUM(size), COUNT(*) FROM quota_blobs GROUP BY project;

-- Inserting (project, digest, delta) here adds (+1) or removes (-1) one reference of the
-- project to the blob.
CREATE VIEW quota_changes (project, digest, delta) AS SELECT project, digest, refs FROM quota_blobs WHERE 0;

-- +goose StatementBegin
CREATE TRIGGER quota_change INSTEAD OF INSERT ON quota_changes BEGIN
    INSERT INTO quota_blobs (project, digest, refs, size)
        SELECT new.project, new.digest, 1, COALESCE((SELECT size FROM blobs WHERE digest = new.digest), 0) WHERE new.delta > 0
        ON CONFLICT (project, digest) DO UPDATE SET refs = quota_blobs.refs + 1;
    UPDATE quota_blobs SET refs = refs - 1 WHERE new.delta < 0 AND project = new.project AND digest = new.digest;
    DELETE FROM quota_blobs WHERE new.delta < 0 AND project = new.project AND digest = new.digest AND refs <= 0;
END;
-- +goose StatementEnd

-- A blob new to the project: counted, and refused past the quota. The message carries
-- the numbers package quota turns into the client's DENIED message (usage before this blob).
-- +goose StatementBegin
CREATE TRIGGER quota_blob_added AFTER INSERT ON quota_blobs BEGIN
    INSERT INTO quota_usage (project, bytes, blobs) VALUES (new.project, new.size, 1)
        ON CONFLICT (project) DO UPDATE SET bytes = quota_usage.bytes + excluded.bytes, blobs = quota_usage.blobs + 1;
    SELECT RAISE(ABORT, 'berth: project quota exceeded: project=' || new.project || ' quota=' || l.limit_bytes
            || ' usage=' || (u.bytes - new.size) || ' size=' || new.size)
        FROM quota_usage u JOIN quota_limits l ON l.project = u.project
        WHERE u.project = new.project AND new.size > 0 AND u.bytes > l.limit_bytes;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER quota_blob_removed AFTER DELETE ON quota_blobs BEGIN
    UPDATE quota_usage SET bytes = bytes - old.size, blobs = blobs - 1 WHERE project = old.project;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER quota_blob_resized AFTER UPDATE OF size ON quota_blobs WHEN old.size <> new.size BEGIN
    UPDATE quota_usage SET bytes = bytes - old.size + new.size WHERE project = new.project;
END;
-- +goose StatementEnd

-- A blob row stored or deleted: projects whose manifests reference it without a row
-- (sparse manifests) count its size from now on, or no longer.
-- +goose StatementBegin
CREATE TRIGGER quota_blob_stored AFTER INSERT ON blobs BEGIN
    UPDATE quota_blobs SET size = new.size WHERE digest = new.digest;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER quota_blob_unstored AFTER DELETE ON blobs BEGIN
    UPDATE quota_blobs SET size = 0 WHERE digest = old.digest;
END;
-- +goose StatementEnd

-- Links (upload completed, mount; blob delete, GC, repository delete).
-- +goose StatementBegin
CREATE TRIGGER quota_link_added AFTER INSERT ON repository_blobs BEGIN
    INSERT INTO quota_changes SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END,
        new.digest, 1 FROM repositories r WHERE r.id = new.repository_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER quota_link_deleted AFTER DELETE ON repository_blobs BEGIN
    INSERT INTO quota_changes SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END,
        old.digest, -1 FROM repositories r WHERE r.id = old.repository_id;
END;
-- +goose StatementEnd

-- Manifest references to blobs (config, layers): a blob a manifest references counts
-- even after its link was deleted, since GC keeps its bytes for the manifest.
-- +goose StatementBegin
CREATE TRIGGER quota_reference_added AFTER INSERT ON manifest_references WHEN new.kind = 1 BEGIN
    INSERT INTO quota_changes SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END,
        new.digest, 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE m.id = new.manifest_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER quota_reference_deleted AFTER DELETE ON manifest_references WHEN old.kind = 1 BEGIN
    INSERT INTO quota_changes SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END,
        old.digest, -1 FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE m.id = old.manifest_id;
END;
-- +goose StatementEnd

-- The triggers above find a row's project through its repository (and manifest), so
-- dependants are deleted while those still exist: a delete that leaves them to a foreign
-- key cascade would otherwise uncount nothing.
-- +goose StatementBegin
CREATE TRIGGER quota_manifest_deleting BEFORE DELETE ON manifests BEGIN
    DELETE FROM manifest_references WHERE manifest_id = old.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER quota_repository_deleting BEFORE DELETE ON repositories BEGIN
    DELETE FROM manifest_references WHERE manifest_id IN (SELECT id FROM manifests WHERE repository_id = old.id);
    DELETE FROM repository_blobs WHERE repository_id = old.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER quota_repository_deleting;
DROP TRIGGER quota_manifest_deleting;
DROP TRIGGER quota_reference_deleted;
DROP TRIGGER quota_reference_added;
DROP TRIGGER quota_link_deleted;
DROP TRIGGER quota_link_added;
DROP TRIGGER quota_blob_unstored;
DROP TRIGGER quota_blob_stored;
DROP TRIGGER quota_blob_resized;
DROP TRIGGER quota_blob_removed;
DROP TRIGGER quota_blob_added;
DROP TRIGGER quota_change;
DROP VIEW quota_changes;
DROP TABLE quota_usage;
DROP TABLE quota_blobs;
DROP TABLE quota_limits;
