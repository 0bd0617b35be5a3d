-- +goose Up
-- Vulnerability scanning (package scan). Everything is keyed by manifest digest: an
-- image held by many repositories is scanned once. An SBOM is the engine's inventory
-- of an image (CycloneDX JSON); findings come from matching it against the
-- vulnerability database, again whenever the database changes, without reading layers.
CREATE TABLE scan_sboms (
    digest     TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT NOT NULL,
    sbom       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE scan_reports (
    digest        TEXT COLLATE "C" PRIMARY KEY,
    repository    TEXT NOT NULL,
    engine        TEXT NOT NULL,
    status        TEXT NOT NULL,
    error         TEXT NOT NULL DEFAULT '',
    scanned_at    BIGINT NOT NULL,
    db_updated_at BIGINT NOT NULL DEFAULT 0,
    critical      INTEGER NOT NULL DEFAULT 0,
    high          INTEGER NOT NULL DEFAULT 0,
    medium        INTEGER NOT NULL DEFAULT 0,
    low           INTEGER NOT NULL DEFAULT 0,
    unknown       INTEGER NOT NULL DEFAULT 0,
    fixable       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scan_reports_db ON scan_reports(db_updated_at);

CREATE TABLE scan_findings (
    digest    TEXT NOT NULL,
    vuln_id   TEXT NOT NULL,
    package   TEXT NOT NULL,
    installed TEXT NOT NULL,
    fixed     TEXT NOT NULL,
    severity  SMALLINT NOT NULL,
    cvss      DOUBLE PRECISION NOT NULL DEFAULT 0,
    title     TEXT NOT NULL DEFAULT '',
    target    TEXT NOT NULL,
    layer     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (digest, vuln_id, package, installed, target)
);
-- "Which images have CVE-X" across the registry.
CREATE INDEX scan_findings_vuln ON scan_findings(vuln_id);

-- A project's scan policy (scan.Policy as JSON); no row: no scanning, nothing blocked.
CREATE TABLE scan_policies (
    project    TEXT COLLATE "C" PRIMARY KEY,
    spec       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The newest vulnerability database any replica has loaded: a newer one re-evaluates
-- every report made with an older one.
CREATE TABLE scan_db (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    updated_at BIGINT NOT NULL,
    loaded_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE scan_db;
DROP TABLE scan_policies;
DROP TABLE scan_findings;
DROP TABLE scan_reports;
DROP TABLE scan_sboms;
