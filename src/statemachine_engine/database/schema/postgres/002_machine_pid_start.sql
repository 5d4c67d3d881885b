-- The start time of a machine's process (clock ticks since boot, /proc/<pid>/stat field 22):
-- with the pid it tells a live machine from a pid the kernel has reused.
ALTER TABLE machine_state ADD COLUMN IF NOT EXISTS pid_start BIGINT;
