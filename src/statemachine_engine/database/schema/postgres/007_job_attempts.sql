-- Job history (issue 16 item 1): one row per attempt of a job, written in the transactions
-- of the claim and of the acknowledgement; `attempt` is the job's `attempts` after the claim
-- (a release gives the number back, so a number can repeat: rows are told apart by `id`).
-- `outcome` is running, completed, failed, lease_lost or cancelled (given back at a stop).
CREATE TABLE IF NOT EXISTS job_attempts (
    id         BIGSERIAL PRIMARY KEY,
    job_id     TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    worker     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    ended_at   DOUBLE PRECISION,
    outcome    TEXT NOT NULL DEFAULT 'running',
    error      TEXT
);
CREATE INDEX IF NOT EXISTS job_attempts_job ON job_attempts (job_id, attempt);

-- Per attempt, each action that ran while the job was held: for `bash` the command as run,
-- its exit code and the last 8 KiB of stdout and of stderr. Written with the step.
CREATE TABLE IF NOT EXISTS job_actions (
    id           BIGSERIAL PRIMARY KEY,
    attempt_id   BIGINT,
    machine_name TEXT NOT NULL,
    state        TEXT NOT NULL,
    action       TEXT NOT NULL,
    command      TEXT,
    exit_code    INTEGER,
    stdout_tail  TEXT NOT NULL DEFAULT '',
    stderr_tail  TEXT NOT NULL DEFAULT '',
    started_at   DOUBLE PRECISION NOT NULL,
    ended_at     DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS job_actions_attempt ON job_actions (attempt_id, id);

-- The attempt a step's transition and the events it sent belong to.
ALTER TABLE transitions ADD COLUMN IF NOT EXISTS attempt_id BIGINT;
ALTER TABLE machine_events ADD COLUMN IF NOT EXISTS attempt_id BIGINT;
CREATE INDEX IF NOT EXISTS transitions_attempt ON transitions (attempt_id)
    WHERE attempt_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS machine_events_attempt ON machine_events (attempt_id)
    WHERE attempt_id IS NOT NULL;
