//! The pipeline: filters, then enrichers, then actions, each in config
//! order. A dropped event stops at the filter that dropped it; a plugin that
//! fails is logged and skipped, and the event goes on without it.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::event::Event;
use crate::plugins::{Decision, Plugin, PluginFailure, Runtime};
use crate::sinks::Sinks;
use crate::wit::sinks::Command;

/// The loaded plugins in the order they run, and the sinks they send to.
pub struct Pipeline {
    plugins: Vec<Plugin>,
    pub sinks: Arc<Sinks>,
}

/// What happened to one event.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The filter that dropped the event, and why.
    pub dropped: Option<(String, String)>,
    /// Commands the actions asked for, in order.
    pub commands: Vec<Command>,
    /// Plugins that failed on this event.
    pub failures: Vec<(String, PluginFailure)>,
    /// The event as the last plugin left it.
    pub event: Option<Event>,
}

impl Pipeline {
    /// Load every `[[plugins]]` entry and build the sinks.
    pub fn from_config(config: &Config, runtime: &Runtime) -> Result<Pipeline, ConfigError> {
        let mut plugins = Vec::with_capacity(config.plugins.len());
        for (i, spec) in config.plugins.iter().enumerate() {
            let plugin = runtime
                .load(spec, &config.resolve(&spec.path))
                .map_err(|e| config.error(format!("plugins[{i}].path"), e.to_string()))?;
            plugins.push(plugin);
        }
        // Stable: within a role, config order is kept.
        plugins.sort_by_key(|p| p.world);
        Ok(Pipeline {
            plugins,
            sinks: Arc::new(Sinks::from_config(config)?),
        })
    }

    /// The plugins, in the order they run.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.iter()
    }

    /// Run `event` through every plugin. Blocking: call it off the async
    /// runtime's threads.
    pub fn run(&self, mut event: Event) -> Outcome {
        let mut outcome = Outcome::default();
        for plugin in &self.plugins {
            let call = plugin.call(&event);
            let name = &plugin.name;
            match call.result {
                Ok(Decision::Keep) => {}
                Ok(Decision::Drop(reason)) => {
                    tracing::debug!(plugin = %name, event = %event.id, %reason, "Event dropped.");
                    outcome.dropped = Some((name.clone(), reason));
                    break;
                }
                Ok(Decision::Enriched(enriched)) => match check_enriched(&event, &enriched) {
                    Ok(()) => event = *enriched,
                    Err(what) => {
                        let failure =
                            PluginFailure::Returned(format!("changed {what}, which enrichers may not change"));
                        tracing::warn!(plugin = %name, event = %event.id, reason = failure.reason(), error = %failure, "Plugin failed; event goes on without it.");
                        outcome.failures.push((name.clone(), failure));
                    }
                },
                Ok(Decision::Commands(commands)) => outcome.commands.extend(commands),
                Err(failure) => {
                    tracing::warn!(plugin = %name, event = %event.id, reason = failure.reason(), error = %failure, "Plugin failed; event goes on without it.");
                    outcome.failures.push((name.clone(), failure));
                }
            }
        }
        outcome.event = Some(event);
        outcome
    }
}

/// Enrichers add to an event; they may not rewrite what identifies it or
/// what the vendor sent.
fn check_enriched(before: &Event, after: &Event) -> Result<(), &'static str> {
    if after.id != before.id {
        return Err("id");
    }
    if after.source != before.source || after.vendor != before.vendor {
        return Err("source or vendor");
    }
    if after.raw != before.raw {
        return Err("raw");
    }
    Ok(())
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
