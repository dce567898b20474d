-- Schema 4: a journal made for appending. An event is written once, as it
-- arrived; what became of it is appended beside it (an outcome, each
-- command, each command's delivery), never written over the event. Every
-- table and index grows at its end — keyed by journal or command number, or
-- by time — so a batch of commits touches a few pages at the end of each,
-- not a random page per event. The Rust side copies a schema-3 database
-- into these tables (`migrate::append_only`).

CREATE TABLE events (
    -- No AUTOINCREMENT (its hidden `sqlite_sequence` row is one more write
    -- per commit): a number is never reused because pruning keeps the newest
    -- event.
    seq          INTEGER PRIMARY KEY,
    -- The first 8 bytes of SHA-256(event id), as an integer: what the host
    -- keeps in memory to find duplicates, and `vestibule events show ID`
    -- looks for.
    id_hash      INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL,
    -- 0 for the event as it arrived, n for its n-th replay.
    run          INTEGER NOT NULL DEFAULT 0,
    kind         TEXT    NOT NULL,
    door         TEXT    NOT NULL DEFAULT '',
    received_at  INTEGER NOT NULL, -- ms since the epoch
    -- When it was journaled (ms): the deduplication window and retention
    -- count from here.
    accepted_at  INTEGER NOT NULL,
    -- The normalized event, JSON, with `raw` empty: the vendor's body is
    -- the next column, as it came, rather than escaped inside this one.
    event        TEXT    NOT NULL,
    raw          TEXT    NOT NULL
);
-- In the order events were journaled, with what the duplicate check needs:
-- the host reads the last `dedup_window` of it at start (`seen.rs`).
CREATE INDEX events_accepted ON events (accepted_at, id_hash, source, run);

-- What the pipeline did with an event: one row once it ran. An event
-- without one is pending; `vestibule dead-letters retry` deletes it to run
-- the event again.
CREATE TABLE outcomes (
    seq          INTEGER PRIMARY KEY, -- the event's
    -- What each plugin did, JSON: [{"plugin": "...", "result": "..."}].
    steps        TEXT    NOT NULL,
    processed_at INTEGER NOT NULL
);

-- Every command an action plugin emitted, as it emitted it.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    seq              INTEGER NOT NULL, -- the event's
    plugin           TEXT    NOT NULL,
    idx              INTEGER NOT NULL, -- the command's place among the plugin's
    sink             TEXT    NOT NULL,
    door             TEXT    NOT NULL DEFAULT '',
    idempotency_key  TEXT    NOT NULL,
    command          TEXT    NOT NULL, -- JSON: {"sink", "body", "headers"}
    -- When it is due (ms): its event's arrival plus its delay. `max_age`
    -- counts from here.
    received_at      INTEGER NOT NULL,
    delay_ms         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
-- One command per (event, plugin, place): a run is recorded once.
CREATE UNIQUE INDEX outbox_key ON outbox (seq, plugin, idx);

-- What became of a command's delivery so far: no row until its first
-- failed attempt or its end. A command without one, or with state
-- 'pending', waits for delivery.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY, -- the command's
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    next_at          INTEGER,
    last_error       TEXT,
    -- For dead letters: exhausted | expired | rejected | unknown_sink | superseded
    dead_reason      TEXT,
    done_at          INTEGER,
    -- A dead letter put back by `dead-letters retry`: sent now, not delayed.
    retried          INTEGER NOT NULL DEFAULT 0
);

-- Where the writer looks for pending work: nothing before `below` is
-- pending ('events': journal numbers, 'commands': command ids). The host
-- raises them as work is done; the command line lowers them when it puts
-- work back.
CREATE TABLE marks (
    name  TEXT    PRIMARY KEY,
    below INTEGER NOT NULL
) WITHOUT ROWID;
