//! One call of a plugin: a fresh store under the plugin's limits, the call
//! under its deadline, and what came back checked against what the plugin
//! may hand back.

use std::time::Instant;

use wasmtime::Store;

use super::state::{LimitExceeded, PluginState};
use super::{Call, Decision, EPOCH_TICK, MAX_REASON, Plugin, PluginFailure, Pre, first_line, text};
use crate::event::Event;
use crate::wit::filter;

/// The least time a plugin is given to answer whether its config fits.
const CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// The most of a plugin's error message that is kept, in bytes.
const MAX_ERROR: usize = 1024;

/// A call was still running at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline passed")]
struct DeadlinePassed;

impl Plugin {
    /// Run the plugin once on `event`, in a fresh instance, once one of its
    /// `instances` is free. The deadline counts from when the call starts,
    /// not while it waits for an instance.
    pub async fn call(&self, event: &Event) -> Call {
        let _slot = self.slots.take().await;
        let started = Instant::now();
        let mut store = self.store(event.received_at);
        let result = within(self.settings.deadline, self.invoke(&mut store, event)).await;
        let mut state = store.into_data();
        // Going past a limit or a grant is the failure, however the call
        // ended: a log storm cut off at its deadline is `output_too_large`.
        let result = match result {
            _ if state.refused.is_some() => Err(PluginFailure::SinkRefused(state.refused.take().unwrap_or_default())),
            _ if state.overflow.is_some() => {
                Err(PluginFailure::OutputTooLarge(state.overflow.take().unwrap_or_default()))
            }
            _ if state.invalid.is_some() => Err(PluginFailure::Returned(state.invalid.take().unwrap_or_default())),
            Err(e) => Err(self.classify(e, &state)),
            Ok(Ok(Decision::Commands(_))) => self.check_output(Decision::Commands(std::mem::take(&mut state.commands))),
            Ok(Ok(decision)) => self.check_output(decision),
            // The plugin's own words go to the log and the journal: escaped
            // and bounded.
            Ok(Err(e)) => Err(PluginFailure::Returned(match e {
                crate::wit::types::Error::Config(m) => format!("config: {}", text::shown(&m, MAX_ERROR)),
                crate::wit::types::Error::Failed(m) => text::shown(&m, MAX_ERROR),
            })),
        };
        Call {
            result,
            logs: state.logs,
            elapsed: started.elapsed(),
        }
    }

    /// A fresh store for one call, under the plugin's limits.
    fn store(&self, received_at: i64) -> Store<PluginState> {
        let engine = match &self.pre {
            Pre::Filter(p) => p.engine(),
            Pre::Enricher(p) => p.engine(),
            Pre::Action(p) => p.engine(),
        };
        let mut store = Store::new(engine, PluginState::new(self.settings.clone(), received_at));
        store.limiter(|s| &mut s.limits);
        // The plugin's own code traps at the deadline; the timer around the
        // call cuts off waits in host code. It does not yield the thread
        // before then: a call that waited behind other work would be timed
        // for that work, and fail for it.
        let ticks = self.settings.deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64;
        store.set_epoch_deadline(ticks.max(1));
        store.epoch_deadline_trap();
        store
    }

    /// Ask the plugin, in a fresh instance under its limits, whether it can
    /// work with its config; its answer, or why it gave none.
    pub async fn check_config(&self) -> Result<(), String> {
        let mut store = self.store(crate::time::now_ms());
        // Not an event's call: a reload on a busy machine must not be
        // refused because its check was slow; a loop is still cut off.
        let deadline = self.settings.deadline.max(CHECK_DEADLINE);
        store.set_epoch_deadline(deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()) as u64);
        let checked = within(deadline, async {
            let store = &mut store;
            Ok(match &self.pre {
                Pre::Filter(pre) => {
                    pre.instantiate_async(&mut *store)
                        .await?
                        .call_check_config(store)
                        .await?
                }
                Pre::Enricher(pre) => {
                    pre.instantiate_async(&mut *store)
                        .await?
                        .call_check_config(store)
                        .await?
                }
                Pre::Action(pre) => {
                    pre.instantiate_async(&mut *store)
                        .await?
                        .call_check_config(store)
                        .await?
                }
            })
        })
        .await;
        let state = store.into_data();
        match checked {
            Ok(answer) => answer.map_err(|message| text::shown(&message, MAX_ERROR)),
            Err(e) => Err(format!("checking it failed: {}", self.classify(e, &state))),
        }
    }

    /// [`Plugin::check_config`] from code that is not async — loading runs
    /// in `check`, at start and in a reload's build — on a thread of its own
    /// with a runtime of its own, so it works wherever it is called from.
    pub(super) fn check_config_now(&self) -> Result<(), String> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .map_err(|e| format!("cannot start a runtime to check it: {e}"))?;
                    runtime.block_on(self.check_config())
                })
                .join()
                .unwrap_or_else(|_| Err("checking it panicked".into()))
        })
    }

    async fn invoke(
        &self,
        store: &mut Store<PluginState>,
        event: &Event,
    ) -> wasmtime::Result<Result<Decision, crate::wit::types::Error>> {
        Ok(match &self.pre {
            Pre::Filter(pre) => pre
                .instantiate_async(&mut *store)
                .await?
                .call_filter(store, event)
                .await?
                .map(|v| match v {
                    filter::Verdict::Keep => Decision::Keep,
                    filter::Verdict::Drop(reason) => Decision::Drop(reason),
                }),
            Pre::Enricher(pre) => pre
                .instantiate_async(&mut *store)
                .await?
                .call_enrich(store, event)
                .await?
                .map(|e| Decision::Enriched(Box::new(e))),
            Pre::Action(pre) => pre
                .instantiate_async(&mut *store)
                .await?
                .call_act(store, event)
                .await?
                .map(|()| Decision::Commands(Vec::new())),
        })
    }

    /// What the plugin handed back, within `max_output` and
    /// `max_attributes`; `raw` does not count (enrichers may not change it).
    fn check_output(&self, decision: Decision) -> Result<Decision, PluginFailure> {
        let limit = self.output.bytes;
        let too_large = |what: String| Err(PluginFailure::OutputTooLarge(what));
        let size = match &decision {
            Decision::Keep => 0,
            Decision::Drop(reason) => reason.len(),
            Decision::Enriched(event) => {
                if event.attributes.len() > self.output.attributes {
                    return too_large(format!(
                        "{} attributes, at most {}",
                        event.attributes.len(),
                        self.output.attributes
                    ));
                }
                output_size(event)
            }
            Decision::Commands(commands) => commands
                .iter()
                .map(|c| c.sink.len() + c.body.len() + c.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
                .sum(),
        };
        if size > limit {
            return too_large(format!("{size} bytes, at most {limit}"));
        }
        Ok(match decision {
            // Written to the log and the journal: escaped and bounded.
            Decision::Drop(reason) => Decision::Drop(text::shown(&reason, MAX_REASON)),
            other => other,
        })
    }

    fn classify(&self, error: wasmtime::Error, state: &PluginState) -> PluginFailure {
        match error.downcast_ref::<LimitExceeded>().copied().or(state.limits.hit) {
            Some(LimitExceeded::Memory) => return PluginFailure::Memory(self.settings.memory_limit),
            Some(LimitExceeded::Tables) => return PluginFailure::Tables(self.settings.table_limit),
            None => {}
        }
        if error.downcast_ref::<DeadlinePassed>().is_some()
            || matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt))
        {
            return PluginFailure::Timeout(self.settings.deadline);
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            // "call stack exhausted", "wasm `unreachable` instruction executed", …
            Some(trap) => PluginFailure::Trap(trap.to_string()),
            None => PluginFailure::Trap(first_line(&error)),
        }
    }
}

/// `call`, cut off at `deadline`.
async fn within<R>(
    deadline: std::time::Duration,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::new(DeadlinePassed)),
    }
}

/// The bytes of an event's text, but for `raw`.
fn output_size(event: &Event) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let door = event
        .door
        .as_ref()
        .map_or(0, |d| text(&d.id) + text(&d.name) + text(&d.location));
    let actor = event.actor.as_ref().map_or(0, |a| {
        text(&a.id) + text(&a.name) + text(&a.email) + text(&a.phone) + text(&a.kind)
    });
    let credential = event.credential.as_ref().map_or(0, |c| c.method.len() + text(&c.value));
    let device = event
        .device
        .as_ref()
        .map_or(0, |d| text(&d.id) + text(&d.name) + text(&d.model));
    let attributes: usize = event.attributes.iter().map(|a| a.key.len() + a.value.len()).sum();
    event.id.len()
        + event.source.len()
        + event.vendor.len()
        + event.vendor_event_type.len()
        + event.kind.len()
        + door
        + actor
        + credential
        + device
        + attributes
}
