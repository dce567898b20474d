//! What the running host shows of itself while events go through it: the
//! [`metrics`](crate::metrics), what each source and door last sent
//! ([`activity`]), each processed event for the console's live tail
//! ([`Passed`]), and each delivery attempt ([`deliveries`]).
//!
//! The journal is wrapped ([`ObservedJournal`]) so that every accepted event
//! is seen once, whichever way it came in (a webhook, a WebSocket, a silence
//! noticed); the dispatcher and the outbox report the rest.

pub mod activity;
pub mod deliveries;
mod journal;
pub mod silence;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

pub use activity::Activity;
pub use deliveries::{Attempt, Deliveries};
pub use journal::ObservedJournal;

use crate::event::Event;
use crate::metrics::{DeadEventLabels, Metrics};
use crate::store::{Step, StepResult};

/// How many processed events the live tail holds for a slow viewer before
/// it skips ahead.
const TAIL_BUFFER: usize = 512;

/// How many recent calls of each plugin its p50 and p99 are taken over.
const RECENT_CALLS: usize = 1024;

/// One event after the pipeline, as the live tail shows it (the console
/// removes what the viewer may not see).
#[derive(Debug)]
pub struct Passed {
    pub seq: i64,
    pub run: i64,
    /// The event as the last plugin left it.
    pub event: Event,
    pub steps: Vec<Step>,
    pub commands: usize,
    /// A plugin stopped it as a dead letter.
    pub dead_letter: bool,
    /// When it left the pipeline (ms).
    pub at: i64,
}

/// Everything the host observes, shared by all its parts.
pub struct Observer {
    pub metrics: Arc<Metrics>,
    pub activity: Activity,
    pub deliveries: Deliveries,
    tail: broadcast::Sender<Arc<Passed>>,
    /// Each plugin's latest call times (µs), oldest first.
    calls: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new()
    }
}

impl Observer {
    pub fn new() -> Observer {
        let metrics = Arc::new(Metrics::new());
        Observer {
            activity: Activity::new(metrics.clone()),
            deliveries: Deliveries::new(metrics.clone()),
            metrics,
            tail: broadcast::channel(TAIL_BUFFER).0,
            calls: Mutex::default(),
        }
    }

    /// Processed events from now on.
    pub fn tail(&self) -> broadcast::Receiver<Arc<Passed>> {
        self.tail.subscribe()
    }

    /// The pipeline ran an event: count each plugin's decision and time.
    pub fn processed<'a>(&self, steps: &[Step], calls: impl Iterator<Item = (&'a str, Duration)>) {
        for step in steps {
            let outcome = match &step.result {
                StepResult::Kept => "kept",
                StepResult::Dropped(_) => "dropped",
                StepResult::Enriched => "enriched",
                StepResult::Commands(0) => "none",
                StepResult::Commands(_) => "commands",
                StepResult::Failed { reason, .. } => reason.as_str(),
                StepResult::Panicked => "panicked",
                StepResult::Unreadable(_) => "unreadable",
                StepResult::Other(_) => "other",
            };
            self.metrics.plugin_call(&step.plugin, outcome);
        }
        let mut recent = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        for (plugin, took) in calls {
            self.metrics.plugin_call_time(plugin, took.as_secs_f64());
            // A String for the name only the first time the plugin is seen.
            if !recent.contains_key(plugin) {
                recent.insert(plugin.to_string(), VecDeque::with_capacity(RECENT_CALLS));
            }
            if let Some(times) = recent.get_mut(plugin) {
                if times.len() == RECENT_CALLS {
                    times.pop_front();
                }
                times.push_back(took.as_micros() as u64);
            }
        }
    }

    /// Whether anyone watches the live tail: building its copy of an event
    /// costs only then.
    pub fn watched(&self) -> bool {
        self.tail.receiver_count() > 0
    }

    /// Show a processed event to whoever watches the live tail.
    pub fn show(&self, passed: Passed) {
        let _ = self.tail.send(Arc::new(passed));
    }

    /// A plugin stopped an event as a dead letter.
    pub fn dead_event(&self, plugin: &str, reason: &str) {
        let labels = DeadEventLabels {
            plugin: plugin.to_string(),
            reason: reason.to_string(),
        };
        self.metrics.dead_events.get_or_create(&labels).inc();
    }

    /// The median and 99th percentile of the plugin's recent calls (µs),
    /// and how many calls they are taken over.
    pub fn call_times(&self, plugin: &str) -> Option<(u64, u64, usize)> {
        let recent = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut times: Vec<u64> = recent.get(plugin)?.iter().copied().collect();
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Some((at(0.5), at(0.99), times.len()))
    }
}
