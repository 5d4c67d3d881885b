-- A stream that never skips (issue 16 item 6): each realtime row stores its writer's
-- transaction id, taken (and so assigned) before the row's id is drawn. A writer that holds
-- an id a reader has not seen yet is then always among the transactions the reader's
-- snapshot reports as running (database/stream.py StreamCursor); the column says which
-- transaction wrote a row. Rows written before this migration have NULL.
ALTER TABLE realtime_events ADD COLUMN IF NOT EXISTS tx_xid xid8;
