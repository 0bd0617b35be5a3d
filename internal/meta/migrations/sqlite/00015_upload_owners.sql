-- +goose Up
-- Upload sessions name who opened them (package limits: "p:kind:name" for a principal,
-- "a:address" for an anonymous client) and their project, so the sessions and bytes a
-- client, repository or project holds are counted by one indexed query per upload start,
-- the same on every replica. Sessions from before this migration have no owner: they
-- count for their repository and project only.
ALTER TABLE uploads ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN project TEXT NOT NULL DEFAULT '';
UPDATE uploads SET project = (SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1) ELSE r.name END
    FROM repositories r WHERE r.id = uploads.repository_id);
CREATE INDEX uploads_owner ON uploads(owner);
CREATE INDEX uploads_project ON uploads(project);
CREATE INDEX uploads_repository ON uploads(repository_id);

-- +goose Down
DROP INDEX uploads_repository;
DROP INDEX uploads_project;
DROP INDEX uploads_owner;
ALTER TABLE uploads DROP COLUMN project;
ALTER TABLE uploads DROP COLUMN owner;
