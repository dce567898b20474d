//! What this node writes to the cluster: events, what each run did, and
//! what became of each command's delivery, each published and waited for
//! until JetStream acknowledges it.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{AckKind, Message, context::PublishError};
use bytes::Bytes;

use super::held::HeldEvent;
use super::wire::{self, CommandMsg, CommandState, DeadCommandMsg, DeadEventMsg, RunCommand, RunMsg, StateMsg};
use super::{Cluster, PUBLISH_PATIENCE};
use crate::event::Event;
use crate::store::{DeliveryUpdate, Processed, StoreError};
use crate::time::now_ms;

fn report(result: Result<(), StoreError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "Recording a retry failed; another node would start the count again.");
    }
}

/// Store what a run did: its commands (each once, by idempotency key), a
/// dead event if a plugin stopped it, and the run itself.
pub(super) async fn record(cluster: &Cluster, held: &HeldEvent, processed: Processed) -> Result<(), StoreError> {
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

/// Store what became of a command's delivery, then acknowledge the
/// command, or hand it back to be tried again if that failed. A retry's
/// state is only recorded: the outbox still holds the command.
pub(super) async fn record_delivery(
    cluster: &Cluster,
    message: &Message,
    command: CommandMsg,
    seq: u64,
    update: DeliveryUpdate,
) {
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
            return report(record_state(cluster, seq, &retrying).await);
        }
        DeliveryUpdate::Delivered { attempts } => {
            record_state(cluster, seq, &state(CommandState::Delivered, attempts, None, 0, None)).await
        }
        DeliveryUpdate::Superseded => {
            record_state(cluster, seq, &state(CommandState::Superseded, 0, None, 0, None)).await
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
                    record_state(cluster, seq, &dead).await
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
}
