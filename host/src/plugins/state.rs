//! What lives in a plugin call's `Store`: the WASI context (granting
//! nothing), resource limits, and the host imports of the WIT contract.

use std::sync::Arc;

use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::text;
use crate::config::Clock;
use crate::wit::{host, sinks};

/// The most one log line may hold — message, field names and values
/// together, as written — in bytes; the rest is cut off.
pub const MAX_LOG_LINE: usize = 4096;
/// Of that, the most for one field name, and for one field value.
const MAX_FIELD_NAME: usize = 128;
const MAX_FIELD_VALUE: usize = 2048;

/// A clock that always reads the same time.
struct FixedClock(u64);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.0
    }
}

/// Per-plugin settings shared by all its calls.
pub(crate) struct Settings {
    pub name: String,
    pub config_json: String,
    pub memory_limit: u64,
    pub table_limit: u32,
    pub deadline: std::time::Duration,
    pub sinks: Vec<String>,
    pub max_commands: u32,
    pub max_log_lines: u32,
    pub max_log_bytes: u64,
    pub clock: Clock,
}

/// In a plugin's `sinks`, allows any sink: for `vestibule plugin run`, where
/// there is no host config (a config's sink names cannot be `*`).
pub const ANY_SINK: &str = "*";

/// A line a plugin logged during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: host::Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl LogLine {
    /// The line as the host writes it: every part escaped (see
    /// [`text`](super::text)), and all of it within [`MAX_LOG_LINE`] bytes;
    /// fields that do not fit are left out, and an `…` field says so.
    fn shown(level: host::Level, message: &str, fields: &[(String, String)]) -> LogLine {
        let message = text::shown(message, MAX_LOG_LINE / 2);
        let mut used = message.len();
        let mut shown = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let name = text::shown(name, MAX_FIELD_NAME);
            let value = text::shown(value, MAX_FIELD_VALUE);
            // `name=value` and the space before it.
            used += name.len() + value.len() + 2;
            if used > MAX_LOG_LINE {
                shown.push(("…".to_string(), format!("{} more fields", fields.len() - shown.len())));
                break;
            }
            shown.push((name, value));
        }
        LogLine {
            level,
            message,
            fields: shown,
        }
    }

    /// Its bytes, as written.
    fn len(&self) -> usize {
        self.message.len() + self.fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>()
    }

    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub fn level_name(&self) -> &'static str {
        match self.level {
            host::Level::Trace => "trace",
            host::Level::Debug => "debug",
            host::Level::Info => "info",
            host::Level::Warn => "warn",
            host::Level::Error => "error",
        }
    }
}

pub(crate) struct PluginState {
    settings: Arc<Settings>,
    /// What a WASI call sees; built on the call's first use of WASI. Most
    /// calls never use it, and building one seeds two random generators.
    wasi: Option<WasiCtx>,
    received_at: i64,
    table: ResourceTable,
    pub limits: Limits,
    pub logs: Vec<LogLine>,
    /// The bytes of `logs`, as written.
    log_bytes: u64,
    pub commands: Vec<Outgoing>,
    /// A request the host cannot honour (a delay over a day): the call
    /// fails with `error` however it returns.
    pub invalid: Option<String>,
    /// What this call produced beyond its limits (commands, log lines):
    /// the call fails with `output_too_large` however it returns.
    pub overflow: Option<String>,
    /// A sink this call tried to send to without being allowed: the call
    /// fails with `sink_refused` however it returns.
    pub refused: Option<String>,
}

impl PluginState {
    /// The state of one call on an event received at `received_at` (ms).
    pub fn new(settings: Arc<Settings>, received_at: i64) -> Self {
        let limits = Limits {
            memory: settings.memory_limit,
            tables: settings.table_limit,
            hit: None,
        };
        PluginState {
            settings,
            wasi: None,
            received_at,
            table: ResourceTable::new(),
            limits,
            logs: Vec::new(),
            log_bytes: 0,
            commands: Vec::new(),
            overflow: None,
            refused: None,
            invalid: None,
        }
    }

    /// The WASI context of this call: no preopened directories,
    /// environment, arguments or network — a plugin sees only what the WIT
    /// contract hands it.
    fn wasi(settings: &Settings, received_at: i64) -> WasiCtx {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        if settings.clock == Clock::Event {
            // Time is the event's: the wall clock reads when it was
            // received and stands still, and so does the monotonic clock.
            // The same event gets the same answers on a replay.
            wasi.wall_clock(FixedClock(received_at.max(0) as u64))
                .monotonic_clock(FixedClock(0));
        }
        wasi.build()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (settings, received_at) = (&self.settings, self.received_at);
        WasiCtxView {
            ctx: self
                .wasi
                .get_or_insert_with(|| PluginState::wasi(settings, received_at)),
            table: &mut self.table,
        }
    }
}

impl HasData for PluginState {
    type Data<'a> = &'a mut PluginState;
}

/// The memory and table limits of one call. Growing past them traps with
/// [`LimitExceeded`] so the failure is reported as `memory`, not as
/// whatever the plugin's allocator does on a failed grow.
pub(crate) struct Limits {
    memory: u64,
    tables: u32,
    pub hit: Option<LimitExceeded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitExceeded {
    #[error("memory limit exceeded")]
    Memory,
    #[error("table limit exceeded")]
    Tables,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory {
            self.hit = Some(LimitExceeded::Memory);
            return Err(LimitExceeded::Memory.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > u64::from(self.tables) {
            self.hit = Some(LimitExceeded::Tables);
            return Err(LimitExceeded::Tables.into());
        }
        Ok(true)
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String, fields: Vec<(String, String)>) {
        // A storm of log lines, or of long ones, must not flood the host's
        // log: past either limit nothing more is written, and the call fails.
        if self.overflow.is_some() {
            return;
        }
        if self.logs.len() >= self.settings.max_log_lines as usize {
            self.overflow = Some(format!("more than {} log lines", self.settings.max_log_lines));
            return;
        }
        let line = LogLine::shown(level, &message, &fields);
        self.log_bytes += line.len() as u64;
        if self.log_bytes > self.settings.max_log_bytes {
            self.overflow = Some(format!("more than {} bytes of log lines", self.settings.max_log_bytes));
            return;
        }
        let plugin = &self.settings.name;
        let shown: Vec<String> = line.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shown = shown.join(" ");
        let message = &line.message;
        match level {
            host::Level::Trace => tracing::trace!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Debug => tracing::debug!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Info => tracing::info!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Warn => tracing::warn!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
            host::Level::Error => tracing::error!(target: "vestibule::plugin", %plugin, fields = %shown, "{message}"),
        }
        self.logs.push(line);
    }

    fn config(&mut self) -> String {
        self.settings.config_json.clone()
    }
}

/// The longest delay `send-later` accepts.
pub const MAX_DELAY_MS: u64 = 24 * 3600 * 1000;

/// A command a call asked for, and how long after the event it is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub command: sinks::Command,
    pub delay_ms: u64,
}

impl std::ops::Deref for Outgoing {
    type Target = sinks::Command;

    fn deref(&self) -> &sinks::Command {
        &self.command
    }
}

impl sinks::Host for PluginState {
    fn send(&mut self, command: sinks::Command) -> Result<(), sinks::SendError> {
        self.queue(command, 0)
    }

    fn send_later(&mut self, command: sinks::Command, delay_ms: u64) -> Result<(), sinks::SendError> {
        if delay_ms > MAX_DELAY_MS {
            self.invalid
                .get_or_insert_with(|| format!("asked for a delay of {delay_ms} ms; at most {MAX_DELAY_MS}"));
            return Err(sinks::SendError::TooMany);
        }
        self.queue(command, delay_ms)
    }
}

impl PluginState {
    fn queue(&mut self, command: sinks::Command, delay_ms: u64) -> Result<(), sinks::SendError> {
        if !self.settings.sinks.iter().any(|s| s == &command.sink || s == ANY_SINK) {
            // Logged once per call (by the pipeline, with the failure), however
            // often the plugin tries.
            self.refused.get_or_insert_with(|| text::shown(&command.sink, 256));
            return Err(sinks::SendError::UnknownSink(command.sink));
        }
        if self.commands.len() >= self.settings.max_commands as usize {
            self.overflow
                .get_or_insert_with(|| format!("more than {} commands", self.settings.max_commands));
            return Err(sinks::SendError::TooMany);
        }
        self.commands.push(Outgoing { command, delay_ms });
        Ok(())
    }
}

/// `types` declares no functions; wasmtime still wants it implemented.
impl crate::wit::types::Host for PluginState {}
