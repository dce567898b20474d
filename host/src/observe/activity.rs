//! What each source and each door last sent, how fast, and whether it has
//! gone quiet for longer than its `silent_after`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::{DoorLabels, Metrics, Seconds, SourceLabels};
use crate::time::now_ms;

/// The rate is counted over this many seconds.
const RATE_WINDOW_S: i64 = 60;

/// A source, or one door of it, that is watched for silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub source: String,
    /// `None`: the source as a whole.
    pub door: Option<String>,
    pub after_ms: i64,
}

/// A watched source or door that went quiet, or that spoke again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub source: String,
    pub door: Option<String>,
    /// Its last event before the silence (ms); `None` if it has sent none
    /// since the host started.
    pub last_at: Option<i64>,
    /// Silent since (ms): its last event, or the host's start.
    pub since: i64,
}

#[derive(Debug, Default)]
struct Seen {
    last_at: Option<i64>,
    count: u64,
    /// Events per second over the last minute: (second, count), oldest first.
    seconds: VecDeque<(i64, u32)>,
    silent: bool,
    /// Its last-event and silent gauges, looked up once: not per event.
    gauges: Option<(Seconds, Gauge)>,
}

impl Seen {
    fn saw(&mut self, at: i64) {
        self.last_at = Some(self.last_at.map_or(at, |last| last.max(at)));
        self.count += 1;
        let second = at / 1000;
        match self.seconds.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => self.seconds.push_back((second, 1)),
        }
        while self.seconds.front().is_some_and(|(s, _)| *s <= second - RATE_WINDOW_S) {
            self.seconds.pop_front();
        }
    }

    fn per_minute(&self, now: i64) -> u32 {
        let from = now / 1000 - RATE_WINDOW_S;
        self.seconds.iter().filter(|(s, _)| *s > from).map(|(_, n)| n).sum()
    }
}

#[derive(Debug, Default)]
struct Source {
    seen: Seen,
    doors: BTreeMap<String, Seen>,
}

/// What the console shows of a source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub last_event_at: Option<i64>,
    pub events: u64,
    pub per_minute: u32,
    pub silent: bool,
    pub silent_doors: Vec<String>,
}

/// Every source's and door's activity since the host started.
pub struct Activity {
    metrics: Arc<Metrics>,
    started: i64,
    sources: Mutex<BTreeMap<String, Source>>,
}

impl Activity {
    pub fn new(metrics: Arc<Metrics>) -> Activity {
        Activity {
            metrics,
            started: now_ms(),
            sources: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Source>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event from `source` about `door` (`""`: none) arrived at `at`;
    /// returns the silences it ends.
    pub fn saw(&self, source: &str, door: &str, at: i64) -> Vec<Change> {
        let mut sources = self.lock();
        // Looked up by `&str` first: the names are copied once per source
        // and door, not once per event.
        if !sources.contains_key(source) {
            sources.insert(source.to_string(), Source::default());
        }
        let entry = sources.get_mut(source).expect("inserted above");
        let mut ended = Vec::new();
        let mut end = |seen: &mut Seen, door: Option<&str>| {
            if std::mem::take(&mut seen.silent) {
                ended.push(Change {
                    source: source.to_string(),
                    door: door.map(str::to_string),
                    last_at: seen.last_at,
                    since: seen.last_at.unwrap_or(self.started),
                });
            }
        };
        end(&mut entry.seen, None);
        entry.seen.saw(at);
        let (last, silent) = entry.seen.gauges.get_or_insert_with(|| {
            let labels = SourceLabels { source: source.into() };
            (
                self.metrics.source_last_event.get_or_create_owned(&labels),
                self.metrics.source_silent.get_or_create_owned(&labels),
            )
        });
        last.set(at as f64 / 1000.0);
        silent.set(0);
        if !door.is_empty() {
            if !entry.doors.contains_key(door) {
                entry.doors.insert(door.to_string(), Seen::default());
            }
            let seen = entry.doors.get_mut(door).expect("inserted above");
            end(seen, Some(door));
            seen.saw(at);
            let (last, silent) = seen.gauges.get_or_insert_with(|| {
                let labels = DoorLabels {
                    source: source.into(),
                    door: door.into(),
                };
                (
                    self.metrics.door_last_event.get_or_create_owned(&labels),
                    self.metrics.door_silent.get_or_create_owned(&labels),
                )
            });
            last.set(at as f64 / 1000.0);
            silent.set(0);
        }
        ended
    }

    /// The watched sources and doors that have been quiet for longer than
    /// their `silent_after` at `now` and were not known to be: each is
    /// reported once, until it speaks again.
    pub fn fell_silent(&self, watched: &[Watched], now: i64) -> Vec<Change> {
        let mut sources = self.lock();
        let mut silent = Vec::new();
        for watch in watched {
            let source = sources.entry(watch.source.clone()).or_default();
            let seen = match &watch.door {
                None => &mut source.seen,
                Some(door) => source.doors.entry(door.clone()).or_default(),
            };
            let since = seen.last_at.unwrap_or(self.started);
            if seen.silent || now - since < watch.after_ms {
                continue;
            }
            seen.silent = true;
            match &watch.door {
                None => {
                    let labels = SourceLabels {
                        source: watch.source.clone(),
                    };
                    self.metrics.source_silent.get_or_create(&labels).set(1);
                }
                Some(door) => {
                    let labels = DoorLabels {
                        source: watch.source.clone(),
                        door: door.clone(),
                    };
                    self.metrics.door_silent.get_or_create(&labels).set(1);
                }
            }
            silent.push(Change {
                source: watch.source.clone(),
                door: watch.door.clone(),
                last_at: seen.last_at,
                since,
            });
        }
        silent
    }

    /// Each source's activity, by name.
    pub fn report(&self) -> Vec<SourceReport> {
        let now = now_ms();
        self.lock()
            .iter()
            .map(|(name, source)| SourceReport {
                name: name.clone(),
                last_event_at: source.seen.last_at,
                events: source.seen.count,
                per_minute: source.seen.per_minute(now),
                silent: source.seen.silent,
                silent_doors: source
                    .doors
                    .iter()
                    .filter(|(_, d)| d.silent)
                    .map(|(n, _)| n.clone())
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_is_reported_once_and_ended_by_the_next_event() {
        let activity = Activity::new(Arc::new(Metrics::new()));
        let start = activity.started;
        let watched = [
            Watched {
                source: "office".into(),
                door: None,
                after_ms: 1000,
            },
            Watched {
                source: "office".into(),
                door: Some("Front".into()),
                after_ms: 5000,
            },
        ];
        assert!(activity.saw("office", "Front", start + 100).is_empty());
        assert!(activity.fell_silent(&watched, start + 1000).is_empty());
        let silent = activity.fell_silent(&watched, start + 1200);
        assert_eq!(silent.len(), 1, "{silent:?}");
        assert_eq!((silent[0].door.clone(), silent[0].last_at), (None, Some(start + 100)));
        assert!(activity.fell_silent(&watched, start + 2000).is_empty(), "once");
        let doors = activity.fell_silent(&watched, start + 5200);
        assert_eq!(doors[0].door.as_deref(), Some("Front"));
        let back = activity.saw("office", "Back", start + 6000);
        assert_eq!(back.len(), 1, "the source is back, its front door is not: {back:?}");
        let back = activity.saw("office", "Front", start + 6100);
        assert_eq!(back[0].door.as_deref(), Some("Front"));
        assert_eq!(activity.report()[0].events, 3);
    }
}
