//! The running host's side of the cluster store: ingest publishes events
//! and waits for JetStream's acknowledgement (stored on a majority of the
//! servers); pull loops hand this node the events and commands of the
//! partitions it wins, one at a time per partition; what the pipeline and
//! the outbox did is published before the message is acknowledged, so a
//! node that dies mid-way leaves the message to be handed to another after
//! `ack_wait`, which runs it again with the same idempotency keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{AckKind, Message, context::PublishError};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use super::wire::{self, CommandMsg, CommandState, DeadCommandMsg, DeadEventMsg, RunCommand, RunMsg, StateMsg};
use super::{Cluster, Layout, PUBLISH_PATIENCE, STARTUP_PATIENCE, missing};
use crate::event::{Event, IdKey};
use crate::store::{
    Appended, DeliveryUpdate, Journal, JournalFeeds, Pending, PendingCommand, Processed, Queued, Settings, StoreError,
};
use crate::time::now_ms;

/// An event this node is working on.
struct HeldEvent {
    message: Arc<Message>,
    origin: i64,
    run: i64,
}

/// A command this node's outbox is delivering.
struct HeldCommand {
    message: Arc<Message>,
    command: CommandMsg,
}

#[derive(Default)]
struct Held {
    /// By `EVENTS` sequence.
    events: Mutex<HashMap<i64, HeldEvent>>,
    /// By `COMMANDS` sequence.
    commands: Mutex<HashMap<i64, HeldCommand>>,
}

/// Writes started and not yet finished: close waits for them.
#[derive(Default)]
struct Writes {
    count: AtomicUsize,
    idle: Notify,
}

struct Write(Arc<Writes>);

impl Write {
    fn start(writes: &Arc<Writes>) -> Write {
        writes.count.fetch_add(1, Ordering::SeqCst);
        Write(writes.clone())
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

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
            let seq = id as u64;
            let layout = cluster.layout();
            let state = |state, attempts, first_attempt_at, next_at, error| StateMsg {
                state,
                attempts,
                first_attempt_at,
                next_at,
                error,
                at: now_ms(),
            };
            let result = match update {
                DeliveryUpdate::Retry {
                    attempts,
                    first_attempt_at,
                    next_at,
                    error,
                } => {
                    let retrying = state(
                        CommandState::Retrying,
                        attempts,
                        Some(first_attempt_at),
                        next_at,
                        Some(error),
                    );
                    // Kept: the outbox waits and tries again; the state is
                    // what another node continues from if this one dies.
                    return report(record_state(&cluster, seq, &retrying).await);
                }
                DeliveryUpdate::Delivered { attempts } => {
                    record_state(&cluster, seq, &state(CommandState::Delivered, attempts, None, 0, None)).await
                }
                DeliveryUpdate::Superseded => {
                    record_state(&cluster, seq, &state(CommandState::Superseded, 0, None, 0, None)).await
                }
                DeliveryUpdate::Dead {
                    attempts,
                    reason,
                    error,
                } => {
                    let dead = DeadCommandMsg {
                        command_seq: seq,
                        command,
                        attempts,
                        reason,
                        error: error.clone(),
                        at: now_ms(),
                    };
                    let stored = match wire::encode("dead letter", &dead) {
                        Ok(payload) => publish(
                            &cluster,
                            layout.dead_command_subject(seq),
                            &format!("dead:{seq}"),
                            None,
                            payload,
                        )
                        .await
                        .map(drop),
                        Err(e) => Err(e),
                    };
                    match stored {
                        Ok(()) => {
                            let dead = state(CommandState::Dead, attempts, None, 0, Some(error));
                            record_state(&cluster, seq, &dead).await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match result {
                Ok(()) => {
                    if let Err(e) = message.double_ack().await {
                        tracing::warn!(error = %e, "Acknowledging a command failed; it may be tried again.");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "Recording a delivery failed; the command will be tried again.");
                    let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
                }
            }
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

fn report(result: Result<(), StoreError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "Recording a retry failed; another node would start the count again.");
    }
}

/// Store what a run did: its commands (each once, by idempotency key), a
/// dead event if a plugin stopped it, and the run itself.
async fn record(cluster: &Cluster, held: &HeldEvent, processed: Processed) -> Result<(), StoreError> {
    let layout = cluster.layout();
    let message_seq = held.message.info().map(|i| i.stream_sequence).unwrap_or(0);
    let created_at = now_ms();
    let mut commands = Vec::with_capacity(processed.commands.len());
    for c in processed.commands {
        let subject = if c.delay_ms > 0 {
            layout.delayed_subject(&c.plugin, &c.command.sink, &c.door)
        } else {
            layout.command_subject(&c.command.sink, &c.door)
        };
        let body = c.command.body.clone();
        let sink = c.command.sink.clone();
        let slot = layout.slot_subject(&c.plugin, &sink, &c.door);
        let stored = CommandMsg {
            event_seq: held.origin,
            key: c.key.clone(),
            plugin: c.plugin.clone(),
            door: c.door.clone(),
            command: c.command,
            delay_ms: c.delay_ms,
            received_at: processed.received_at,
            created_at,
        };
        let ack = publish(cluster, subject, &c.key, None, wire::encode("command", &stored)?).await?;
        if c.delay_ms > 0 {
            // This one replaces any earlier delayed command of its slot.
            publish(
                cluster,
                slot,
                &format!("slot:{}", ack.sequence),
                None,
                ack.sequence.to_string().into(),
            )
            .await?;
        }
        commands.push(RunCommand {
            seq: ack.sequence,
            key: c.key,
            plugin: c.plugin,
            sink,
            door: c.door,
            body,
            due_at: processed.received_at + c.delay_ms as i64,
        });
    }
    if let Some(dead) = processed.dead_letter {
        let event: Event = wire::decode("event", &held.message.payload)?;
        let stored = DeadEventMsg {
            event_seq: held.origin,
            run: held.run,
            event,
            plugin: dead.plugin,
            reason: dead.reason.to_string(),
            error: dead.error,
            at: now_ms(),
        };
        publish(
            cluster,
            layout.dead_event_subject(held.origin),
            &format!("dead-event:{message_seq}"),
            None,
            wire::encode("dead event", &stored)?,
        )
        .await?;
    }
    let run = RunMsg {
        event_seq: held.origin,
        message_seq,
        run: held.run,
        steps: processed.steps,
        commands,
        processed_at: now_ms(),
        node: cluster.settings.node.clone(),
    };
    publish(
        cluster,
        layout.run_subject(held.origin),
        &format!("run:{message_seq}"),
        None,
        wire::encode("run", &run)?,
    )
    .await?;
    Ok(())
}

async fn record_state(cluster: &Cluster, seq: u64, state: &StateMsg) -> Result<(), StoreError> {
    let id = format!("state:{seq}:{:?}:{}", state.state, state.attempts);
    publish(
        cluster,
        cluster.layout().state_subject(seq),
        &id,
        None,
        wire::encode("state", state)?,
    )
    .await
    .map(drop)
}

/// Publish and wait for JetStream's acknowledgement, trying again with the
/// same `Nats-Msg-Id` while no server answers (a leader election, a
/// reconnect), for up to [`PUBLISH_PATIENCE`].
pub(super) async fn publish(
    cluster: &Cluster,
    subject: String,
    msg_id: &str,
    headers: Option<HeaderMap>,
    payload: Bytes,
) -> Result<async_nats::jetstream::publish::PublishAck, StoreError> {
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut wait = Duration::from_millis(50);
    loop {
        let publish = PublishMessage::build()
            .payload(payload.clone())
            .headers(headers.clone().unwrap_or_default())
            .message_id(msg_id);
        let result: Result<_, PublishError> =
            async { cluster.js.send_publish(subject.clone(), publish).await?.await }.await;
        match result {
            Ok(ack) => return Ok(ack),
            Err(e) if retryable(&e) && tokio::time::Instant::now() + wait < deadline => {
                tracing::debug!(%subject, error = %e, "Publish not acknowledged; trying again.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(StoreError::Cluster(format!("publishing to {subject}: {e}"))),
        }
    }
}

fn retryable(error: &PublishError) -> bool {
    !matches!(
        error.kind(),
        PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence
            | PublishErrorKind::MaxPayloadExceeded
    )
}

/// One durable consumer, pulled from until the node stops; it is looked up
/// again after any error (a server gone, a consumer leader moved).
struct Puller {
    cluster: Cluster,
    stream: String,
    consumer: String,
    stop: watch::Receiver<bool>,
}

impl Puller {
    async fn run<F, Fut>(mut self, mut take: F)
    where
        F: FnMut(Message) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut failures = 0u32;
        while !*self.stop.borrow() {
            let (js, stream, name) = (self.cluster.js.clone(), self.stream.clone(), self.consumer.clone());
            let messages = async move {
                let stream = js.get_stream_no_info(&stream).await.map_err(|e| e.to_string())?;
                let consumer: PullConsumer = stream.get_consumer(&name).await.map_err(|e| e.to_string())?;
                consumer
                    .stream()
                    .max_messages_per_batch(1)
                    .heartbeat(Duration::from_secs(5))
                    .expires(Duration::from_secs(30))
                    .messages()
                    .await
                    .map_err(|e| e.to_string())
            };
            let messages = tokio::select! {
                messages = messages => messages,
                _ = self.stop.wait_for(|stop| *stop) => return,
            };
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(error) => {
                    failures += 1;
                    if failures % 10 == 1 {
                        tracing::warn!(consumer = %self.consumer, %error, "Cannot pull from the cluster; trying again.");
                    }
                    self.pause(failures).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = self.stop.wait_for(|stop| *stop) => return,
                };
                match next {
                    Some(Ok(message)) => {
                        failures = 0;
                        take(message).await;
                    }
                    Some(Err(error)) => {
                        failures += 1;
                        tracing::debug!(consumer = %self.consumer, %error, "Pulling interrupted; pulling again.");
                        break;
                    }
                    None => break,
                }
            }
            self.pause(failures).await;
        }
    }

    async fn pause(&mut self, failures: u32) {
        let wait = Duration::from_millis(100 * u64::from(failures.min(20)));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.stop.wait_for(|stop| *stop) => {}
        }
    }
}

/// Hands the events of this node's partitions to the dispatcher.
struct EventHandler {
    held: Arc<Held>,
    backlog: Arc<AtomicUsize>,
    feed: mpsc::UnboundedSender<Queued>,
}

impl EventHandler {
    fn take(&self, message: Message) -> std::future::Ready<()> {
        let Ok(info) = message.info().map(|i| i.stream_sequence) else {
            return std::future::ready(());
        };
        let seq = info as i64;
        let event: Event = match wire::decode("event", &message.payload) {
            Ok(event) => event,
            Err(e) => {
                // Written by a Vestibule of another version, or by hand:
                // it cannot run, and must not hold its partition up.
                tracing::error!(seq, error = %e, "An event in the cluster cannot be read; it is skipped.");
                let message = Arc::new(message);
                tokio::spawn(async move { message.ack_with(AckKind::Term).await });
                return std::future::ready(());
            }
        };
        let (run, origin) = wire::run_of(message.headers.as_ref(), seq);
        let message = Arc::new(message);
        self.held
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, HeldEvent { message, origin, run });
        self.backlog.fetch_add(1, Ordering::Relaxed);
        let _ = self.feed.send(Queued { seq, run, event });
        std::future::ready(())
    }
}

/// Hands commands to the outbox: those of this node's partitions, and
/// delayed ones once they are due.
struct CommandHandler {
    cluster: Cluster,
    held: Arc<Held>,
    unattempted: Arc<AtomicUsize>,
    writes: Arc<Writes>,
    feed: mpsc::UnboundedSender<PendingCommand>,
    delayed: bool,
}

impl CommandHandler {
    async fn take(&self, message: Message) {
        let Ok((seq, delivered)) = message.info().map(|i| (i.stream_sequence, i.delivered)) else {
            return;
        };
        let command: CommandMsg = match wire::decode("command", &message.payload) {
            Ok(command) => command,
            Err(e) => {
                tracing::error!(seq, error = %e, "A command in the cluster cannot be read; it is skipped.");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        // Handed out before: another node may have tried it, or finished.
        let state = if delivered > 1 { self.state(seq).await } else { None };
        if let Some(state) = &state
            && state.state != CommandState::Retrying
        {
            let _ = message.double_ack().await;
            return;
        }
        let attempts = state.as_ref().map_or(0, |s| s.attempts);
        let next_at = state
            .as_ref()
            .map_or(command.received_at + command.delay_ms as i64, |s| s.next_at);
        if self.delayed && attempts == 0 {
            let wait = next_at - now_ms();
            if wait > 20 {
                // JetStream keeps it until it is due, on no node's clock.
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_millis(wait as u64))))
                    .await;
                return;
            }
            if self.superseded(&command, seq).await {
                let _write = Write::start(&self.writes);
                let superseded = StateMsg {
                    state: CommandState::Superseded,
                    attempts: 0,
                    first_attempt_at: None,
                    next_at: 0,
                    error: None,
                    at: now_ms(),
                };
                tracing::debug!(sink = %command.command.sink, key = %command.key, "Delayed command replaced by a later one.");
                if record_state(&self.cluster, seq, &superseded).await.is_ok() {
                    let _ = message.double_ack().await;
                }
                return;
            }
        }
        let pending = PendingCommand {
            id: seq as i64,
            key: command.key.clone(),
            plugin: command.plugin.clone(),
            door: command.door.clone(),
            command: command.command.clone(),
            delay_ms: command.delay_ms,
            received_at: command.received_at,
            attempts,
            first_attempt_at: state.as_ref().and_then(|s| s.first_attempt_at),
            next_at,
        };
        self.held.commands.lock().unwrap_or_else(|e| e.into_inner()).insert(
            seq as i64,
            HeldCommand {
                message: Arc::new(message),
                command,
            },
        );
        self.unattempted.fetch_add(1, Ordering::Relaxed);
        let _ = self.feed.send(pending);
    }

    async fn state(&self, seq: u64) -> Option<StateMsg> {
        let stream = self.cluster.stream("STATE").await.ok()?;
        match stream
            .get_last_raw_message_by_subject(&self.cluster.layout().state_subject(seq))
            .await
        {
            Ok(message) => wire::decode("state", &message.payload).ok(),
            Err(e) if missing(&e) => None,
            Err(e) => {
                tracing::warn!(seq, error = %e, "Cannot read a command's attempts; counting from zero.");
                None
            }
        }
    }

    /// Whether a later delayed command took this one's (plugin, sink, door).
    async fn superseded(&self, command: &CommandMsg, seq: u64) -> bool {
        let Ok(stream) = self.cluster.stream("STATE").await else {
            return false;
        };
        let slot = self
            .cluster
            .layout()
            .slot_subject(&command.plugin, &command.command.sink, &command.door);
        match stream.get_last_raw_message_by_subject(&slot).await {
            Ok(last) => std::str::from_utf8(&last.payload)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|newest| newest > seq),
            Err(_) => false,
        }
    }
}

/// Tell the cluster this node is still working on what it holds, so that
/// a long wait for a sink's retry is not mistaken for a dead node.
async fn keep_alive(held: Arc<Held>, ack_wait: Duration, mut stop: watch::Receiver<bool>) {
    let every = ack_wait / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let messages: Vec<Arc<Message>> = {
            let events = held.events.lock().unwrap_or_else(|e| e.into_inner());
            let commands = held.commands.lock().unwrap_or_else(|e| e.into_inner());
            events
                .values()
                .map(|h| h.message.clone())
                .chain(commands.values().map(|h| h.message.clone()))
                .collect()
        };
        for message in messages {
            let _ = message.ack_with(AckKind::Progress).await;
        }
    }
}
