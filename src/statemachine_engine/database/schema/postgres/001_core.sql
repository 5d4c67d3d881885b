-- Core tables of statemachine-engine (PostgreSQL). Times are epoch seconds (double precision),
-- JSON values are stored as text exactly as the codec wrote them (as on SQLite).
CREATE TABLE IF NOT EXISTS jobs (
    seq              BIGSERIAL UNIQUE,
    job_id           TEXT PRIMARY KEY,
    job_type         TEXT NOT NULL,
    machine_type     TEXT,
    data             TEXT,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority         INTEGER NOT NULL DEFAULT 5,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3,
    lease_owner      TEXT,
    lease_expires_at DOUBLE PRECISION,
    run_after        DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at       DOUBLE PRECISION NOT NULL,
    started_at       DOUBLE PRECISION,
    completed_at     DOUBLE PRECISION,
    result           TEXT,
    error_message    TEXT,
    errors           TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (priority, run_after, created_at, seq)
    WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS jobs_claim_type ON jobs (job_type, priority, run_after, created_at, seq)
    WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (created_at DESC, seq DESC);

CREATE TABLE IF NOT EXISTS machine_events (
    id             BIGSERIAL PRIMARY KEY,
    target_machine TEXT NOT NULL,
    source_machine TEXT,
    event_type     TEXT NOT NULL,
    job_id         TEXT,
    payload        TEXT,
    status         TEXT NOT NULL DEFAULT 'pending',
    created_at     DOUBLE PRECISION NOT NULL,
    processed_at   DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS machine_events_pending ON machine_events (target_machine, id)
    WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS machine_definitions (
    digest     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    source     TEXT,
    text       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS machine_state (
    machine_name     TEXT PRIMARY KEY,
    current_state    TEXT NOT NULL,
    previous_state   TEXT,
    last_event       TEXT,
    state_entered_at DOUBLE PRECISION,
    status           TEXT NOT NULL DEFAULT 'running',
    step             INTEGER NOT NULL DEFAULT 0,
    pid              INTEGER,
    hostname         TEXT,
    config_path      TEXT,
    definition_name  TEXT,
    definition_hash  TEXT,
    current_job_id   TEXT,
    started_at       DOUBLE PRECISION,
    updated_at       DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS transitions (
    id           BIGSERIAL PRIMARY KEY,
    machine_name TEXT NOT NULL,
    step         INTEGER NOT NULL,
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    event        TEXT,
    job_id       TEXT,
    event_id     BIGINT,
    created_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_machine ON transitions (machine_name, id);

CREATE TABLE IF NOT EXISTS realtime_events (
    id           BIGSERIAL PRIMARY KEY,
    machine_name TEXT,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL
);
