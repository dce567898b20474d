//! What this node holds: the events and commands it was handed and has not
//! finished, kept alive while it works on them, and the writes close waits
//! for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use tokio::sync::{Notify, watch};

use super::floor::Floor;
use super::wire::CommandMsg;

/// An event this node is working on.
pub(super) struct HeldEvent {
    pub(super) message: Arc<Message>,
    pub(super) origin: i64,
    pub(super) run: i64,
    pub(super) partition: u32,
    /// Its partition's floor, raised once the event's run is written.
    pub(super) floor: Arc<Floor>,
    /// The event's (source, lane): its records are written in order.
    pub(super) door: (String, String),
}

/// A command this node's outbox is delivering.
pub(super) struct HeldCommand {
    pub(super) message: Arc<Message>,
    pub(super) command: CommandMsg,
    /// None for a delayed command: those are no partition's.
    pub(super) partition: Option<u32>,
}

#[derive(Default)]
pub(super) struct Held {
    /// By `EVENTS` sequence.
    pub(super) events: Mutex<HashMap<i64, HeldEvent>>,
    /// By `COMMANDS` sequence.
    pub(super) commands: Mutex<HashMap<i64, HeldCommand>>,
}

impl Held {
    /// Whether anything of partition `p` is still held.
    pub(super) fn holds(&self, p: u32) -> bool {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        events.values().any(|h| h.partition == p) || commands.values().any(|h| h.partition == Some(p))
    }

    /// Let go of what is held of partition `p`, unacknowledged: its next
    /// owner runs it again. Outcomes that arrive for it later are not
    /// recorded. Returns how many events were let go.
    pub(super) fn abandon(&self, p: u32) -> usize {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let before = events.len();
        events.retain(|_, h| h.partition != p);
        let abandoned = before - events.len();
        drop(events);
        let mut commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        commands.retain(|_, h| h.partition != Some(p));
        abandoned
    }
}

/// Writes started and not yet finished: close waits for them.
#[derive(Default)]
pub(super) struct Writes {
    pub(super) count: AtomicUsize,
    pub(super) idle: Notify,
}

pub(super) struct Write(Arc<Writes>);

impl Write {
    pub(super) fn start(writes: &Arc<Writes>) -> Write {
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

/// Tell the cluster this node is still working on the commands it holds,
/// so that a long wait for a sink's retry is not mistaken for a dead node.
/// (Events are read without acknowledgements; see `floor`.)
pub(super) async fn keep_alive(held: Arc<Held>, ack_wait: Duration, mut stop: watch::Receiver<bool>) {
    let every = ack_wait / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let messages: Vec<Arc<Message>> = {
            let commands = held.commands.lock().unwrap_or_else(|e| e.into_inner());
            commands.values().map(|h| h.message.clone()).collect()
        };
        for message in messages {
            let _ = message.ack_with(AckKind::Progress).await;
        }
    }
}
