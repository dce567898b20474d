-- Schema 3: commands an action asked for with a delay (`send-later`). The
-- outbox keeps such a command out of its lane until it is due, and a later
-- one from the same plugin to the same sink about the same door replaces it.
-- `dead-letters retry` sets it to 0: a retried command goes out now, in order.
ALTER TABLE outbox ADD COLUMN delay_ms INTEGER NOT NULL DEFAULT 0;
