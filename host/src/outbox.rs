//! The outbox: delivers stored commands, retrying with exponential backoff
//! and full jitter, honouring `Retry-After`, until they are delivered or
//! given up on into the dead letters.
//!
//! Commands to one sink about one door go in order: each (sink, door) pair
//! has a lane that delivers its commands one after the other, so a light
//! is never switched off before it was switched on because the first call
//! had to be retried.
//!
//! Every attempt uses the sinks that are live at that moment: after a
//! reload, a command waiting for its retry goes to the sink's new URL with
//! its new credentials and is retried by its new policy.
//!
//! A delayed command (`send-later`) waits on its own, not in its lane, so
//! it holds back nothing; when it is due it is sent — unless a later
//! delayed command from the same plugin to the same sink about the same
//! door replaced it meanwhile (an unlock restarts the lights' timer).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::live::Live;
use crate::observe::Observer;
use crate::sinks::{Permanent, Policy};
use crate::store::{DeadReason, DeliveryUpdate, Journal, PendingCommand};
use crate::time::now_ms;

/// The `Idempotency-Key` of a command: the same for the same event, run,
/// plugin and place among that plugin's commands — so a command re-emitted
/// after a crash carries the key its first delivery did, and a sink can
/// drop the repeat. A replay is a new run, with new keys.
pub fn idempotency_key(source: &str, event_id: &str, run: i64, plugin: &str, index: usize) -> String {
    let mut hash = Sha256::new();
    for part in [
        source.as_bytes(),
        event_id.as_bytes(),
        run.to_string().as_bytes(),
        plugin.as_bytes(),
        index.to_string().as_bytes(),
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hex::encode(&hash.finalize()[..16])
}

/// Deliver every command from `feed` until `stop` turns true.
pub async fn run(
    mut feed: mpsc::UnboundedReceiver<PendingCommand>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
    mut stop: watch::Receiver<bool>,
) {
    let mut lanes: HashMap<(String, String), mpsc::UnboundedSender<PendingCommand>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let latest = Arc::new(Mutex::new(HashMap::new()));
    loop {
        let command = tokio::select! {
            command = feed.recv() => match command {
                Some(command) => command,
                None => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        observer
            .deliveries
            .handed(command.id, &command.command.sink, command.received_at);
        if command.delayed() {
            let slot = (
                command.plugin.clone(),
                command.command.sink.clone(),
                command.door.clone(),
            );
            latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(slot.clone(), command.id);
            tasks.spawn(delayed(
                command,
                slot,
                latest.clone(),
                live.clone(),
                journal.clone(),
                observer.clone(),
            ));
            continue;
        }
        let key = (command.command.sink.clone(), command.door.clone());
        let lane = lanes.entry(key).or_insert_with(|| {
            let (sender, queue) = mpsc::unbounded_channel();
            tasks.spawn(lane(queue, live.clone(), journal.clone(), observer.clone()));
            sender
        });
        let _ = lane.send(command);
        while tasks.try_join_next().is_some() {}
    }
    // What is left stays in the store for the next start.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn lane(
    mut queue: mpsc::UnboundedReceiver<PendingCommand>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
) {
    while let Some(command) = queue.recv().await {
        let id = command.id;
        let update = deliver(command, &live, journal.as_ref(), &observer, true).await;
        journal.delivery(id, update);
    }
}

/// The newest delayed command of each (plugin, sink, door).
type Latest = Arc<Mutex<HashMap<(String, String, String), i64>>>;

/// Wait until `command` is due; then send it, unless a newer delayed
/// command took its `slot`.
async fn delayed(
    command: PendingCommand,
    slot: (String, String, String),
    latest: Latest,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
) {
    // Waiting does not hold up shutdown: it stays stored for the next start.
    journal.attempted();
    sleep_ms(command.next_at - now_ms()).await;
    let id = command.id;
    let superseded = {
        let mut latest = latest.lock().unwrap_or_else(|e| e.into_inner());
        let newest = latest.get(&slot).copied();
        if newest == Some(id) {
            latest.remove(&slot);
        }
        newest != Some(id)
    };
    let update = if superseded {
        tracing::debug!(sink = %slot.1, key = %command.key, "Delayed command replaced by a later one.");
        DeliveryUpdate::Superseded
    } else {
        deliver(command, &live, journal.as_ref(), &observer, false).await
    };
    journal.delivery(id, update);
}

/// Try `command` until it is delivered or given up on. `counted`: its first
/// attempt still counts as outstanding for shutdown.
async fn deliver(
    mut command: PendingCommand,
    live: &Live,
    journal: &dyn Journal,
    observer: &Observer,
    counted: bool,
) -> DeliveryUpdate {
    let sink = command.command.sink.clone();
    // Count the first attempt off once, however this command ends.
    let mut counted = counted;
    let release = |counted: &mut bool| {
        if std::mem::take(counted) {
            journal.attempted();
        }
    };
    let mut last_error = String::new();
    loop {
        let sinks = live.current().sinks.clone();
        let Some(policy) = sinks.policy(&sink).cloned() else {
            release(&mut counted);
            let error = format!("no sink named `{sink}` is configured");
            tracing::warn!(%sink, key = %command.key, reason = %DeadReason::UnknownSink, %error, "Command dead-lettered.");
            return DeliveryUpdate::Dead {
                attempts: command.attempts,
                reason: DeadReason::UnknownSink,
                error,
            };
        };
        // The freshness guard comes first: a late door command is never sent.
        let now = now_ms();
        if let Some(max_age) = policy.max_age {
            let expires_at = command.received_at + max_age.as_millis() as i64;
            if now >= expires_at {
                release(&mut counted);
                let error = format!(
                    "not delivered within max_age {max_age:?} of the event{}",
                    if last_error.is_empty() {
                        String::new()
                    } else {
                        format!("; last error: {last_error}")
                    }
                );
                tracing::warn!(%sink, key = %command.key, reason = %DeadReason::Expired, %error, "Command dead-lettered.");
                return DeliveryUpdate::Dead {
                    attempts: command.attempts,
                    reason: DeadReason::Expired,
                    error,
                };
            }
        }
        if command.next_at > now {
            // Waiting for a retry does not hold up shutdown.
            release(&mut counted);
            let expires_at = policy.max_age.map(|age| command.received_at + age.as_millis() as i64);
            // Not kept through the wait: a reload may replace them meanwhile.
            drop(sinks);
            sleep_ms(command.next_at.min(expires_at.unwrap_or(i64::MAX)) - now).await;
            continue;
        }

        if !journal.holds(command.id) {
            release(&mut counted);
            tracing::info!(%sink, key = %command.key, "Command now another node's to deliver; this node stops.");
            return DeliveryUpdate::Released;
        }
        let started = std::time::Instant::now();
        let result = sinks.deliver(&command.command, &command.key).await;
        let shown = result.as_ref().map(|_| ()).map_err(ToString::to_string);
        observer
            .deliveries
            .attempted(command.id, &sink, shown, started.elapsed());
        let now = now_ms();
        command.attempts += 1;
        let first_attempt_at = *command.first_attempt_at.get_or_insert(now);
        release(&mut counted);
        let error = match result {
            Ok(()) => {
                tracing::debug!(%sink, key = %command.key, attempts = command.attempts, "Command delivered.");
                return DeliveryUpdate::Delivered {
                    attempts: command.attempts,
                };
            }
            Err(error) => error,
        };
        last_error = error.to_string();
        let given_up = error.permanent().map(dead_reason).or_else(|| {
            let out_of_attempts = command.attempts >= policy.attempts;
            let out_of_time = now - first_attempt_at >= policy.give_up_after.as_millis() as i64;
            (out_of_attempts || out_of_time).then_some(DeadReason::Exhausted)
        });
        if let Some(reason) = given_up {
            tracing::warn!(%sink, key = %command.key, attempts = command.attempts, %reason, error = %last_error, "Command dead-lettered.");
            return DeliveryUpdate::Dead {
                attempts: command.attempts,
                reason,
                error: last_error,
            };
        }
        let wait = error
            .retry_after()
            .unwrap_or_else(|| full_jitter(&policy, command.attempts));
        // The last attempt falls at the give-up time, not after it.
        let give_up_at = first_attempt_at + policy.give_up_after.as_millis() as i64;
        command.next_at = (now + wait.as_millis() as i64).min(give_up_at);
        tracing::warn!(%sink, key = %command.key, attempts = command.attempts, retry_in = ?Duration::from_millis((command.next_at - now) as u64), error = %last_error, "Command not delivered; will retry.");
        // Recorded so that a restart keeps the count and the wait.
        journal.delivery(
            command.id,
            DeliveryUpdate::Retry {
                attempts: command.attempts,
                first_attempt_at,
                next_at: command.next_at,
                error: last_error.clone(),
            },
        );
    }
}

/// A random wait between zero and the exponential backoff for the attempt
/// that just failed (the "full jitter" of the AWS architecture blog): many
/// hosts retrying a recovered sink do not all arrive at once.
/// What a sink's refusal is called among the dead letters.
fn dead_reason(permanent: Permanent) -> DeadReason {
    match permanent {
        Permanent::UnknownSink => DeadReason::UnknownSink,
        Permanent::Rejected => DeadReason::Rejected,
    }
}

fn full_jitter(policy: &Policy, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let ceiling = policy.backoff.saturating_mul(1 << doublings).min(policy.backoff_max);
    let random = RandomState::new().hash_one(now_ms());
    Duration::from_nanos(random % (ceiling.as_nanos() as u64).max(1))
}

async fn sleep_ms(ms: i64) {
    tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            attempts: 10,
            give_up_after: Duration::from_secs(3600),
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_age: None,
        }
    }

    #[test]
    fn jitter_stays_under_the_doubling_ceiling() {
        for attempts in 1..20 {
            let ceiling = Duration::from_secs(1 << (attempts - 1).min(6)).min(Duration::from_secs(60));
            for _ in 0..50 {
                assert!(full_jitter(&policy(), attempts) < ceiling, "attempt {attempts}");
            }
        }
    }
}
