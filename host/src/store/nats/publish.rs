//! What this node writes to the cluster: events, what each run did, and
//! what became of each command's delivery, each published and waited for
//! until JetStream acknowledges it.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use super::held::HeldEvent;
use super::wire::{self, CommandMsg, CommandState, DeadCommandMsg, DeadEventMsg, RunCommand, RunMsg, StateMsg};
use super::{Cluster, PUBLISH_PATIENCE};
use crate::event::Event;
use crate::store::{DeliveryUpdate, Processed, StoreError};
use crate::time::now_ms;

/// Store what a run did: its commands (each once, by idempotency key), a
/// dead event if a plugin stopped it, and the run itself. The writes go out
/// together and are waited for together, in two rounds: the run names its
/// commands' sequences, so it follows them.
pub(super) async fn record(
    cluster: &Cluster,
    held: &HeldEvent,
    processed: &Processed,
    owned: &Owned<'_>,
) -> Result<(), StoreError> {
    let layout = cluster.layout();
    let message_seq = held.message.info().map(|i| i.stream_sequence).unwrap_or(0);
    let created_at = now_ms();
    let mut first = Vec::with_capacity(processed.commands.len() + 1);
    for c in &processed.commands {
        let subject = if c.delay_ms > 0 {
            layout.delayed_subject(&c.plugin, &c.command.sink, &c.door)
        } else {
            layout.command_subject(&c.command.sink, &c.door)
        };
        let stored = CommandMsg {
            event_seq: held.origin,
            key: c.key.clone(),
            plugin: c.plugin.clone(),
            door: c.door.clone(),
            command: c.command.clone(),
            delay_ms: c.delay_ms,
            received_at: processed.received_at,
            created_at,
        };
        first.push(Write::new(subject, c.key.clone(), wire::encode("command", &stored)?));
    }
    if let Some(dead) = &processed.dead_letter {
        let event: Event = wire::decode("event", &held.message.payload)?;
        let stored = DeadEventMsg {
            event_seq: held.origin,
            run: held.run,
            event,
            plugin: dead.plugin.clone(),
            reason: dead.reason.to_string(),
            error: dead.error.clone(),
            at: now_ms(),
        };
        first.push(Write::new(
            layout.dead_event_subject(held.origin),
            format!("dead-event:{message_seq}"),
            wire::encode("dead event", &stored)?,
        ));
    }
    let sequences = publish_all(cluster, first, owned).await?;

    let mut second = Vec::new();
    let mut commands = Vec::with_capacity(processed.commands.len());
    for (c, &seq) in processed.commands.iter().zip(&sequences) {
        if c.delay_ms > 0 {
            // This one replaces any earlier delayed command of its slot.
            second.push(Write::new(
                layout.slot_subject(&c.plugin, &c.command.sink, &c.door),
                format!("slot:{seq}"),
                seq.to_string().into(),
            ));
        }
        commands.push(RunCommand {
            seq,
            key: c.key.clone(),
            plugin: c.plugin.clone(),
            sink: c.command.sink.clone(),
            door: c.door.clone(),
            body: c.command.body.clone(),
            due_at: processed.received_at + c.delay_ms as i64,
        });
    }
    let run = RunMsg {
        event_seq: held.origin,
        message_seq,
        run: held.run,
        steps: processed.steps.clone(),
        commands,
        processed_at: now_ms(),
        node: cluster.settings.node.clone(),
    };
    second.push(Write::new(
        layout.run_subject(held.origin),
        format!("run:{message_seq}"),
        wire::encode("run", &run)?,
    ));
    publish_all(cluster, second, owned).await?;
    Ok(())
}

/// One message to publish, with its `Nats-Msg-Id`.
struct Write {
    subject: String,
    msg_id: String,
    payload: Bytes,
}

impl Write {
    fn new(subject: String, msg_id: String, payload: Bytes) -> Write {
        Write {
            subject,
            msg_id,
            payload,
        }
    }
}

/// Publish `writes` and wait for all their acknowledgements; their
/// sequences, in the order given. Writes to one subject go one after the
/// other, in order (a door's commands to one sink, a slot's newest); other
/// subjects' go out beside them.
async fn publish_all(cluster: &Cluster, writes: Vec<Write>, owned: &Owned<'_>) -> Result<Vec<u64>, StoreError> {
    let mut by_subject: Vec<(String, Vec<(usize, Write)>)> = Vec::new();
    for (i, write) in writes.into_iter().enumerate() {
        match by_subject.iter_mut().find(|(subject, _)| *subject == write.subject) {
            Some((_, queue)) => queue.push((i, write)),
            None => by_subject.push((write.subject.clone(), vec![(i, write)])),
        }
    }
    let rounds = by_subject.into_iter().map(|(_, queue)| async move {
        let mut done = Vec::with_capacity(queue.len());
        for (i, write) in queue {
            let ack = publish_while(cluster, write.subject, &write.msg_id, None, write.payload, owned).await?;
            done.push((i, ack.sequence));
        }
        Ok::<_, StoreError>(done)
    });
    let mut sequences: Vec<(usize, u64)> = futures_util::future::try_join_all(rounds)
        .await?
        .into_iter()
        .flatten()
        .collect();
    sequences.sort_unstable();
    Ok(sequences.into_iter().map(|(_, seq)| seq).collect())
}

pub(super) async fn record_state(cluster: &Cluster, seq: u64, state: &StateMsg) -> Result<(), StoreError> {
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
    publish_while(cluster, subject, msg_id, headers, payload, &|| true).await
}

/// Whether this node may still write for what it is writing: a partition's
/// outcomes are written only while it surely owns the partition.
pub(super) type Owned<'a> = dyn Fn() -> bool + Send + Sync + 'a;

/// [`publish`], each attempt only while `owned` holds.
async fn publish_while(
    cluster: &Cluster,
    subject: String,
    msg_id: &str,
    headers: Option<HeaderMap>,
    payload: Bytes,
    owned: &Owned<'_>,
) -> Result<async_nats::jetstream::publish::PublishAck, StoreError> {
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut wait = Duration::from_millis(50);
    loop {
        if !owned() {
            return Err(StoreError::Cluster(format!(
                "not publishing to {subject}: the partition may no longer be this node's"
            )));
        }
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

/// Store what became of a command's delivery (a retry's attempts, or how
/// it ended: the caller then acknowledges the command).
pub(super) async fn record_delivery(
    cluster: &Cluster,
    command: &CommandMsg,
    seq: u64,
    update: &DeliveryUpdate,
) -> Result<(), StoreError> {
    let state = |state, attempts, first_attempt_at, next_at, error| StateMsg {
        state,
        attempts,
        first_attempt_at,
        next_at,
        error,
        at: now_ms(),
    };
    match update.clone() {
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
            record_state(cluster, seq, &retrying).await
        }
        DeliveryUpdate::Delivered { attempts } => {
            record_state(cluster, seq, &state(CommandState::Delivered, attempts, None, 0, None)).await
        }
        DeliveryUpdate::Superseded => {
            record_state(cluster, seq, &state(CommandState::Superseded, 0, None, 0, None)).await
        }
        DeliveryUpdate::Released => Ok(()),
        DeliveryUpdate::Dead {
            attempts,
            reason,
            error,
        } => {
            let dead = DeadCommandMsg {
                command_seq: seq,
                command: command.clone(),
                attempts,
                reason,
                error: error.clone(),
                at: now_ms(),
            };
            publish(
                cluster,
                cluster.layout().dead_command_subject(seq),
                &format!("dead:{seq}"),
                None,
                wire::encode("dead letter", &dead)?,
            )
            .await?;
            record_state(cluster, seq, &state(CommandState::Dead, attempts, None, 0, Some(error))).await
        }
    }
}
