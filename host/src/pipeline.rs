//! The pipeline: filters, then enrichers, then actions, each in config
//! order. A dropped event stops at the filter that dropped it. A plugin that
//! fails — or is suspended by its circuit breaker — is logged, counted, and
//! handled by its `on_error`: `drop` stops the event as if it had been
//! dropped (a filter's default: a filter that fails must not let the event
//! through), `skip` lets the event go on without it (an enricher's and an
//! action's), `dead-letter` stops the event, with none of its commands, as
//! a dead letter to retry once the plugin is fixed. Each plugin sees the event as
//! its [secrecy level](crate::secrecy) allows.

use std::sync::Arc;

use crate::config::{Config, ConfigError, OnError};
use crate::event::Event;
use crate::plugins::{Breaker, Components, Decision, LoadError, Plugin, PluginFailure, Runtime};
use crate::secrecy::{Redact, Secrecy, Views};
use crate::store::{Step, StepResult};
use crate::wit::sinks::Command;

/// The loaded plugins in the order they run.
pub struct Pipeline {
    plugins: Vec<Plugin>,
}

/// What happened to one event.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The filter that dropped the event, and why.
    pub dropped: Option<(String, String)>,
    /// Commands the actions asked for, in order.
    pub commands: Vec<Emitted>,
    /// What each plugin that ran did, in order.
    pub steps: Vec<Step>,
    /// Plugins that failed on this event.
    pub failures: Vec<(String, PluginFailure)>,
    /// The plugin whose failure stopped the event (`on_error =
    /// "dead-letter"`), and the failure. The event is then a dead letter and
    /// `commands` is empty.
    pub dead_letter: Option<(String, PluginFailure)>,
    /// The event as the last plugin left it.
    pub event: Option<Event>,
    /// Each call: the plugin, what it logged and how long it took.
    pub calls: Vec<(String, Vec<crate::plugins::LogLine>, std::time::Duration)>,
}

/// A command and the action plugin that emitted it.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub plugin: String,
    /// Its place among this plugin's commands for this event.
    pub index: usize,
    pub command: Command,
    /// How long after the event it is due (`send-later`); 0 for now.
    pub delay_ms: u64,
}

impl std::ops::Deref for Emitted {
    type Target = Command;

    fn deref(&self) -> &Command {
        &self.command
    }
}

impl Pipeline {
    /// Load every `[[plugins]]` entry, compiling each.
    pub fn from_config(config: &Config, runtime: &Runtime) -> Result<Pipeline, ConfigError> {
        Pipeline::load(config, runtime, &Components::uncached(runtime.engine()), None)
    }

    /// Load every `[[plugins]]` entry, its compiled code from `components`.
    /// A plugin that `previous` runs under the same name keeps its health
    /// record (its breaker starts afresh if its component changed).
    pub fn load(
        config: &Config,
        runtime: &Runtime,
        components: &Components,
        previous: Option<&Pipeline>,
    ) -> Result<Pipeline, ConfigError> {
        let mut plugins = Vec::with_capacity(config.plugins.len());
        let mut errors = crate::config::Errors::default();
        for (i, spec) in config.plugins.iter().enumerate() {
            let loaded = runtime
                .load_with(spec, &config.resolve(&spec.path), components)
                .map_err(|e| {
                    let key = match e {
                        LoadError::Config { .. } => "config",
                        _ => "path",
                    };
                    config.error(format!("plugins[{i}].{key}"), e.to_string())
                });
            let Some(mut plugin) = errors.keep(loaded) else {
                continue;
            };
            if let Some(before) = previous.and_then(|p| p.plugins.iter().find(|p| p.name == plugin.name)) {
                let new_version = before.compiled.sha256 != plugin.compiled.sha256;
                before.health.configure(Breaker::from_config(spec), new_version);
                plugin.health = Arc::clone(&before.health);
            }
            plugins.push(plugin);
        }
        errors.into_result()?;
        // Stable: within a role, config order is kept.
        plugins.sort_by_key(|p| p.world);
        Ok(Pipeline { plugins })
    }

    /// A pipeline of one plugin: what `vestibule plugin run` runs, so that
    /// a plugin on its own is treated exactly as in the host.
    pub fn single(plugin: Plugin) -> Pipeline {
        Pipeline { plugins: vec![plugin] }
    }

    /// The plugins, in the order they run.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.iter()
    }

    /// Run `event` through every plugin.
    pub async fn run(&self, event: Event) -> Outcome {
        let mut outcome = Outcome::default();
        // The event as each level the plugins have sees it, kept up to date
        // as enrichers change it.
        let vendor = crate::vendors::by_name(&event.vendor).map(|v| v as &dyn Redact);
        let mut views = Views::new(event, self.plugins.iter().map(|p| p.secrecy), vendor);
        for plugin in &self.plugins {
            let name = &plugin.name;
            let mut micros = None;
            let decision = match plugin.health.admit() {
                Err(until) => Err(PluginFailure::Suspended(until)),
                Ok(()) => {
                    let level = plugin.secrecy;
                    let call = plugin.call(views.get(level)).await;
                    micros = Some(call.elapsed.as_micros() as u64);
                    outcome.calls.push((name.clone(), call.logs, call.elapsed));
                    let decision = match call.result {
                        Ok(Decision::Enriched(returned)) => views
                            .enriched(level, plugin.public_output, *returned)
                            .map(|()| Done::Enriched)
                            .map_err(|what| {
                                PluginFailure::Returned(format!("changed {what}, which enrichers may not change"))
                            }),
                        Ok(Decision::Keep) => Ok(Done::Kept),
                        Ok(Decision::Drop(reason)) => Ok(Done::Dropped(reason)),
                        Ok(Decision::Commands(commands)) => Ok(Done::Commands(commands)),
                        Err(failure) => Err(failure),
                    };
                    match &decision {
                        Ok(_) => plugin.health.succeeded(),
                        Err(failure) => {
                            plugin.health.failed(failure.reason());
                        }
                    }
                    decision
                }
            };
            let result = match decision {
                Ok(Done::Kept) => StepResult::Kept,
                Ok(Done::Dropped(reason)) => {
                    tracing::debug!(plugin = %name, event = %views.get(Secrecy::Everything).id, %reason, "Event dropped.");
                    outcome.steps.push(Step {
                        plugin: name.clone(),
                        result: StepResult::Dropped(reason.clone()),
                        micros,
                    });
                    outcome.dropped = Some((name.clone(), reason));
                    break;
                }
                Ok(Done::Enriched) => StepResult::Enriched,
                Ok(Done::Commands(commands)) => {
                    let n = commands.len();
                    outcome
                        .commands
                        .extend(commands.into_iter().enumerate().map(|(index, out)| Emitted {
                            plugin: name.clone(),
                            index,
                            command: out.command,
                            delay_ms: out.delay_ms,
                        }));
                    StepResult::Commands(n)
                }
                Err(failure) => self.failed(&mut outcome, plugin, views.get(Secrecy::Everything), failure),
            };
            outcome.steps.push(Step {
                plugin: name.clone(),
                result,
                micros,
            });
            if outcome.dead_letter.is_some() || outcome.dropped.is_some() {
                break;
            }
        }
        if outcome.dead_letter.is_some() {
            // All or nothing: a dead letter runs again whole when retried.
            outcome.commands.clear();
        }
        outcome.event = Some(views.into_event());
        outcome
    }
}

/// What a plugin did, once its decision was taken in.
enum Done {
    Kept,
    Dropped(String),
    Enriched,
    Commands(Vec<crate::plugins::Outgoing>),
}

impl Pipeline {
    /// Log and record a plugin's failure, and apply its `on_error`.
    fn failed(&self, outcome: &mut Outcome, plugin: &Plugin, event: &Event, failure: PluginFailure) -> StepResult {
        let (name, reason) = (&plugin.name, failure.reason());
        let result = StepResult::Failed {
            reason: reason.to_string(),
            error: failure.to_string(),
            event_dropped: plugin.on_error == OnError::Drop,
        };
        let suspended = matches!(failure, PluginFailure::Suspended(_));
        match plugin.on_error {
            // A suspended plugin was logged when it was suspended, not once per event.
            OnError::Skip if suspended => {
                tracing::debug!(plugin = %name, event = %event.id, "Plugin suspended; event goes on without it.")
            }
            OnError::Drop if suspended => {
                tracing::debug!(plugin = %name, event = %event.id, "Plugin suspended; event dropped.");
                outcome.dropped = Some((name.clone(), format!("{name} failed: {reason}")));
            }
            OnError::Drop => {
                tracing::warn!(plugin = %name, event = %event.id, %reason, error = %failure, "Plugin failed; event dropped.");
                outcome.dropped = Some((name.clone(), format!("{name} failed: {reason}")));
            }
            OnError::Skip => {
                tracing::warn!(plugin = %name, event = %event.id, %reason, error = %failure, "Plugin failed; event goes on without it.")
            }
            OnError::DeadLetter => {
                tracing::warn!(plugin = %name, event = %event.id, %reason, error = %failure, "Plugin failed; event stopped as a dead letter.");
                outcome.dead_letter = Some((name.clone(), failure.clone()));
            }
        }
        outcome.failures.push((name.clone(), failure));
        result
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .plugins
            .iter()
            .map(|p| format!("{} ({})", p.name, p.world))
            .collect();
        f.debug_struct("Pipeline").field("plugins", &names).finish()
    }
}
