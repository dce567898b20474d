//! `[[plugins]]`: the pipeline, and the limits each plugin runs under.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Config, ConfigError, Duration, check_name};
use crate::secrecy::Secrecy;

/// `[[plugins]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// `name`: used in logs and status.
    pub name: String,
    /// `world`: the plugin's role; the component must export that world.
    pub world: World,
    /// `path`: the component file (`.wasm`), relative to the config file.
    pub path: PathBuf,
    /// `deadline`: wall-clock time one call may take before it is stopped.
    #[serde(default = "default_deadline")]
    pub deadline: Duration,
    /// `memory`: the most linear memory the plugin may grow to.
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// `tables`: the most elements the plugin's tables may grow to.
    #[serde(default = "default_tables")]
    pub tables: u32,
    /// `instances`: how many calls of this plugin may run at once; more
    /// wait for a free one.
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// `max_output`: the most one call may hand back — the enriched event
    /// (without `raw`, which it may not change), a filter's reason, or its
    /// commands' bodies and headers together. More is `output_too_large`.
    #[serde(default = "default_max_output")]
    pub max_output: ByteSize,
    /// `max_commands`, `max_log_lines`, `max_attributes`: the most commands
    /// one call may send, lines it may log, and attributes the event it
    /// returns may carry. More is `output_too_large`.
    #[serde(default = "default_max_commands")]
    pub max_commands: u32,
    #[serde(default = "default_max_log_lines")]
    pub max_log_lines: u32,
    /// `max_log_bytes`: the most one call may log, all lines together as
    /// written (each line is cut at 4 KiB). More is `output_too_large`.
    #[serde(default = "default_max_log_bytes")]
    pub max_log_bytes: ByteSize,
    #[serde(default = "default_max_attributes")]
    pub max_attributes: u32,
    /// `secrecy`: what of the event the plugin may see: 0 everything, 1 no
    /// credentials, 2 no credentials and no names, e-mail addresses or
    /// phone numbers (see [`crate::secrecy`]).
    #[serde(default)]
    pub secrecy: Secrecy,
    /// `public_output` (enrichers): what it adds or changes is seen by every
    /// plugin after it. Without it, only by plugins cleared to its
    /// `secrecy` level or a more privileged one (see [`crate::secrecy`]).
    #[serde(default)]
    pub public_output: bool,
    /// `clock`: what the plugin's clocks read.
    #[serde(default)]
    pub clock: Clock,
    /// `on_error`: what a failure of this plugin does to the event. Left
    /// out, it depends on the role: see [`PluginConfig::on_error`].
    #[serde(default, rename = "on_error")]
    pub on_error_set: Option<OnError>,
    /// `suspend_after`, `suspend_window`, `suspend_for`: a plugin failing
    /// `suspend_after` times within `suspend_window` is not called for
    /// `suspend_for`, then tried again (0 never suspends).
    #[serde(default = "default_suspend_after")]
    pub suspend_after: u32,
    #[serde(default = "default_suspend_time")]
    pub suspend_window: Duration,
    #[serde(default = "default_suspend_time")]
    pub suspend_for: Duration,
    /// `sinks`: the sinks an action plugin may send to; any other is refused.
    #[serde(default)]
    pub sinks: Vec<String>,
    /// `[plugins.config]`: handed to the plugin as JSON.
    #[serde(default)]
    pub config: toml::Table,
}

/// `clock`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    /// The wall clock reads the time the event was received, and neither
    /// it nor the monotonic clock moves during the call: a plugin knows no
    /// more about time than the event tells it, and a replayed event gets
    /// the same answers.
    #[default]
    Event,
    /// The host's clocks.
    Real,
}

/// `on_error`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// The event stops here, as if a filter had dropped it.
    Drop,
    /// The event goes on without this plugin.
    Skip,
    /// The event stops here and is kept as a dead letter with the error,
    /// to be retried once the plugin is fixed.
    DeadLetter,
}

impl OnError {
    pub const fn as_str(self) -> &'static str {
        match self {
            OnError::Drop => "drop",
            OnError::Skip => "skip",
            OnError::DeadLetter => "dead-letter",
        }
    }
}

impl std::fmt::Display for OnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PluginConfig {
    /// What a failure of this plugin does to the event: `on_error` as set,
    /// or by its role — a filter that fails drops the event (passing it
    /// would open the doors it was there to keep shut), an enricher or an
    /// action that fails is skipped (the event goes on without what it
    /// would have added or sent).
    pub fn on_error(&self) -> OnError {
        self.on_error_set.unwrap_or(match self.world {
            World::Filter => OnError::Drop,
            World::Enricher | World::Action => OnError::Skip,
        })
    }

    /// A plugin of `world` at `path` with the default limits, no sinks and
    /// an empty config: what `vestibule plugin run` starts from.
    pub fn new(name: impl Into<String>, world: World, path: impl Into<PathBuf>) -> Self {
        PluginConfig {
            name: name.into(),
            world,
            path: path.into(),
            deadline: default_deadline(),
            memory: default_memory(),
            tables: default_tables(),
            instances: default_instances(),
            max_output: default_max_output(),
            max_commands: default_max_commands(),
            max_log_lines: default_max_log_lines(),
            max_log_bytes: default_max_log_bytes(),
            max_attributes: default_max_attributes(),
            secrecy: Secrecy::default(),
            public_output: false,
            clock: Clock::default(),
            on_error_set: None,
            suspend_after: default_suspend_after(),
            suspend_window: default_suspend_time(),
            suspend_for: default_suspend_time(),
            sinks: Vec::new(),
            config: toml::Table::new(),
        }
    }
}

fn default_deadline() -> Duration {
    Duration(std::time::Duration::from_millis(50))
}

fn default_memory() -> ByteSize {
    ByteSize(16 * 1024 * 1024)
}

/// A Rust plugin's function table holds a few hundred entries.
fn default_tables() -> u32 {
    10_000
}

fn default_instances() -> u32 {
    4
}

fn default_max_output() -> ByteSize {
    ByteSize(256 * 1024)
}

fn default_max_commands() -> u32 {
    16
}

fn default_max_log_lines() -> u32 {
    100
}

fn default_max_log_bytes() -> ByteSize {
    ByteSize(64 * 1024)
}

fn default_max_attributes() -> u32 {
    64
}

fn default_suspend_after() -> u32 {
    5
}

fn default_suspend_time() -> Duration {
    Duration(std::time::Duration::from_secs(60))
}

/// The most calls of one plugin at once: each holds an instance of the
/// engine's pool (see `plugins::Runtime::new`).
pub const MAX_INSTANCES: u32 = 32;

/// The most memory any one plugin may be given (`memory`); the engine's
/// pool is sized for it.
pub const MAX_PLUGIN_MEMORY: u64 = 256 << 20;

/// A plugin's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Filter,
    Enricher,
    Action,
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            World::Filter => "filter",
            World::Enricher => "enricher",
            World::Action => "action",
        })
    }
}

impl Config {
    pub(super) fn validate_plugin(&self, key: &str, plugin: &PluginConfig) -> Result<(), ConfigError> {
        check_name(self, &format!("{key}.name"), &plugin.name)?;
        if plugin.world != World::Action && !plugin.sinks.is_empty() {
            return Err(self.error(
                format!("{key}.sinks"),
                format!(
                    "only action plugins send to sinks; `{}` is a {}",
                    plugin.name, plugin.world
                ),
            ));
        }
        if plugin.public_output && plugin.world != World::Enricher {
            return Err(self.error(
                format!("{key}.public_output"),
                format!(
                    "only enrichers change the event; `{}` is a {}",
                    plugin.name, plugin.world
                ),
            ));
        }
        for sink in &plugin.sinks {
            if !self.sinks.iter().any(|s| &s.name == sink) {
                return Err(self.error(format!("{key}.sinks"), format!("no sink named `{sink}` is configured")));
            }
        }
        if plugin.deadline.0.is_zero() {
            return Err(self.error(format!("{key}.deadline"), "must be more than 0"));
        }
        // A Rust component's stack alone takes 1 MiB of its memory.
        self.in_range(&format!("{key}.memory"), plugin.memory, 1 << 20, MAX_PLUGIN_MEMORY)?;
        if !(1..=MAX_INSTANCES).contains(&plugin.instances) {
            return Err(self.error(format!("{key}.instances"), format!("from 1 to {MAX_INSTANCES}")));
        }
        self.in_range(
            &format!("{key}.max_output"),
            plugin.max_output,
            1 << 10,
            MAX_PLUGIN_MEMORY,
        )?;
        self.in_range(&format!("{key}.max_log_bytes"), plugin.max_log_bytes, 4 << 10, 16 << 20)?;
        for (name, value) in [
            ("tables", plugin.tables),
            ("max_commands", plugin.max_commands),
            ("max_log_lines", plugin.max_log_lines),
            ("max_attributes", plugin.max_attributes),
        ] {
            if value == 0 {
                return Err(self.error(format!("{key}.{name}"), "must be at least 1"));
            }
        }
        if plugin.suspend_after > 0 {
            for (name, value) in [
                ("suspend_window", plugin.suspend_window),
                ("suspend_for", plugin.suspend_for),
            ] {
                if value.0.is_zero() {
                    return Err(self.error(format!("{key}.{name}"), "must be more than 0"));
                }
            }
        }
        Ok(())
    }
}
