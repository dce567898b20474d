//! How a plugin has been doing: its calls and failures by reason, and the
//! circuit breaker that stops calling a plugin that fails again and again.
//!
//! A plugin failing `suspend_after` times within `suspend_window` is
//! suspended for `suspend_for`: it is not called, and its events are
//! treated by its `on_error` policy as if it had failed. Then one call is
//! let through: success closes the breaker, another failure suspends it
//! again at once. The counts outlive reloads (they are the plugin's, by
//! name); a new version of the component starts with a closed breaker.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use super::FailureReason;
use crate::config::PluginConfig;
use crate::time::Clock;
use crate::time::format_iso8601;

/// When the breaker trips and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Failures within `window` that suspend the plugin; 0 never does.
    pub after: u32,
    pub window_ms: i64,
    pub suspend_ms: i64,
}

impl Breaker {
    pub fn from_config(config: &PluginConfig) -> Breaker {
        Breaker {
            after: config.suspend_after,
            window_ms: config.suspend_window.0.as_millis() as i64,
            suspend_ms: config.suspend_for.0.as_millis() as i64,
        }
    }
}

/// One plugin's record. Shared by every call of the plugin, on any thread.
#[derive(Debug)]
pub struct Health {
    name: String,
    state: Mutex<State>,
    clock: Clock,
}

#[derive(Debug, Default)]
struct State {
    breaker: Option<Breaker>,
    calls: u64,
    failures: BTreeMap<FailureReason, u64>,
    /// Events not given to the plugin because it was suspended.
    skipped_while_suspended: u64,
    /// When recent failures happened (ms), oldest first.
    recent: VecDeque<i64>,
    /// Suspended until then (ms).
    suspended_until: Option<i64>,
    /// The next call is the trial after a suspension.
    trial: bool,
}

/// Whether a plugin is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BreakerState {
    Active,
    /// Its breaker is open: not called until `suspended_until`.
    Suspended,
}

/// What `GET /admin/status` shows of a plugin's health.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub calls: u64,
    pub failures: BTreeMap<FailureReason, u64>,
    pub skipped_while_suspended: u64,
    pub state: BreakerState,
    pub suspended_until: Option<String>,
}

impl Health {
    /// Suspensions are timed by `clock`.
    pub fn new(name: &str, clock: Clock) -> Health {
        Health {
            name: name.to_string(),
            state: Mutex::new(State::default()),
            clock,
        }
    }

    /// Trip by `breaker` from now on; with `new_version`, forget the
    /// failures of the version before.
    pub fn configure(&self, breaker: Breaker, new_version: bool) {
        let mut state = self.lock();
        state.breaker = Some(breaker);
        if new_version {
            state.recent.clear();
            state.suspended_until = None;
            state.trial = false;
        }
    }

    /// Whether the plugin may be called now; `Err` holds when it may again.
    pub fn admit(&self) -> Result<(), i64> {
        let mut state = self.lock();
        let Some(until) = state.suspended_until else {
            return Ok(());
        };
        if self.clock.now_ms() < until {
            state.skipped_while_suspended += 1;
            return Err(until);
        }
        state.suspended_until = None;
        state.trial = true;
        tracing::info!(plugin = %self.name, "Suspension over; trying the plugin again.");
        Ok(())
    }

    pub fn succeeded(&self) {
        let mut state = self.lock();
        state.calls += 1;
        if std::mem::take(&mut state.trial) {
            state.recent.clear();
            tracing::info!(plugin = %self.name, "Plugin works again.");
        }
    }

    /// Count a failure; returns until when the plugin is now suspended, if
    /// this failure tripped the breaker.
    pub fn failed(&self, reason: FailureReason) -> Option<i64> {
        let mut state = self.lock();
        state.calls += 1;
        *state.failures.entry(reason).or_default() += 1;
        let breaker = state.breaker?;
        if breaker.after == 0 {
            return None;
        }
        let now = self.clock.now_ms();
        let trial = std::mem::take(&mut state.trial);
        state.recent.push_back(now);
        while state.recent.front().is_some_and(|at| *at < now - breaker.window_ms) {
            state.recent.pop_front();
        }
        if !trial && state.recent.len() < breaker.after as usize {
            return None;
        }
        let until = now + breaker.suspend_ms;
        state.suspended_until = Some(until);
        state.recent.clear();
        if trial {
            tracing::warn!(plugin = %self.name, %reason, until = %format_iso8601(until / 1000), "Plugin still failing; suspended again.");
        } else {
            tracing::warn!(plugin = %self.name, %reason, failures = breaker.after, window = ?std::time::Duration::from_millis(breaker.window_ms as u64), until = %format_iso8601(until / 1000), "Plugin suspended: it keeps failing.");
        }
        Some(until)
    }

    pub fn report(&self) -> Report {
        let state = self.lock();
        let now = self.clock.now_ms();
        let suspended = state.suspended_until.filter(|until| *until > now);
        Report {
            calls: state.calls,
            failures: state.failures.clone(),
            skipped_while_suspended: state.skipped_while_suspended,
            state: if suspended.is_some() {
                BreakerState::Suspended
            } else {
                BreakerState::Active
            },
            suspended_until: suspended.map(|until| format_iso8601(until / 1000)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still has good counts.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(after: u32) -> Health {
        let health = Health::new("test", Clock::system());
        let breaker = Breaker {
            after,
            window_ms: 60_000,
            suspend_ms: 60_000,
        };
        health.configure(breaker, true);
        health
    }

    #[test]
    fn the_breaker_trips_after_enough_failures_and_closes_on_a_good_trial() {
        let health = health(3);
        assert_eq!(health.failed(FailureReason::Trap), None);
        assert_eq!(health.failed(FailureReason::Trap), None);
        let until = health
            .failed(FailureReason::Timeout)
            .expect("the third failure suspends");
        assert_eq!(health.admit(), Err(until));
        let report = health.report();
        assert_eq!(report.state, BreakerState::Suspended);
        assert_eq!((report.calls, report.skipped_while_suspended), (3, 1));
        assert_eq!(
            report.failures,
            BTreeMap::from([(FailureReason::Timeout, 1), (FailureReason::Trap, 2)])
        );

        // The cool-down is over: one trial call, and it works.
        health.lock().suspended_until = Some(crate::time::now_ms() - 1);
        assert_eq!(health.admit(), Ok(()));
        health.succeeded();
        assert_eq!(health.report().state, BreakerState::Active);
        assert_eq!(
            health.failed(FailureReason::Trap),
            None,
            "a fresh start: one failure does not suspend"
        );
    }

    #[test]
    fn a_failed_trial_suspends_again_at_once() {
        let health = health(2);
        health.failed(FailureReason::Trap);
        health.failed(FailureReason::Trap).unwrap();
        health.lock().suspended_until = Some(crate::time::now_ms() - 1);
        assert_eq!(health.admit(), Ok(()));
        assert!(health.failed(FailureReason::Trap).is_some());
        assert!(health.admit().is_err());
    }

    #[test]
    fn zero_never_suspends_and_a_new_version_starts_afresh() {
        let health = health(0);
        for _ in 0..100 {
            assert_eq!(health.failed(FailureReason::Trap), None);
        }
        let health = self::health(1);
        assert!(health.failed(FailureReason::Trap).is_some());
        health.configure(
            Breaker {
                after: 1,
                window_ms: 1,
                suspend_ms: 1,
            },
            true,
        );
        assert_eq!(health.admit(), Ok(()));
        assert_eq!(
            health.report().failures[&FailureReason::Trap],
            1,
            "counts outlive versions"
        );
    }
}
