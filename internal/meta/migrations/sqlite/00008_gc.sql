-- +goose Up
-- Online garbage collection (package gc). Every change that may leave a manifest, a
-- repository's blob link or a blob unreferenced queues a review of it as a job, in the
-- same transaction as the change: these triggers cover every code path that writes the
-- tables, present and future. A review runs review_after later (gc_settings, written from
-- the configuration at start) and deletes what is still unreferenced then.
CREATE TABLE gc_settings (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    review_after_ms BIGINT NOT NULL
);
INSERT INTO gc_settings (id, review_after_ms) VALUES (1, 86400000);

-- Per-project policy for untagged manifests (absent: delete once review_after passed).
CREATE TABLE gc_policies (
    project           TEXT PRIMARY KEY,
    untagged_after_ms BIGINT NOT NULL DEFAULT 0, -- keep untagged manifests this long after their push
    keep_pulled_ms    BIGINT NOT NULL DEFAULT 0, -- keep untagged manifests pulled within this long
    updated_at        BIGINT NOT NULL
);

-- Running totals for `berth gc status` (the metrics are per process).
CREATE TABLE gc_totals (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    manifests_deleted BIGINT NOT NULL DEFAULT 0,
    links_deleted     BIGINT NOT NULL DEFAULT 0,
    blobs_deleted     BIGINT NOT NULL DEFAULT 0,
    bytes_deleted     BIGINT NOT NULL DEFAULT 0,
    last_delete_at    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO gc_totals (id) VALUES (1);

-- The orphan sweep asks whether stored bytes belong to a row.
CREATE INDEX blobs_location ON blobs(location);
CREATE INDEX uploads_handle ON uploads(handle);

-- Inserting (kind, dedupe_key) here queues a review review_after from now, or moves the
-- queued one (see package jobs for the dedupe rules).
CREATE VIEW gc_review_queue (kind, dedupe_key) AS SELECT kind, dedupe_key FROM jobs WHERE 0;

-- +goose StatementBegin
CREATE TRIGGER gc_review_enqueue INSTEAD OF INSERT ON gc_review_queue BEGIN
    INSERT INTO jobs (kind, dedupe_key, state, due_at, max_attempts, created_at, updated_at)
    SELECT new.kind, new.dedupe_key, 'queued', t.n + s.review_after_ms, 10, t.n, t.n
    FROM gc_settings s, (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS n) t WHERE s.id = 1
    ON CONFLICT (kind, dedupe_key) DO UPDATE SET
        rerun_at = CASE WHEN jobs.state = 'running' THEN excluded.due_at ELSE NULL END,
        due_at = CASE WHEN jobs.state = 'running' THEN jobs.due_at ELSE excluded.due_at END,
        attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END,
        state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END,
        updated_at = excluded.updated_at;
END;
-- +goose StatementEnd

-- A tag deleted or moved: the manifest it named may now be untagged.
-- +goose StatementBegin
CREATE TRIGGER gc_tag_deleted AFTER DELETE ON tags BEGIN
    INSERT INTO gc_review_queue VALUES ('gc.manifest', old.repository_id || ' ' || old.manifest_digest);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER gc_tag_moved AFTER UPDATE OF manifest_digest ON tags WHEN old.manifest_digest <> new.manifest_digest BEGIN
    INSERT INTO gc_review_queue VALUES ('gc.manifest', old.repository_id || ' ' || old.manifest_digest);
END;
-- +goose StatementEnd

-- A manifest pushed (maybe by digest, never tagged).
-- +goose StatementBegin
CREATE TRIGGER gc_manifest_added AFTER INSERT ON manifests BEGIN
    INSERT INTO gc_review_queue VALUES ('gc.manifest', new.repository_id || ' ' || new.digest);
END;
-- +goose StatementEnd

-- A manifest deleted: its referrers lose their subject; its own subject may have been
-- kept only by it.
-- +goose StatementBegin
CREATE TRIGGER gc_manifest_deleted AFTER DELETE ON manifests BEGIN
    INSERT INTO gc_review_queue SELECT 'gc.manifest', old.repository_id || ' ' || digest FROM manifests
        WHERE repository_id = old.repository_id AND subject_digest = old.digest;
    INSERT INTO gc_review_queue SELECT 'gc.manifest', old.repository_id || ' ' || old.subject_digest
        WHERE old.subject_digest IS NOT NULL;
END;
-- +goose StatementEnd

-- A manifest's references dropped (before the manifest row itself): its blobs' links and
-- its index children may be unreferenced now.
-- +goose StatementBegin
CREATE TRIGGER gc_reference_deleted AFTER DELETE ON manifest_references BEGIN
    INSERT INTO gc_review_queue SELECT CASE old.kind WHEN 1 THEN 'gc.link' ELSE 'gc.manifest' END,
        m.repository_id || ' ' || old.digest FROM manifests m WHERE m.id = old.manifest_id;
END;
-- +goose StatementEnd

-- A blob linked into a repository (upload completed, mount): reviewed in case no manifest
-- ever references it; a link removed: the blob may be used nowhere now.
-- +goose StatementBegin
CREATE TRIGGER gc_link_added AFTER INSERT ON repository_blobs BEGIN
    INSERT INTO gc_review_queue VALUES ('gc.link', new.repository_id || ' ' || new.digest);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER gc_link_deleted AFTER DELETE ON repository_blobs BEGIN
    INSERT INTO gc_review_queue VALUES ('gc.blob', old.digest);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER gc_link_deleted;
DROP TRIGGER gc_link_added;
DROP TRIGGER gc_reference_deleted;
DROP TRIGGER gc_manifest_deleted;
DROP TRIGGER gc_manifest_added;
DROP TRIGGER gc_tag_moved;
DROP TRIGGER gc_tag_deleted;
DROP TRIGGER gc_review_enqueue;
DROP VIEW gc_review_queue;
DROP INDEX uploads_handle;
DROP INDEX blobs_location;
DROP TABLE gc_totals;
DROP TABLE gc_policies;
DROP TABLE gc_settings;
