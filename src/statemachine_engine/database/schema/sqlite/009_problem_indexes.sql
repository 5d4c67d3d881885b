-- The UI's Problems view lists failed jobs, most recently failed first (issue 16 item 2):
-- a partial index keeps that read off a scan of every job. Only failed jobs are in it, so
-- enqueue, claim and completion do not maintain it.
CREATE INDEX IF NOT EXISTS jobs_failed ON jobs (completed_at) WHERE status = 'failed';
