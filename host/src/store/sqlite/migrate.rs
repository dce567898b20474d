//! The schema, one step per version (`PRAGMA user_version`): a database at
//! version n gets the steps after the n-th, in one transaction, when it is
//! first opened by this build.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use crate::event::Event;
use crate::store::StoreError;

/// One step from a version to the next.
enum Step {
    Sql(&'static str),
    /// What SQL alone cannot do: hash ids, split JSON.
    Rust(fn(&Transaction<'_>) -> rusqlite::Result<()>),
}

const STEPS: &[Step] = &[
    Step::Sql(include_str!("schema.sql")),
    Step::Sql(include_str!("dead_events.sql")),
    Step::Sql(include_str!("delayed_commands.sql")),
    Step::Rust(append_only),
];

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = STEPS.len() as i64;

/// Bring the database on `conn` to [`SCHEMA_VERSION`]; `path` names it in
/// errors.
pub(super) fn migrate(conn: &mut Connection, path: &std::path::Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            message: format!("written by a newer Vestibule (schema {version}; this one knows {SCHEMA_VERSION})"),
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (i, step) in STEPS.iter().enumerate().skip(version.max(0) as usize) {
        if version > 0 {
            tracing::info!(path = %path.display(), from = i, to = i + 1, "Upgrading the journal's schema.");
        }
        match step {
            Step::Sql(sql) => tx.execute_batch(sql)?,
            Step::Rust(step) => step(&tx)?,
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// The key of an event id in the `events_id` index: the first 8 bytes of
/// its SHA-256 (a hash an event id cannot be chosen to collide with
/// cheaply, and the same in every build).
pub(super) fn id_hash(event_id: &str) -> i64 {
    let digest = Sha256::digest(event_id.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Schema 3 → 4, the journal made for appending (see `append_only.sql`):
/// each event row is copied with its raw body in a column of its own, its
/// outcome (if it ran) into `outcomes`; each command with its delivery so
/// far into `deliveries`; `seen` gives way to `events_id`.
fn append_only(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DROP INDEX events_pending; DROP INDEX events_received; DROP INDEX events_event_id;
         DROP INDEX outbox_pending; DROP INDEX outbox_dead; DROP INDEX outbox_seq;
         ALTER TABLE events RENAME TO events_3;
         ALTER TABLE outbox RENAME TO outbox_3;",
    )?;
    tx.execute_batch(include_str!("append_only.sql"))?;
    {
        let mut read = tx.prepare(
            "SELECT e.seq, e.source, e.event_id, e.run, e.kind, e.door, e.received_at, e.event, e.state,
                    e.outcome, e.processed_at, s.at
             FROM events_3 e LEFT JOIN seen s ON e.run = 0 AND s.source = e.source AND s.event_id = e.event_id
             ORDER BY e.seq",
        )?;
        let mut event = tx.prepare(
            "INSERT INTO events (seq, id_hash, source, event_id, run, kind, door, received_at, accepted_at, event, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut outcome = tx.prepare("INSERT INTO outcomes (seq, steps, processed_at) VALUES (?1, ?2, ?3)")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let event_id: String = row.get(2)?;
            let received_at: i64 = row.get(6)?;
            let (json, raw) = split_raw(row.get(7)?);
            event.execute(params![
                seq,
                id_hash(&event_id),
                row.get::<_, String>(1)?,
                event_id,
                row.get::<_, i64>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                received_at,
                row.get::<_, Option<i64>>(11)?.unwrap_or(received_at),
                json,
                raw
            ])?;
            if row.get::<_, String>(8)? == "done" {
                let steps: Option<String> = row.get(9)?;
                let processed_at: Option<i64> = row.get(10)?;
                outcome.execute(params![
                    seq,
                    steps.unwrap_or_else(|| "[]".into()),
                    processed_at.unwrap_or(received_at)
                ])?;
            }
        }
    }
    tx.execute_batch(
        "INSERT INTO outbox (id, seq, plugin, idx, sink, door, idempotency_key, command, received_at, delay_ms, created_at)
         SELECT id, seq, plugin, idx, sink, door, idempotency_key, command, received_at, delay_ms, created_at
         FROM outbox_3 ORDER BY id;
         -- A command never tried needs no row: its next attempt is when it is due.
         INSERT INTO deliveries (id, state, attempts, first_attempt_at, next_at, last_error, dead_reason, done_at)
         SELECT id, state, attempts, first_attempt_at, next_at, last_error, dead_reason, done_at
         FROM outbox_3 WHERE state <> 'pending' OR attempts > 0 ORDER BY id;
         INSERT INTO marks (name, below) VALUES
           ('events', coalesce((SELECT min(seq) FROM events_3 WHERE state = 'pending'),
                               (SELECT max(seq) + 1 FROM events_3), 0)),
           ('commands', coalesce((SELECT min(id) FROM outbox_3 WHERE state = 'pending'),
                                 (SELECT max(id) + 1 FROM outbox_3), 0));
         DROP TABLE events_3;
         DROP TABLE outbox_3;
         DROP TABLE seen;",
    )
}

/// An event's JSON without its raw body, and the raw body: stored apart.
/// JSON that is not an event stays as it is (it is reported as unreadable
/// when its turn comes).
fn split_raw(json: String) -> (String, String) {
    match serde_json::from_str::<Event>(&json) {
        Ok(mut event) => {
            let raw = std::mem::take(&mut event.raw);
            match serde_json::to_string(&event) {
                Ok(json) => (json, raw),
                Err(_) => (json, String::new()),
            }
        }
        Err(_) => (json, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Records;
    use crate::store::sqlite::{DB_FILE, Store};

    /// A data folder written by the first release (schema 1) opens, and is
    /// brought to this schema without losing what it holds. (The folder a
    /// schema-3 host left behind is upgraded in `tests/journal.rs`.)
    #[test]
    fn a_schema_1_data_folder_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(include_str!("schema.sql")).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO outbox (seq, plugin, idx, sink, idempotency_key, command, received_at, created_at, state, next_at)
                 VALUES (1, 'lights', 0, 'lights', 'k', '{}', 0, 0, 'pending', 0)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let (delay, key, below): (i64, String, i64) = store
            .conn
            .query_row(
                "SELECT delay_ms, idempotency_key, (SELECT below FROM marks WHERE name = 'commands') FROM outbox",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (delay, key.as_str(), below),
            (0, "k", 1),
            "the command is kept, pending, not delayed"
        );
        assert!(store.dead_events().unwrap().is_empty());
        drop(store);
        // Opening again changes nothing.
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn id_hashes_are_stable() {
        // The index holds them: a build that hashed differently would not
        // find the duplicates an earlier one stored.
        assert_eq!(id_hash("evt-1"), id_hash("evt-1"));
        assert_ne!(id_hash("evt-1"), id_hash("evt-2"));
        assert_eq!(
            id_hash(""),
            i64::from_be_bytes([0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14])
        );
    }
}
