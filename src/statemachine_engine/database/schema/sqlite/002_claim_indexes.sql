-- Claims read only runnable jobs: partial indexes over pending jobs in claim order (with and
-- without a job type), and over held leases by expiry, stay as small as the live queue
-- however much history the jobs table keeps.
DROP INDEX IF EXISTS jobs_pending;
DROP INDEX IF EXISTS jobs_lease;
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (priority, run_after, created_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS jobs_claim_type ON jobs (job_type, priority, run_after, created_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_expires_at) WHERE status = 'processing';
