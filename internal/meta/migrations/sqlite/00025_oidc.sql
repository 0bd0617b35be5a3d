-- +goose Up
-- OIDC logins (package oidc). An identity is the provider's (issuer, subject) pair,
-- linked to the Berth user made at its first login; groups are the ones the provider
-- asserted at the last login (JSON array), which authorize that user's later requests.
-- admin_by_group records that admin rights came from auth.oidc.adminGroups, so a later
-- login without such a group takes them away again (and only then).
CREATE TABLE oidc_identities (
    issuer         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    groups_json    TEXT NOT NULL DEFAULT '[]',
    admin_by_group SMALLINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    last_login     BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities(user_name);

-- Logins in flight: state_hash is SHA-256 of the state parameter (which the browser
-- also holds in a cookie); the row carries the PKCE verifier and the nonce to the
-- callback, on whichever replica it lands, and is deleted when used or expired.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    verifier   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    next_path  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expires ON oidc_logins(expires_at);

-- CLI secrets (package auth): the password of OIDC users for docker login, crane and
-- helm. Only a SHA-256 of the secret (32 random bytes) is stored.
CREATE TABLE cli_secrets (
    user_name   TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE cli_secrets;
DROP TABLE oidc_logins;
DROP TABLE oidc_identities;
