//! Reading the events of a partition this node owns: in stream order,
//! from the partition's floor (see `floor`), through an ordered consumer —
//! one replica, in memory, without acknowledgements, made again from where
//! it got to if its server goes — and handing them to the dispatcher.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::Cluster;
use super::floor::{Floor, Lookup, Lookups};
use super::held::{Held, HeldEvent};
use super::leases::Leases;
use super::pull::{Opened, open, owned, pause};
use super::wire;
use crate::event::Event;
use crate::store::Queued;

/// Events asked for at once.
const BATCH: i64 = 64;

/// How long a pull waits on the server; a server gone is noticed after two
/// heartbeats, at half of it each, and the consumer made again elsewhere.
const PULL_EXPIRES: Duration = Duration::from_secs(4);

/// Reads partition `partition`'s events while this node surely owns it.
pub(super) struct EventReader {
    pub(super) cluster: Cluster,
    pub(super) partition: u32,
    pub(super) floor: Arc<Floor>,
    pub(super) lookup: Lookup,
    pub(super) leases: Arc<Leases>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) handler: EventHandler,
}

impl EventReader {
    pub(super) async fn run(mut self) {
        let mut lookups = Lookups::new(self.lookup);
        // The last event read: the consumer is made again from past it.
        let mut read = self.floor.now().0;
        let mut failures = 0u32;
        while owned(&self.stop, Some((&self.leases, self.partition))).await {
            let what = format!("partition {}'s events", self.partition);
            let mut stop = self.stop.clone();
            let mut messages = match open(&mut stop, &mut failures, &what, self.messages(read)).await {
                Opened::Open(messages) => messages,
                Opened::Failed => continue,
                Opened::Stopped => return,
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = self.stop.wait_for(|stop| *stop) => return,
                };
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        failures += 1;
                        tracing::debug!(partition = self.partition, %error, "Reading interrupted; reading again.");
                        break;
                    }
                    None => break,
                };
                failures = 0;
                // Not handed on: the next owner reads it again.
                if !owned(&self.stop, Some((&self.leases, self.partition))).await {
                    return;
                }
                let Ok(seq) = message.info().map(|i| i.stream_sequence) else {
                    continue;
                };
                if seq <= read {
                    continue;
                }
                tokio::select! {
                    _ = self.floor.admit(seq) => {}
                    _ = self.stop.wait_for(|stop| *stop) => return,
                }
                read = seq;
                if lookups.needed(seq) {
                    let (_, origin) = wire::run_of(message.headers.as_ref(), seq as i64);
                    match self.cluster.was_run(seq, origin).await {
                        Ok(written) => {
                            lookups.found(written);
                            if written {
                                self.floor.written(seq);
                                continue;
                            }
                        }
                        // Run it: what it writes is stored once, under the
                        // keys the last run wrote it with.
                        Err(error) => tracing::warn!(seq, %error, "Cannot look up an event's run; running it."),
                    }
                }
                self.handler.take(message, seq, &self.floor);
            }
            pause(&mut self.stop, failures).await;
        }
    }

    /// The partition's events past `read`, oldest first.
    async fn messages(&self, read: u64) -> Result<consumer::pull::Ordered, String> {
        let layout = self.cluster.layout();
        let stream = self.cluster.stream("EVENTS").await.map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subjects: layout.partition_events(self.partition),
                deliver_policy: match read {
                    0 => DeliverPolicy::All,
                    read => DeliverPolicy::ByStartSequence {
                        start_sequence: read + 1,
                    },
                },
                max_batch: BATCH,
                max_expires: PULL_EXPIRES,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        consumer.messages().await.map_err(|e| e.to_string())
    }
}

/// Hands the events of this node's partitions to the dispatcher.
pub(super) struct EventHandler {
    pub(super) partition: u32,
    pub(super) held: Arc<Held>,
    pub(super) backlog: Arc<AtomicUsize>,
    pub(super) feed: mpsc::UnboundedSender<Queued>,
}

impl EventHandler {
    fn take(&self, message: Message, seq: u64, floor: &Arc<Floor>) {
        let event: Event = match wire::decode("event", &message.payload) {
            Ok(event) => event,
            Err(e) => {
                // Written by a Vestibule of another version, or by hand:
                // it cannot run, and must not hold its partition up.
                tracing::error!(seq, error = %e, "An event in the cluster cannot be read; it is skipped.");
                floor.written(seq);
                return;
            }
        };
        let (run, origin) = wire::run_of(message.headers.as_ref(), seq as i64);
        let held = HeldEvent {
            message: Arc::new(message),
            origin,
            run,
            partition: self.partition,
            floor: floor.clone(),
            door: (event.source.clone(), event.lane()),
        };
        let again = self
            .held
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq as i64, held);
        if again.is_none() {
            self.backlog.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.feed.send(Queued {
            seq: seq as i64,
            run,
            event,
        });
    }
}
