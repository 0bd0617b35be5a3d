-- +goose Up
-- Pull counts for the admin API's repository and artifact listings (package inventory).
-- They are added up in memory and flushed in batches, never written per request.
-- Repositories keep their own count and time so deleting a manifest does not rewind them.
-- manifests.last_pulled_at (00003) is the manifest's last pull.
ALTER TABLE manifests ADD COLUMN pull_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN pull_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN last_pulled_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE repositories DROP COLUMN last_pulled_at;
ALTER TABLE repositories DROP COLUMN pull_count;
ALTER TABLE manifests DROP COLUMN pull_count;
