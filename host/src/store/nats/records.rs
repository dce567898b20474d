//! The command line's side of the cluster store: events, runs and dead
//! letters read from the streams, retries and replays published to them.
//! Nodes pick a change up at once: it arrives on their consumers.
//!
//! The command line is synchronous and runs on a multi-threaded runtime;
//! each call blocks its thread on the cluster's answer.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;

use super::publish::publish;
use super::wire::{self, CommandMsg, CommandState, DeadCommandMsg, DeadEventMsg, RunMsg, StateMsg};
use super::{Cluster, missing};
use crate::config::Config;
use crate::event::Event;
use crate::store::{CommandRow, DeadEventRow, EventRow, EventRun, Records, StoreError};

/// The store's records in the cluster `config` names.
pub struct NatsRecords {
    cluster: Cluster,
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// A stored message, by sequence, in stream order.
struct Stored {
    seq: u64,
    subject: String,
    headers: Option<async_nats::HeaderMap>,
    payload: bytes::Bytes,
}

impl NatsRecords {
    pub fn open(config: &Config) -> Result<NatsRecords, StoreError> {
        let cluster = block(async {
            let cluster = Cluster::connect(config).await?;
            cluster.connected(Duration::from_secs(5)).await?;
            Ok::<_, StoreError>(cluster)
        })?;
        Ok(NatsRecords { cluster })
    }

    /// Every message of stream `which` whose subject starts with `prefix`,
    /// oldest first, or newest first when `newest_first`, until `enough`.
    async fn scan(
        &self,
        which: &str,
        prefix: &str,
        newest_first: bool,
        mut enough: impl FnMut(&Stored) -> bool,
    ) -> Result<Vec<Stored>, StoreError> {
        let stream = self.cluster.stream(which).await?;
        let state = stream
            .get_info()
            .await
            .map_err(|e| StoreError::Cluster(format!("stream {}: {e}", self.cluster.layout().stream(which))))?
            .state;
        let mut found = Vec::new();
        if state.messages == 0 {
            return Ok(found);
        }
        let seqs: Box<dyn Iterator<Item = u64>> = if newest_first {
            Box::new((state.first_sequence..=state.last_sequence).rev())
        } else {
            Box::new(state.first_sequence..=state.last_sequence)
        };
        for seq in seqs {
            let Some(message) = get(&stream, seq).await? else {
                continue;
            };
            if !message.subject.starts_with(prefix) {
                continue;
            }
            let stop = enough(&message);
            found.push(message);
            if stop {
                break;
            }
        }
        Ok(found)
    }

    /// Every run recorded for the event with journal number `event_seq`.
    async fn runs(&self, event_seq: i64) -> Result<Vec<RunMsg>, StoreError> {
        let subject = self.cluster.layout().run_subject(event_seq);
        let stream = self.cluster.stream("RUNS").await?;
        let mut runs = Vec::new();
        let mut from = 0;
        loop {
            let next = stream
                .raw_message_builder()
                .sequence(from)
                .next_by_subject(subject.clone());
            match next.send().await {
                Ok(message) => {
                    from = message.sequence + 1;
                    runs.push(wire::decode::<RunMsg>("run", &message.payload)?);
                }
                Err(e) if missing(&e) => return Ok(runs),
                Err(e) => return Err(StoreError::Cluster(format!("stream RUNS: {e}"))),
            }
        }
    }

    async fn state(&self, command_seq: u64) -> Result<Option<StateMsg>, StoreError> {
        let stream = self.cluster.stream("STATE").await?;
        match stream
            .get_last_raw_message_by_subject(&self.cluster.layout().state_subject(command_seq))
            .await
        {
            Ok(message) => Ok(Some(wire::decode("state", &message.payload)?)),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(StoreError::Cluster(format!("stream STATE: {e}"))),
        }
    }

    async fn dead_commands(&self) -> Result<Vec<(u64, DeadCommandMsg)>, StoreError> {
        let prefix = format!("{}.dead.commands.", self.cluster.layout().prefix);
        self.scan("DEAD", &prefix, false, |_| false)
            .await?
            .into_iter()
            .map(|m| Ok((m.seq, wire::decode("dead letter", &m.payload)?)))
            .collect()
    }

    async fn dead_events_stored(&self) -> Result<Vec<(u64, DeadEventMsg)>, StoreError> {
        let prefix = format!("{}.dead.events.", self.cluster.layout().prefix);
        self.scan("DEAD", &prefix, false, |_| false)
            .await?
            .into_iter()
            .map(|m| Ok((m.seq, wire::decode("dead event", &m.payload)?)))
            .collect()
    }

    async fn delete(&self, which: &str, seq: u64) -> Result<(), StoreError> {
        self.cluster
            .stream(which)
            .await?
            .delete_message(seq)
            .await
            .map(drop)
            .map_err(|e| StoreError::Cluster(format!("stream {which}: deleting {seq}: {e}")))
    }

    /// Delete the dead letters (by `DEAD` sequence) whose number, as the
    /// command line shows it, is `chosen`; how many.
    async fn delete_chosen(&self, found: impl Iterator<Item = (u64, i64)>, which: &[i64]) -> Result<usize, StoreError> {
        let mut n = 0;
        for (dead_seq, shown) in found {
            if chosen(which, shown) {
                self.delete("DEAD", dead_seq).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The row `events list` shows for an `EVENTS` message.
    async fn event_row(&self, message: &Stored) -> Result<(EventRow, Event), StoreError> {
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

    async fn command_rows(&self, run: &RunMsg) -> Result<Vec<CommandRow>, StoreError> {
        let dead: HashMap<u64, DeadCommandMsg> = self
            .dead_commands()
            .await?
            .into_iter()
            .map(|(_, d)| (d.command_seq, d))
            .collect();
        let mut rows = Vec::new();
        for c in &run.commands {
            let state = self.state(c.seq).await?;
            let dead = dead.get(&c.seq);
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

async fn get(stream: &Stream<()>, seq: u64) -> Result<Option<Stored>, StoreError> {
    match stream.get_raw_message(seq).await {
        Ok(message) => Ok(Some(Stored {
            seq: message.sequence,
            subject: message.subject.to_string(),
            headers: Some(message.headers),
            payload: message.payload,
        })),
        Err(e) if missing(&e) => Ok(None),
        Err(e) => Err(StoreError::Cluster(format!("reading message {seq}: {e}"))),
    }
}

fn dead_letter_row(seq: u64, dead: &DeadCommandMsg) -> CommandRow {
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

/// Whether `seq` is one of `chosen` (all when none are chosen).
fn chosen(chosen: &[i64], seq: i64) -> bool {
    chosen.is_empty() || chosen.contains(&seq)
}

impl Records for NatsRecords {
    fn events(&self, source: Option<&str>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        block(async {
            let prefix = format!("{}.events.", self.cluster.layout().prefix);
            let mut rows = Vec::new();
            let mut wanted = |m: &Stored| {
                let matches = source
                    .is_none_or(|source| wire::decode::<Event>("event", &m.payload).is_ok_and(|e| e.source == source));
                if matches {
                    rows.push(m.seq);
                }
                rows.len() >= limit
            };
            let messages = self.scan("EVENTS", &prefix, true, &mut wanted).await?;
            let mut found = Vec::new();
            for message in messages.iter().filter(|m| rows.contains(&m.seq)) {
                found.push(self.event_row(message).await?.0);
            }
            Ok(found)
        })
    }

    fn event(&self, id: &str) -> Result<Vec<EventRun>, StoreError> {
        block(async {
            let prefix = format!("{}.events.", self.cluster.layout().prefix);
            let by_seq = id.parse::<u64>().ok();
            let found = self
                .scan("EVENTS", &prefix, true, |m| {
                    by_seq == Some(m.seq)
                        || wire::decode::<Event>("event", &m.payload).is_ok_and(|e| e.id == id)
                            && wire::run_of(m.headers.as_ref(), m.seq as i64).0 == 0
                })
                .await?;
            let Some(message) = found.last().filter(|m| {
                by_seq == Some(m.seq) || wire::decode::<Event>("event", &m.payload).is_ok_and(|e| e.id == id)
            }) else {
                return Err(StoreError::NotFound(format!("no event with id or number `{id}`")));
            };
            let (row, event) = self.event_row(message).await?;
            let json = serde_json::to_string(&event).unwrap_or_default();
            let origin = wire::run_of(message.headers.as_ref(), message.seq as i64).1;
            let runs = self.runs(origin).await?;
            if runs.is_empty() {
                return Ok(vec![(row, json, Vec::new())]);
            }
            let mut out = Vec::new();
            for run in runs {
                let commands = self.command_rows(&run).await?;
                let row = EventRow {
                    // The journal number of the message this run was of.
                    seq: run.message_seq as i64,
                    run: run.run,
                    state: "done".into(),
                    steps: run.steps.clone(),
                    ..row.clone()
                };
                out.push((row, json.clone(), commands));
            }
            Ok(out)
        })
    }

    fn dead_letters(&self) -> Result<Vec<CommandRow>, StoreError> {
        block(async {
            Ok(self
                .dead_commands()
                .await?
                .iter()
                .map(|(seq, dead)| dead_letter_row(*seq, dead))
                .collect())
        })
    }

    fn dead_events(&self) -> Result<Vec<DeadEventRow>, StoreError> {
        block(async {
            Ok(self
                .dead_events_stored()
                .await?
                .into_iter()
                .map(|(_, d)| DeadEventRow {
                    seq: d.event_seq,
                    source: d.event.source.clone(),
                    kind: d.event.kind.clone(),
                    door: d.event.lane(),
                    plugin: d.plugin,
                    reason: d.reason,
                    error: d.error,
                    at: d.at,
                })
                .collect())
        })
    }

    fn retry_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError> {
        block(async {
            let layout = self.cluster.layout().clone();
            let mut n = 0;
            for (dead_seq, dead) in self.dead_events_stored().await? {
                if !chosen(seqs, dead.event_seq) {
                    continue;
                }
                // The same run again: its commands keep their keys.
                let headers = wire::run_headers(dead.run, dead.event_seq);
                publish(
                    &self.cluster,
                    layout.event_subject(&dead.event.source, &dead.event.lane()),
                    &format!("retry-event:{dead_seq}"),
                    Some(headers),
                    wire::encode("event", &dead.event)?,
                )
                .await?;
                self.delete("DEAD", dead_seq).await?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn drop_dead_events(&mut self, seqs: &[i64]) -> Result<usize, StoreError> {
        block(async {
            let found = self.dead_events_stored().await?;
            self.delete_chosen(found.iter().map(|(seq, d)| (*seq, d.event_seq)), seqs)
                .await
        })
    }

    fn retry_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        block(async {
            let layout = self.cluster.layout().clone();
            let mut n = 0;
            for (dead_seq, dead) in self.dead_commands().await? {
                if !chosen(ids, dead_seq as i64) {
                    continue;
                }
                // Sent now and in its lane, with a fresh set of attempts;
                // the sink sees the key it saw before.
                let command = CommandMsg {
                    delay_ms: 0,
                    ..dead.command
                };
                publish(
                    &self.cluster,
                    layout.command_subject(&command.command.sink, &command.door),
                    &format!("retry:{dead_seq}"),
                    None,
                    wire::encode("command", &command)?,
                )
                .await?;
                self.delete("DEAD", dead_seq).await?;
                n += 1;
            }
            Ok(n)
        })
    }

    fn drop_dead_letters(&mut self, ids: &[i64]) -> Result<usize, StoreError> {
        block(async {
            let found = self.dead_commands().await?;
            self.delete_chosen(found.iter().map(|(seq, _)| (*seq, *seq as i64)), ids)
                .await
        })
    }

    fn replay(&mut self, since_ms: i64, source: Option<&str>) -> Result<usize, StoreError> {
        block(async {
            let layout = self.cluster.layout().clone();
            let prefix = format!("{}.events.", layout.prefix);
            let messages = self.scan("EVENTS", &prefix, false, |_| false).await?;
            let mut last_run: HashMap<i64, i64> = HashMap::new();
            let mut originals = Vec::new();
            for message in &messages {
                let (run, origin) = wire::run_of(message.headers.as_ref(), message.seq as i64);
                let highest = last_run.entry(origin).or_insert(run);
                *highest = (*highest).max(run);
                if run != 0 {
                    continue;
                }
                let event: Event = wire::decode("event", &message.payload)?;
                if event.received_at >= since_ms && source.is_none_or(|s| s == event.source) {
                    originals.push((origin, event));
                }
            }
            let mut n = 0;
            for (origin, event) in originals {
                let run = last_run.get(&origin).copied().unwrap_or(0) + 1;
                publish(
                    &self.cluster,
                    layout.event_subject(&event.source, &event.lane()),
                    &format!("replay:{origin}:{run}"),
                    Some(wire::run_headers(run, origin)),
                    wire::encode("event", &event)?,
                )
                .await?;
                n += 1;
            }
            Ok(n)
        })
    }
}
