//! The writer thread: applies every change in batches, one transaction
//! (one fsync) per batch, and hands out what is pending.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rusqlite::{TransactionBehavior, params};
use tokio::sync::mpsc;

use super::journal::{Reply, Request};
use super::marks::Mark;
use super::seen::Seen;
use super::sql::{PENDING_COMMANDS, PENDING_EVENTS, append, record_delivery, record_processed, stored_event};
use crate::store::StepResult;
use crate::store::records::{DeliveryUpdate, PendingCommand, Queued, Step};
use crate::store::{Appended, Settings};
use crate::store::{Store, StoreError};
use crate::time::now_ms;

/// The most requests applied in one transaction.
const MAX_BATCH: usize = 1024;
/// How often the writer looks for changes made by other processes.
const POLL: Duration = Duration::from_millis(500);
/// How often processed events past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The most events, and the most commands, one pruning transaction deletes.
const PRUNE_CHUNK: i64 = 2_000;

pub(super) struct Writer {
    store: Store,
    settings: Settings,
    events_out: mpsc::UnboundedSender<Queued>,
    commands_out: mpsc::UnboundedSender<PendingCommand>,
    /// Handed out and not yet done with, in order: the first is the lowest
    /// number still pending (see [`Mark`]).
    events_in_flight: BTreeSet<i64>,
    commands_in_flight: BTreeSet<i64>,
    events_mark: Mark,
    commands_mark: Mark,
    /// What was accepted within the deduplication window.
    seen: Seen,
    /// More events are pending than `capacity` let us hand out.
    more_pending: bool,
    /// Pending work was forgotten after a failed write: look again.
    rescan_due: bool,
    backlog: Arc<AtomicUsize>,
    unattempted: Arc<AtomicUsize>,
    data_version: i64,
    commits: crate::metrics::Commits,
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
    pub(super) fn new(
        store: Store,
        settings: Settings,
        events_out: mpsc::UnboundedSender<Queued>,
        commands_out: mpsc::UnboundedSender<PendingCommand>,
        backlog: Arc<AtomicUsize>,
        unattempted: Arc<AtomicUsize>,
        commits: crate::metrics::Commits,
    ) -> Result<Writer, StoreError> {
        let seen = Seen::load(&store.conn, settings.dedup_window.as_millis() as i64, now_ms())?;
        Ok(Writer {
            commits,
            data_version: 0,
            store,
            settings,
            events_out,
            commands_out,
            events_in_flight: BTreeSet::new(),
            commands_in_flight: BTreeSet::new(),
            events_mark: Mark::new("events"),
            commands_mark: Mark::new("commands"),
            seen,
            more_pending: false,
            rescan_due: false,
            backlog: backlog.clone(),
            unattempted: unattempted.clone(),
        })
    }

    /// The checkpoint thread works beside it (set after it started: its
    /// `wal_autocheckpoint` would replace the WAL hook). Wait for its lock
    /// in short steps, and count what each commit appends to the WAL
    /// (SQLite tells how many frames the WAL holds after each commit; it
    /// starts over after a restart).
    pub(super) fn beside_checkpointer(&mut self) -> Result<(), StoreError> {
        super::checkpoint::wait_briefly(&mut self.store.conn)?;
        let page_size = self
            .store
            .conn
            .pragma_query_value(None, "page_size", |row| row.get::<_, i64>(0))? as u64;
        let commits = self.commits.clone();
        let mut frames_before = 0;
        self.store
            .conn
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                let frames = frames.max(0) as u64;
                let appended = if frames >= frames_before {
                    frames - frames_before
                } else {
                    frames
                };
                frames_before = frames;
                // Each frame: a 24-byte header, then the page.
                commits.wal_written(appended * (page_size + 24));
                Ok(())
            }))?;
        Ok(())
    }

    /// The store it writes to.
    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn run(mut self, inbox: std_mpsc::Receiver<Request>) {
        let mut last_poll = Instant::now();
        let mut last_prune = Instant::now();
        // A prune under way: one chunk between batches, without waiting.
        let mut pruning = false;
        loop {
            let wait = if pruning { Duration::ZERO } else { POLL };
            let first = match inbox.recv_timeout(wait) {
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
                    self.seen.set_window(settings.dedup_window.as_millis() as i64);
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
                pruning = true;
            }
            if pruning {
                pruning = self.prune_some().unwrap_or_else(|e| {
                    tracing::error!(error = %e, "Pruning the journal failed.");
                    false
                });
            }
        }
    }

    /// Apply `batch` in one transaction; then answer and hand out. It takes
    /// the write lock as it begins (`IMMEDIATE`), waiting for it if the
    /// checkpoint thread holds it: a transaction that read first would be
    /// refused the lock outright, with no wait, and fail its requests.
    fn apply(&mut self, batch: Vec<Request>) {
        let (started, changes) = (std::time::Instant::now(), batch.len());
        let mut done = Committed::default();
        let tx = match self
            .store
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return fail(batch, &e.into()),
        };
        for request in batch {
            match request {
                Request::Append { event, json, reply } => {
                    // One write: all or nothing as it is.
                    let result = append(&tx, &mut self.seen, &event, &json);
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
                } => match all_or_nothing(&tx, processed.writes() > 1, |tx| {
                    record_processed(tx, &processed, &steps, &commands)
                }) {
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
                    // One write: all or nothing as it is.
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
            self.seen.rolled_back();
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
        self.commits.observe(started.elapsed(), changes);
        self.seen.committed(now_ms());
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
        self.events_mark.saw(queued.seq);
        if self.events_in_flight.insert(queued.seq) {
            self.backlog.fetch_add(1, Ordering::Relaxed);
            let _ = self.events_out.send(queued);
        }
    }

    fn hand_out_command(&mut self, command: PendingCommand) {
        self.commands_mark.saw(command.id);
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
        self.raise_marks()
    }

    /// Move the marks up to the first work still pending. Not while some
    /// pending events were left behind (no room, or a failed write): the
    /// writer does not know where the first of them is until it looks.
    fn raise_marks(&mut self) -> Result<(), StoreError> {
        if self.more_pending || self.rescan_due {
            return Ok(());
        }
        let conn = &self.store.conn;
        let events = self.events_mark.raise(conn, self.events_in_flight.first().copied())?;
        let commands = self
            .commands_mark
            .raise(conn, self.commands_in_flight.first().copied())?;
        // Lowered by the command line meanwhile: look from there.
        self.rescan_due = !(events && commands);
        Ok(())
    }

    /// Hand out every pending event and command not already handed out.
    pub(super) fn rescan(&mut self) -> Result<(), StoreError> {
        self.data_version = self
            .store
            .conn
            .pragma_query_value(None, "data_version", |row| row.get(0))?;
        let mut events = Vec::new();
        let mut unreadable = Vec::new();
        self.more_pending = false;
        {
            let below = self.events_mark.read(&self.store.conn)?;
            let mut statement = self.store.conn.prepare_cached(PENDING_EVENTS)?;
            let mut rows = statement.query([below])?;
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
                match stored_event(&json, row.get(3)?) {
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
                result: StepResult::Unreadable(error.to_string()),
                micros: None,
            }];
            self.store.conn.execute(
                "INSERT OR IGNORE INTO outcomes (seq, steps, processed_at) VALUES (?1, ?2, ?3)",
                params![seq, serde_json::to_string(&steps).unwrap_or_default(), now_ms()],
            )?;
        }
        if !events.is_empty() {
            tracing::info!(events = events.len(), "Processing journaled events.");
        }
        for queued in events {
            self.hand_out_event(queued);
        }

        let below = self.commands_mark.read(&self.store.conn)?;
        let commands: Vec<PendingCommand> = self
            .store
            .conn
            .prepare_cached(PENDING_COMMANDS)?
            .query_map([below], PendingCommand::from_row)?
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

    /// Forget what retention allows, all of it (at start, before serving).
    pub(super) fn prune(&mut self) -> Result<(), StoreError> {
        while self.prune_some()? {}
        Ok(())
    }

    /// Forget at most [`PRUNE_CHUNK`] commands and as many events that
    /// retention allows: commands delivered (or superseded) before it, and
    /// events processed before it with no command or dead letter left.
    /// The newest event and command always stay, so their numbers are never
    /// given out again. `true` if there may be more to forget: a large prune
    /// (the first after a long stop, or a shorter `retention`) then holds
    /// the writer for one chunk at a time, with batches in between.
    pub(super) fn prune_some(&mut self) -> Result<bool, StoreError> {
        let retained = now_ms() - self.settings.retention.as_millis() as i64;
        let tx = self
            .store
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "CREATE TEMP TABLE gone AS SELECT o.id FROM outbox o JOIN deliveries d ON d.id = o.id
             WHERE (d.state = 'delivered' OR d.dead_reason = 'superseded') AND d.done_at < ?1
               AND o.id < (SELECT max(id) FROM outbox)
             LIMIT ?2",
            params![retained, PRUNE_CHUNK],
        )?;
        let commands = tx.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM gone)", [])?;
        tx.execute_batch(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM gone);
             DROP TABLE gone;",
        )?;
        tx.execute(
            "CREATE TEMP TABLE gone AS SELECT seq FROM events e
             WHERE accepted_at < ?1 AND seq < (SELECT max(seq) FROM events)
               AND EXISTS (SELECT 1 FROM outcomes o WHERE o.seq = e.seq)
               AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.seq = e.seq)
               AND NOT EXISTS (SELECT 1 FROM dead_events WHERE dead_events.seq = e.seq)
             LIMIT ?2",
            params![retained, PRUNE_CHUNK],
        )?;
        let events = tx.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM gone)", [])?;
        tx.execute_batch(
            "DELETE FROM outcomes WHERE seq IN (SELECT seq FROM gone);
             DROP TABLE gone;",
        )?;
        tx.commit()?;
        if events + commands > 0 {
            tracing::info!(events, commands, "Pruned the journal.");
        }
        Ok(events as i64 == PRUNE_CHUNK || commands as i64 == PRUNE_CHUNK)
    }
}

/// Apply one request's statements, when there are `several`, in a
/// savepoint of the batch's transaction: all of them or, if one fails,
/// none, while the rest of the batch commits. Without it, an outcome whose
/// second command failed to insert would commit with its first. (A single
/// statement is all or nothing by itself.)
fn all_or_nothing<T>(
    tx: &rusqlite::Connection,
    several: bool,
    change: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !several {
        return change(tx);
    }
    tx.prepare_cached("SAVEPOINT request")?.execute([])?;
    match change(tx) {
        Ok(result) => {
            tx.prepare_cached("RELEASE request")?.execute([])?;
            Ok(result)
        }
        Err(error) => {
            tx.prepare_cached("ROLLBACK TO request")?.execute([])?;
            tx.prepare_cached("RELEASE request")?.execute([])?;
            Err(error)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands of events past their retention are forgotten a chunk per
    /// transaction; what is still pending, and the newest event, stay.
    #[test]
    fn a_large_prune_goes_a_chunk_at_a_time_and_keeps_what_is_pending() {
        let store = Store::memory().unwrap();
        let two_hours_ago = now_ms() - 2 * 3_600_000;
        let newest = 2 * PRUNE_CHUNK + 501;
        store
            .conn
            .execute(
                "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1)
                 INSERT INTO events (seq, id_hash, source, event_id, kind, received_at, accepted_at, event, raw)
                 SELECT i, i, 'office', 'e-' || i, 'access.granted', ?2, ?2, '{}', '' FROM k",
                params![newest, two_hours_ago],
            )
            .unwrap();
        // Event 5's commands, all delivered two hours ago.
        let commands = PRUNE_CHUNK + 10;
        store
            .conn
            .execute_batch(&format!(
                "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {commands})
                 INSERT INTO outbox (id, seq, plugin, idx, sink, idempotency_key, command, received_at, created_at)
                 SELECT i, 5, 'p', i, 's', 'key-' || i, '{{}}', {two_hours_ago}, {two_hours_ago} FROM k;
                 INSERT INTO deliveries (id, state, done_at) SELECT id, 'delivered', {two_hours_ago} FROM outbox;"
            ))
            .unwrap();
        // Every event ran but number 7.
        store
            .conn
            .execute(
                "INSERT INTO outcomes (seq, steps, processed_at) SELECT seq, '[]', ?1 FROM events WHERE seq <> 7",
                [two_hours_ago],
            )
            .unwrap();
        let settings = Settings {
            dedup_window: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
            capacity: 16,
        };
        let (events_out, _events) = mpsc::unbounded_channel();
        let (commands_out, _commands) = mpsc::unbounded_channel();
        let mut writer = Writer::new(
            store,
            settings,
            events_out,
            commands_out,
            Arc::default(),
            Arc::default(),
            Default::default(),
        )
        .unwrap();
        let left = |writer: &Writer| -> Vec<i64> {
            let mut statement = writer
                .store
                .conn
                .prepare("SELECT seq FROM events ORDER BY seq")
                .unwrap();
            statement
                .query_map([], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };

        let count = |writer: &Writer, table: &str| -> i64 {
            let sql = format!("SELECT count(*) FROM {table}");
            writer.store.conn.query_row(&sql, [], |row| row.get(0)).unwrap()
        };

        assert!(writer.prune_some().unwrap(), "more is left after one chunk");
        assert_eq!(count(&writer, "events"), newest - PRUNE_CHUNK);
        assert_eq!(count(&writer, "outbox"), commands - PRUNE_CHUNK);
        writer.prune().unwrap();
        assert_eq!(
            left(&writer),
            vec![5, 7, newest],
            "the event whose (newest) command stays, the pending event and the newest stay"
        );
        assert_eq!(count(&writer, "outbox"), 1, "the newest command stays");
        assert_eq!(count(&writer, "deliveries"), 1);
        assert!(!writer.prune_some().unwrap(), "nothing more to forget");
        assert_eq!(count(&writer, "outcomes"), 2, "event 5's and the newest's");
    }
}
