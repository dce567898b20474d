-- The data folder's database. `PRAGMA user_version` is the schema version;
-- see `store::migrate`.

-- Every accepted event, once per run: the first when it arrived, one more for
-- each `vestibule replay`.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    -- 0 for the event as it arrived, n for its n-th replay.
    run          INTEGER NOT NULL DEFAULT 0,
    kind         TEXT    NOT NULL,
    door         TEXT    NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL, -- ms since the epoch
    event        TEXT    NOT NULL, -- the normalized event, JSON
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'done')),
    -- What each plugin did, JSON: [{"plugin": "...", "result": "..."}].
    outcome      TEXT,
    processed_at INTEGER
);
CREATE INDEX events_pending ON events (seq) WHERE state = 'pending';
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_event_id ON events (event_id);

-- (source, event id) pairs accepted within the deduplication window.
CREATE TABLE seen (
    source   TEXT    NOT NULL,
    event_id TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (source, event_id)
) WITHOUT ROWID;

-- Every command an action plugin emitted, from the moment its event was
-- processed until it was delivered, expired or given up on.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    seq              INTEGER NOT NULL, -- the event's
    plugin           TEXT    NOT NULL,
    idx              INTEGER NOT NULL, -- the command's place among the plugin's
    sink             TEXT    NOT NULL,
    door             TEXT    NOT NULL DEFAULT '',
    idempotency_key  TEXT    NOT NULL UNIQUE,
    command          TEXT    NOT NULL, -- JSON: {"sink", "body", "headers"}
    received_at      INTEGER NOT NULL, -- when the event arrived: `max_age` counts from here
    created_at       INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    next_at          INTEGER NOT NULL,
    last_error       TEXT,
    -- For dead letters: exhausted | expired | rejected | unknown_sink
    dead_reason      TEXT,
    done_at          INTEGER
);
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
CREATE INDEX outbox_seq ON outbox (seq);
