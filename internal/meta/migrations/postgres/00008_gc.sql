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
    project           TEXT COLLATE "C" PRIMARY KEY,
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

-- gc_enqueue queues a review review_after from now, or moves the queued one (see
-- package jobs for the dedupe rules).
-- +goose StatementBegin
CREATE FUNCTION gc_enqueue(k TEXT, key TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
    INSERT INTO jobs (kind, dedupe_key, state, due_at, max_attempts, created_at, updated_at)
    SELECT k, key, 'queued', n + s.review_after_ms, 10, n, n FROM gc_settings s WHERE s.id = 1
    ON CONFLICT (kind, dedupe_key) DO UPDATE SET
        rerun_at = CASE WHEN jobs.state = 'running' THEN excluded.due_at ELSE NULL END,
        due_at = CASE WHEN jobs.state = 'running' THEN jobs.due_at ELSE excluded.due_at END,
        attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END,
        state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END,
        updated_at = excluded.updated_at;
END $$;
-- +goose StatementEnd

-- A tag deleted or moved: the manifest it named may now be untagged.
-- +goose StatementBegin
CREATE FUNCTION gc_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM gc_enqueue('gc.manifest', OLD.repository_id || ' ' || OLD.manifest_digest);
    ELSIF OLD.manifest_digest <> NEW.manifest_digest THEN
        PERFORM gc_enqueue('gc.manifest', OLD.repository_id || ' ' || OLD.manifest_digest);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER gc_tags AFTER DELETE OR UPDATE OF manifest_digest ON tags FOR EACH ROW EXECUTE FUNCTION gc_tags_changed();

-- A manifest pushed (maybe by digest, never tagged); a manifest deleted: its referrers
-- lose their subject, and its own subject may have been kept only by it.
-- +goose StatementBegin
CREATE FUNCTION gc_manifests_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM gc_enqueue('gc.manifest', NEW.repository_id || ' ' || NEW.digest);
        RETURN NULL;
    END IF;
    PERFORM gc_enqueue('gc.manifest', OLD.repository_id || ' ' || m.digest) FROM manifests m
        WHERE m.repository_id = OLD.repository_id AND m.subject_digest = OLD.digest;
    IF OLD.subject_digest IS NOT NULL THEN
        PERFORM gc_enqueue('gc.manifest', OLD.repository_id || ' ' || OLD.subject_digest);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER gc_manifests AFTER INSERT OR DELETE ON manifests FOR EACH ROW EXECUTE FUNCTION gc_manifests_changed();

-- A manifest's references dropped (before the manifest row itself): its blobs' links and
-- its index children may be unreferenced now.
-- +goose StatementBegin
CREATE FUNCTION gc_references_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gc_enqueue(CASE OLD.kind WHEN 1 THEN 'gc.link' ELSE 'gc.manifest' END, m.repository_id || ' ' || OLD.digest)
        FROM manifests m WHERE m.id = OLD.manifest_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER gc_references AFTER DELETE ON manifest_references FOR EACH ROW EXECUTE FUNCTION gc_references_deleted();

-- A blob linked into a repository (upload completed, mount): reviewed in case no manifest
-- ever references it; a link removed: the blob may be used nowhere now.
-- +goose StatementBegin
CREATE FUNCTION gc_links_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM gc_enqueue('gc.link', NEW.repository_id || ' ' || NEW.digest);
    ELSE
        PERFORM gc_enqueue('gc.blob', OLD.digest);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER gc_links AFTER INSERT OR DELETE ON repository_blobs FOR EACH ROW EXECUTE FUNCTION gc_links_changed();

-- +goose Down
DROP TRIGGER gc_links ON repository_blobs;
DROP TRIGGER gc_references ON manifest_references;
DROP TRIGGER gc_manifests ON manifests;
DROP TRIGGER gc_tags ON tags;
DROP FUNCTION gc_links_changed();
DROP FUNCTION gc_references_deleted();
DROP FUNCTION gc_manifests_changed();
DROP FUNCTION gc_tags_changed();
DROP FUNCTION gc_enqueue(TEXT, TEXT);
DROP INDEX uploads_handle;
DROP INDEX blobs_location;
DROP TABLE gc_totals;
DROP TABLE gc_policies;
DROP TABLE gc_settings;
