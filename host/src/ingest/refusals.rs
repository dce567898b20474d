//! Refused requests in the log, summarised: a flood of bad signatures, an
//! overloaded queue or a scanner walking paths must not fill the disk. The
//! first refusal of each source and reason in an interval is logged whole;
//! the rest are counted, and at the end of the interval one line says how
//! many more there were.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals counted since the last summary, by (source, reason).
#[derive(Default)]
pub struct Refusals {
    counts: Mutex<HashMap<(String, &'static str), Count>>,
}

struct Count {
    since: Instant,
    /// Refusals not logged one by one.
    more: u64,
}

impl Refusals {
    /// A request from `source` was refused for `reason`: `log` writes its
    /// line if it is the first of its kind in this interval.
    pub fn refused(&self, source: &str, reason: &'static str, log: impl FnOnce()) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(&(source.to_string(), reason)) {
            Some(count) => count.more += 1,
            None => {
                counts.insert(
                    (source.to_string(), reason),
                    Count {
                        since: Instant::now(),
                        more: 0,
                    },
                );
                drop(counts);
                log();
            }
        }
    }

    /// Log how many more were refused since each first one, and start
    /// counting afresh.
    pub fn summarise(&self) {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()));
        let mut summary: Vec<_> = counts.into_iter().filter(|(_, count)| count.more > 0).collect();
        summary.sort_by(|a, b| a.0.cmp(&b.0));
        for ((source, reason), count) in summary {
            let seconds = count.since.elapsed().as_secs();
            tracing::warn!(%source, reason, count = count.more, seconds, "More requests refused for the same reason.");
        }
    }

    /// Summarise every `interval()` until `stop` turns true.
    pub async fn run(&self, interval: impl Fn() -> Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval()) => self.summarise(),
                _ = stop.wait_for(|stop| *stop) => {
                    self.summarise();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_kind_is_logged_the_rest_counted() {
        let refusals = Refusals::default();
        let mut logged = 0;
        for _ in 0..100 {
            refusals.refused("office", "signature_invalid", || logged += 1);
        }
        refusals.refused("office", "overloaded", || logged += 1);
        refusals.refused("verkada", "signature_invalid", || logged += 1);
        assert_eq!(logged, 3);
        let more: u64 = refusals.counts.lock().unwrap().values().map(|c| c.more).sum();
        assert_eq!(more, 99);
        refusals.summarise();
        refusals.refused("office", "signature_invalid", || logged += 1);
        assert_eq!(logged, 4, "a new interval logs its first again");
    }
}
