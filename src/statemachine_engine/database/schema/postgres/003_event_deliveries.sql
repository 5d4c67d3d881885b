-- Events across crashes (DESIGN §13.5). A consumed event is `handling` until the machine's
-- next step commits; `deliveries` counts the runs it was handed to (a clean stop gives it
-- back uncounted), `error_message` says why it was handed again or given up (`failed`).
-- `transitions.event_delivery` is the delivery a consuming step made (2 = redelivered).
ALTER TABLE machine_events ADD COLUMN IF NOT EXISTS deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE machine_events ADD COLUMN IF NOT EXISTS error_message TEXT;
ALTER TABLE transitions ADD COLUMN IF NOT EXISTS event_delivery INTEGER;
CREATE INDEX IF NOT EXISTS machine_events_handling ON machine_events (target_machine, id)
    WHERE status = 'handling';
