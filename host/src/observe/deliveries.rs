//! Commands on their way to the sinks: which wait, since when, and every
//! attempt this host made at each (the journal keeps only the count and the
//! last error), for the console and the metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::metrics::{DeadLabels, DeliveryLabels, Metrics, SinkLabels};
use crate::time::now_ms;

/// Attempts are kept for this many of the latest commands…
const KEPT_COMMANDS: usize = 10_000;
/// …and this many attempts of each.
const KEPT_ATTEMPTS: usize = 20;

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// When it ended (ms).
    pub at: i64,
    pub delivered: bool,
    pub error: Option<String>,
    pub micros: u64,
}

/// What the console shows of a sink.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkReport {
    pub pending: usize,
    /// When the oldest pending command was due (ms).
    pub oldest_due_at: Option<i64>,
    pub delivered: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

#[derive(Default)]
struct State {
    /// Command id → (sink, when it was due).
    pending: HashMap<i64, (String, i64)>,
    attempts: BTreeMap<i64, Vec<Attempt>>,
    sinks: BTreeMap<String, SinkReport>,
}

pub struct Deliveries {
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

impl Deliveries {
    pub fn new(metrics: Arc<Metrics>) -> Deliveries {
        Deliveries {
            metrics,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The outbox took command `id` for `sink`, due at `due_at` (ms).
    pub fn handed(&self, id: i64, sink: &str, due_at: i64) {
        self.lock().pending.insert(id, (sink.to_string(), due_at));
    }

    /// One attempt at command `id` ended.
    pub fn attempted(&self, id: i64, sink: &str, result: Result<(), String>, took: std::time::Duration) {
        let outcome = if result.is_ok() { "delivered" } else { "failed" };
        let labels = DeliveryLabels {
            sink: sink.to_string(),
            outcome: outcome.to_string(),
        };
        self.metrics.deliveries.get_or_create(&labels).inc();
        let labels = SinkLabels { sink: sink.to_string() };
        self.metrics
            .delivery_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        let at = now_ms();
        let mut state = self.lock();
        let report = state.sinks.entry(sink.to_string()).or_default();
        match &result {
            Ok(()) => report.delivered += 1,
            Err(error) => {
                report.failed += 1;
                report.last_error = Some(error.clone());
                report.last_error_at = Some(at);
            }
        }
        let attempts = state.attempts.entry(id).or_default();
        if attempts.len() == KEPT_ATTEMPTS {
            attempts.remove(0);
        }
        attempts.push(Attempt {
            at,
            delivered: result.is_ok(),
            error: result.err(),
            micros: took.as_micros() as u64,
        });
        while state.attempts.len() > KEPT_COMMANDS {
            state.attempts.pop_first();
        }
    }

    /// Command `id` is done with: delivered, or given up on for `dead`
    /// (a reason word; `superseded` is not counted as a dead letter).
    pub fn finished(&self, id: i64, dead: Option<&str>) {
        let Some((sink, _)) = self.lock().pending.remove(&id) else {
            return;
        };
        if let Some(reason) = dead {
            let labels = DeadLabels {
                sink,
                reason: reason.to_string(),
            };
            self.metrics.dead_letters.get_or_create(&labels).inc();
        }
    }

    /// Every attempt this host made at command `id`, oldest first.
    pub fn attempts(&self, id: i64) -> Vec<Attempt> {
        self.lock().attempts.get(&id).cloned().unwrap_or_default()
    }

    /// Each sink's waiting commands and latest attempts; `configured` are
    /// listed even when nothing was sent to them yet. Sets the per-sink
    /// gauges as it goes.
    pub fn report<'a>(&self, configured: impl Iterator<Item = &'a str>) -> BTreeMap<String, SinkReport> {
        let state = self.lock();
        let mut sinks = state.sinks.clone();
        for name in configured {
            sinks.entry(name.to_string()).or_default();
        }
        for (sink, due_at) in state.pending.values() {
            let report = sinks.entry(sink.clone()).or_default();
            report.pending += 1;
            report.oldest_due_at = Some(report.oldest_due_at.map_or(*due_at, |o| o.min(*due_at)));
        }
        drop(state);
        let now = now_ms();
        self.metrics.commands_pending.clear();
        self.metrics.oldest_pending_seconds.clear();
        for (sink, report) in &sinks {
            let labels = SinkLabels { sink: sink.clone() };
            self.metrics
                .commands_pending
                .get_or_create(&labels)
                .set(report.pending as i64);
            let age = report.oldest_due_at.map_or(0, |due| (now - due).max(0));
            self.metrics
                .oldest_pending_seconds
                .get_or_create(&labels)
                .set(age as f64 / 1000.0);
        }
        sinks
    }
}
