//! The store: what the host keeps so that nothing it acknowledged is lost —
//! the journal of accepted events, the outbox of commands, the dead letters.
//!
//! The rest of the host sees it through two interfaces: [`Journal`], what
//! the running host writes through and is handed work by, and [`Records`],
//! what the command line reads and changes. [`sqlite`] fills both with one
//! SQLite file in the data folder (or in memory without `[store] path`);
//! [`nats`] with NATS JetStream streams, for several nodes (`kind = "nats"`).

mod id_key;
mod lock;
pub mod nats;
mod outcomes;
mod records;
mod sqlite;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use lock::DataLock;
pub use outcomes::{DeadReason, StepResult};
pub use records::{
    Appended, CommandRow, DeadEvent, DeadEventRow, DeliveryUpdate, EventRow, EventRun, NewCommand, PendingCommand,
    Processed, Queued, Step,
};
pub use sqlite::{DB_FILE, SqliteJournal, Store, check_data_folder};

use crate::config::{Config, StoreKind};
use crate::event::{Event, IdKey};
use crate::metrics::Commits;

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
    #[error("NATS: {0}")]
    Cluster(String),
}

/// How the journal behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dedup_window: Duration,
    pub retention: Duration,
    /// Events handed to the dispatcher and not yet processed, at most.
    /// Ingest refuses new events with 503 while this many are waiting.
    pub capacity: usize,
}

impl Settings {
    /// The journal settings `config` asks for.
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            dedup_window: config.store.dedup_window.0,
            retention: config.store.retention.0,
            capacity: config.server.queue,
        }
    }
}

/// A journal call that waits (for a commit, or for the writer to stop).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the running host needs from the journal. Writes that return nothing
/// are queued in order and applied with the next commit; what they change is
/// handed out again after a crash if that commit never happened.
pub trait Journal: Send + Sync {
    /// Store `event`; resolves once it is durable (or known as a duplicate).
    /// Events are handed to the dispatcher through [`JournalFeeds::events`].
    fn append(&self, event: Event) -> Pending<'_, Result<Appended, StoreError>>;

    /// Record what the pipeline did with an event and store its commands,
    /// atomically. The commands are handed to the outbox through
    /// [`JournalFeeds::commands`].
    fn processed(&self, processed: Processed);

    /// Record the result of a delivery attempt.
    fn delivery(&self, id: i64, update: DeliveryUpdate);

    /// Whether command `id` is still this node's to deliver. In a cluster
    /// its partition may go to another node while it waits for a retry;
    /// that node goes on with it, and this one stops.
    fn holds(&self, _id: i64) -> bool {
        true
    }

    /// Behave by `settings` from now on (a reload changed the config).
    fn configure(&self, settings: Settings);

    /// Events handed to the dispatcher and not yet processed.
    fn backlog(&self) -> usize;

    /// Commands handed to the outbox whose first attempt has not finished.
    fn unattempted(&self) -> usize;

    /// The outbox made the first attempt at a command handed to it (or set
    /// it aside to retry later): shutdown need not wait for it.
    fn attempted(&self);

    /// What the ids of events the vendor gives no id for are derived with.
    fn id_key(&self) -> &IdKey;

    /// Whether what the journal holds survives a crash.
    fn durable(&self) -> bool;

    /// The host is stopping: take no more work (the cluster hands it to
    /// other nodes); finish what was handed out.
    fn quiesce(&self) {}

    /// What `/admin/status` shows of the store.
    fn status(&self) -> Pending<'_, serde_json::Value> {
        Box::pin(std::future::ready(serde_json::json!({
            "backend": "sqlite",
        })))
    }

    /// Apply everything sent so far, then stop.
    fn close(&self) -> Pending<'_, ()>;
}

/// Where the journal hands out work: events for the dispatcher, commands for
/// the outbox, each in journal order, each once.
pub struct JournalFeeds {
    pub events: mpsc::UnboundedReceiver<Queued>,
    pub commands: mpsc::UnboundedReceiver<PendingCommand>,
}

/// What the command line reads and changes, while a host may be running on
/// the same store: a running host picks the changes up within a second.
pub trait Records {
    /// The most recent events, newest first.
    fn events(&self, source: Option<&str>, limit: usize) -> Result<Vec<EventRow>, StoreError>;

    /// Every run of the event with this id (or journal sequence number),
    /// with the commands each run emitted.
    fn event(&self, id: &str) -> Result<Vec<EventRun>, StoreError>;

    /// Commands that were given up on, oldest first.
    fn dead_letters(&self) -> Result<Vec<CommandRow>, StoreError>;

    /// Events a plugin stopped, oldest first.
    fn dead_events(&self) -> Result<Vec<DeadEventRow>, StoreError>;

    /// Run dead-lettered events again (those with these journal numbers, or
    /// all when `seqs` is empty), through the plugins the host runs then.
    fn retry_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError>;

    /// Forget dead-lettered events; they stay in the journal as processed.
    fn drop_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError>;

    /// Put dead letters back in the outbox with a fresh set of attempts:
    /// those with the given ids, or all when `ids` is empty.
    fn retry_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError>;

    /// Forget dead letters: those with the given ids, or all.
    fn drop_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError>;

    /// Queue every event received since `since_ms` (of `source`, if given)
    /// to run again. Each replay is a new run with its own idempotency keys,
    /// so sinks act on it again; `max_age` still holds, counted from when the
    /// event first arrived.
    fn replay(&mut self, since_ms: i64, source: Option<&str>) -> Result<usize, StoreError>;
}

/// Start the journal `config` asks for; what it holds pending is handed out
/// at once.
/// Each commit is counted in `commits`.
pub async fn start(config: &Config, commits: Commits) -> Result<(Arc<dyn Journal>, JournalFeeds), StoreError> {
    let settings = Settings::from_config(config);
    match config.store.kind {
        StoreKind::Sqlite => {
            let store = Store::for_config(config)?.with_id_key()?;
            let (journal, feeds) = SqliteJournal::start(store, settings, commits)?;
            Ok((Arc::new(journal), feeds))
        }
        StoreKind::Nats => {
            let cluster = nats::Cluster::connect(config).await?;
            let (journal, feeds) = nats::NatsJournal::start(cluster, settings, commits).await?;
            Ok((Arc::new(journal), feeds))
        }
    }
}

/// The records of the store `config` names, for the command line.
pub fn records(config: &Config) -> Result<Box<dyn Records>, StoreError> {
    match config.store.kind {
        StoreKind::Sqlite => Ok(Box::new(Store::for_config(config)?)),
        StoreKind::Nats => Ok(Box::new(nats::NatsRecords::open(config)?)),
    }
}
