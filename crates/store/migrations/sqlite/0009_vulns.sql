-- Dozor store, SQLite schema v9: vulnerability management (issue 15): `vuln_scan_result`
-- records (OpenVAS reports and agents' inventories matched against advisories), the scans
-- that brought them, agents' software inventories and gvmd scan jobs.
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE vuln_scans (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL CHECK (source IN ('openvas', 'inventory')),
    origin        TEXT    NOT NULL,
    report_id     TEXT,
    name          TEXT,
    started_at    INTEGER,
    finished_at   INTEGER,
    hosts         INTEGER NOT NULL,
    recorded_at   INTEGER NOT NULL,
    recorded_by   TEXT    NOT NULL,
    counts        TEXT    NOT NULL DEFAULT '{}'        -- JSON: VulnScanCounts
);
CREATE INDEX vuln_scans_recorded ON vuln_scans (recorded_at, id);

-- One row per (host, port, nvt_oid), unique by `vuln_key` (SHA-256 of the three).
CREATE TABLE vuln_results (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    vuln_key          BLOB    NOT NULL UNIQUE,
    source            TEXT    NOT NULL CHECK (source IN ('openvas', 'inventory')),
    host              TEXT    NOT NULL,
    hostname          TEXT,
    agent_id          TEXT,
    port              TEXT    NOT NULL,
    nvt_oid           TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    family            TEXT,
    cvss_base         REAL,
    cvss_vector_v2    TEXT,
    cvss_vector_v3    TEXT,
    severity          REAL    NOT NULL,
    original_severity REAL,
    level             TEXT    NOT NULL,
    qod               INTEGER,
    threat            TEXT,
    cves              TEXT    NOT NULL DEFAULT '[]',   -- JSON array
    epss_score        REAL,
    epss_percentile   REAL,
    solution_type     TEXT,
    solution          TEXT,
    details           TEXT    NOT NULL DEFAULT '{}',   -- JSON
    status            TEXT    NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'fixed', 'accepted', 'false_positive')),
    status_reason     TEXT,
    status_until      INTEGER,
    status_by         TEXT,
    status_at         INTEGER NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    fixed_at          INTEGER,
    last_scan_id      INTEGER NOT NULL,
    times_seen        INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX vuln_results_order ON vuln_results (severity DESC, id DESC);
CREATE INDEX vuln_results_host ON vuln_results (source, host, status);
CREATE INDEX vuln_results_agent ON vuln_results (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX vuln_results_oid ON vuln_results (nvt_oid);
CREATE INDEX vuln_results_accepted ON vuln_results (status_until) WHERE status = 'accepted';

-- The CVEs of each result, for filtering and counting by CVE.
CREATE TABLE vuln_cves (
    cve      TEXT    NOT NULL,
    vuln_id  INTEGER NOT NULL REFERENCES vuln_results (id) ON DELETE CASCADE,
    PRIMARY KEY (cve, vuln_id)
);
CREATE INDEX vuln_cves_vuln ON vuln_cves (vuln_id);

CREATE TABLE agent_inventories (
    agent_id      TEXT    PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    os            TEXT    NOT NULL DEFAULT '{}',       -- JSON
    packages      TEXT    NOT NULL DEFAULT '[]',       -- JSON array
    package_count INTEGER NOT NULL,
    reported_at   INTEGER NOT NULL
);

CREATE TABLE vuln_scan_jobs (
    name        TEXT    PRIMARY KEY,
    spec        TEXT    NOT NULL DEFAULT '{}',         -- JSON
    enabled     INTEGER NOT NULL DEFAULT 1,
    state       TEXT    NOT NULL DEFAULT '{}',         -- JSON
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL
);
