-- +goose Up
-- Blob drivers that write a session in pieces (S3 multipart) record which pieces hold
-- the acknowledged bytes, together with the size and hash state.
ALTER TABLE uploads ADD COLUMN driver_state BLOB;

-- +goose Down
ALTER TABLE uploads DROP COLUMN driver_state;
