-- +goose Up
-- The key Berth signs its SBOM referrers with (cosign's simple signing, ECDSA P-256),
-- made by the first replica that needs it and shared by all. Separate from the token
-- signing key: a key signs one kind of thing.
CREATE TABLE scan_keys (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_pem TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE scan_keys;
