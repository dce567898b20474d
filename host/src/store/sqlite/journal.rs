//! The SQLite journal: one thread — the [writer](super::writer) — owns the
//! database connection and applies every change — new events, outcomes,
//! delivery results — in batches, one transaction (and so one fsync) per
//! batch, however many requests arrived meanwhile (group commit). Ingest
//! waits for its batch to commit before it answers 2xx.
//!
//! The writer also decides what runs next: after each commit it hands new
//! events to the dispatcher and new commands to the outbox, in journal
//! order, and it remembers which it has handed out so that nothing is handed
//! out twice. Pending rows it did not write itself — left by a crash, or put
//! back by `vestibule replay` / `dead-letters retry` from another process —
//! are found at start and whenever `PRAGMA data_version` says another
//! connection committed.
//!
//! This file is the handle the rest of the host writes through; the writer
//! thread and its batches, the statements each change is and the WAL
//! checkpoints are its siblings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};

use tokio::sync::{mpsc, oneshot};

use super::Store;
use super::checkpoint::Checkpointer;
use super::writer::Writer;
use crate::event::{Event, IdKey};
use crate::store::{Appended, DeliveryUpdate, Journal, JournalFeeds, Pending, Processed, Settings, StoreError};

pub(super) type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// Requests carry their JSON already written: serializing is done by the
/// many callers, not by the one writer thread everything waits on.
pub(super) enum Request {
    Append {
        event: Box<Event>,
        json: String,
        reply: Reply,
    },
    Processed {
        processed: Processed,
        steps: String,
        commands: Vec<String>,
    },
    Delivery {
        id: i64,
        update: DeliveryUpdate,
    },
    Configure(Settings),
    Close,
}

/// The handle the rest of the host writes through. Cheap to share.
pub struct SqliteJournal {
    requests: std_mpsc::Sender<Request>,
    /// What event ids are derived with (the store's).
    id_key: IdKey,
    backlog: Arc<AtomicUsize>,
    unattempted: Arc<AtomicUsize>,
    durable: bool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl SqliteJournal {
    /// Start the writer thread on `store`. Pending events and commands in
    /// it are handed out at once.
    pub fn start(
        store: Store,
        settings: Settings,
        commits: crate::metrics::Commits,
    ) -> Result<(SqliteJournal, JournalFeeds), StoreError> {
        let (requests, inbox) = std_mpsc::channel();
        let (events_out, events) = mpsc::unbounded_channel();
        let (commands_out, commands) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let unattempted = Arc::new(AtomicUsize::new(0));
        let durable = store.path().is_some();
        let id_key = store.id_key().clone();
        let mut writer = Writer::new(
            store,
            settings,
            events_out,
            commands_out,
            backlog.clone(),
            unattempted.clone(),
            commits,
        )?;
        writer.prune()?;
        writer.rescan()?;
        let checkpointer = match writer.store().path() {
            Some(path) => Some(Checkpointer::start(path, writer.store())?),
            None => None,
        };
        if checkpointer.is_some() {
            writer.beside_checkpointer()?;
        }
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                writer.run(inbox);
                drop(checkpointer);
            })
            .map_err(|e| StoreError::Open {
                path: Default::default(),
                message: format!("cannot start the journal thread: {e}"),
            })?;
        Ok((
            SqliteJournal {
                requests,
                id_key,
                backlog,
                unattempted,
                durable,
                thread: Mutex::new(Some(thread)),
            },
            JournalFeeds { events, commands },
        ))
    }
}

impl Journal for SqliteJournal {
    fn append(&self, mut event: Event) -> Pending<'_, Result<Appended, StoreError>> {
        // Sent before the future is first polled: appends keep the order
        // they were made in.
        let json = super::sql::json_without_raw(&mut event).map_err(|e| StoreError::Corrupt {
            what: "event",
            error: e.to_string(),
        });
        let answer = json.and_then(|json| {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(Request::Append {
                    event: Box::new(event),
                    json,
                    reply,
                })
                .map_err(|_| StoreError::Closed)?;
            Ok(answer)
        });
        Box::pin(async move { answer?.await.map_err(|_| StoreError::Closed)? })
    }

    fn processed(&self, processed: Processed) {
        let commands = processed
            .commands
            .iter()
            .map(|c| to_json("command", &c.command))
            .collect::<Result<_, _>>();
        let (steps, commands) = match (to_json("outcome", &processed.steps), commands) {
            (Ok(steps), Ok(commands)) => (steps, commands),
            (Err(e), _) | (_, Err(e)) => {
                // Our own types always serialize; if not, the event stays
                // pending and runs again at the next start.
                tracing::error!(seq = processed.seq, error = %e, "Recording an outcome failed.");
                return;
            }
        };
        let _ = self.requests.send(Request::Processed {
            processed,
            steps,
            commands,
        });
    }

    fn delivery(&self, id: i64, update: DeliveryUpdate) {
        let _ = self.requests.send(Request::Delivery { id, update });
    }

    fn configure(&self, settings: Settings) {
        let _ = self.requests.send(Request::Configure(settings));
    }

    fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    fn unattempted(&self) -> usize {
        self.unattempted.load(Ordering::Relaxed)
    }

    fn attempted(&self) {
        self.unattempted.fetch_sub(1, Ordering::Relaxed);
    }

    fn id_key(&self) -> &IdKey {
        &self.id_key
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn close(&self) -> Pending<'_, ()> {
        let _ = self.requests.send(Request::Close);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        Box::pin(async move {
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        })
    }
}

fn to_json(what: &'static str, value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what,
        error: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{NewCommand, Records};
    use crate::time::now_ms;

    fn event() -> Event {
        serde_json::from_str(include_str!(
            "../../../../examples/events/normalized/front-door-granted.json"
        ))
        .unwrap()
    }

    fn settings() -> Settings {
        Settings {
            dedup_window: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
            capacity: 16,
        }
    }

    /// An outcome that cannot be written (here a trigger plays the full
    /// disk) leaves the event pending; once writing works again it is
    /// handed out again and processed, not stuck as "in flight" forever.
    #[tokio::test]
    async fn an_outcome_that_cannot_be_written_runs_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER disk_full BEFORE INSERT ON outcomes BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let (journal, mut feeds) = SqliteJournal::start(store, settings(), Default::default()).unwrap();
        let Appended::Accepted { seq } = journal.append(event()).await.unwrap() else {
            panic!("a new event is accepted");
        };
        let first = feeds.events.recv().await.unwrap();
        assert_eq!(first.seq, seq);
        let outcome = |seq| Processed {
            seq,
            steps: Vec::new(),
            commands: Vec::new(),
            dead_letter: None,
            received_at: 0,
        };
        journal.processed(outcome(seq));
        // The failed write is noticed: the event no longer counts as handed out.
        wait_until(|| journal.backlog() == 0).await;

        // Writing works again.
        let other = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        other.busy_timeout(Duration::from_secs(5)).unwrap();
        other.execute_batch("DROP TRIGGER disk_full;").unwrap();
        let again = tokio::time::timeout(Duration::from_secs(5), feeds.events.recv())
            .await
            .expect("the event is handed out again")
            .unwrap();
        assert_eq!(again.seq, seq);
        assert_eq!(journal.backlog(), 1);
        journal.processed(outcome(seq));
        wait_until(|| journal.backlog() == 0).await;
        let runs = Store::open(dir.path()).unwrap().event(&seq.to_string()).unwrap();
        assert_eq!(runs[0].0.state, "done");
        journal.close().await;
    }

    async fn wait_until(done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 5 s");
    }

    /// A delayed command waits on its own; once a dead letter and retried,
    /// it is an ordinary command again, sent now and in its lane.
    #[tokio::test]
    async fn a_retried_delayed_command_is_no_longer_delayed() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, mut feeds) =
            SqliteJournal::start(Store::open(dir.path()).unwrap(), settings(), Default::default()).unwrap();
        let mut now = event();
        now.received_at = now_ms();
        let Appended::Accepted { seq } = journal.append(now).await.unwrap() else {
            panic!("a new event is accepted");
        };
        let queued = feeds.events.recv().await.unwrap();
        let command = crate::wit::sinks::Command {
            sink: "lights-off".into(),
            body: "{}".into(),
            headers: Vec::new(),
        };
        journal.processed(Processed {
            seq,
            steps: Vec::new(),
            commands: vec![NewCommand {
                plugin: "lights".into(),
                index: 0,
                key: "k".into(),
                door: "Lobby".into(),
                command,
                delay_ms: 60_000,
            }],
            dead_letter: None,
            received_at: queued.event.received_at,
        });
        let pending = feeds.commands.recv().await.unwrap();
        assert!(pending.delayed());
        assert_eq!(pending.next_at, queued.event.received_at + 60_000);
        journal.delivery(
            pending.id,
            DeliveryUpdate::Dead {
                attempts: 1,
                reason: crate::store::DeadReason::Exhausted,
                error: "down".into(),
            },
        );
        let mut other = Store::open(dir.path()).unwrap();
        let mut retried = 0;
        for _ in 0..500 {
            retried = other.retry_dead_letters(&[]).unwrap();
            if retried > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(retried, 1);
        let again = tokio::time::timeout(Duration::from_secs(5), feeds.commands.recv())
            .await
            .expect("handed out again")
            .unwrap();
        assert_eq!(again.id, pending.id);
        assert!(!again.delayed(), "retried: sent now, in order");
        journal.close().await;
    }

    /// Stops `statement` for the marked rows, as a full disk or a bug would,
    /// from a connection of its own; `None` lifts it.
    fn fault(dir: &std::path::Path, trigger: Option<&str>) {
        let conn = rusqlite::Connection::open(dir.join(crate::store::DB_FILE)).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch(&match trigger {
            Some(when) => format!("CREATE TRIGGER fault {when} BEGIN SELECT RAISE(ABORT, 'fault'); END;"),
            None => "DROP TRIGGER fault;".into(),
        })
        .unwrap();
    }

    /// An append that fails part-way leaves nothing behind, though others in
    /// its batch commit: the vendor's retry is accepted and processed, not
    /// answered `duplicate` for an event that was never stored.
    #[tokio::test]
    async fn a_failed_append_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fault(dir.path(), Some("BEFORE INSERT ON events WHEN NEW.event_id = 'poison'"));
        let (journal, mut feeds) = SqliteJournal::start(store, settings(), Default::default()).unwrap();
        let with_id = |id: &str| {
            let mut event = event();
            event.id = id.into();
            event
        };
        // Sent together: one batch, one transaction.
        let (before, poisoned, after) = tokio::join!(
            journal.append(with_id("before")),
            journal.append(with_id("poison")),
            journal.append(with_id("after")),
        );
        assert!(matches!(before.unwrap(), Appended::Accepted { .. }));
        assert!(poisoned.is_err(), "the failed append is refused: the vendor retries");
        assert!(matches!(after.unwrap(), Appended::Accepted { .. }));
        let handed: Vec<String> = [feeds.events.recv().await.unwrap(), feeds.events.recv().await.unwrap()]
            .into_iter()
            .map(|q| q.event.id)
            .collect();
        assert_eq!(handed, ["before", "after"]);

        fault(dir.path(), None);
        let Appended::Accepted { seq } = journal.append(with_id("poison")).await.unwrap() else {
            panic!("the retry is accepted, not a duplicate");
        };
        let queued = feeds.events.recv().await.unwrap();
        assert_eq!((queued.seq, queued.event.id.as_str()), (seq, "poison"));
        journal.close().await;
    }

    /// An outcome whose second command cannot be stored is not recorded at
    /// all: the event runs again, and its commands are stored once each.
    #[tokio::test]
    async fn an_outcome_is_recorded_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fault(dir.path(), Some("BEFORE INSERT ON outbox WHEN NEW.plugin = 'poison'"));
        let (journal, mut feeds) = SqliteJournal::start(store, settings(), Default::default()).unwrap();
        let Appended::Accepted { seq } = journal.append(event()).await.unwrap() else {
            panic!("a new event is accepted");
        };
        feeds.events.recv().await.unwrap();
        let outcome = || Processed {
            seq,
            steps: Vec::new(),
            commands: ["lights", "poison"]
                .into_iter()
                .map(|plugin| NewCommand {
                    plugin: plugin.into(),
                    index: 0,
                    key: format!("key-{plugin}"),
                    door: "Lobby".into(),
                    command: crate::wit::sinks::Command {
                        sink: "lights".into(),
                        body: "{}".into(),
                        headers: Vec::new(),
                    },
                    delay_ms: 0,
                })
                .collect(),
            dead_letter: None,
            received_at: 0,
        };
        journal.processed(outcome());
        wait_until(|| journal.backlog() == 0).await;
        assert!(
            feeds.commands.try_recv().is_err(),
            "no command of a failed outcome goes out"
        );

        fault(dir.path(), None);
        let again = tokio::time::timeout(Duration::from_secs(5), feeds.events.recv())
            .await
            .expect("the event runs again")
            .unwrap();
        assert_eq!(again.seq, seq);
        journal.processed(outcome());
        let keys = [
            feeds.commands.recv().await.unwrap().key,
            feeds.commands.recv().await.unwrap().key,
        ];
        assert_eq!(keys, ["key-lights", "key-poison"]);
        wait_until(|| journal.backlog() == 0).await;
        let runs = Store::open(dir.path()).unwrap().event(&seq.to_string()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].0.state, "done");
        assert_eq!(runs[0].2.len(), 2, "each command stored once");
        journal.close().await;
    }

    #[tokio::test]
    async fn a_repeat_within_the_window_is_a_duplicate() {
        let (journal, _feeds) = SqliteJournal::start(Store::memory().unwrap(), settings(), Default::default()).unwrap();
        assert!(matches!(
            journal.append(event()).await.unwrap(),
            Appended::Accepted { .. }
        ));
        assert_eq!(journal.append(event()).await.unwrap(), Appended::Duplicate);
        let mut other = event();
        other.source = "another-source".into();
        assert!(matches!(
            journal.append(other).await.unwrap(),
            Appended::Accepted { .. }
        ));
        journal.close().await;
    }
}
