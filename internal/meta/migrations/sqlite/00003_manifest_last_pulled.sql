-- +goose Up
-- When a manifest was last pulled, so a size-limited mirror cache evicts the least
-- recently pulled content first and never what was pulled recently.
ALTER TABLE manifests ADD COLUMN last_pulled_at BIGINT NOT NULL DEFAULT 0;
UPDATE manifests SET last_pulled_at = created_at;
CREATE INDEX manifests_last_pulled ON manifests(last_pulled_at);

-- +goose Down
DROP INDEX manifests_last_pulled;
ALTER TABLE manifests DROP COLUMN last_pulled_at;
