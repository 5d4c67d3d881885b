-- Schedules (DESIGN §13.6): each row enqueues one job per tick. `next_due` is the next tick
-- not yet enqueued (epoch seconds); firers advance it with a compare-and-set, and the tick's
-- job has a deterministic id, so a tick is enqueued once however many processes fire.
CREATE TABLE IF NOT EXISTS schedules (
    name          TEXT PRIMARY KEY,
    job_type      TEXT NOT NULL,
    payload       TEXT,
    machine_type  TEXT,
    every_seconds INTEGER,
    cron          TEXT,
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    catch_up      TEXT NOT NULL DEFAULT 'latest',
    paused        INTEGER NOT NULL DEFAULT 0,
    next_due      DOUBLE PRECISION NOT NULL,
    last_tick     DOUBLE PRECISION,
    created_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_due) WHERE paused = 0;
