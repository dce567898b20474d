//! What lives in a plugin call's `Store`: the WASI context (granting
//! nothing), resource limits, and the host imports of the WIT contract.

use std::sync::Arc;

use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::wit::{host, sinks};

/// Most commands one action call may queue.
const MAX_COMMANDS: usize = 64;
/// Most log lines one call may write; later lines are counted, not kept.
const MAX_LOG_LINES: usize = 100;
/// Longest log message kept, in bytes.
const MAX_LOG_BYTES: usize = 4096;

/// Per-plugin settings shared by all its calls.
pub(crate) struct Settings {
    pub name: String,
    pub config_json: String,
    pub memory_limit: u64,
    pub deadline: std::time::Duration,
    pub sinks: Vec<String>,
}

/// A line a plugin logged during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: host::Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

pub(crate) struct PluginState {
    settings: Arc<Settings>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: Limits,
    pub logs: Vec<LogLine>,
    pub commands: Vec<sinks::Command>,
}

impl PluginState {
    pub fn new(settings: Arc<Settings>) -> Self {
        // No preopened directories, environment, arguments or network:
        // a plugin sees only what the WIT contract hands it.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = Limits {
            memory: settings.memory_limit,
            hit: false,
        };
        PluginState {
            settings,
            wasi,
            table: ResourceTable::new(),
            limits,
            logs: Vec::new(),
            commands: Vec::new(),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HasData for PluginState {
    type Data<'a> = &'a mut PluginState;
}

/// The memory limit of one call. Growing past it traps with
/// [`MemoryLimitExceeded`] so the failure is reported as `memory`, not as
/// whatever the plugin's allocator does on a failed grow.
pub(crate) struct Limits {
    memory: u64,
    pub hit: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded")]
pub(crate) struct MemoryLimitExceeded;

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory {
            self.hit = true;
            return Err(MemoryLimitExceeded.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String, fields: Vec<(String, String)>) {
        if self.logs.len() >= MAX_LOG_LINES {
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut end = MAX_LOG_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let plugin = &self.settings.name;
        let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shown = shown.join(" ");
        match level {
            host::Level::Trace => tracing::trace!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Debug => tracing::debug!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Info => tracing::info!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Warn => tracing::warn!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Error => tracing::error!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
        }
        self.logs.push(LogLine { level, message, fields });
    }

    fn config(&mut self) -> String {
        self.settings.config_json.clone()
    }
}

impl sinks::Host for PluginState {
    fn send(&mut self, command: sinks::Command) -> Result<(), sinks::SendError> {
        if !self.settings.sinks.contains(&command.sink) {
            tracing::warn!(plugin = %self.settings.name, sink = %command.sink, "Refused a command to a sink this plugin may not use.");
            return Err(sinks::SendError::UnknownSink(command.sink));
        }
        if self.commands.len() >= MAX_COMMANDS {
            return Err(sinks::SendError::TooMany);
        }
        self.commands.push(command);
        Ok(())
    }
}

/// `types` declares no functions; wasmtime still wants it implemented.
impl crate::wit::types::Host for PluginState {}
