-- Dozor store, PostgreSQL schema v9: vulnerability management (issue 15): `vuln_scan_result`
-- records (OpenVAS reports and agents' inventories matched against advisories), the scans
-- that brought them, agents' software inventories and gvmd scan jobs.
-- Times are milliseconds since the Unix epoch (UTC) as BIGINT.

CREATE TABLE vuln_scans (
    id            BIGSERIAL PRIMARY KEY,
    source        TEXT    NOT NULL CHECK (source IN ('openvas', 'inventory')),
    origin        TEXT    NOT NULL,
    report_id     TEXT,
    name          TEXT,
    started_at    BIGINT,
    finished_at   BIGINT,
    hosts         BIGINT  NOT NULL,
    recorded_at   BIGINT  NOT NULL,
    recorded_by   TEXT    NOT NULL,
    counts        JSONB   NOT NULL DEFAULT '{}'        -- VulnScanCounts
);
CREATE INDEX vuln_scans_recorded ON vuln_scans (recorded_at, id);

-- One row per (host, port, nvt_oid), unique by `vuln_key` (SHA-256 of the three).
CREATE TABLE vuln_results (
    id                BIGSERIAL PRIMARY KEY,
    vuln_key          BYTEA   NOT NULL UNIQUE,
    source            TEXT    NOT NULL CHECK (source IN ('openvas', 'inventory')),
    host              TEXT    COLLATE "C" NOT NULL,
    hostname          TEXT,
    agent_id          TEXT    COLLATE "C",
    port              TEXT    COLLATE "C" NOT NULL,
    nvt_oid           TEXT    COLLATE "C" NOT NULL,
    name              TEXT    NOT NULL,
    family            TEXT,
    cvss_base         DOUBLE PRECISION,
    cvss_vector_v2    TEXT,
    cvss_vector_v3    TEXT,
    severity          DOUBLE PRECISION NOT NULL,
    original_severity DOUBLE PRECISION,
    level             TEXT    NOT NULL,
    qod               BIGINT,
    threat            TEXT,
    cves              JSONB   NOT NULL DEFAULT '[]',
    epss_score        DOUBLE PRECISION,
    epss_percentile   DOUBLE PRECISION,
    solution_type     TEXT,
    solution          TEXT,
    details           JSONB   NOT NULL DEFAULT '{}',
    status            TEXT    NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'fixed', 'accepted', 'false_positive')),
    status_reason     TEXT,
    status_until      BIGINT,
    status_by         TEXT,
    status_at         BIGINT  NOT NULL,
    first_seen        BIGINT  NOT NULL,
    last_seen         BIGINT  NOT NULL,
    fixed_at          BIGINT,
    last_scan_id      BIGINT  NOT NULL,
    times_seen        BIGINT  NOT NULL DEFAULT 1
);
CREATE INDEX vuln_results_order ON vuln_results (severity DESC, id DESC);
CREATE INDEX vuln_results_host ON vuln_results (source, host, status);
CREATE INDEX vuln_results_agent ON vuln_results (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX vuln_results_oid ON vuln_results (nvt_oid);
CREATE INDEX vuln_results_accepted ON vuln_results (status_until) WHERE status = 'accepted';

-- The CVEs of each result, for filtering and counting by CVE.
CREATE TABLE vuln_cves (
    cve      TEXT    COLLATE "C" NOT NULL,
    vuln_id  BIGINT  NOT NULL REFERENCES vuln_results (id) ON DELETE CASCADE,
    PRIMARY KEY (cve, vuln_id)
);
CREATE INDEX vuln_cves_vuln ON vuln_cves (vuln_id);

CREATE TABLE agent_inventories (
    agent_id      TEXT    COLLATE "C" PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    os            JSONB   NOT NULL DEFAULT '{}',
    packages      JSONB   NOT NULL DEFAULT '[]',
    package_count BIGINT  NOT NULL,
    reported_at   BIGINT  NOT NULL
);

CREATE TABLE vuln_scan_jobs (
    name        TEXT    COLLATE "C" PRIMARY KEY,
    spec        JSONB   NOT NULL DEFAULT '{}',
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    state       JSONB   NOT NULL DEFAULT '{}',
    updated_at  BIGINT  NOT NULL,
    updated_by  TEXT    NOT NULL
);
