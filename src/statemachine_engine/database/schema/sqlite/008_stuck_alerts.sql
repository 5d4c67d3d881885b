-- Dwell alerts (issue 17 item 3): `statemachine_stuck_total` counts the realtime rows of kind
-- 'stuck' per machine and state at every scrape; a partial index keeps that count off the
-- rest of the stream, however long it is.
CREATE INDEX IF NOT EXISTS realtime_events_stuck ON realtime_events (machine_name)
    WHERE kind = 'stuck';
