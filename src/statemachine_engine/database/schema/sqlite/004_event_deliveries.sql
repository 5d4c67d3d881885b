-- Events across crashes (DESIGN §13.5). A consumed event is `handling` until the machine's
-- next step commits; `deliveries` counts the runs it was handed to (a clean stop gives it
-- back uncounted), `error_message` says why it was handed again or given up (`failed`).
-- `transitions.event_delivery` is the delivery a consuming step made (2 = redelivered).
ALTER TABLE machine_events ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE machine_events ADD COLUMN error_message TEXT;
ALTER TABLE transitions ADD COLUMN event_delivery INTEGER;
