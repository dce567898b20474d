//! The running host's side of the cluster store: ingest publishes events
//! and waits for JetStream's acknowledgement (stored on a majority of the
//! servers); pull loops hand this node the events and commands of the
//! partitions it wins, one at a time per partition; what the pipeline and
//! the outbox did is published before the message is acknowledged, so a
//! node that dies mid-way leaves the message to be handed to another after
//! `ack_wait`, which runs it again with the same idempotency keys.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::held::{Held, Write, Writes, keep_alive};
use super::publish::{publish, record, record_delivery};
use super::pull::{CommandHandler, EventHandler, Puller};
use super::wire;
use super::{Cluster, Layout, STARTUP_PATIENCE};
use crate::event::{Event, IdKey};
use crate::store::{
    Appended, DeliveryUpdate, Journal, JournalFeeds, Pending, PendingCommand, Processed, Settings, StoreError,
};

/// The handle the rest of the host writes through. Cheap to share.
pub struct NatsJournal {
    cluster: Cluster,
    id_key: IdKey,
    held: Arc<Held>,
    backlog: Arc<AtomicUsize>,
    unattempted: Arc<AtomicUsize>,
    writes: Arc<Writes>,
    /// Turns true when the node stops taking work.
    stop: watch::Sender<bool>,
    /// Turns true when the journal closes: what it holds is let go.
    closed: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    /// An event's commit is its publication's acknowledgement.
    commits: crate::metrics::Commits,
}

impl NatsJournal {
    /// Connect, create or update the streams and consumers, and start
    /// pulling work.
    pub async fn start(
        cluster: Cluster,
        _settings: Settings,
        commits: crate::metrics::Commits,
    ) -> Result<(NatsJournal, JournalFeeds), StoreError> {
        // A node may start with the cluster, before it has elected its
        // leaders: keep trying for a while, saying why.
        let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
        let id_key = loop {
            let ready = async {
                cluster.ensure().await?;
                cluster.id_key().await
            };
            match ready.await {
                Ok(key) => break key,
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
        let journal = NatsJournal {
            cluster,
            id_key,
            held: Arc::default(),
            backlog: Arc::default(),
            unattempted: Arc::default(),
            writes: Arc::default(),
            stop,
            closed,
            tasks: Mutex::new(JoinSet::new()),
            commits,
        };
        {
            let mut tasks = journal.tasks.lock().unwrap_or_else(|e| e.into_inner());
            let layout = journal.cluster.layout().clone();
            let events_stream = layout.stream("EVENTS");
            let commands_stream = layout.stream("COMMANDS");
            for p in 0..layout.partitions {
                let puller = journal.puller(&events_stream, Layout::event_consumer(p), stopping.clone());
                let handler = EventHandler {
                    held: journal.held.clone(),
                    backlog: journal.backlog.clone(),
                    feed: events_out.clone(),
                };
                tasks.spawn(puller.run(move |message| handler.take(message)));
            }
            for p in 0..layout.partitions {
                let puller = journal.puller(&commands_stream, Layout::command_consumer(p), stopping.clone());
                let handler = journal.command_handler(&commands_out, false);
                tasks.spawn(puller.run(move |message| {
                    let handler = handler.clone();
                    async move { handler.take(message).await }
                }));
            }
            let puller = journal.puller(&commands_stream, Layout::DELAYED_CONSUMER.into(), stopping.clone());
            let handler = journal.command_handler(&commands_out, true);
            tasks.spawn(puller.run(move |message| {
                let handler = handler.clone();
                async move { handler.take(message).await }
            }));
            tasks.spawn(keep_alive(
                journal.held.clone(),
                journal.cluster.settings.ack_wait,
                closing,
            ));
        }
        Ok((journal, JournalFeeds { events, commands }))
    }

    fn puller(&self, stream: &str, consumer: String, stop: watch::Receiver<bool>) -> Puller {
        Puller {
            cluster: self.cluster.clone(),
            stream: stream.to_string(),
            consumer,
            stop,
        }
    }

    fn command_handler(&self, feed: &mpsc::UnboundedSender<PendingCommand>, delayed: bool) -> Arc<CommandHandler> {
        Arc::new(CommandHandler {
            cluster: self.cluster.clone(),
            held: self.held.clone(),
            unattempted: self.unattempted.clone(),
            writes: self.writes.clone(),
            feed: feed.clone(),
            delayed,
        })
    }

    /// What `/admin/status` shows of the cluster: this node, the server it
    /// talks to, every stream and every consumer's backlog.
    async fn cluster_status(&self) -> serde_json::Value {
        let info = self.cluster.client.server_info();
        let mut streams = Vec::new();
        for wanted in self.cluster.wanted_streams() {
            let entry = match self.cluster.js.get_stream(&wanted.name).await {
                Ok(mut stream) => match stream.info().await {
                    Ok(info) => serde_json::json!({
                        "name": wanted.name,
                        "messages": info.state.messages,
                        "replicas": info.config.num_replicas,
                        "leader": info.cluster.as_ref().and_then(|c| c.leader.clone()),
                    }),
                    Err(e) => serde_json::json!({ "name": wanted.name, "error": e.to_string() }),
                },
                Err(e) => serde_json::json!({ "name": wanted.name, "error": e.to_string() }),
            };
            streams.push(entry);
        }
        let mut consumers = Vec::new();
        for (stream, config) in self.cluster.wanted_consumers() {
            let name = config.durable_name.unwrap_or_default();
            let entry = match self.cluster.js.get_stream_no_info(&stream).await {
                Ok(handle) => match handle.consumer_info(&name).await {
                    Ok(info) => serde_json::json!({
                        "stream": stream,
                        "name": name,
                        "pending": info.num_pending,
                        "ack_pending": info.num_ack_pending,
                        "redelivered": info.num_redelivered,
                    }),
                    Err(e) => serde_json::json!({ "stream": stream, "name": name, "error": e.to_string() }),
                },
                Err(e) => serde_json::json!({ "stream": stream, "name": name, "error": e.to_string() }),
            };
            consumers.push(entry);
        }
        serde_json::json!({
            "backend": "nats",
            "node": self.cluster.settings.node,
            "server": { "name": info.server_name, "version": info.version, "cluster": info.cluster },
            "connection": format!("{:?}", self.cluster.client.connection_state()),
            "replicas": self.cluster.settings.replicas,
            "partitions": self.cluster.layout().partitions,
            "streams": streams,
            "consumers": consumers,
        })
    }
}

impl Journal for NatsJournal {
    fn append(&self, event: Event) -> Pending<'_, Result<Appended, StoreError>> {
        Box::pin(async move {
            let payload = wire::encode("event", &event)?;
            let layout = self.cluster.layout();
            let subject = layout.event_subject(&event.source, &event.lane());
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
        let Some(held) = self
            .held
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&processed.seq)
        else {
            tracing::warn!(
                seq = processed.seq,
                "An outcome for an event this node does not hold; ignored."
            );
            return;
        };
        let write = Write::start(&self.writes);
        let cluster = self.cluster.clone();
        let backlog = self.backlog.clone();
        tokio::spawn(async move {
            let _write = write;
            let message = held.message.clone();
            match record(&cluster, &held, processed).await {
                Ok(()) => {
                    if let Err(e) = message.double_ack().await {
                        // Handed out again after `ack_wait`, and run again
                        // with the same keys: stored once.
                        tracing::warn!(error = %e, "Acknowledging an event failed; it will run again.");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "Recording an outcome failed; the event will run again.");
                    let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
            }
            backlog.fetch_sub(1, Ordering::Relaxed);
        });
    }

    fn delivery(&self, id: i64, update: DeliveryUpdate) {
        let finished = !matches!(update, DeliveryUpdate::Retry { .. });
        let held = {
            let mut commands = self.held.commands.lock().unwrap_or_else(|e| e.into_inner());
            if finished {
                commands.remove(&id).map(|h| (h.message, h.command))
            } else {
                commands.get(&id).map(|h| (h.message.clone(), h.command.clone()))
            }
        };
        let Some((message, command)) = held else {
            return;
        };
        let write = Write::start(&self.writes);
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            let _write = write;
            record_delivery(&cluster, &message, command, id as u64, update).await;
        });
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
        Box::pin(self.cluster_status())
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
            // What this node still holds goes to another node now, not
            // after `ack_wait`.
            let events: Vec<_> = self
                .held
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .collect();
            let commands: Vec<_> = self
                .held
                .commands
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .collect();
            for (_, held) in events {
                let _ = held.message.ack_with(AckKind::Nak(None)).await;
            }
            for (_, held) in commands {
                let _ = held.message.ack_with(AckKind::Nak(None)).await;
            }
            let _ = self.cluster.client.flush().await;
        })
    }
}
