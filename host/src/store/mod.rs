//! The store: one SQLite database in WAL mode in the data folder, holding
//! the journal of accepted events, the outbox of commands and the dead
//! letters. Without `[store] path` the same database lives in memory.
//!
//! The running host writes only through [`Journal`] (one thread, group
//! commit). The command line opens the same file from another process to
//! list, retry, drop and replay; the host notices those changes through
//! `PRAGMA data_version` and picks them up within a second.

mod id_key;
mod journal;
mod lock;
mod records;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

pub use journal::{Appended, Journal, JournalFeeds, Processed, Settings, lane_key};
pub use lock::DataLock;
pub use records::{
    CommandRow, DeadEvent, DeadEventRow, DeliveryUpdate, EventRow, NewCommand, PendingCommand, Queued, Step,
};

use crate::config::Config;
use crate::event::IdKey;
use crate::time::now_ms;

/// The database file inside the data folder.
pub const DB_FILE: &str = "vestibule.db";

/// The schema, one step per version (`PRAGMA user_version`): a database at
/// version n gets the steps after the n-th.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("dead_events.sql"),
    include_str!("delayed_commands.sql"),
];

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored {what} is not valid JSON: {error}")]
    Corrupt { what: &'static str, error: String },
    #[error("the journal has stopped")]
    Closed,
    #[error("the journal could not commit: {0}")]
    Commit(String),
    #[error("{0}")]
    NotFound(String),
}

/// An event's state as the command line shows it: `dead` for a dead letter.
const EVENT_STATE: &str =
    "CASE WHEN EXISTS (SELECT 1 FROM dead_events d WHERE d.seq = events.seq) THEN 'dead' ELSE state END";

/// Whether `dir` can be the data folder: a folder, or nothing yet (it is
/// created when the host first opens it).
pub fn check_data_folder(dir: &Path) -> Result<(), StoreError> {
    if dir.exists() && !dir.is_dir() {
        return Err(StoreError::Open {
            path: dir.to_path_buf(),
            message: "is a file; expected the data folder (it is created if missing)".into(),
        });
    }
    Ok(())
}

/// An open database.
pub struct Store {
    conn: Connection,
    /// Where the file is; `None` in memory.
    path: Option<PathBuf>,
    /// What event ids are derived with: the data folder's (see
    /// [`Store::with_id_key`]), or one of this process's own.
    id_key: IdKey,
}

impl Store {
    /// The store `config` names: its data folder, or memory.
    pub fn for_config(config: &Config) -> Result<Store, StoreError> {
        match &config.store.path {
            Some(path) => Store::open(&config.resolve(path)),
            None => Store::memory(),
        }
    }

    /// Open (creating if needed) the database in the data folder `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: dir.to_path_buf(),
            message,
        };
        check_data_folder(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| open_error(format!("cannot create the data folder: {e}")))?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|e| open_error(e.to_string()))?;
        let mut store = Store {
            conn,
            path: Some(path),
            id_key: IdKey::random(),
        };
        store.prepare().map_err(|e| open_error(e.to_string()))?;
        Ok(store)
    }

    /// A database in memory: the same behaviour, gone when the host stops.
    pub fn memory() -> Result<Store, StoreError> {
        let mut store = Store {
            conn: Connection::open_in_memory()?,
            path: None,
            id_key: IdKey::random(),
        };
        store.prepare()?;
        Ok(store)
    }

    /// The database file, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Use the data folder's event-id key, creating it the first time: what
    /// the host does, so that ids stay the same across restarts. In memory
    /// the store keeps a key of its own, gone with the process like the
    /// events.
    pub fn with_id_key(mut self) -> Result<Store, StoreError> {
        if let Some(dir) = self.path.as_deref().and_then(Path::parent) {
            self.id_key = id_key::load_or_create(dir)?;
        }
        Ok(self)
    }

    /// What event ids are derived with.
    pub fn id_key(&self) -> &IdKey {
        &self.id_key
    }

    fn prepare(&mut self) -> Result<(), StoreError> {
        // WAL: readers (the command line) never block the writer. FULL: each
        // commit reaches the disk before the host acknowledges what it holds,
        // so an acknowledged event survives power loss, not only a crash.
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        self.migrate()
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Open {
                path: self.path.clone().unwrap_or_default(),
                message: format!("written by a newer Vestibule (schema {version}; this one knows {SCHEMA_VERSION})"),
            });
        }
        let tx = self.conn.transaction()?;
        for step in &MIGRATIONS[version.max(0) as usize..] {
            tx.execute_batch(step)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// The most recent events, newest first.
    pub fn events(&self, source: Option<&str>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT seq, source, event_id, run, kind, door, received_at, {EVENT_STATE}, outcome
                 FROM events WHERE (?1 IS NULL OR source = ?1) ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![source, limit as i64], EventRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every run of the event with this id (or journal sequence number),
    /// with the commands each run emitted.
    pub fn event(&self, id: &str) -> Result<Vec<(EventRow, String, Vec<CommandRow>)>, StoreError> {
        let seq: Option<i64> = id.parse().ok();
        let mut statement = self.conn.prepare(&format!(
            "SELECT seq, source, event_id, run, kind, door, received_at, {EVENT_STATE}, outcome, event
                 FROM events WHERE event_id = ?1 OR seq = ?2 ORDER BY seq"
        ))?;
        let runs = statement
            .query_map(params![id, seq], |row| {
                Ok((EventRow::from_row(row)?, row.get::<_, String>(9)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if runs.is_empty() {
            return Err(StoreError::NotFound(format!("no event {id} in the journal")));
        }
        runs.into_iter()
            .map(|(row, json)| {
                let commands = self.commands("WHERE seq = ?1 ORDER BY id", params![row.seq])?;
                Ok((row, json, commands))
            })
            .collect()
    }

    /// Commands that were given up on, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<CommandRow>, StoreError> {
        self.commands(
            "WHERE state = 'dead' AND dead_reason IS NOT 'superseded' ORDER BY id",
            [],
        )
    }

    /// Events a plugin stopped, oldest first.
    pub fn dead_events(&self) -> Result<Vec<DeadEventRow>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT d.seq, e.source, e.kind, e.door, d.plugin, d.reason, d.error, d.at
             FROM dead_events d JOIN events e ON e.seq = d.seq ORDER BY d.seq",
        )?;
        let rows = statement.query_map([], DeadEventRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Run dead-lettered events again (those with these journal numbers, or
    /// all when `seqs` is empty): the running host processes them within a
    /// second, through the plugins it runs then.
    pub fn retry_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError> {
        self.for_dead_events(seqs, |tx, seq| {
            tx.execute(
                "UPDATE events SET state = 'pending', outcome = NULL, processed_at = NULL
                 WHERE seq IN (SELECT seq FROM dead_events WHERE ?1 IS NULL OR seq = ?1)",
                params![seq],
            )?;
            tx.execute("DELETE FROM dead_events WHERE ?1 IS NULL OR seq = ?1", params![seq])
        })
    }

    /// Forget dead-lettered events; they stay in the journal as processed.
    pub fn drop_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError> {
        self.for_dead_events(seqs, |tx, seq| {
            tx.execute("DELETE FROM dead_events WHERE ?1 IS NULL OR seq = ?1", params![seq])
        })
    }

    fn for_dead_events(
        &mut self,
        seqs: &[i64],
        change: impl Fn(&rusqlite::Transaction, Option<i64>) -> rusqlite::Result<usize>,
    ) -> Result<usize, StoreError> {
        self.in_one_transaction(seqs, "dead-lettered event", change)
    }

    fn commands(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<CommandRow>, StoreError> {
        let sql = format!(
            "SELECT id, seq, plugin, sink, door, idempotency_key, command, state, attempts, last_error,
                    dead_reason, created_at, done_at, received_at + delay_ms
             FROM outbox {filter}"
        );
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map(params, CommandRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Put dead letters back in the outbox with a fresh set of attempts:
    /// those with the given ids, or all when `ids` is empty. A running host
    /// delivers them within a second; otherwise the next start does.
    pub fn retry_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        let now = now_ms();
        self.for_dead_letters(ids, |tx, id| {
            tx.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_at = ?2,
                        dead_reason = NULL, done_at = NULL, delay_ms = 0
                 WHERE state = 'dead' AND dead_reason IS NOT 'superseded' AND (?1 IS NULL OR id = ?1)",
                params![id, now],
            )
        })
    }

    /// Forget dead letters: those with the given ids, or all.
    pub fn drop_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        self.for_dead_letters(ids, |tx, id| {
            tx.execute(
                "DELETE FROM outbox WHERE state = 'dead' AND dead_reason IS NOT 'superseded' AND (?1 IS NULL OR id = ?1)",
                params![id],
            )
        })
    }

    /// Apply `change` to each dead letter in `ids` (or, with `None`, to all)
    /// in one transaction; an id that is not a dead letter undoes it all.
    fn for_dead_letters(
        &mut self,
        ids: &[i64],
        change: impl Fn(&rusqlite::Transaction, Option<i64>) -> rusqlite::Result<usize>,
    ) -> Result<usize, StoreError> {
        self.in_one_transaction(ids, "dead letter", change)
    }

    /// Apply `change` to each of `ids` (or, with `None`, to all) in one
    /// transaction; an id it changes nothing for undoes it all.
    fn in_one_transaction(
        &mut self,
        ids: &[i64],
        what: &str,
        change: impl Fn(&rusqlite::Transaction, Option<i64>) -> rusqlite::Result<usize>,
    ) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut changed = 0;
        if ids.is_empty() {
            changed = change(&tx, None)?;
        }
        for &id in ids {
            match change(&tx, Some(id))? {
                0 => return Err(StoreError::NotFound(format!("no {what} {id}"))),
                n => changed += n,
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Queue every event received since `since_ms` (of `source`, if given)
    /// to run again through the running host's pipeline. Each replay is a
    /// new run with its own idempotency keys, so sinks act on it again;
    /// `max_age` still holds, counted from when the event first arrived.
    pub fn replay(&mut self, since_ms: i64, source: Option<&str>) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "INSERT INTO events (source, event_id, run, kind, door, received_at, event, state)
             SELECT source, event_id,
                    (SELECT MAX(run) FROM events AS e WHERE e.source = events.source AND e.event_id = events.event_id) + 1,
                    kind, door, received_at, event, 'pending'
             FROM events
             WHERE run = 0 AND received_at >= ?1 AND (?2 IS NULL OR source = ?2)
             ORDER BY seq",
            params![since_ms, source],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// How many events wait to be processed and how many commands to be
    /// delivered, and how many dead letters there are.
    pub fn counts(&self) -> Result<(i64, i64, i64), StoreError> {
        let count = |sql: &str| self.conn.query_row(sql, [], |row| row.get::<_, i64>(0));
        Ok((
            count("SELECT COUNT(*) FROM events WHERE state = 'pending'")?,
            count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")?,
            count("SELECT COUNT(*) FROM outbox WHERE state = 'dead' AND dead_reason IS NOT 'superseded'")?,
        ))
    }

    /// The journal sequence number of the newest event, if any.
    pub fn last_seq(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MAX(seq) FROM events", [], |row| row.get(0))
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data folder written by the first release (schema 1) opens, and is
    /// brought to this schema without losing what it holds.
    #[test]
    fn an_older_data_folder_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
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
        let delay: i64 = store
            .conn
            .query_row("SELECT delay_ms FROM outbox", [], |row| row.get(0))
            .unwrap();
        assert_eq!(delay, 0, "the command is kept, not delayed");
        assert!(store.dead_events().unwrap().is_empty());
        drop(store);
        // Opening again changes nothing.
        Store::open(dir.path()).unwrap();
    }
}
