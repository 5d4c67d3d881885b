-- Durable machines (DESIGN §13.6, issue 17 item 1): what a `restart: resume` machine needs to
-- continue after a restart, written with every step that enters a state, in the step's own
-- transaction: the state, its step number, when it was entered (the store's time line, for
-- durable timers), the context as it was on entry, and the job held then (codec JSON).
-- NULL for `restart: initial` machines, which never read it.
ALTER TABLE machine_state ADD COLUMN IF NOT EXISTS snapshot TEXT;
