//! The dispatcher: takes journaled events through the pipeline and records
//! each outcome, with its commands, back in the journal.
//!
//! Events run in lanes, one per core; all events of one door go through the
//! same lane, one after the other, so they are processed in the order they
//! were journaled. Each event runs on the pipeline that is live when it
//! starts, from its first plugin to its last, however a reload swaps the
//! pipeline meanwhile.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::live::Live;
use crate::observe::{Observer, Passed};
use crate::outbox::idempotency_key;
use crate::store::{DeadEvent, Journal, NewCommand, Processed, Queued, Step, StepResult};

/// Run every event from `feed` through the live pipeline until `stop` turns true.
pub async fn run(
    mut feed: mpsc::UnboundedReceiver<Queued>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
    mut stop: watch::Receiver<bool>,
) {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut tasks = JoinSet::new();
    let lanes: Vec<_> = (0..workers)
        .map(|_| {
            let (sender, queue) = mpsc::unbounded_channel();
            tasks.spawn(lane(queue, live.clone(), journal.clone(), observer.clone()));
            sender
        })
        .collect();
    // Fixed keys: the same door always maps to the same lane.
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    loop {
        let queued = tokio::select! {
            queued = feed.recv() => match queued {
                Some(queued) => queued,
                None => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let door = queued.event.lane();
        let lane = hasher.hash_one((&queued.event.source, door)) as usize % lanes.len();
        let _ = lanes[lane].send(queued);
    }
    // Unprocessed events stay journaled for the next start.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn lane(
    mut queue: mpsc::UnboundedReceiver<Queued>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
) {
    while let Some(Queued { seq, run, event }) = queue.recv().await {
        let runner = live.current().pipeline.clone();
        // Enrichers may not change these, but may change the door: the
        // commands keep the lane the event came in.
        let door = event.lane();
        let (source, id, received_at) = (event.source.clone(), event.id.clone(), event.received_at);
        let outcome = match AssertUnwindSafe(runner.run(event)).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(_) => {
                // The plugins are sandboxed; this is a bug in the host.
                tracing::error!(seq, "The pipeline panicked; the event is recorded as failed.");
                journal.processed(Processed {
                    seq,
                    steps: vec![Step {
                        plugin: "-".into(),
                        result: StepResult::Panicked,
                        micros: None,
                    }],
                    commands: Vec::new(),
                    dead_letter: None,
                    received_at,
                });
                continue;
            }
        };
        let calls = outcome.calls.iter().map(|(plugin, _, took)| (plugin.as_str(), *took));
        observer.processed(&outcome.steps, calls);
        if let Some((plugin, failure)) = &outcome.dead_letter {
            observer.dead_event(plugin, failure.reason().as_str());
        }
        if observer.watched()
            && let Some(event) = &outcome.event
        {
            observer.show(Passed {
                seq,
                run,
                event: event.clone(),
                steps: outcome.steps.clone(),
                commands: outcome.commands.len(),
                dead_letter: outcome.dead_letter.is_some(),
                at: crate::time::now_ms(),
            });
        }
        let commands = outcome
            .commands
            .into_iter()
            .map(|emitted| NewCommand {
                key: idempotency_key(&source, &id, run, &emitted.plugin, emitted.index),
                door: door.clone(),
                plugin: emitted.plugin,
                index: emitted.index,
                command: emitted.command,
                delay_ms: emitted.delay_ms,
            })
            .collect();
        journal.processed(Processed {
            seq,
            steps: outcome.steps,
            commands,
            dead_letter: outcome.dead_letter.map(|(plugin, failure)| DeadEvent {
                plugin,
                reason: failure.reason().as_str(),
                error: failure.to_string(),
            }),
            received_at,
        });
    }
}
