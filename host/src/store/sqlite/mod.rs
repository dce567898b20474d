//! The SQLite store: one database in WAL mode in the data folder, holding
//! the journal of accepted events, the outbox of commands and the dead
//! letters. Without `[store] path` the same database lives in memory.
//!
//! The running host writes only through [`SqliteJournal`] (one thread, group
//! commit). The command line opens the same file from another process to
//! list, retry, drop and replay ([`reads`]); the host notices those changes
//! through `PRAGMA data_version` and picks them up within a second.

mod checkpoint;
mod journal;
mod reads;
mod sql;
mod writer;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use journal::SqliteJournal;

use super::{StoreError, id_key};
use crate::config::Config;
use crate::event::IdKey;

/// How long a connection waits for another's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Records;

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
