-- Schema 2: events stopped by a plugin whose `on_error` is "dead-letter".
-- The event itself stays in `events` (state 'done', its outcome saying
-- what failed); `vestibule dead-letters retry --event SEQ` sets it pending
-- again and removes its row here.
CREATE TABLE dead_events (
    seq    INTEGER PRIMARY KEY, -- the event's
    plugin TEXT    NOT NULL,
    reason TEXT    NOT NULL,    -- timeout | memory | trap | output_too_large | sink_refused | error | suspended
    error  TEXT    NOT NULL,
    at     INTEGER NOT NULL
);
