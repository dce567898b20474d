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
mod marks;
mod migrate;
mod reads;
mod seen;
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

/// An event's state as the command line shows it: `dead` for a dead
/// letter, `done` once it ran, else `pending` (for `events e`).
const EVENT_STATE: &str = "CASE WHEN EXISTS (SELECT 1 FROM dead_events d WHERE d.seq = e.seq) THEN 'dead'
     WHEN EXISTS (SELECT 1 FROM outcomes o WHERE o.seq = e.seq) THEN 'done' ELSE 'pending' END";

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
        // The pages a commit touches are found in memory rather than read
        // back from the file: the duplicates index is hit at random.
        self.conn.pragma_update(None, "cache_size", -32_768)?;
        // Every statement the writer runs stays prepared.
        self.conn.set_prepared_statement_cache_capacity(64);
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        self.migrate()
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone().unwrap_or_default();
        migrate::migrate(&mut self.conn, &path)
    }
}
