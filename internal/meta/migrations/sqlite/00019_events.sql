-- +goose Up
-- Events and webhooks (package events). A change to a repository writes its event into
-- event_outbox in the change's own transaction (meta's change hook); a dispatcher job
-- fans each event out to the matching subscriptions as webhook_deliveries, and one job
-- per (subscription, repository) delivers them in order. event_lanes numbers each
-- repository's events: the row lock on it also serialises the event writers of one
-- repository, so their outbox ids follow their commit order.
CREATE TABLE event_lanes (
    repository TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL
);

CREATE TABLE event_outbox (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    project       TEXT NOT NULL,
    repository    TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    dispatched_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX event_outbox_pending ON event_outbox(id) WHERE dispatched_at = 0;
CREATE INDEX event_outbox_created ON event_outbox(created_at);

-- project '' is a system-wide subscription. secret is sealed with the events key
-- (never returned after creation). events and repositories are comma-separated filters
-- ('' matches all).
CREATE TABLE webhook_subscriptions (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    project      TEXT NOT NULL,
    url          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    format       TEXT NOT NULL,
    events       TEXT NOT NULL,
    repositories TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (project, name)
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    lane            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    replay_of       BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    done_at         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_lane ON webhook_deliveries(subscription_id, lane, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_sub ON webhook_deliveries(subscription_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
DROP TABLE event_outbox;
DROP TABLE event_lanes;
