//! The running host's side of the cluster store: ingest publishes events
//! and waits for JetStream's acknowledgement (stored on a majority of the
//! servers); this node reads the events and pulls the commands of the
//! partitions it owns (see `owner`), many at a time, and the dispatcher and
//! the outbox keep each door's in order. What the pipeline did is
//! published, one door's outcomes in order, before the partition's floor
//! passes the event (see `floor`); what the outbox did, before the command
//! is acknowledged. A node that dies mid-way leaves its partitions, with
//! what it had not finished, to another node, which runs that again under
//! the same idempotency keys.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::events::{EventHandler, EventReader};
use super::held::{Held, Write, Writes, keep_alive};
use super::leases::Leases;
use super::owner::{Ownership, Starter};
use super::publish::{publish, record_delivery};
use super::pull::{CommandHandler, Puller};
use super::settle::{Done, Outcome, settle, write_outcomes};
use super::wire;
use super::{Cluster, Layout, STARTUP_PATIENCE};
use crate::event::{Event, IdKey};
use crate::lanes::Lanes;
use crate::store::{Appended, DeliveryUpdate, Journal, JournalFeeds, Pending, Processed, Settings, StoreError};

/// The handle the rest of the host writes through. Cheap to share.
pub struct NatsJournal {
    cluster: Cluster,
    id_key: IdKey,
    held: Arc<Held>,
    backlog: Arc<AtomicUsize>,
    unattempted: Arc<AtomicUsize>,
    writes: Arc<Writes>,
    ownership: Arc<Ownership>,
    /// Outcomes by door, written one after the other.
    outcomes: Lanes<(String, String), Outcome>,
    /// Turns true when the node stops taking work.
    stop: watch::Sender<bool>,
    /// Turns true when the journal closes: what it holds is let go.
    closed: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    /// An event's commit is its publication's acknowledgement.
    commits: crate::metrics::Commits,
}

/// Messages a partition's puller asks for at once.
const PARTITION_BATCH: usize = 64;

impl NatsJournal {
    /// Connect, create or update the streams and consumers, and start
    /// taking this node's share of the partitions.
    pub async fn start(
        cluster: Cluster,
        _settings: Settings,
        commits: crate::metrics::Commits,
    ) -> Result<(NatsJournal, JournalFeeds), StoreError> {
        // A node may start with the cluster, before it has elected its
        // leaders: keep trying for a while, saying why.
        let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
        let (id_key, owners) = loop {
            let ready = async {
                cluster.ensure().await?;
                Ok::<_, StoreError>((cluster.id_key().await?, cluster.owners().await?))
            };
            match ready.await {
                Ok(ready) => break ready,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "The cluster is not ready; trying again.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (events_out, events) = mpsc::unbounded_channel();
        let (commands_out, commands) = mpsc::unbounded_channel();
        let (stop, stopping) = watch::channel(false);
        let (closed, closing) = watch::channel(false);
        let held = Arc::<Held>::default();
        let backlog = Arc::<AtomicUsize>::default();
        let unattempted = Arc::<AtomicUsize>::default();
        let writes = Arc::<Writes>::default();
        let command_handler = {
            let (cluster, held, unattempted, writes) =
                (cluster.clone(), held.clone(), unattempted.clone(), writes.clone());
            move |partition, recheck_through| {
                Arc::new(CommandHandler {
                    cluster: cluster.clone(),
                    held: held.clone(),
                    unattempted: unattempted.clone(),
                    writes: writes.clone(),
                    feed: commands_out.clone(),
                    partition,
                    recheck_through: Arc::new(AtomicU64::new(recheck_through)),
                })
            }
        };
        let leases = Arc::<Leases>::default();
        let puller = {
            let (cluster, leases) = (cluster.clone(), leases.clone());
            move |stream: &str, consumer: String, partition: Option<u32>, stop: watch::Receiver<bool>| Puller {
                cluster: cluster.clone(),
                stream: cluster.layout().stream(stream),
                consumer,
                batch: if partition.is_some() { PARTITION_BATCH } else { 1 },
                stop,
                owner: partition.map(|p| (leases.clone(), p)),
                recheck: None,
            }
        };
        let delayed = puller("COMMANDS", Layout::DELAYED_CONSUMER.into(), None, stopping.clone());
        let delayed_handler = command_handler(None, 0);
        let start: Starter = {
            let (cluster, held, backlog, leases) = (cluster.clone(), held.clone(), backlog.clone(), leases.clone());
            Box::new(move |p, taken, stop| {
                let events = EventReader {
                    cluster: cluster.clone(),
                    partition: p,
                    floor: taken.floor.clone(),
                    lookup: taken.lookup,
                    leases: leases.clone(),
                    stop: stop.clone(),
                    handler: EventHandler {
                        partition: p,
                        held: held.clone(),
                        backlog: backlog.clone(),
                        feed: events_out.clone(),
                    },
                };
                let commands = command_handler(Some(p), taken.recheck_commands);
                let commands_puller = Puller {
                    recheck: Some(commands.recheck_through.clone()),
                    ..puller("COMMANDS", Layout::command_consumer(p), Some(p), stop.clone())
                };
                vec![
                    tokio::spawn(events.run()),
                    tokio::spawn(commands_puller.run(move |message| {
                        let commands = commands.clone();
                        async move { commands.take(message).await }
                    })),
                ]
            })
        };
        let ownership = Arc::new(Ownership::new(
            cluster.clone(),
            owners,
            leases,
            held.clone(),
            backlog.clone(),
            start,
        ));
        let mut tasks = JoinSet::new();
        tasks.spawn(ownership.clone().run(stopping.clone(), closing.clone()));
        tasks.spawn(delayed.run(move |message| {
            let handler = delayed_handler.clone();
            async move { handler.take(message).await }
        }));
        tasks.spawn(keep_alive(held.clone(), cluster.settings.ack_wait, closing));
        let journal = NatsJournal {
            cluster,
            id_key,
            held,
            backlog,
            unattempted,
            writes,
            ownership,
            outcomes: Lanes::default(),
            stop,
            closed,
            tasks: Mutex::new(tasks),
            commits,
        };
        Ok((journal, JournalFeeds { events, commands }))
    }
}

impl Journal for NatsJournal {
    fn append(&self, event: Event) -> Pending<'_, Result<Appended, StoreError>> {
        Box::pin(async move {
            let payload = wire::encode("event", &event)?;
            let layout = self.cluster.layout();
            let subject = layout.event_subject(&event.source, &event.lane(), &event.id);
            let id = Layout::event_msg_id(&event.source, &event.id);
            let started = std::time::Instant::now();
            let ack = publish(&self.cluster, subject, &id, None, payload).await?;
            self.commits.observe(started.elapsed(), 1);
            if ack.duplicate {
                Ok(Appended::Duplicate)
            } else {
                Ok(Appended::Accepted {
                    seq: ack.sequence as i64,
                })
            }
        })
    }

    fn processed(&self, processed: Processed) {
        let held = self
            .held
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&processed.seq);
        let Some(held) = held else {
            // Its partition went to another node meanwhile, which runs it.
            tracing::debug!(
                seq = processed.seq,
                "An outcome for an event this node no longer holds; not written."
            );
            return;
        };
        let door = held.door.clone();
        let write = Write::start(&self.writes);
        if self.outcomes.push(door.clone(), (held, processed, write)) {
            tokio::spawn(write_outcomes(
                door,
                self.outcomes.clone(),
                self.cluster.clone(),
                self.ownership.clone(),
                self.backlog.clone(),
            ));
        }
    }

    fn delivery(&self, id: i64, update: DeliveryUpdate) {
        let finished = !matches!(update, DeliveryUpdate::Retry { .. });
        let held = {
            let mut commands = self.held.commands.lock().unwrap_or_else(|e| e.into_inner());
            if finished {
                commands.remove(&id).map(|h| (h.message, h.command, h.partition))
            } else {
                commands
                    .get(&id)
                    .map(|h| (h.message.clone(), h.command.clone(), h.partition))
            }
        };
        let Some((message, command, partition)) = held else {
            return;
        };
        let write = Write::start(&self.writes);
        let cluster = self.cluster.clone();
        let ownership = self.ownership.clone();
        tokio::spawn(async move {
            let _write = write;
            let record = || record_delivery(&cluster, &command, id as u64, &update);
            if finished {
                settle(Done::Ack(&message), partition, &ownership, record).await;
            } else if let Err(e) = record().await {
                // The outbox still holds it and tries again; only another
                // node taking it over would start the count again.
                tracing::warn!(error = %e, "Recording a retry failed.");
            }
        });
    }

    fn holds(&self, id: i64) -> bool {
        let commands = self.held.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands
            .get(&id)
            .is_some_and(|held| held.partition.is_none_or(|p| self.ownership.keeps(p)))
    }

    fn configure(&self, _settings: Settings) {
        // The streams' windows are set at start; the reloader says a
        // changed [store] needs a restart.
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
        true
    }

    fn quiesce(&self) {
        let _ = self.stop.send(true);
    }

    fn status(&self) -> Pending<'_, serde_json::Value> {
        Box::pin(self.cluster.status(self.ownership.owned(), self.ownership.floors()))
    }

    fn close(&self) -> Pending<'_, ()> {
        let _ = self.stop.send(true);
        let _ = self.closed.send(true);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        Box::pin(async move {
            while tasks.join_next().await.is_some() {}
            loop {
                let idle = self.writes.idle.notified();
                if self.writes.count.load(Ordering::SeqCst) == 0 {
                    break;
                }
                if tokio::time::timeout(Duration::from_secs(10), idle).await.is_err() {
                    tracing::warn!("Writes to the cluster still unfinished after 10s; what they were for runs again.");
                    break;
                }
            }
            // Delayed commands still held go back to any node now, not
            // after `ack_wait`; the partitions go to the other nodes with
            // what is held of them.
            let delayed: Vec<_> = {
                let mut commands = self.held.commands.lock().unwrap_or_else(|e| e.into_inner());
                let keys: Vec<i64> = commands
                    .iter()
                    .filter(|(_, h)| h.partition.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                keys.into_iter().filter_map(|k| commands.remove(&k)).collect()
            };
            for held in delayed {
                let _ = held.message.ack_with(AckKind::Nak(None)).await;
            }
            self.ownership.release_all().await;
            let _ = self.cluster.client.flush().await;
        })
    }
}
