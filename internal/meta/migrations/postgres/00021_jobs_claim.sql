-- +goose Up
-- The claim's index (package jobs, Store.Claim): for each kind, its queued tasks in due
-- order, so a claim reads only the due rows it takes, however many tasks wait for later
-- and however many done rows are kept. It replaces jobs_queued (due_at alone), which
-- the claim could not use with a kind filter and which nothing else needs.
CREATE INDEX jobs_claim ON jobs(kind, due_at, id) WHERE state = 'queued';
DROP INDEX jobs_queued;

-- +goose Down
CREATE INDEX jobs_queued ON jobs(due_at) WHERE state = 'queued';
DROP INDEX jobs_claim;
