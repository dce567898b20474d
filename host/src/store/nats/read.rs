//! How the command line reads the streams: one message by its sequence or
//! its subject, or many streamed to it by an ordered consumer — never one
//! request per message of a stream — and the records made of them.

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt;

use super::records::NatsRecords;
use super::wire::{self, CommandState, DeadCommandMsg, DeadEventMsg, RunMsg, StateMsg};
use super::{Cluster, missing};
use crate::event::Event;
use crate::store::{CommandRow, EventRow, StoreError};

/// A stored message, by sequence, in stream order.
pub(super) struct Stored {
    pub(super) seq: u64,
    pub(super) subject: String,
    pub(super) headers: Option<async_nats::HeaderMap>,
    pub(super) payload: bytes::Bytes,
}

impl Cluster {
    /// Every message of stream `which` on `filter` (wildcards allowed), from
    /// where `from` says, oldest first: delivered in a stream, not asked
    /// for one by one.
    pub(super) async fn read(&self, which: &str, filter: &str, from: DeliverPolicy) -> Result<Vec<Stored>, StoreError> {
        let failed = |e: &dyn std::fmt::Display| StoreError::Cluster(format!("reading stream {which}: {e}"));
        let stream = self.stream(which).await?;
        let consumer = stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                filter_subject: filter.to_string(),
                deliver_policy: from,
                replay_policy: consumer::ReplayPolicy::Instant,
                ..Default::default()
            })
            .await
            .map_err(|e| failed(&e))?;
        let mut found = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(found);
        }
        let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| failed(&e))?;
            let info = message.info().map_err(|e| failed(&e))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            found.push(Stored {
                seq,
                subject: message.subject.to_string(),
                headers: message.headers.clone(),
                payload: message.payload.clone(),
            });
            if pending == 0 {
                break;
            }
        }
        Ok(found)
    }

    /// The first message at or after `from` on `subject` (wildcards allowed).
    pub(super) async fn next_on(&self, which: &str, subject: &str, from: u64) -> Result<Option<Stored>, StoreError> {
        let stream = self.stream(which).await?;
        let next = stream
            .raw_message_builder()
            .sequence(from)
            .next_by_subject(subject.to_string());
        one(next.send().await, format_args!("stream {which}"))
    }

    /// The newest message on `subject`.
    pub(super) async fn last_on(&self, which: &str, subject: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        match self.stream(which).await?.get_last_raw_message_by_subject(subject).await {
            Ok(message) => Ok(Some(message.payload)),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(StoreError::Cluster(format!("stream {which}: {e}"))),
        }
    }
}

/// What the records are made of: runs, command states, dead letters, and the
/// event `events show` asks for.
impl NatsRecords {
    /// Every run recorded for the event with journal number `event_seq`.
    pub(super) async fn runs(&self, event_seq: i64) -> Result<Vec<RunMsg>, StoreError> {
        let subject = self.cluster.layout().run_subject(event_seq);
        let mut runs = Vec::new();
        let mut from = 0;
        while let Some(message) = self.cluster.next_on("RUNS", &subject, from).await? {
            from = message.seq + 1;
            runs.push(wire::decode::<RunMsg>("run", &message.payload)?);
        }
        Ok(runs)
    }

    pub(super) async fn state(&self, command_seq: u64) -> Result<Option<StateMsg>, StoreError> {
        let subject = self.cluster.layout().state_subject(command_seq);
        match self.cluster.last_on("STATE", &subject).await? {
            Some(payload) => Ok(Some(wire::decode("state", &payload)?)),
            None => Ok(None),
        }
    }

    pub(super) async fn dead_commands(&self) -> Result<Vec<(u64, DeadCommandMsg)>, StoreError> {
        self.dead("commands", "dead letter").await
    }

    pub(super) async fn dead_events_stored(&self) -> Result<Vec<(u64, DeadEventMsg)>, StoreError> {
        self.dead("events", "dead event").await
    }

    /// Every dead letter of one kind (`commands` or `events`), by its
    /// sequence in `DEAD`.
    async fn dead<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        what: &'static str,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let filter = format!("{}.dead.{kind}.*", self.cluster.layout().prefix);
        self.cluster
            .read("DEAD", &filter, DeliverPolicy::All)
            .await?
            .into_iter()
            .map(|m| Ok((m.seq, wire::decode(what, &m.payload)?)))
            .collect()
    }

    /// The event `events show` asks for: by its id — the newest first run
    /// of an event with that id, found by the id's subject — or by its
    /// journal number, or, for an event an earlier version journaled
    /// without an id subject, by its id among those.
    pub(super) async fn find_event(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        let layout = self.cluster.layout();
        let original = |m: &Stored| {
            wire::decode::<Event>("event", &m.payload).is_ok_and(|e| e.id == id)
                && wire::run_of(m.headers.as_ref(), m.seq as i64).0 == 0
        };
        let subjects = layout.event_id_subjects(id);
        let (mut found, mut from) = (None, 0);
        while let Some(message) = self.cluster.next_on("EVENTS", &subjects, from).await? {
            from = message.seq + 1;
            if original(&message) {
                found = Some(message);
            }
        }
        if found.is_none()
            && let Ok(seq) = id.parse::<u64>()
        {
            let events = format!("{}.events.", layout.prefix);
            let stream = self.cluster.stream("EVENTS").await?;
            found = get(&stream, seq).await?.filter(|m| m.subject.starts_with(&events));
        }
        if found.is_none() {
            let legacy = format!("{}.events.*", layout.prefix);
            found = self
                .cluster
                .read("EVENTS", &legacy, DeliverPolicy::All)
                .await?
                .into_iter()
                .rfind(|m| original(m));
        }
        Ok(found)
    }

    /// The row `events list` shows for an `EVENTS` message.
    pub(super) async fn event_row(&self, message: &Stored) -> Result<(EventRow, Event), StoreError> {
        let event: Event = wire::decode("event", &message.payload)?;
        let (run, origin) = wire::run_of(message.headers.as_ref(), message.seq as i64);
        let done = self
            .runs(origin)
            .await?
            .into_iter()
            .rfind(|r| r.message_seq == message.seq);
        let row = EventRow {
            seq: message.seq as i64,
            source: event.source.clone(),
            event_id: event.id.clone(),
            run,
            kind: event.kind.clone(),
            door: event.lane(),
            received_at: event.received_at,
            state: if done.is_some() { "done" } else { "pending" }.into(),
            steps: done.map(|r| r.steps).unwrap_or_default(),
        };
        Ok((row, event))
    }

    pub(super) async fn command_rows(&self, run: &RunMsg) -> Result<Vec<CommandRow>, StoreError> {
        let mut rows = Vec::new();
        for c in &run.commands {
            let state = self.state(c.seq).await?;
            let dead_subject = self.cluster.layout().dead_command_subject(c.seq);
            let dead = match self.cluster.last_on("DEAD", &dead_subject).await? {
                Some(payload) => Some(wire::decode::<DeadCommandMsg>("dead letter", &payload)?),
                None => None,
            };
            let dead = dead.as_ref();
            rows.push(CommandRow {
                id: c.seq as i64,
                seq: run.message_seq as i64,
                plugin: c.plugin.clone(),
                sink: c.sink.clone(),
                door: c.door.clone(),
                idempotency_key: c.key.clone(),
                body: c.body.clone(),
                state: state.as_ref().map_or("pending", |s| s.state.as_str()).into(),
                attempts: state.as_ref().map_or(0, |s| i64::from(s.attempts)),
                last_error: state.as_ref().and_then(|s| s.error.clone()),
                dead_reason: dead.map(|d| d.reason),
                created_at: run.processed_at,
                done_at: state
                    .as_ref()
                    .filter(|s| s.state != CommandState::Retrying)
                    .map(|s| s.at),
                due_at: c.due_at,
            });
        }
        Ok(rows)
    }
}

pub(super) fn dead_letter_row(seq: u64, dead: &DeadCommandMsg) -> CommandRow {
    let c = &dead.command;
    CommandRow {
        id: seq as i64,
        seq: c.event_seq,
        plugin: c.plugin.clone(),
        sink: c.command.sink.clone(),
        door: c.door.clone(),
        idempotency_key: c.key.clone(),
        body: c.command.body.clone(),
        state: "dead".into(),
        attempts: i64::from(dead.attempts),
        last_error: Some(dead.error.clone()),
        dead_reason: Some(dead.reason),
        created_at: c.created_at,
        done_at: Some(dead.at),
        due_at: c.received_at + c.delay_ms as i64,
    }
}

/// Message `seq` of `stream`, if it is there.
pub(super) async fn get(stream: &Stream<()>, seq: u64) -> Result<Option<Stored>, StoreError> {
    one(stream.get_raw_message(seq).await, format_args!("reading message {seq}"))
}

/// One message read, or none if there is no such message.
fn one(
    read: Result<async_nats::jetstream::message::StreamMessage, async_nats::jetstream::stream::LastRawMessageError>,
    what: std::fmt::Arguments<'_>,
) -> Result<Option<Stored>, StoreError> {
    match read {
        Ok(message) => Ok(Some(Stored {
            seq: message.sequence,
            subject: message.subject.to_string(),
            headers: Some(message.headers),
            payload: message.payload,
        })),
        Err(e) if missing(&e) => Ok(None),
        Err(e) => Err(StoreError::Cluster(format!("{what}: {e}"))),
    }
}
