//! The pull loops of the commands: each durable consumer of this node's
//! partitions, and the delayed commands' one, is pulled from until the
//! node stops, and what arrives is handed to the outbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::held::{Held, HeldCommand, Write, Writes};
use super::leases::Leases;
use super::publish::record_state;
use super::wire::{self, CommandMsg, CommandState, StateMsg};
use super::{Cluster, missing};
use crate::store::PendingCommand;
use crate::time::now_ms;

/// One durable consumer, pulled from until the node stops; it is looked up
/// again after any error (a server gone, a consumer leader moved).
pub(super) struct Puller {
    pub(super) cluster: Cluster,
    pub(super) stream: String,
    pub(super) consumer: String,
    /// Messages asked for at once: one for the consumer every node shares,
    /// more for a partition's, which only its owner pulls.
    pub(super) batch: usize,
    pub(super) stop: watch::Receiver<bool>,
    /// A partition's puller stops as soon as this node no longer surely
    /// owns the partition, before its lease is found lost.
    pub(super) owner: Option<(Arc<Leases>, u32)>,
    /// Commands up to this sequence may have been delivered already (see
    /// [`CommandHandler::recheck_through`]): raised when the consumer is
    /// made again.
    pub(super) recheck: Option<Arc<AtomicU64>>,
}

impl Puller {
    pub(super) async fn run<F, Fut>(mut self, mut take: F)
    where
        F: FnMut(Message) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut failures = 0u32;
        // The consumer's delivery count of the last message taken: one
        // that skips some means a pull was cut off with messages on their
        // way, which would come back only after `ack_wait`.
        let mut last_delivery = 0u64;
        while owned(&self.stop, self.owner()).await {
            let (js, stream, name) = (self.cluster.js.clone(), self.stream.clone(), self.consumer.clone());
            let batch = self.batch;
            let messages = async move {
                let stream = js.get_stream_no_info(&stream).await.map_err(|e| e.to_string())?;
                let consumer: PullConsumer = stream.get_consumer(&name).await.map_err(|e| e.to_string())?;
                consumer
                    .stream()
                    .max_messages_per_batch(batch)
                    .heartbeat(Duration::from_secs(5))
                    .expires(Duration::from_secs(30))
                    .messages()
                    .await
                    .map_err(|e| e.to_string())
            };
            let what = format!("consumer {}", self.consumer);
            let mut messages = match open(&mut self.stop, &mut failures, &what, messages).await {
                Opened::Open(messages) => messages,
                Opened::Failed => continue,
                Opened::Stopped => return,
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = self.stop.wait_for(|stop| *stop) => return,
                };
                match next {
                    // Not handed on: the next owner gets it again, first.
                    Some(Ok(_)) if !owned(&self.stop, self.owner()).await => return,
                    Some(Ok(message)) => {
                        failures = 0;
                        let delivery = message.info().map_or(0, |i| i.consumer_sequence);
                        if let Some((_, p)) = &self.owner
                            && last_delivery != 0
                            && delivery != last_delivery + 1
                        {
                            // Taken from the floor again, in order; what
                            // was taken since runs again, stored once.
                            tracing::info!(consumer = %self.consumer, last_delivery, delivery, "Deliveries went missing.");
                            match self.cluster.restart_consumer(*p).await {
                                Ok(recheck) => {
                                    if let Some(r) = &self.recheck {
                                        r.fetch_max(recheck, Ordering::Relaxed);
                                    }
                                    last_delivery = 0;
                                }
                                Err(e) => {
                                    tracing::warn!(consumer = %self.consumer, error = %e, "Cannot make the consumer again.")
                                }
                            }
                            break;
                        }
                        last_delivery = delivery;
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
            pause(&mut self.stop, failures).await;
        }
    }

    fn owner(&self) -> Option<(&Leases, u32)> {
        self.owner.as_ref().map(|(leases, p)| (&**leases, *p))
    }
}

/// Whether to go on: not stopped, and the partition, if any, surely this
/// node's — waiting while a renewal is late, so that nothing is taken out
/// of turn; false once it is lost.
pub(super) async fn owned(stop: &watch::Receiver<bool>, owner: Option<(&Leases, u32)>) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        match owner {
            None => return true,
            Some((leases, p)) if leases.owns(p) => return true,
            Some((leases, p)) if !leases.keeps(p) => return false,
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// What [`open`] came to.
pub(super) enum Opened<T> {
    Open(T),
    /// It failed, was counted, and waited for: try again.
    Failed,
    Stopped,
}

/// Wait for `opening` (a consumer's messages), unless stopped first. A
/// failure is counted in `failures`, said every tenth time in a row, and
/// paused after.
pub(super) async fn open<T>(
    stop: &mut watch::Receiver<bool>,
    failures: &mut u32,
    what: &str,
    opening: impl std::future::Future<Output = Result<T, String>>,
) -> Opened<T> {
    let opened = tokio::select! {
        opened = opening => opened,
        _ = stop.wait_for(|stop| *stop) => return Opened::Stopped,
    };
    match opened {
        Ok(messages) => Opened::Open(messages),
        Err(error) => {
            *failures += 1;
            if *failures % 10 == 1 {
                tracing::warn!(%error, "Cannot read {what} from the cluster; trying again.");
            }
            pause(stop, *failures).await;
            Opened::Failed
        }
    }
}

/// Wait a little longer after each failure in a row, or until stopped.
pub(super) async fn pause(stop: &mut watch::Receiver<bool>, failures: u32) {
    let wait = Duration::from_millis(100 * u64::from(failures.min(20)));
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.wait_for(|stop| *stop) => {}
    }
}

/// Hands commands to the outbox: those of this node's partitions, and
/// delayed ones once they are due.
pub(super) struct CommandHandler {
    pub(super) cluster: Cluster,
    pub(super) held: Arc<Held>,
    pub(super) unattempted: Arc<AtomicUsize>,
    pub(super) writes: Arc<Writes>,
    pub(super) feed: mpsc::UnboundedSender<PendingCommand>,
    /// None for the delayed commands.
    pub(super) partition: Option<u32>,
    /// Commands up to this sequence may have been delivered by the
    /// partition's last owner, or by this node before its consumer was
    /// made again: their state is read first.
    pub(super) recheck_through: Arc<AtomicU64>,
}

impl CommandHandler {
    pub(super) async fn take(&self, message: Message) {
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
        let state = if delivered > 1 || seq <= self.recheck_through.load(Ordering::Relaxed) {
            self.state(seq).await
        } else {
            None
        };
        if let Some(state) = &state
            && state.state != CommandState::Retrying
        {
            let _ = message.ack().await;
            return;
        }
        let attempts = state.as_ref().map_or(0, |s| s.attempts);
        let next_at = state
            .as_ref()
            .map_or(command.received_at + command.delay_ms as i64, |s| s.next_at);
        if self.partition.is_none() && attempts == 0 {
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
                    let _ = message.ack().await;
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
                partition: self.partition,
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
