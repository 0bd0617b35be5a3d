-- +goose Up
-- Web UI sessions. The cookie carries a random token; only its SHA-256 is stored, so a
-- copy of the database opens no session. Any replica serves any page: the row is the
-- session. Groups are those of the login (directory and OpenID users), as a token's are.
CREATE TABLE ui_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    groups_json  TEXT NOT NULL DEFAULT '[]',
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    seen_at      BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    remote       TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ui_sessions_user ON ui_sessions (user_name);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);

-- +goose Down
DROP TABLE ui_sessions;
