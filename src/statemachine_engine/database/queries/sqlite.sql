-- Every statement the store runs on SQLite, by name (see database/queries.py).
-- Parameters are `:name`; each write runs inside one BEGIN IMMEDIATE transaction, whose
-- write lock makes a read-then-write sequence atomic.

-- ---------------------------------------------------------------------------- jobs

-- name: job_insert
-- run_after is when the job became runnable, so claim order is first-come by availability
-- and a delayed or retried job is not overtaken forever.
INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts, run_after,
                  created_at)
VALUES (:job_id, :job_type, :machine_type, :data, :priority, :max_attempts, :run_after,
        :created_at)
ON CONFLICT (job_id) DO NOTHING
RETURNING *

-- name: jobs_insert_many
-- :jobs is a JSON array of objects with the columns of job_insert; the ids inserted come
-- back (an id that exists already is left alone and missing from the result).
INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts, run_after,
                  created_at)
SELECT json_extract(value, '$.job_id'), json_extract(value, '$.job_type'),
       json_extract(value, '$.machine_type'), json_extract(value, '$.data'),
       json_extract(value, '$.priority'), json_extract(value, '$.max_attempts'),
       json_extract(value, '$.run_after'), json_extract(value, '$.created_at')
FROM json_each(:jobs) WHERE true
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id

-- name: job_get
SELECT * FROM jobs WHERE job_id = :job_id

-- name: job_expire_exhausted
-- A job whose last allowed attempt lost its lease fails for good; the lease is its error.
UPDATE jobs SET status = 'failed', completed_at = :now, lease_owner = NULL,
    lease_expires_at = NULL,
    error_message = 'lease of ' || lease_owner || ' expired on attempt ' || attempts,
    errors = json_insert(errors, '$[#]',
        'lease of ' || lease_owner || ' expired on attempt ' || attempts)
WHERE status = 'processing' AND lease_expires_at < :now AND attempts >= max_attempts
RETURNING job_id, job_type, error_message

-- name: claim
-- Pick the next runnable jobs through the partial indexes of migration 002 (pending, or
-- processing under an expired lease with attempts left) and take them. Taking over an
-- expired lease records it as that attempt's error. Rows come back in any order.
UPDATE jobs SET status = 'processing', lease_owner = :owner, lease_expires_at = :expires,
    attempts = attempts + 1, started_at = :now,
    error_message = CASE WHEN status = 'processing'
        THEN 'lease of ' || lease_owner || ' expired on attempt ' || attempts
        ELSE error_message END,
    errors = CASE WHEN status = 'processing'
        THEN json_insert(errors, '$[#]',
            'lease of ' || lease_owner || ' expired on attempt ' || attempts)
        ELSE errors END
WHERE rowid IN (
    SELECT id FROM (
        SELECT * FROM (SELECT rowid AS id, priority, run_after, created_at FROM jobs
            WHERE status = 'pending' AND run_after <= :now /*filters*/
            ORDER BY priority, run_after, created_at, rowid LIMIT :limit)
        UNION ALL
        SELECT * FROM (SELECT rowid AS id, priority, run_after, created_at FROM jobs
            WHERE status = 'processing' AND lease_expires_at < :now
              AND attempts < max_attempts /*filters*/
            ORDER BY priority, run_after, created_at, rowid LIMIT :limit))
    ORDER BY priority, run_after, created_at, id LIMIT :limit)
RETURNING rowid AS seq, *

-- name: claim_probe
-- Whether a claim could take anything (read only, no write lock): an idle worker's re-check
-- costs one read instead of a write transaction. A lapsed lease counts whatever its attempts
-- (a claim also fails exhausted ones for good).
SELECT 1 AS found FROM jobs
WHERE ((status = 'pending' AND run_after <= :now)
    OR (status = 'processing' AND lease_expires_at < :now)) /*filters*/
LIMIT 1

-- name: claim_probe.job_id
AND job_id = :job_id

-- name: claim_probe.job_type
AND job_type = :job_type

-- name: claim_probe.machine_type
AND (machine_type IS NULL OR machine_type = :machine_type)

-- name: claim.job_id
AND job_id = :job_id

-- name: claim.job_type
AND job_type = :job_type

-- name: claim.machine_type
AND (machine_type IS NULL OR machine_type = :machine_type)

-- name: job_heartbeat
UPDATE jobs SET lease_expires_at = :expires, lease_owner = :new_owner
WHERE job_id = :job_id AND lease_owner = :owner AND status = 'processing'

-- name: jobs_complete_rows
-- :rows is a JSON array of {job_id, owner, result, now}; the jobs still held are completed.
UPDATE jobs SET status = 'completed', completed_at = r.value ->> 'now',
    result = r.value ->> 'result', lease_owner = NULL, lease_expires_at = NULL
FROM json_each(:rows) AS r
WHERE jobs.job_id = r.value ->> 'job_id' AND jobs.lease_owner = r.value ->> 'owner'
    AND jobs.status = 'processing'
RETURNING jobs.job_id

-- name: job_attempt
SELECT job_type, attempts, max_attempts, errors FROM jobs
WHERE job_id = :job_id AND lease_owner = :owner AND status = 'processing'

-- name: job_end_attempt
UPDATE jobs SET status = :status, error_message = :error, errors = :errors,
    lease_owner = NULL, lease_expires_at = NULL, run_after = :run_after,
    completed_at = :completed_at
WHERE job_id = :job_id

-- name: job_release
UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
    attempts = MAX(attempts - 1, 0)
WHERE job_id = :job_id AND lease_owner = :owner AND status = 'processing'
RETURNING job_type

-- name: jobs_release_owned
UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
    attempts = MAX(attempts - 1, 0)
WHERE status = 'processing' AND substr(lease_owner, 1, length(:prefix)) = :prefix
RETURNING job_id, job_type

-- name: jobs_list
SELECT * FROM jobs WHERE (:status IS NULL OR status = :status)
    AND (:job_type IS NULL OR job_type = :job_type)
ORDER BY created_at DESC, rowid DESC LIMIT :limit OFFSET :offset

-- name: jobs_count
SELECT status, COUNT(*) AS n FROM jobs
WHERE (:job_type IS NULL OR job_type = :job_type) GROUP BY status

-- name: job_retry
UPDATE jobs SET status = 'pending', attempts = 0, run_after = :now,
    lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL
WHERE job_id = :job_id AND status IN ('failed', 'cancelled')
RETURNING *

-- name: job_cancel
UPDATE jobs SET status = 'cancelled', completed_at = :now
WHERE job_id = :job_id AND status = 'pending'
RETURNING *

-- name: job_retry_data
UPDATE jobs SET status = 'pending', attempts = 0, run_after = :now, data = :data,
    lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL
WHERE job_id = :job_id AND status IN ('failed', 'cancelled')
RETURNING *

-- name: jobs_failed
SELECT * FROM jobs WHERE status = 'failed' ORDER BY completed_at DESC LIMIT :limit

-- name: jobs_delayed
SELECT * FROM jobs WHERE status = 'pending' AND run_after > :now
ORDER BY run_after, created_at LIMIT :limit

-- name: jobs_overdue
SELECT job_id, lease_owner, lease_expires_at FROM jobs
WHERE status = 'processing' AND lease_expires_at < :now
ORDER BY lease_expires_at

-- ---------------------------------------------------------------------------- events

-- name: event_insert
-- attempt_id: the attempt of the job the sender held (:held_job_id, :attempt), if any.
INSERT INTO machine_events (target_machine, source_machine, event_type, job_id, payload,
                            created_at, attempt_id)
VALUES (:target, :source, :event_type, :job_id, :payload, :created_at,
        (SELECT MAX(id) FROM job_attempts WHERE job_id = :held_job_id AND attempt = :attempt))
RETURNING *

-- name: event_next
SELECT * FROM machine_events WHERE target_machine = :target AND status = 'pending'
ORDER BY id LIMIT 1

-- name: event_mark
UPDATE machine_events SET status = :status, processed_at = :now
WHERE id = :id AND status = 'pending'

-- name: events_handling
SELECT * FROM machine_events WHERE target_machine = :target AND status = 'handling'
ORDER BY id

-- name: event_interrupt
UPDATE machine_events SET status = :status, error_message = :error,
    processed_at = :processed_at
WHERE id = :id
RETURNING *

-- name: event_release
UPDATE machine_events SET status = 'pending', processed_at = NULL,
    deliveries = MAX(deliveries - 1, 0)
WHERE id = :id AND status = 'handling'

-- name: events_list
SELECT * FROM machine_events WHERE (:target IS NULL OR target_machine = :target)
    AND (:status IS NULL OR status = :status)
ORDER BY id DESC LIMIT :limit

-- name: events_clear
UPDATE machine_events SET status = 'processed', processed_at = :now
WHERE target_machine = :target AND status = 'pending'

-- name: event_finish
UPDATE machine_events SET status = 'processed', processed_at = :at
WHERE id = :id AND status = 'handling'

-- name: event_consume
UPDATE machine_events SET status = :status, processed_at = :at,
    deliveries = deliveries + (CASE WHEN :status = 'unhandled' THEN 0 ELSE 1 END)
WHERE id = :id

-- ---------------------------------------------------------------------------- machines

-- name: machine_lock
-- Nothing to do: BEGIN IMMEDIATE already serialises the starts of one name.

-- name: machine_get
SELECT * FROM machine_state WHERE machine_name = :name

-- name: machine_snapshot
SELECT snapshot FROM machine_state WHERE machine_name = :name

-- name: machines_list
SELECT * FROM machine_state ORDER BY machine_name

-- name: definition_insert
INSERT INTO machine_definitions (digest, name, source, text, created_at)
VALUES (:digest, :name, :source, :text, :created_at)
ON CONFLICT (digest) DO NOTHING

-- name: definition_get
SELECT * FROM machine_definitions WHERE digest = :digest

-- name: definitions_list
SELECT digest, name, created_at FROM machine_definitions ORDER BY created_at, digest

-- name: machine_register
INSERT INTO machine_state (machine_name, current_state, state_entered_at, status, pid,
    hostname, pid_start, config_path, definition_name, definition_hash, started_at,
    updated_at, previous_state, last_event, current_job_id, snapshot)
VALUES (:name, :state, COALESCE(:entered_at, :at), 'running', :pid, :hostname, :pid_start,
    :config_path, :definition_name, :definition_hash, :at, :at, NULL, NULL, NULL, :snapshot)
ON CONFLICT (machine_name) DO UPDATE SET current_state = excluded.current_state,
    state_entered_at = excluded.state_entered_at, status = 'running', pid = excluded.pid,
    hostname = excluded.hostname, pid_start = excluded.pid_start,
    config_path = excluded.config_path, definition_name = excluded.definition_name,
    definition_hash = excluded.definition_hash, started_at = excluded.started_at,
    updated_at = excluded.updated_at, previous_state = NULL, last_event = NULL,
    current_job_id = NULL, snapshot = excluded.snapshot
RETURNING *

-- name: machine_stop
UPDATE machine_state SET status = :status, updated_at = :at, current_job_id = NULL
WHERE machine_name = :name

-- name: machine_move
UPDATE machine_state SET current_state = :to_state, previous_state = :from_state,
    last_event = :event, step = :step, updated_at = :at, current_job_id = :job_id,
    state_entered_at = COALESCE(:entered_at, state_entered_at),
    snapshot = :snapshot
WHERE machine_name = :machine

-- name: transition_insert_rows
-- :rows is a JSON array of transitions, inserted in its order.
-- attempt_id: the latest attempt row of the step's job with the step's attempt number.
INSERT INTO transitions (machine_name, step, from_state, to_state, event, job_id, event_id,
                         event_delivery, created_at, attempt_id)
SELECT r.value ->> 'machine', r.value ->> 'step', r.value ->> 'from_state',
       r.value ->> 'to_state', r.value ->> 'event', r.value ->> 'job_id',
       r.value ->> 'event_id',
       (SELECT deliveries FROM machine_events WHERE id = r.value ->> 'event_id'),
       r.value ->> 'at',
       (SELECT MAX(id) FROM job_attempts
        WHERE job_id = r.value ->> 'job_id' AND attempt = r.value ->> 'attempt')
FROM json_each(:rows) AS r ORDER BY r.key

-- name: history_all
SELECT * FROM transitions ORDER BY id DESC LIMIT :limit

-- name: history_of
SELECT * FROM transitions WHERE machine_name = :machine ORDER BY id DESC LIMIT :limit

-- ---------------------------------------------------------------------------- attempts

-- name: attempt_insert_rows
-- :rows is a JSON array of {job_id, attempt, worker, owner, at}: attempts a claim started.
INSERT INTO job_attempts (job_id, attempt, worker, owner, started_at)
SELECT r.value ->> 'job_id', r.value ->> 'attempt', r.value ->> 'worker',
       r.value ->> 'owner', r.value ->> 'at'
FROM json_each(:rows) AS r ORDER BY r.key

-- name: attempts_end_rows
-- :rows is a JSON array of {job_id, outcome, error, at}: each job's running attempt ends.
UPDATE job_attempts SET outcome = r.value ->> 'outcome', error = r.value ->> 'error',
    ended_at = r.value ->> 'at'
FROM json_each(:rows) AS r
WHERE job_attempts.job_id = r.value ->> 'job_id' AND job_attempts.outcome = 'running'

-- name: attempt_hand_over
-- The held job's lease moved to the machine a `start_fsm` started: so does its attempt.
UPDATE job_attempts SET owner = :owner,
    worker = substr(:owner, 1, instr(:owner || '@', '@') - 1)
WHERE job_id = :job_id AND outcome = 'running'

-- name: job_action_insert_rows
-- :rows is a JSON array of actions that ran for a held job, linked to its attempt row.
INSERT INTO job_actions (attempt_id, machine_name, state, action, command, exit_code,
                         stdout_tail, stderr_tail, started_at, ended_at)
SELECT (SELECT MAX(id) FROM job_attempts
        WHERE job_id = r.value ->> 'job_id' AND attempt = r.value ->> 'attempt'),
       r.value ->> 'machine', r.value ->> 'state', r.value ->> 'action',
       r.value ->> 'command', r.value ->> 'exit_code', r.value ->> 'stdout_tail',
       r.value ->> 'stderr_tail', r.value ->> 'started_at', r.value ->> 'ended_at'
FROM json_each(:rows) AS r ORDER BY r.key

-- name: attempts_of_job
SELECT * FROM job_attempts WHERE job_id = :job_id ORDER BY id

-- name: attempt_transitions
SELECT t.* FROM transitions t JOIN job_attempts a ON t.attempt_id = a.id
WHERE a.job_id = :job_id ORDER BY t.id

-- name: attempt_events_sent
SELECT e.* FROM machine_events e JOIN job_attempts a ON e.attempt_id = a.id
WHERE a.job_id = :job_id ORDER BY e.id

-- name: attempt_actions
SELECT x.* FROM job_actions x JOIN job_attempts a ON x.attempt_id = a.id
WHERE a.job_id = :job_id ORDER BY x.id

-- ---------------------------------------------------------------------------- realtime

-- name: realtime_insert_rows
-- :rows is a JSON array of {machine, kind, payload, created_at}, inserted in its order.
INSERT INTO realtime_events (machine_name, kind, payload, created_at)
SELECT value ->> 'machine', value ->> 'kind', value ->> 'payload', value ->> 'created_at'
FROM json_each(:rows) ORDER BY key

-- name: realtime_insert_many
-- :payloads is a JSON array of payload objects; each row stores one element's JSON text.
INSERT INTO realtime_events (machine_name, kind, payload, created_at)
SELECT :machine, :kind, value, :created_at FROM json_each(:payloads) ORDER BY key

-- name: realtime_since
SELECT * FROM realtime_events WHERE id > :after_id ORDER BY id LIMIT :limit

-- name: realtime_window
-- Rows after :floor except the ids in :held (a JSON array), in id order. One writer at a
-- time commits ids in order, so there is no snapshot to report (every read is final).
SELECT NULL AS snap_xmin, NULL AS snap_xmax, * FROM realtime_events
WHERE id > :floor AND id NOT IN (SELECT value FROM json_each(:held))
ORDER BY id LIMIT :limit

-- name: realtime_last_id
SELECT COALESCE(MAX(id), 0) AS id FROM realtime_events

-- ---------------------------------------------------------------------------- retention

-- name: prune_jobs
DELETE FROM jobs WHERE status IN ('completed', 'cancelled') AND completed_at < :before

-- name: prune_machine_events
DELETE FROM machine_events WHERE status IN ('processed', 'unhandled')
    AND processed_at < :before

-- name: prune_transitions
DELETE FROM transitions WHERE created_at < :before

-- name: prune_job_attempts
-- Attempts go with their job (pruned above, or deleted by hand).
DELETE FROM job_attempts WHERE job_id NOT IN (SELECT job_id FROM jobs)

-- name: prune_job_actions
DELETE FROM job_actions
WHERE attempt_id IS NULL OR attempt_id NOT IN (SELECT id FROM job_attempts)

-- name: prune_realtime_events
DELETE FROM realtime_events WHERE created_at < :before

-- ---------------------------------------------------------------------------- metrics

-- name: metrics_jobs
-- Jobs by type and status with their attempts; each failed attempt left one entry in errors.
SELECT job_type, status, COUNT(*) AS n, SUM(attempts) AS attempts,
       SUM(json_array_length(errors)) AS failures
FROM jobs GROUP BY job_type, status ORDER BY job_type, status

-- name: metrics_oldest_pending
SELECT job_type, MIN(created_at) AS oldest FROM jobs WHERE status = 'pending'
GROUP BY job_type ORDER BY job_type

-- name: metrics_transitions
SELECT machine_name, COUNT(*) AS n FROM transitions GROUP BY machine_name ORDER BY machine_name

-- name: metrics_event_depth
-- Events written for a machine and not yet taken (pending, or given back for redelivery).
SELECT target_machine, COUNT(*) AS n FROM machine_events WHERE status = 'pending'
GROUP BY target_machine ORDER BY target_machine

-- name: metrics_stuck
-- Dwell alerts (max_dwell) in the retained stream, per machine and state.
SELECT machine_name, json_extract(payload, '$.state') AS state, COUNT(*) AS n FROM realtime_events
WHERE kind = 'stuck' GROUP BY 1, 2 ORDER BY 1, 2

-- name: metrics_state_durations
-- Completed stays in the retained history: a transition's target state lasted until the
-- machine's next transition. b0..b9 are the histogram's upper bounds in seconds.
SELECT machine_name, state, COUNT(*) AS n, SUM(d) AS total,
       SUM(CASE WHEN d <= :b0 THEN 1 ELSE 0 END) AS b0,
       SUM(CASE WHEN d <= :b1 THEN 1 ELSE 0 END) AS b1,
       SUM(CASE WHEN d <= :b2 THEN 1 ELSE 0 END) AS b2,
       SUM(CASE WHEN d <= :b3 THEN 1 ELSE 0 END) AS b3,
       SUM(CASE WHEN d <= :b4 THEN 1 ELSE 0 END) AS b4,
       SUM(CASE WHEN d <= :b5 THEN 1 ELSE 0 END) AS b5,
       SUM(CASE WHEN d <= :b6 THEN 1 ELSE 0 END) AS b6,
       SUM(CASE WHEN d <= :b7 THEN 1 ELSE 0 END) AS b7,
       SUM(CASE WHEN d <= :b8 THEN 1 ELSE 0 END) AS b8,
       SUM(CASE WHEN d <= :b9 THEN 1 ELSE 0 END) AS b9
FROM (SELECT machine_name, to_state AS state,
             LEAD(created_at) OVER (PARTITION BY machine_name ORDER BY id) - created_at AS d
      FROM transitions) AS stays
WHERE d IS NOT NULL
GROUP BY machine_name, state ORDER BY machine_name, state
-- ---------------------------------------------------------------------------- schedules

-- name: schedule_insert
INSERT INTO schedules (name, job_type, payload, machine_type, every_seconds, cron, timezone,
                       catch_up, next_due, created_at)
VALUES (:name, :job_type, :payload, :machine_type, :every_seconds, :cron, :timezone,
        :catch_up, :next_due, :created_at)
ON CONFLICT (name) DO NOTHING
RETURNING *

-- name: schedule_update
-- A system file's schedule changed: everything but paused, last_tick and created_at.
UPDATE schedules SET job_type = :job_type, payload = :payload, machine_type = :machine_type,
    every_seconds = :every_seconds, cron = :cron, timezone = :timezone, catch_up = :catch_up,
    next_due = :next_due
WHERE name = :name
RETURNING *

-- name: schedule_get
SELECT * FROM schedules WHERE name = :name

-- name: schedules_list
SELECT * FROM schedules ORDER BY name

-- name: schedule_set_paused
-- Resuming starts again from the next tick (:next_due): ticks of a pause are never enqueued.
UPDATE schedules SET paused = :paused, next_due = :next_due WHERE name = :name
RETURNING *

-- name: schedule_delete
DELETE FROM schedules WHERE name = :name RETURNING name

-- name: schedules_next_due
SELECT MIN(next_due) AS next_due FROM schedules WHERE paused = 0

-- name: schedules_due
SELECT * FROM schedules WHERE paused = 0 AND next_due <= :now ORDER BY next_due, name

-- name: schedule_advance
-- The compare-and-set on next_due: a firer that read an older next_due changes nothing.
UPDATE schedules SET next_due = :next_due, last_tick = :last_tick
WHERE name = :name AND next_due = :due AND paused = 0

-- ---------------------------------------------------------------------------- history

-- name: timeline_transitions
-- A machine's history pages (database/history.py): each source's rows before the cursor
-- (earlier time, or the same time and a lower id), newest first.
SELECT id, created_at, from_state, to_state, event, job_id, event_id, event_delivery, step
FROM transitions WHERE machine_name = :machine AND (created_at < :at OR (created_at = :at AND id < :id))
ORDER BY created_at DESC, id DESC LIMIT :limit

-- name: timeline_events_received
SELECT id, created_at, source_machine, target_machine, event_type, job_id, status,
       deliveries, error_message
FROM machine_events WHERE target_machine = :machine AND (created_at < :at OR (created_at = :at AND id < :id))
ORDER BY created_at DESC, id DESC LIMIT :limit

-- name: timeline_events_sent
SELECT id, created_at, source_machine, target_machine, event_type, job_id, status,
       deliveries, error_message
FROM machine_events WHERE source_machine = :machine AND (created_at < :at OR (created_at = :at AND id < :id))
ORDER BY created_at DESC, id DESC LIMIT :limit

-- name: timeline_notices
-- The stream rows the other tables do not hold: jobs taken and given back, errors, starts
-- and stops.
SELECT id, created_at, kind, payload FROM realtime_events
WHERE machine_name = :machine
  AND kind IN ('job', 'error', 'unhandled_event', 'event_interrupted', 'machine_started',
               'machine_stopped')
  AND (created_at < :at OR (created_at = :at AND id < :id))
ORDER BY created_at DESC, id DESC LIMIT :limit
