//! `[[plugins]]`: the pipeline, and the limits each plugin runs under.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Config, ConfigError, Duration, check_name};

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
    /// `sinks`: the sinks an action plugin may send to; any other is refused.
    #[serde(default)]
    pub sinks: Vec<String>,
    /// `[plugins.config]`: handed to the plugin as JSON.
    #[serde(default)]
    pub config: toml::Table,
}

impl PluginConfig {
    /// A plugin of `world` at `path` with the default limits, no sinks and
    /// an empty config: what `vestibule plugin run` starts from.
    pub fn new(name: impl Into<String>, world: World, path: impl Into<PathBuf>) -> Self {
        PluginConfig {
            name: name.into(),
            world,
            path: path.into(),
            deadline: default_deadline(),
            memory: default_memory(),
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
        for sink in &plugin.sinks {
            if !self.sinks.iter().any(|s| &s.name == sink) {
                return Err(self.error(format!("{key}.sinks"), format!("no sink named `{sink}` is configured")));
            }
        }
        if plugin.deadline.0.is_zero() {
            return Err(self.error(format!("{key}.deadline"), "must be more than 0"));
        }
        if plugin.memory.0 > crate::plugins::MAX_PLUGIN_MEMORY {
            return Err(self.error(
                format!("{key}.memory"),
                format!("at most {} bytes", crate::plugins::MAX_PLUGIN_MEMORY),
            ));
        }
        Ok(())
    }
}
