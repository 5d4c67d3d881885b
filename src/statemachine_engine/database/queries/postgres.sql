-- Every statement the store runs on PostgreSQL, by name (see database/queries.py).
-- Parameters are `%(name)s`; a parameter compared with NULL is cast so that its type is
-- known. Tables are found through the connection's search_path (one schema per URL).

-- ---------------------------------------------------------------------------- jobs

-- name: job_insert
-- run_after is when the job became runnable, so claim order is first-come by availability
-- and a delayed or retried job is not overtaken forever.
INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts, run_after,
                  created_at)
VALUES (%(job_id)s, %(job_type)s, %(machine_type)s, %(data)s, %(priority)s,
        %(max_attempts)s, %(run_after)s, %(created_at)s)
ON CONFLICT (job_id) DO NOTHING
RETURNING *

-- name: jobs_insert_many
-- %(jobs)s is a JSON array of objects with the columns of job_insert; the ids inserted
-- come back (an id that exists already is left alone and missing from the result).
INSERT INTO jobs (job_id, job_type, machine_type, data, priority, max_attempts, run_after,
                  created_at)
SELECT e.job ->> 'job_id', e.job ->> 'job_type', e.job ->> 'machine_type', e.job ->> 'data',
       (e.job ->> 'priority')::integer, (e.job ->> 'max_attempts')::integer,
       (e.job ->> 'run_after')::double precision, (e.job ->> 'created_at')::double precision
FROM json_array_elements(%(jobs)s::json) WITH ORDINALITY AS e(job, n)
ORDER BY e.n
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id

-- name: job_get
SELECT * FROM jobs WHERE job_id = %(job_id)s

-- name: job_expire_exhausted
-- A job whose last allowed attempt lost its lease fails for good; the lease is its error,
-- appended to the JSON-array text in `errors` without re-encoding the rest.
WITH expired AS (
    SELECT job_id FROM jobs WHERE status = 'processing' AND lease_expires_at < %(now)s
      AND attempts >= max_attempts FOR UPDATE SKIP LOCKED)
UPDATE jobs j SET status = 'failed', completed_at = %(now)s, lease_owner = NULL,
    lease_expires_at = NULL,
    error_message = 'lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts,
    errors = left(j.errors, -1) || CASE WHEN j.errors = '[]' THEN '' ELSE ',' END
        || to_json('lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts)::text
        || ']'
FROM expired WHERE j.job_id = expired.job_id
RETURNING j.job_id, j.job_type, j.error_message

-- name: claim
-- FOR UPDATE SKIP LOCKED: no double claim, no worker waits for another. Taking over an
-- expired lease records it as that attempt's error. Rows come back in any order.
WITH candidate AS (
    SELECT job_id FROM jobs
    WHERE status IN ('pending', 'processing')
      AND ((status = 'pending' AND run_after <= %(now)s)
        OR (status = 'processing' AND lease_expires_at < %(now)s
            AND attempts < max_attempts))
      /*filters*/
    ORDER BY priority, run_after, created_at, seq LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE jobs j SET status = 'processing', lease_owner = %(owner)s,
    lease_expires_at = %(expires)s, attempts = j.attempts + 1, started_at = %(now)s,
    error_message = CASE WHEN j.status = 'processing'
        THEN 'lease of ' || j.lease_owner || ' expired on attempt ' || j.attempts
        ELSE j.error_message END,
    errors = CASE WHEN j.status = 'processing'
        THEN left(j.errors, -1) || CASE WHEN j.errors = '[]' THEN '' ELSE ',' END
            || to_json('lease of ' || j.lease_owner || ' expired on attempt '
                       || j.attempts)::text || ']'
        ELSE j.errors END
FROM candidate WHERE j.job_id = candidate.job_id
RETURNING j.*

-- name: claim_probe
-- Whether a claim could take anything (read only, no write lock): an idle worker's re-check
-- costs one read instead of a write transaction. A lapsed lease counts whatever its attempts
-- (a claim also fails exhausted ones for good).
SELECT 1 AS found FROM jobs
WHERE ((status = 'pending' AND run_after <= %(now)s)
    OR (status = 'processing' AND lease_expires_at < %(now)s)) /*filters*/
LIMIT 1

-- name: claim_probe.job_id
AND job_id = %(job_id)s

-- name: claim_probe.job_type
AND job_type = %(job_type)s

-- name: claim_probe.machine_type
AND (machine_type IS NULL OR machine_type = %(machine_type)s)

-- name: claim.job_id
AND job_id = %(job_id)s

-- name: claim.job_type
AND job_type = %(job_type)s

-- name: claim.machine_type
AND (machine_type IS NULL OR machine_type = %(machine_type)s)

-- name: job_heartbeat
UPDATE jobs SET lease_expires_at = %(expires)s, lease_owner = %(new_owner)s
WHERE job_id = %(job_id)s AND lease_owner = %(owner)s AND status = 'processing'

-- name: jobs_complete_rows
-- %(rows)s is a JSON array of {job_id, owner, result, now}; the jobs still held are completed.
UPDATE jobs AS j SET status = 'completed', completed_at = r.now, result = r.result,
    lease_owner = NULL, lease_expires_at = NULL
FROM json_to_recordset(%(rows)s::json) AS r (job_id text, owner text, result text, now float8)
WHERE j.job_id = r.job_id AND j.lease_owner = r.owner AND j.status = 'processing'
RETURNING j.job_id

-- name: job_attempt
SELECT job_type, attempts, max_attempts, errors FROM jobs
WHERE job_id = %(job_id)s AND lease_owner = %(owner)s AND status = 'processing'
FOR UPDATE

-- name: job_end_attempt
UPDATE jobs SET status = %(status)s, error_message = %(error)s, errors = %(errors)s,
    lease_owner = NULL, lease_expires_at = NULL, run_after = %(run_after)s,
    completed_at = %(completed_at)s
WHERE job_id = %(job_id)s

-- name: job_release
UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
    attempts = GREATEST(attempts - 1, 0)
WHERE job_id = %(job_id)s AND lease_owner = %(owner)s AND status = 'processing'
RETURNING job_type

-- name: jobs_release_owned
UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
    attempts = GREATEST(attempts - 1, 0)
WHERE status = 'processing' AND left(lease_owner, length(%(prefix)s)) = %(prefix)s
RETURNING job_id, job_type

-- name: jobs_list
SELECT * FROM jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
ORDER BY created_at DESC, seq DESC LIMIT %(limit)s OFFSET %(offset)s

-- name: jobs_count
SELECT status, COUNT(*) AS n FROM jobs
WHERE (%(job_type)s::text IS NULL OR job_type = %(job_type)s) GROUP BY status

-- name: job_retry
UPDATE jobs SET status = 'pending', attempts = 0, run_after = %(now)s,
    lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL
WHERE job_id = %(job_id)s AND status IN ('failed', 'cancelled')
RETURNING *

-- name: job_cancel
UPDATE jobs SET status = 'cancelled', completed_at = %(now)s
WHERE job_id = %(job_id)s AND status = 'pending'
RETURNING *

-- name: job_retry_data
UPDATE jobs SET status = 'pending', attempts = 0, run_after = %(now)s, data = %(data)s,
    lease_owner = NULL, lease_expires_at = NULL, completed_at = NULL
WHERE job_id = %(job_id)s AND status IN ('failed', 'cancelled')
RETURNING *

-- name: jobs_failed
SELECT * FROM jobs WHERE status = 'failed' ORDER BY completed_at DESC LIMIT %(limit)s

-- name: jobs_delayed
SELECT * FROM jobs WHERE status = 'pending' AND run_after > %(now)s
ORDER BY run_after, created_at LIMIT %(limit)s

-- name: jobs_overdue
SELECT job_id, lease_owner, lease_expires_at FROM jobs
WHERE status = 'processing' AND lease_expires_at < %(now)s
ORDER BY lease_expires_at

-- ---------------------------------------------------------------------------- events

-- name: event_insert
-- attempt_id: the attempt of the job the sender held (held_job_id, attempt), if any.
INSERT INTO machine_events (target_machine, source_machine, event_type, job_id, payload,
                            created_at, attempt_id)
VALUES (%(target)s, %(source)s, %(event_type)s, %(job_id)s, %(payload)s, %(created_at)s,
        (SELECT MAX(id) FROM job_attempts
         WHERE job_id = %(held_job_id)s AND attempt = %(attempt)s))
RETURNING *

-- name: event_next
SELECT * FROM machine_events WHERE target_machine = %(target)s AND status = 'pending'
ORDER BY id LIMIT 1

-- name: event_mark
UPDATE machine_events SET status = %(status)s, processed_at = %(now)s
WHERE id = %(id)s AND status = 'pending'

-- name: events_handling
SELECT * FROM machine_events WHERE target_machine = %(target)s AND status = 'handling'
ORDER BY id FOR UPDATE

-- name: event_interrupt
UPDATE machine_events SET status = %(status)s, error_message = %(error)s,
    processed_at = %(processed_at)s
WHERE id = %(id)s
RETURNING *

-- name: event_release
UPDATE machine_events SET status = 'pending', processed_at = NULL,
    deliveries = GREATEST(deliveries - 1, 0)
WHERE id = %(id)s AND status = 'handling'

-- name: events_list
SELECT * FROM machine_events
WHERE (%(target)s::text IS NULL OR target_machine = %(target)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY id DESC LIMIT %(limit)s

-- name: events_clear
UPDATE machine_events SET status = 'processed', processed_at = %(now)s
WHERE target_machine = %(target)s AND status = 'pending'

-- name: event_finish
UPDATE machine_events SET status = 'processed', processed_at = %(at)s
WHERE id = %(id)s AND status = 'handling'

-- name: event_consume
UPDATE machine_events SET status = %(status)s, processed_at = %(at)s,
    deliveries = deliveries + (CASE WHEN %(status)s = 'unhandled' THEN 0 ELSE 1 END)
WHERE id = %(id)s

-- ---------------------------------------------------------------------------- machines

-- name: machine_lock
-- Serialise starts of one name (there may be no row to lock yet).
SELECT pg_advisory_xact_lock(hashtext('machine_state:' || %(name)s))

-- name: machine_get
SELECT * FROM machine_state WHERE machine_name = %(name)s

-- name: machine_snapshot
SELECT snapshot FROM machine_state WHERE machine_name = %(name)s

-- name: machines_list
SELECT * FROM machine_state ORDER BY machine_name COLLATE "C"

-- name: definition_insert
INSERT INTO machine_definitions (digest, name, source, text, created_at)
VALUES (%(digest)s, %(name)s, %(source)s, %(text)s, %(created_at)s)
ON CONFLICT (digest) DO NOTHING

-- name: definition_get
SELECT * FROM machine_definitions WHERE digest = %(digest)s

-- name: definitions_list
SELECT digest, name, created_at FROM machine_definitions ORDER BY created_at, digest

-- name: machine_register
INSERT INTO machine_state (machine_name, current_state, state_entered_at, status, pid,
    hostname, pid_start, config_path, definition_name, definition_hash, started_at,
    updated_at, previous_state, last_event, current_job_id, snapshot)
VALUES (%(name)s, %(state)s, COALESCE(%(entered_at)s, %(at)s), 'running', %(pid)s,
    %(hostname)s, %(pid_start)s, %(config_path)s, %(definition_name)s, %(definition_hash)s,
    %(at)s, %(at)s, NULL, NULL, NULL, %(snapshot)s)
ON CONFLICT (machine_name) DO UPDATE SET current_state = excluded.current_state,
    state_entered_at = excluded.state_entered_at, status = 'running', pid = excluded.pid,
    hostname = excluded.hostname, pid_start = excluded.pid_start,
    config_path = excluded.config_path, definition_name = excluded.definition_name,
    definition_hash = excluded.definition_hash, started_at = excluded.started_at,
    updated_at = excluded.updated_at, previous_state = NULL, last_event = NULL,
    current_job_id = NULL, snapshot = excluded.snapshot
RETURNING *

-- name: machine_stop
UPDATE machine_state SET status = %(status)s, updated_at = %(at)s, current_job_id = NULL
WHERE machine_name = %(name)s

-- name: machine_move
UPDATE machine_state SET current_state = %(to_state)s, previous_state = %(from_state)s,
    last_event = %(event)s, step = %(step)s, updated_at = %(at)s, current_job_id = %(job_id)s,
    state_entered_at = COALESCE(%(entered_at)s, state_entered_at),
    snapshot = %(snapshot)s
WHERE machine_name = %(machine)s

-- name: transition_insert_rows
-- %(rows)s is a JSON array of transitions, inserted in its order.
-- attempt_id: the latest attempt row of the step's job with the step's attempt number.
INSERT INTO transitions (machine_name, step, from_state, to_state, event, job_id, event_id,
                         event_delivery, created_at, attempt_id)
SELECT r.machine, r.step, r.from_state, r.to_state, r.event, r.job_id, r.event_id,
       (SELECT deliveries FROM machine_events WHERE id = r.event_id), r.at,
       (SELECT MAX(id) FROM job_attempts WHERE job_id = r.job_id AND attempt = r.attempt)
FROM ROWS FROM (json_to_recordset(%(rows)s::json)
         AS (machine text, step integer, from_state text, to_state text, event text,
             job_id text, attempt integer, event_id bigint, at float8))
     WITH ORDINALITY
     AS r (machine, step, from_state, to_state, event, job_id, attempt, event_id, at, n)
ORDER BY r.n

-- name: history_all
SELECT * FROM transitions ORDER BY id DESC LIMIT %(limit)s

-- name: history_of
SELECT * FROM transitions WHERE machine_name = %(machine)s ORDER BY id DESC LIMIT %(limit)s

-- ---------------------------------------------------------------------------- attempts

-- name: attempt_insert_rows
-- %(rows)s is a JSON array of {job_id, attempt, worker, owner, at}: attempts a claim started.
INSERT INTO job_attempts (job_id, attempt, worker, owner, started_at)
SELECT r.job_id, r.attempt, r.worker, r.owner, r.at
FROM ROWS FROM (json_to_recordset(%(rows)s::json)
         AS (job_id text, attempt integer, worker text, owner text, at float8))
     WITH ORDINALITY AS r (job_id, attempt, worker, owner, at, n)
ORDER BY r.n

-- name: attempts_end_rows
-- %(rows)s is a JSON array of {job_id, outcome, error, at}: each job's running attempt ends.
UPDATE job_attempts AS a SET outcome = r.outcome, error = r.error, ended_at = r.at
FROM json_to_recordset(%(rows)s::json) AS r (job_id text, outcome text, error text, at float8)
WHERE a.job_id = r.job_id AND a.outcome = 'running'

-- name: attempt_hand_over
-- The held job's lease moved to the machine a `start_fsm` started: so does its attempt.
UPDATE job_attempts SET owner = %(owner)s, worker = split_part(%(owner)s, '@', 1)
WHERE job_id = %(job_id)s AND outcome = 'running'

-- name: job_action_insert_rows
-- %(rows)s is a JSON array of actions that ran for a held job, linked to its attempt row.
INSERT INTO job_actions (attempt_id, machine_name, state, action, command, exit_code,
                         stdout_tail, stderr_tail, started_at, ended_at)
SELECT (SELECT MAX(id) FROM job_attempts WHERE job_id = r.job_id AND attempt = r.attempt),
       r.machine, r.state, r.action, r.command, r.exit_code, r.stdout_tail, r.stderr_tail,
       r.started_at, r.ended_at
FROM ROWS FROM (json_to_recordset(%(rows)s::json)
         AS (job_id text, attempt integer, machine text, state text, action text,
             command text, exit_code integer, stdout_tail text, stderr_tail text,
             started_at float8, ended_at float8))
     WITH ORDINALITY AS r (job_id, attempt, machine, state, action, command, exit_code,
                           stdout_tail, stderr_tail, started_at, ended_at, n)
ORDER BY r.n

-- name: attempts_of_job
SELECT * FROM job_attempts WHERE job_id = %(job_id)s ORDER BY id

-- name: attempt_transitions
SELECT t.* FROM transitions t JOIN job_attempts a ON t.attempt_id = a.id
WHERE a.job_id = %(job_id)s ORDER BY t.id

-- name: attempt_events_sent
SELECT e.* FROM machine_events e JOIN job_attempts a ON e.attempt_id = a.id
WHERE a.job_id = %(job_id)s ORDER BY e.id

-- name: attempt_actions
SELECT x.* FROM job_actions x JOIN job_attempts a ON x.attempt_id = a.id
WHERE a.job_id = %(job_id)s ORDER BY x.id

-- ---------------------------------------------------------------------------- realtime

-- name: realtime_insert_rows
-- %(rows)s is a JSON array of {machine, kind, payload, created_at}, inserted in its order.
-- The transaction id is taken before any id is drawn (each row needs it): what lets a reader
-- know which writers may still commit a lower id (StreamCursor).
WITH me AS MATERIALIZED (SELECT pg_current_xact_id() AS xid)
INSERT INTO realtime_events (machine_name, kind, payload, created_at, tx_xid)
SELECT r.machine, r.kind, r.payload, r.created_at, me.xid
FROM me, ROWS FROM (json_to_recordset(%(rows)s::json)
         AS (machine text, kind text, payload text, created_at float8))
     WITH ORDINALITY AS r (machine, kind, payload, created_at, n)
ORDER BY r.n

-- name: realtime_insert_many
-- %(payloads)s is a JSON array of payload objects; each row stores one element's JSON text.
WITH me AS MATERIALIZED (SELECT pg_current_xact_id() AS xid)
INSERT INTO realtime_events (machine_name, kind, payload, created_at, tx_xid)
SELECT %(machine)s, %(kind)s, p.payload::text, %(created_at)s, me.xid
FROM me, json_array_elements(%(payloads)s::json) WITH ORDINALITY AS p(payload, n)
ORDER BY p.n

-- name: realtime_since
SELECT * FROM realtime_events WHERE id > %(after_id)s ORDER BY id LIMIT %(limit)s

-- name: realtime_window
-- Rows after %(floor)s except the ids in %(held)s (a JSON array), in id order, with the
-- reading snapshot's xmin and xmax; one row of NULLs and the snapshot when there are none.
SELECT pg_snapshot_xmin(s.snap)::text::bigint AS snap_xmin,
       pg_snapshot_xmax(s.snap)::text::bigint AS snap_xmax, r.*
FROM (SELECT pg_current_snapshot() AS snap) AS s
LEFT JOIN LATERAL (
    SELECT * FROM realtime_events
    WHERE id > %(floor)s
      AND id NOT IN (SELECT value::bigint FROM json_array_elements_text(%(held)s::json))
    ORDER BY id LIMIT %(limit)s
) AS r ON true
ORDER BY r.id

-- name: realtime_last_id
SELECT COALESCE(MAX(id), 0) AS id FROM realtime_events

-- ---------------------------------------------------------------------------- retention

-- name: prune_jobs
DELETE FROM jobs WHERE status IN ('completed', 'cancelled') AND completed_at < %(before)s

-- name: prune_machine_events
DELETE FROM machine_events WHERE status IN ('processed', 'unhandled')
    AND processed_at < %(before)s

-- name: prune_transitions
DELETE FROM transitions WHERE created_at < %(before)s

-- name: prune_job_attempts
-- Attempts go with their job (pruned above, or deleted by hand).
DELETE FROM job_attempts a WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = a.job_id)

-- name: prune_job_actions
DELETE FROM job_actions x
WHERE x.attempt_id IS NULL
   OR NOT EXISTS (SELECT 1 FROM job_attempts a WHERE a.id = x.attempt_id)

-- name: prune_realtime_events
DELETE FROM realtime_events WHERE created_at < %(before)s

-- ---------------------------------------------------------------------------- metrics

-- name: metrics_jobs
-- Jobs by type and status with their attempts; each failed attempt left one entry in errors.
SELECT job_type, status, COUNT(*) AS n, SUM(attempts) AS attempts,
       SUM(json_array_length(errors::json)) AS failures
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
SELECT machine_name, payload::json ->> 'state' AS state, COUNT(*) AS n FROM realtime_events
WHERE kind = 'stuck' GROUP BY 1, 2 ORDER BY 1, 2

-- name: metrics_state_durations
-- Completed stays in the retained history: a transition's target state lasted until the
-- machine's next transition. b0..b9 are the histogram's upper bounds in seconds.
SELECT machine_name, state, COUNT(*) AS n, SUM(d) AS total,
       SUM(CASE WHEN d <= %(b0)s THEN 1 ELSE 0 END) AS b0,
       SUM(CASE WHEN d <= %(b1)s THEN 1 ELSE 0 END) AS b1,
       SUM(CASE WHEN d <= %(b2)s THEN 1 ELSE 0 END) AS b2,
       SUM(CASE WHEN d <= %(b3)s THEN 1 ELSE 0 END) AS b3,
       SUM(CASE WHEN d <= %(b4)s THEN 1 ELSE 0 END) AS b4,
       SUM(CASE WHEN d <= %(b5)s THEN 1 ELSE 0 END) AS b5,
       SUM(CASE WHEN d <= %(b6)s THEN 1 ELSE 0 END) AS b6,
       SUM(CASE WHEN d <= %(b7)s THEN 1 ELSE 0 END) AS b7,
       SUM(CASE WHEN d <= %(b8)s THEN 1 ELSE 0 END) AS b8,
       SUM(CASE WHEN d <= %(b9)s THEN 1 ELSE 0 END) AS b9
FROM (SELECT machine_name, to_state AS state,
             LEAD(created_at) OVER (PARTITION BY machine_name ORDER BY id) - created_at AS d
      FROM transitions) AS stays
WHERE d IS NOT NULL
GROUP BY machine_name, state ORDER BY machine_name, state
-- ---------------------------------------------------------------------------- schedules

-- name: schedule_insert
INSERT INTO schedules (name, job_type, payload, machine_type, every_seconds, cron, timezone,
                       catch_up, next_due, created_at)
VALUES (%(name)s, %(job_type)s, %(payload)s, %(machine_type)s, %(every_seconds)s, %(cron)s,
        %(timezone)s, %(catch_up)s, %(next_due)s, %(created_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING *

-- name: schedule_update
-- A system file's schedule changed: everything but paused, last_tick and created_at.
UPDATE schedules SET job_type = %(job_type)s, payload = %(payload)s,
    machine_type = %(machine_type)s, every_seconds = %(every_seconds)s, cron = %(cron)s,
    timezone = %(timezone)s, catch_up = %(catch_up)s, next_due = %(next_due)s
WHERE name = %(name)s
RETURNING *

-- name: schedule_get
SELECT * FROM schedules WHERE name = %(name)s

-- name: schedules_list
SELECT * FROM schedules ORDER BY name

-- name: schedule_set_paused
-- Resuming starts again from the next tick (next_due): ticks of a pause are never enqueued.
UPDATE schedules SET paused = %(paused)s, next_due = %(next_due)s WHERE name = %(name)s
RETURNING *

-- name: schedule_delete
DELETE FROM schedules WHERE name = %(name)s RETURNING name

-- name: schedules_next_due
SELECT MIN(next_due) AS next_due FROM schedules WHERE paused = 0

-- name: schedules_due
-- A row another firer holds is skipped: it is being fired (and its compare-and-set decides).
SELECT * FROM schedules WHERE paused = 0 AND next_due <= %(now)s ORDER BY next_due, name
FOR UPDATE SKIP LOCKED

-- name: schedule_advance
-- The compare-and-set on next_due: a firer that read an older next_due changes nothing.
UPDATE schedules SET next_due = %(next_due)s, last_tick = %(last_tick)s
WHERE name = %(name)s AND next_due = %(due)s AND paused = 0

-- ---------------------------------------------------------------------------- history

-- name: timeline_transitions
-- A machine's history pages (database/history.py): each source's rows before the cursor
-- (earlier time, or the same time and a lower id), newest first.
SELECT id, created_at, from_state, to_state, event, job_id, event_id, event_delivery, step
FROM transitions WHERE machine_name = %(machine)s AND (created_at < %(at)s OR (created_at = %(at)s AND id < %(id)s))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: timeline_events_received
SELECT id, created_at, source_machine, target_machine, event_type, job_id, status,
       deliveries, error_message
FROM machine_events WHERE target_machine = %(machine)s AND (created_at < %(at)s OR (created_at = %(at)s AND id < %(id)s))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: timeline_events_sent
SELECT id, created_at, source_machine, target_machine, event_type, job_id, status,
       deliveries, error_message
FROM machine_events WHERE source_machine = %(machine)s AND (created_at < %(at)s OR (created_at = %(at)s AND id < %(id)s))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: timeline_notices
-- The stream rows the other tables do not hold: jobs taken and given back, errors, starts
-- and stops.
SELECT id, created_at, kind, payload FROM realtime_events
WHERE machine_name = %(machine)s
  AND kind IN ('job', 'error', 'unhandled_event', 'event_interrupted', 'machine_started',
               'machine_stopped')
  AND (created_at < %(at)s OR (created_at = %(at)s AND id < %(id)s))
ORDER BY created_at DESC, id DESC LIMIT %(limit)s
