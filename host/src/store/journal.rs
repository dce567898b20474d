//! The journal writer: one thread owns the database connection and applies
//! every change — new events, outcomes, delivery results — in batches, one
//! transaction (and so one fsync) per batch, however many requests arrived
//! meanwhile (group commit). Ingest waits for its batch to commit before it
//! answers 2xx.
//!
//! The writer also decides what runs next: after each commit it hands new
//! events to the dispatcher and new commands to the outbox, in journal
//! order, and it remembers which it has handed out so that nothing is handed
//! out twice. Pending rows it did not write itself — left by a crash, or put
//! back by `vestibule replay` / `dead-letters retry` from another process —
//! are found at start and whenever `PRAGMA data_version` says another
//! connection committed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::records::{DeadEvent, DeliveryUpdate, NewCommand, PendingCommand, Queued, Step};
use super::{Store, StoreError};
use crate::event::{Event, IdKey};
use crate::time::now_ms;

/// The most requests applied in one transaction.
const MAX_BATCH: usize = 1024;
/// How often the writer looks for changes made by other processes.
const POLL: Duration = Duration::from_millis(500);
/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How often processed events past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

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

/// What became of an event handed to [`Journal::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored; it will be processed.
    Accepted { seq: i64 },
    /// Its (source, event id) was accepted within the deduplication window.
    Duplicate,
}

/// The outcome of running one event through the pipeline.
#[derive(Debug)]
pub struct Processed {
    pub seq: i64,
    pub steps: Vec<Step>,
    pub commands: Vec<NewCommand>,
    /// A plugin stopped the event: it is kept as a dead letter.
    pub dead_letter: Option<DeadEvent>,
    /// When the event arrived (ms).
    pub received_at: i64,
}

type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// Requests carry their JSON already written: serializing is done by the
/// many callers, not by the one writer thread everything waits on.
enum Request {
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
pub struct Journal {
    requests: std_mpsc::Sender<Request>,
    /// What event ids are derived with (the store's).
    id_key: IdKey,
    backlog: Arc<AtomicUsize>,
    unattempted: Arc<AtomicUsize>,
    durable: bool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Where the writer hands out work: events for the dispatcher, commands for
/// the outbox, each in journal order.
pub struct JournalFeeds {
    pub events: mpsc::UnboundedReceiver<Queued>,
    pub commands: mpsc::UnboundedReceiver<PendingCommand>,
}

impl Journal {
    /// Start the writer thread on `store`. Pending events and commands in
    /// it are handed out at once.
    pub fn start(store: Store, settings: Settings) -> Result<(Journal, JournalFeeds), StoreError> {
        let (requests, inbox) = std_mpsc::channel();
        let (events_out, events) = mpsc::unbounded_channel();
        let (commands_out, commands) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let unattempted = Arc::new(AtomicUsize::new(0));
        let durable = store.path().is_some();
        let id_key = store.id_key().clone();
        let mut writer = Writer {
            data_version: 0,
            store,
            settings,
            events_out,
            commands_out,
            events_in_flight: HashSet::new(),
            commands_in_flight: HashSet::new(),
            more_pending: false,
            rescan_due: false,
            backlog: backlog.clone(),
            unattempted: unattempted.clone(),
        };
        writer.prune()?;
        writer.rescan()?;
        let checkpointer = match writer.store.path() {
            Some(path) => Some(Checkpointer::start(path, &writer.store)?),
            None => None,
        };
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
            Journal {
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

    /// Store `event`; resolves once it is on disk (or known as a duplicate).
    pub async fn append(&self, event: Event) -> Result<Appended, StoreError> {
        let json = to_json("event", &event)?;
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Append {
                event: Box::new(event),
                json,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Record what the pipeline did with event `seq` and store its commands,
    /// in one transaction.
    pub fn processed(&self, processed: Processed) {
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

    /// Record the result of a delivery attempt.
    pub fn delivery(&self, id: i64, update: DeliveryUpdate) {
        let _ = self.requests.send(Request::Delivery { id, update });
    }

    /// Behave by `settings` from now on (a reload changed the config).
    pub fn configure(&self, settings: Settings) {
        let _ = self.requests.send(Request::Configure(settings));
    }

    /// Events handed to the dispatcher and not yet processed.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Commands handed to the outbox whose first attempt has not finished.
    pub fn unattempted(&self) -> usize {
        self.unattempted.load(Ordering::Relaxed)
    }

    /// The outbox made the first attempt at a command handed to it (or set
    /// it aside to retry later): shutdown need not wait for it.
    pub fn attempted(&self) {
        self.unattempted.fetch_sub(1, Ordering::Relaxed);
    }

    /// What the ids of events the vendor gives no id for are derived with.
    pub fn id_key(&self) -> &IdKey {
        &self.id_key
    }

    /// Whether what the journal holds survives a crash.
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Apply everything sent so far, then stop the writer.
    pub async fn close(&self) {
        let _ = self.requests.send(Request::Close);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Copies the WAL back into the database file from a second connection,
/// so the writer never stalls on a checkpoint: with SQLite's automatic
/// checkpoints the commit that crosses 1,000 pages does it, and every
/// request in that batch waits (milliseconds at the 99th percentile).
struct Checkpointer {
    stop: Option<std_mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &std::path::Path, writer: &Store) -> Result<Checkpointer, StoreError> {
        writer.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = std_mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Err(std_mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    // PASSIVE: copies what no reader needs, never waits for the writer.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "WAL checkpoint failed.");
                    }
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot start the checkpoint thread: {e}"),
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Writer {
    store: Store,
    settings: Settings,
    events_out: mpsc::UnboundedSender<Queued>,
    commands_out: mpsc::UnboundedSender<PendingCommand>,
    events_in_flight: HashSet<i64>,
    commands_in_flight: HashSet<i64>,
    /// More events are pending than `capacity` let us hand out.
    more_pending: bool,
    /// Pending work was forgotten after a failed write: look again.
    rescan_due: bool,
    backlog: Arc<AtomicUsize>,
    unattempted: Arc<AtomicUsize>,
    data_version: i64,
}

/// Work to hand out once a batch has committed.
#[derive(Default)]
struct Committed {
    replies: Vec<(Reply, Result<Appended, StoreError>)>,
    events: Vec<Queued>,
    processed: Vec<i64>,
    commands: Vec<PendingCommand>,
    finished_commands: Vec<i64>,
    /// Ends that could not be recorded: see [`Writer::forget`].
    unrecorded_events: Vec<i64>,
    unrecorded_commands: Vec<i64>,
}

impl Writer {
    fn run(mut self, inbox: std_mpsc::Receiver<Request>) {
        let mut last_poll = Instant::now();
        let mut last_prune = Instant::now();
        loop {
            let first = match inbox.recv_timeout(POLL) {
                Ok(request) => Some(request),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch: Vec<Request> = first.into_iter().collect();
            while batch.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            batch.retain(|request| match request {
                Request::Configure(settings) => {
                    self.settings = settings.clone();
                    false
                }
                _ => true,
            });
            let closing = batch.iter().any(|r| matches!(r, Request::Close));
            if !batch.is_empty() {
                self.apply(batch);
            }
            if closing {
                break;
            }
            if last_poll.elapsed() >= POLL {
                last_poll = Instant::now();
                if let Err(e) = self.poll_others() {
                    tracing::error!(error = %e, "Reading the journal failed.");
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(e) = self.prune() {
                    tracing::error!(error = %e, "Pruning the journal failed.");
                }
            }
        }
    }

    /// Apply `batch` in one transaction; then answer and hand out.
    fn apply(&mut self, batch: Vec<Request>) {
        let mut done = Committed::default();
        let tx = match self.store.conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return fail(batch, &e.into()),
        };
        let dedup_window = self.settings.dedup_window.as_millis() as i64;
        for request in batch {
            match request {
                Request::Append { event, json, reply } => {
                    let result = append(&tx, &event, &json, dedup_window);
                    if let Ok(Appended::Accepted { seq }) = result {
                        done.events.push(Queued {
                            seq,
                            run: 0,
                            event: *event,
                        });
                    }
                    done.replies.push((reply, result));
                }
                Request::Processed {
                    processed,
                    steps,
                    commands,
                } => match record_processed(&tx, &processed, &steps, &commands) {
                    Ok(commands) => {
                        done.processed.push(processed.seq);
                        done.commands.extend(commands);
                    }
                    Err(e) => {
                        tracing::error!(seq = processed.seq, error = %e, "Recording an outcome failed; the event will run again.");
                        done.unrecorded_events.push(processed.seq);
                    }
                },
                Request::Delivery { id, update } => {
                    // A retry's record only keeps count; the outbox still holds
                    // the command. An end that is not recorded is tried again.
                    let finished = !matches!(update, DeliveryUpdate::Retry { .. });
                    match record_delivery(&tx, id, &update) {
                        Ok(()) if finished => done.finished_commands.push(id),
                        Ok(()) => {}
                        Err(e) if finished => {
                            tracing::error!(command = id, error = %e, "Recording a delivery failed; it will be tried again.");
                            done.unrecorded_commands.push(id);
                        }
                        Err(e) => tracing::error!(command = id, error = %e, "Recording a retry failed."),
                    }
                }
                Request::Close | Request::Configure(_) => {}
            }
        }
        if let Err(e) = tx.commit() {
            let error = StoreError::from(e);
            tracing::error!(error = %error, "The journal could not commit; the events in this batch were refused.");
            for (reply, _) in done.replies {
                let _ = reply.send(Err(StoreError::Commit(error.to_string())));
            }
            done.unrecorded_events.extend(done.processed);
            done.unrecorded_commands.extend(done.finished_commands);
            self.forget(done.unrecorded_events, done.unrecorded_commands);
            return;
        }
        self.forget(done.unrecorded_events, done.unrecorded_commands);
        // Hand out before counting off and before answering: at no moment
        // may the host look idle while work is on its way (shutdown waits
        // for `backlog` and `unattempted` to reach zero).
        for queued in done.events {
            self.hand_out_event(queued);
        }
        for command in done.commands {
            self.hand_out_command(command);
        }
        for seq in done.processed {
            if self.events_in_flight.remove(&seq) {
                self.backlog.fetch_sub(1, Ordering::Relaxed);
            }
        }
        for id in done.finished_commands {
            self.commands_in_flight.remove(&id);
        }
        for (reply, result) in done.replies {
            let _ = reply.send(result);
        }
    }

    /// Work whose end could not be recorded is still pending in the store:
    /// stop counting it as handed out, and look for it again at the next
    /// poll (a full disk may have room by then). It runs again: at least
    /// once, and its commands keep their idempotency keys.
    fn forget(&mut self, events: Vec<i64>, commands: Vec<i64>) {
        if events.is_empty() && commands.is_empty() {
            return;
        }
        for seq in events {
            if self.events_in_flight.remove(&seq) {
                self.backlog.fetch_sub(1, Ordering::Relaxed);
            }
        }
        for id in commands {
            self.commands_in_flight.remove(&id);
        }
        self.rescan_due = true;
    }

    fn hand_out_event(&mut self, queued: Queued) {
        if self.events_in_flight.insert(queued.seq) {
            self.backlog.fetch_add(1, Ordering::Relaxed);
            let _ = self.events_out.send(queued);
        }
    }

    fn hand_out_command(&mut self, command: PendingCommand) {
        if self.commands_in_flight.insert(command.id) {
            self.unattempted.fetch_add(1, Ordering::Relaxed);
            let _ = self.commands_out.send(command);
        }
    }

    /// If another connection committed since we last looked (or we left
    /// events behind for lack of room), look for pending work.
    fn poll_others(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .store
            .conn
            .pragma_query_value(None, "data_version", |row| row.get(0))?;
        let room = self.events_in_flight.len() < self.settings.capacity / 2;
        if version != self.data_version || (self.more_pending && room) || self.rescan_due {
            self.data_version = version;
            self.rescan()?;
        }
        Ok(())
    }

    /// Hand out every pending event and command not already handed out.
    fn rescan(&mut self) -> Result<(), StoreError> {
        self.data_version = self
            .store
            .conn
            .pragma_query_value(None, "data_version", |row| row.get(0))?;
        let mut events = Vec::new();
        let mut unreadable = Vec::new();
        self.more_pending = false;
        {
            let mut statement = self
                .store
                .conn
                .prepare("SELECT seq, run, event FROM events WHERE state = 'pending' ORDER BY seq")?;
            let mut rows = statement.query([])?;
            let mut room = self.settings.capacity.saturating_sub(self.events_in_flight.len());
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                if self.events_in_flight.contains(&seq) {
                    continue;
                }
                if room == 0 {
                    self.more_pending = true;
                    break;
                }
                room -= 1;
                let json: String = row.get(2)?;
                match serde_json::from_str::<Event>(&json) {
                    Ok(event) => events.push(Queued {
                        seq,
                        run: row.get(1)?,
                        event,
                    }),
                    Err(e) => unreadable.push((seq, e.to_string())),
                }
            }
        }
        for (seq, error) in unreadable {
            tracing::error!(seq, %error, "A journaled event cannot be read; it is marked done unprocessed.");
            let steps = vec![Step {
                plugin: "-".into(),
                result: format!("not processed: stored event unreadable: {error}"),
            }];
            self.store.conn.execute(
                "UPDATE events SET state = 'done', outcome = ?2, processed_at = ?3 WHERE seq = ?1",
                params![seq, serde_json::to_string(&steps).unwrap_or_default(), now_ms()],
            )?;
        }
        if !events.is_empty() {
            tracing::info!(events = events.len(), "Processing journaled events.");
        }
        for queued in events {
            self.hand_out_event(queued);
        }

        let commands: Vec<PendingCommand> = self
            .store
            .conn
            .prepare(&format!(
                "SELECT {} FROM outbox WHERE state = 'pending' ORDER BY id",
                PendingCommand::COLUMNS
            ))?
            .query_map([], PendingCommand::from_row)?
            .filter(|c| c.as_ref().map_or(true, |c| !self.commands_in_flight.contains(&c.id)))
            .collect::<Result<_, _>>()?;
        if !commands.is_empty() {
            tracing::info!(commands = commands.len(), "Delivering stored commands.");
        }
        for command in commands {
            self.hand_out_command(command);
        }
        self.rescan_due = false;
        Ok(())
    }

    /// Forget what retention and the deduplication window allow.
    fn prune(&mut self) -> Result<(), StoreError> {
        let now = now_ms();
        let retained = now - self.settings.retention.as_millis() as i64;
        let tx = self.store.conn.transaction()?;
        tx.execute(
            "DELETE FROM seen WHERE at < ?1",
            [now - self.settings.dedup_window.as_millis() as i64],
        )?;
        let commands = tx.execute(
            "DELETE FROM outbox WHERE (state = 'delivered' OR dead_reason = 'superseded') AND done_at < ?1",
            [retained],
        )?;
        // An event goes once none of its commands is waiting or dead.
        let events = tx.execute(
            "DELETE FROM events WHERE state = 'done' AND received_at < ?1
               AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.seq = events.seq)
               AND NOT EXISTS (SELECT 1 FROM dead_events WHERE dead_events.seq = events.seq)",
            [retained],
        )?;
        tx.commit()?;
        if events + commands > 0 {
            tracing::info!(events, commands, "Pruned the journal.");
        }
        Ok(())
    }
}

fn to_json(what: &'static str, value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what,
        error: e.to_string(),
    })
}

/// Answer every append in a batch that could not even start.
fn fail(batch: Vec<Request>, error: &StoreError) {
    tracing::error!(%error, "The journal could not start a transaction.");
    for request in batch {
        if let Request::Append { reply, .. } = request {
            let _ = reply.send(Err(StoreError::Commit(error.to_string())));
        }
    }
}

/// Store one event unless it is a duplicate.
fn append(tx: &Transaction<'_>, event: &Event, json: &str, dedup_window_ms: i64) -> Result<Appended, StoreError> {
    let now = now_ms();
    let seen: Option<i64> = tx
        .prepare_cached("SELECT at FROM seen WHERE source = ?1 AND event_id = ?2")?
        .query_row(params![event.source, event.id], |row| row.get(0))
        .optional()?;
    if seen.is_some_and(|at| at > now - dedup_window_ms) {
        return Ok(Appended::Duplicate);
    }
    tx.prepare_cached(
        "INSERT INTO seen (source, event_id, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, event_id) DO UPDATE SET at = excluded.at",
    )?
    .execute(params![event.source, event.id, now])?;
    tx.prepare_cached(
        "INSERT INTO events (source, event_id, kind, door, received_at, event, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
    )?
    .execute(params![
        event.source,
        event.id,
        event.kind,
        lane_key(event),
        event.received_at,
        json
    ])?;
    Ok(Appended::Accepted {
        seq: tx.last_insert_rowid(),
    })
}

/// Mark the event done with its outcome (`steps`, JSON) and store its
/// commands (`commands`, the JSON of each, in order); returns those that are
/// new (a command already stored by an earlier, interrupted run keeps its row).
fn record_processed(
    tx: &Transaction<'_>,
    processed: &Processed,
    steps: &str,
    commands: &[String],
) -> Result<Vec<PendingCommand>, StoreError> {
    let now = now_ms();
    tx.prepare_cached("UPDATE events SET state = 'done', outcome = ?2, processed_at = ?3 WHERE seq = ?1")?
        .execute(params![processed.seq, steps, now])?;
    if let Some(dead) = &processed.dead_letter {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dead_events (seq, plugin, reason, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![processed.seq, dead.plugin, dead.reason, dead.error, now])?;
    }
    let mut stored = Vec::new();
    for (new, json) in processed.commands.iter().zip(commands) {
        // A delayed command is due `delay_ms` after its event arrived (now,
        // if that has passed), and its `max_age` counts from then.
        let due = processed.received_at + new.delay_ms as i64;
        let next_at = due.max(now);
        let inserted = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox
                   (seq, plugin, idx, sink, door, idempotency_key, command, received_at, created_at, state, next_at,
                    delay_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11)",
            )?
            .execute(params![
                processed.seq,
                new.plugin,
                new.index as i64,
                new.command.sink,
                new.door,
                new.key,
                json,
                due,
                now,
                next_at,
                new.delay_ms as i64
            ])?;
        if inserted == 1 {
            stored.push(PendingCommand {
                id: tx.last_insert_rowid(),
                key: new.key.clone(),
                door: new.door.clone(),
                plugin: new.plugin.clone(),
                command: new.command.clone(),
                delay_ms: new.delay_ms,
                received_at: due,
                attempts: 0,
                first_attempt_at: None,
                next_at,
            });
        }
    }
    Ok(stored)
}

fn record_delivery(tx: &Transaction<'_>, id: i64, update: &DeliveryUpdate) -> Result<(), StoreError> {
    let now = now_ms();
    match update {
        DeliveryUpdate::Delivered { attempts } => tx
            .prepare_cached(
                "UPDATE outbox SET state = 'delivered', attempts = ?2, done_at = ?3, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, attempts, now])?,
        DeliveryUpdate::Retry {
            attempts,
            first_attempt_at,
            next_at,
            error,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET attempts = ?2, first_attempt_at = ?3, next_at = ?4, last_error = ?5 WHERE id = ?1",
            )?
            .execute(params![id, attempts, first_attempt_at, next_at, error])?,
        DeliveryUpdate::Superseded => tx
            .prepare_cached("UPDATE outbox SET state = 'dead', dead_reason = 'superseded', done_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?,
        DeliveryUpdate::Dead {
            attempts,
            reason,
            error,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET state = 'dead', attempts = ?2, dead_reason = ?3, last_error = ?4, done_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![id, attempts, reason, error, now])?,
    };
    Ok(())
}

/// Events of one door are processed in order, and so are their commands to
/// each sink: the key is the door's name (what `events list` shows) or id,
/// else the device's. Two doors of one name merely share a lane.
pub fn lane_key(event: &Event) -> String {
    let door = event.door.as_ref().and_then(|d| d.name.as_ref().or(d.id.as_ref()));
    let device = event.device.as_ref().and_then(|d| d.name.as_ref().or(d.id.as_ref()));
    door.or(device).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        serde_json::from_str(include_str!(
            "../../../examples/events/normalized/front-door-granted.json"
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
                "CREATE TRIGGER disk_full BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let (journal, mut feeds) = Journal::start(store, settings()).unwrap();
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
        let other = rusqlite::Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
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
        let state: String = other
            .query_row("SELECT state FROM events WHERE seq = ?1", [seq], |row| row.get(0))
            .unwrap();
        assert_eq!(state, "done");
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
        let (journal, mut feeds) = Journal::start(Store::open(dir.path()).unwrap(), settings()).unwrap();
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
                reason: "exhausted",
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

    #[tokio::test]
    async fn a_repeat_within_the_window_is_a_duplicate() {
        let (journal, _feeds) = Journal::start(Store::memory().unwrap(), settings()).unwrap();
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
