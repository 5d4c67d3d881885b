-- A stream that never skips (issue 16 item 6): the writing transaction's id on each realtime
-- row, taken before the row's id is drawn, so a reader can tell which writers may still
-- commit a lower id (database/stream.py StreamCursor). Rows written before this have NULL.
ALTER TABLE realtime_events ADD COLUMN IF NOT EXISTS tx_xid xid8;
