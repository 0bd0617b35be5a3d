-- +goose Up
-- TLS material shared by every replica (package certs): the self-signed CA and server
-- certificate, and the ACME account and certificates (autocert's cache). Keys are
-- private; the database file is 0600 on SQLite.
CREATE TABLE tls_material (
    name       TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE tls_material;
