-- Core tables of statemachine-engine (SQLite). Times are epoch seconds (REAL).
CREATE TABLE IF NOT EXISTS jobs (
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
    lease_expires_at REAL,
    run_after        REAL NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    started_at       REAL,
    completed_at     REAL,
    result           TEXT,
    error_message    TEXT,
    errors           TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (job_type, status, priority, run_after, created_at);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_expires_at);

CREATE TABLE IF NOT EXISTS machine_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    target_machine TEXT NOT NULL,
    source_machine TEXT,
    event_type     TEXT NOT NULL,
    job_id         TEXT,
    payload        TEXT,
    status         TEXT NOT NULL DEFAULT 'pending',
    created_at     REAL NOT NULL,
    processed_at   REAL
);
CREATE INDEX IF NOT EXISTS machine_events_pending ON machine_events (target_machine, status, id);

CREATE TABLE IF NOT EXISTS machine_definitions (
    digest     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    source     TEXT,
    text       TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS machine_state (
    machine_name     TEXT PRIMARY KEY,
    current_state    TEXT NOT NULL,
    previous_state   TEXT,
    last_event       TEXT,
    state_entered_at REAL,
    status           TEXT NOT NULL DEFAULT 'running',
    step             INTEGER NOT NULL DEFAULT 0,
    pid              INTEGER,
    hostname         TEXT,
    config_path      TEXT,
    definition_name  TEXT,
    definition_hash  TEXT,
    current_job_id   TEXT,
    started_at       REAL,
    updated_at       REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS transitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_name TEXT NOT NULL,
    step         INTEGER NOT NULL,
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    event        TEXT,
    job_id       TEXT,
    event_id     INTEGER,
    created_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_machine ON transitions (machine_name, id);

CREATE TABLE IF NOT EXISTS realtime_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_name TEXT,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   REAL NOT NULL
);
