//! The host's metrics, as `GET /metrics` serves them in the Prometheus text
//! format (OpenMetrics). Every name starts `vestibule_`; times are in
//! seconds, counters end `_total`. docs/operations.md lists them all, and
//! `examples/grafana-dashboard.json` draws them.
//!
//! Counters and histograms are counted where things happen; gauges of
//! state (the queue, what waits per sink, breakers) are set just before a
//! scrape by whoever knows them ([`Metrics::encode`] takes a closure).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::AtomicU64;

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub source: String,
    pub vendor: String,
    /// `accepted`, `duplicate`, or the refusal's reason code.
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub source: String,
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub plugin: String,
    /// `kept`, `dropped`, `enriched`, `commands`, or the failure's reason.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub sink: String,
    /// `delivered` or `failed`.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLabels {
    pub sink: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadEventLabels {
    pub plugin: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DoorLabels {
    pub source: String,
    pub door: String,
}

/// A gauge of seconds (a time or an age).
pub type Seconds = Gauge<f64, AtomicU64>;

/// Histograms built alike, one per label set.
#[derive(Clone)]
pub struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

/// 10 µs to ~10 s: a plugin call, a delivery.
fn call_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 21))
}

/// 100 µs to ~3 s: a commit (an fsync, or a cluster's acknowledgement).
fn commit_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// 1 to 1024 changes in one commit.
fn batch_sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// What the journal counts of its commits.
#[derive(Debug, Clone)]
pub struct Commits {
    seconds: Histogram,
    size: Histogram,
    /// Bytes the SQLite journal's commits appended to its write-ahead log.
    wal_bytes: Counter,
}

impl Default for Commits {
    fn default() -> Self {
        Commits {
            seconds: commit_seconds(),
            size: batch_sizes(),
            wal_bytes: Counter::default(),
        }
    }
}

impl Commits {
    /// A commit of `changes` took `took`.
    pub fn observe(&self, took: std::time::Duration, changes: usize) {
        self.seconds.observe(took.as_secs_f64());
        self.size.observe(changes as f64);
    }

    /// A commit appended `bytes` to the write-ahead log.
    pub fn wal_written(&self, bytes: u64) {
        self.wal_bytes.inc_by(bytes);
    }
}

/// Each request's counter by source, then (vendor, result): found without
/// building the label set's `String`s, on the path every request takes.
type RequestCounters = HashMap<String, HashMap<(&'static str, &'static str), Counter>>;

/// A family's metrics by two label values, found from borrowed text: on the
/// path of every event and plugin call, the label set's `String`s are built
/// only the first time a pair is seen.
struct ByPair<M> {
    seen: RwLock<HashMap<String, HashMap<String, M>>>,
}

impl<M> Default for ByPair<M> {
    fn default() -> Self {
        ByPair {
            seen: RwLock::default(),
        }
    }
}

impl<M: Clone> ByPair<M> {
    fn get(&self, a: &str, b: &str, create: impl FnOnce() -> M) -> M {
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        if let Some(metric) = seen.get(a).and_then(|by| by.get(b)) {
            return metric.clone();
        }
        drop(seen);
        let metric = create();
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        seen.entry(a.to_string())
            .or_default()
            .insert(b.to_string(), metric.clone());
        metric
    }
}

/// Everything the host counts, registered once.
pub struct Metrics {
    registry: Registry,
    request_counters: RwLock<RequestCounters>,
    event_counters: ByPair<Counter>,
    call_counters: ByPair<Counter>,
    call_times: ByPair<Histogram>,
    pub requests: Family<RequestLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
    pub queue_depth: Gauge,
    pub queue_capacity: Gauge,
    pub plugin_calls: Family<CallLabels, Counter>,
    pub plugin_call_seconds: Family<PluginLabels, Histogram, Buckets>,
    pub plugin_suspended: Family<PluginLabels, Gauge>,
    pub dead_events: Family<DeadEventLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub delivery_seconds: Family<SinkLabels, Histogram, Buckets>,
    pub commands_pending: Family<SinkLabels, Gauge>,
    pub oldest_pending_seconds: Family<SinkLabels, Seconds>,
    pub dead_letters: Family<DeadLabels, Counter>,
    pub commits: Commits,
    pub reloads: Family<ResultLabels, Counter>,
    pub source_last_event: Family<SourceLabels, Seconds>,
    pub door_last_event: Family<DoorLabels, Seconds>,
    pub source_silent: Family<SourceLabels, Gauge>,
    pub door_silent: Family<DoorLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("vestibule"),
            request_counters: RwLock::default(),
            event_counters: ByPair::default(),
            call_counters: ByPair::default(),
            call_times: ByPair::default(),
            requests: Family::default(),
            events: Family::default(),
            queue_depth: Gauge::default(),
            queue_capacity: Gauge::default(),
            plugin_calls: Family::default(),
            plugin_call_seconds: Family::new_with_constructor(Buckets(call_seconds)),
            plugin_suspended: Family::default(),
            dead_events: Family::default(),
            deliveries: Family::default(),
            delivery_seconds: Family::new_with_constructor(Buckets(call_seconds)),
            commands_pending: Family::default(),
            oldest_pending_seconds: Family::default(),
            dead_letters: Family::default(),
            commits: Commits::default(),
            reloads: Family::default(),
            source_last_event: Family::default(),
            door_last_event: Family::default(),
            source_silent: Family::default(),
            door_silent: Family::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register("requests", "Requests to ingest paths, by source, vendor and result (accepted, duplicate, or the refusal's reason code)", self.requests.clone());
        r.register(
            "events",
            "Events accepted into the journal, by source and normalized kind",
            self.events.clone(),
        );
        r.register(
            "queue_depth",
            "Journaled events waiting for the pipeline",
            self.queue_depth.clone(),
        );
        r.register(
            "queue_capacity",
            "Waiting events at which ingest refuses new ones with 503 ([server] queue)",
            self.queue_capacity.clone(),
        );
        r.register("plugin_calls", "Plugin calls by plugin and outcome (kept, dropped, enriched, commands, none, or the failure's reason; suspended: not called, its breaker is open)", self.plugin_calls.clone());
        r.register_with_unit(
            "plugin_call_duration",
            "How long one plugin call took, a fresh instance included",
            Unit::Seconds,
            self.plugin_call_seconds.clone(),
        );
        r.register(
            "plugin_suspended",
            "1 while the plugin's circuit breaker is open (the plugin is not called)",
            self.plugin_suspended.clone(),
        );
        r.register(
            "dead_events",
            "Events a plugin stopped as dead letters (on_error = dead-letter), by plugin and reason",
            self.dead_events.clone(),
        );
        r.register(
            "deliveries",
            "Delivery attempts by sink and outcome (delivered, failed)",
            self.deliveries.clone(),
        );
        r.register_with_unit(
            "delivery_duration",
            "How long one delivery attempt took",
            Unit::Seconds,
            self.delivery_seconds.clone(),
        );
        r.register(
            "commands_pending",
            "Commands stored and not yet delivered or given up on, by sink",
            self.commands_pending.clone(),
        );
        r.register_with_unit(
            "command_oldest_pending_age",
            "Age of the oldest pending command per sink, from when it was due",
            Unit::Seconds,
            self.oldest_pending_seconds.clone(),
        );
        r.register(
            "dead_letters",
            "Commands given up on, by sink and reason (exhausted, expired, rejected, unknown_sink, superseded)",
            self.dead_letters.clone(),
        );
        r.register_with_unit(
            "journal_commit_duration",
            "How long one journal commit took (one fsync for SQLite, the acknowledgements for NATS)",
            Unit::Seconds,
            self.commits.seconds.clone(),
        );
        r.register(
            "journal_batch_size",
            "Changes (events, outcomes, deliveries) in one journal commit",
            self.commits.size.clone(),
        );
        r.register_with_unit(
            "journal_wal_written",
            "Bytes the journal's commits appended to SQLite's write-ahead log (frame headers included)",
            Unit::Bytes,
            self.commits.wal_bytes.clone(),
        );
        r.register("reloads", "Reloads by result (ok, failed)", self.reloads.clone());
        r.register_with_unit(
            "source_last_event_timestamp",
            "When the source's last event arrived (Unix time)",
            Unit::Seconds,
            self.source_last_event.clone(),
        );
        r.register_with_unit(
            "door_last_event_timestamp",
            "When the last event about the door arrived (Unix time)",
            Unit::Seconds,
            self.door_last_event.clone(),
        );
        r.register(
            "source_silent",
            "1 while the source has sent nothing for its silent_after",
            self.source_silent.clone(),
        );
        r.register(
            "door_silent",
            "1 while the door has had no event for its silent_after",
            self.door_silent.clone(),
        );
    }

    /// Count one request to `source` (a configured one, or `-`: their number
    /// is bounded by the config) of `vendor` that ended in `result`.
    pub fn request(&self, source: &str, vendor: &'static str, result: &'static str) {
        let cached = self.request_counters.read().unwrap_or_else(|e| e.into_inner());
        if let Some(counter) = cached.get(source).and_then(|by| by.get(&(vendor, result))) {
            counter.inc();
            return;
        }
        drop(cached);
        let labels = RequestLabels {
            source: source.to_string(),
            vendor: vendor.to_string(),
            result: result.to_string(),
        };
        let counter = self.requests.get_or_create_owned(&labels);
        counter.inc();
        let mut cache = self.request_counters.write().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(source.to_string())
            .or_default()
            .insert((vendor, result), counter);
    }

    /// An event of `kind` from `source` was journaled.
    pub fn event(&self, source: &str, kind: &str) {
        self.event_counters
            .get(source, kind, || {
                self.events.get_or_create_owned(&EventLabels {
                    source: source.to_string(),
                    kind: kind.to_string(),
                })
            })
            .inc();
    }

    /// A call of `plugin` ended as `outcome`.
    pub fn plugin_call(&self, plugin: &str, outcome: &str) {
        self.call_counters
            .get(plugin, outcome, || {
                self.plugin_calls.get_or_create_owned(&CallLabels {
                    plugin: plugin.to_string(),
                    outcome: outcome.to_string(),
                })
            })
            .inc();
    }

    /// A call of `plugin` took `seconds`.
    pub fn plugin_call_time(&self, plugin: &str, seconds: f64) {
        self.call_times
            .get(plugin, "", || {
                self.plugin_call_seconds.get_or_create_owned(&PluginLabels {
                    plugin: plugin.to_string(),
                })
            })
            .observe(seconds);
    }

    /// The text a scrape gets.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let metrics = Metrics::new();
        metrics.request("office", "unifi-access", "accepted");
        metrics.request("office", "unifi-access", "accepted");
        metrics
            .plugin_call_seconds
            .get_or_create(&PluginLabels { plugin: "f".into() })
            .observe(0.000_02);
        let text = metrics.encode();
        assert!(
            text.contains(r#"vestibule_requests_total{source="office",vendor="unifi-access",result="accepted"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("vestibule_plugin_call_duration_seconds_bucket{"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE vestibule_journal_commit_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
