//! The command line's side of the cluster store: events, runs and dead
//! letters read from the streams, retries and replays published to them.
//! Nodes pick a change up at once: it arrives on their consumers.
//!
//! The command line is synchronous and runs on a multi-threaded runtime;
//! each call blocks its thread on the cluster's answer.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;

use super::Cluster;
use super::publish::publish;
use super::read::dead_letter_row;
use super::wire::{self, CommandMsg};
use crate::config::Config;
use crate::event::Event;
use crate::store::{CommandRow, DeadEventRow, EventRow, EventRun, Records, StoreError};

/// The store's records in the cluster `config` names.
pub struct NatsRecords {
    pub(super) cluster: Cluster,
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
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
}

/// Whether `seq` is one of `chosen` (all when none are chosen).
fn chosen(chosen: &[i64], seq: i64) -> bool {
    chosen.is_empty() || chosen.contains(&seq)
}

impl Records for NatsRecords {
    fn events(&self, source: Option<&str>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        block(async {
            let filter = format!("{}.events.>", self.cluster.layout().prefix);
            let state = self
                .cluster
                .stream("EVENTS")
                .await?
                .get_info()
                .await
                .map_err(|e| StoreError::Cluster(format!("stream EVENTS: {e}")))?
                .state;
            // The newest first: read a window at the end, then a wider one
            // before it, until there are enough.
            let mut wanted = Vec::new();
            let (mut before, mut window) = (state.last_sequence + 1, (limit as u64 * 4).max(256));
            while wanted.len() < limit && before > state.first_sequence && state.messages > 0 {
                let from = before.saturating_sub(window).max(state.first_sequence);
                let start = DeliverPolicy::ByStartSequence { start_sequence: from };
                let read = self.cluster.read("EVENTS", &filter, start).await?;
                for message in read.into_iter().filter(|m| m.seq < before).rev() {
                    let matches = source.is_none_or(|source| {
                        wire::decode::<Event>("event", &message.payload).is_ok_and(|e| e.source == source)
                    });
                    if matches && wanted.len() < limit {
                        wanted.push(message);
                    }
                }
                before = from;
                window *= 4;
            }
            let mut rows = Vec::new();
            for message in &wanted {
                rows.push(self.event_row(message).await?.0);
            }
            Ok(rows)
        })
    }

    fn event(&self, id: &str) -> Result<Vec<EventRun>, StoreError> {
        block(async {
            let Some(found) = self.find_event(id).await? else {
                return Err(StoreError::NotFound(format!("no event with id or number `{id}`")));
            };
            let message = &found;
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
                    layout.event_subject(&dead.event.source, &dead.event.lane(), &dead.event.id),
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
            // From a minute early: the stream's clock is the servers', the
            // events' `received_at` the nodes'.
            let start = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(since_ms - 60_000) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let filter = format!("{}.events.>", layout.prefix);
            let from = DeliverPolicy::ByStartTime { start_time: start };
            let messages = self.cluster.read("EVENTS", &filter, from).await?;
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
                    layout.event_subject(&event.source, &event.lane(), &event.id),
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
