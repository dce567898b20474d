//! The dispatcher: takes journaled events through the pipeline and records
//! each outcome, with its commands, back in the journal.
//!
//! Each door has a queue of its own: its events go through the pipeline
//! one after the other, in the order they were journaled, while other
//! doors' events run beside them. A door whose event waits — on a slow
//! plugin, out to its deadline — holds back only that door's next events.
//! At most [`IN_FLIGHT`] events run at once, in the order their doors
//! asked. Each event runs on the pipeline that is live when it starts,
//! from its first plugin to its last, however a reload swaps the pipeline
//! meanwhile.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::lanes::Lanes;
use crate::live::Live;
use crate::observe::{Observer, Passed};
use crate::outbox::idempotency_key;
use crate::store::{DeadEvent, Journal, NewCommand, Processed, Queued, Step, StepResult};

/// Events running through the pipeline at once, over all doors. Enough
/// that doors waiting out plugin deadlines leave others room (each plugin's
/// `instances` bounds its own share); few enough that a burst cannot start
/// more calls than the machine can hold.
pub const IN_FLIGHT: usize = 64;

/// A door: the source and its lane (see [`crate::event::Event::lane`]).
type Door = (String, String);

/// What each door's task needs.
#[derive(Clone)]
struct Shared {
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
    /// Events waiting, by door; a task of its own runs each door's.
    waiting: Lanes<Door, Queued>,
    running: Arc<Semaphore>,
}

/// Run every event from `feed` through the live pipeline until `stop` turns true.
pub async fn run(
    mut feed: mpsc::UnboundedReceiver<Queued>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Shared {
        live,
        journal,
        observer,
        waiting: Lanes::default(),
        running: Arc::new(Semaphore::new(IN_FLIGHT)),
    };
    let mut tasks = JoinSet::new();
    loop {
        let queued = tokio::select! {
            queued = feed.recv() => match queued {
                Some(queued) => queued,
                None => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let door = (queued.event.source.clone(), queued.event.lane());
        // A door with a task already has it take this after the ones before.
        if shared.waiting.push(door.clone(), queued) {
            tasks.spawn(run_door(door, shared.clone()));
        }
        while tasks.try_join_next().is_some() {}
    }
    // Unprocessed events stay journaled for the next start.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Run `door`'s events, one after the other, until none waits.
async fn run_door(door: Door, shared: Shared) {
    loop {
        let Some(queued) = shared.waiting.next(&door) else {
            return;
        };
        let Ok(_running) = shared.running.acquire().await else {
            return;
        };
        process(queued, &shared).await;
    }
}

/// Run one event through the live pipeline and record its outcome.
async fn process(Queued { seq, run, event }: Queued, shared: &Shared) {
    let Shared {
        live,
        journal,
        observer,
        ..
    } = shared;
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
            return;
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
