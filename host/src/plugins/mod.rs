//! The plugin runtime: WebAssembly components run in a fresh sandbox for
//! every call.
//!
//! The engine is built once. Each plugin is compiled and linked once at load
//! time into an `InstancePre`; a call then costs one `Store` and one
//! instantiation from the pooling allocator, so no state leaks from one event
//! to the next and a plugin that misbehaves takes only its own call down.
//!
//! A call's `deadline` bounds its wall-clock time wherever the time goes:
//! in the plugin's code, epoch interruption traps it; in host code — a WASI
//! sleep or poll, where epoch interruption never fires — calls run
//! asynchronously and every WASI function that waits waits asynchronously,
//! so the timer around the call cuts it off. A call cut off is dropped with
//! its store; nothing of it runs on.

mod call;
mod compiled;
mod health;
mod runtime;
mod slots;
mod state;
pub mod text;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{OnError, World};
use crate::event::Event;
use crate::secrecy::Secrecy;
use crate::wit::{action, enricher, filter};

pub use compiled::{Compiled, Components, Origin};
pub use health::{Breaker, BreakerState, Health};
pub use runtime::Runtime;
use slots::Slots;
use state::PluginState;
pub use state::{ANY_SINK, LogLine, MAX_DELAY_MS, Outgoing};

pub use crate::config::MAX_PLUGIN_MEMORY;

/// How often the epoch advances; plugin deadlines are counted in these ticks.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// The most of a filter's drop reason that is kept, in bytes.
pub const MAX_REASON: usize = 1024;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    NotAComponent { path: String, reason: String },
    #[error("{path} does not fit the `{world}` world: {reason}")]
    WrongWorld { path: String, world: World, reason: String },
    /// The plugin refused its `[plugins.config]`.
    #[error("the plugin `{name}` refuses it: {message}")]
    Config { name: String, message: String },
}

/// Why one call of a plugin failed, or why it was not called. The plugin's
/// `on_error` decides what happens to the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    #[error("timeout: still running at its {0:?} deadline")]
    Timeout(std::time::Duration),
    #[error("memory: tried to grow past its {0}-byte limit")]
    Memory(u64),
    #[error("memory: tried to grow a table past its {0}-element limit")]
    Tables(u32),
    #[error("trap: {0}")]
    Trap(String),
    #[error("output too large: {0}")]
    OutputTooLarge(String),
    #[error("sink refused: tried to send to `{0}`, which it may not use")]
    SinkRefused(String),
    #[error("returned error: {0}")]
    Returned(String),
    /// Not called: the circuit breaker suspended it until then (ms).
    #[error("suspended after repeated failures")]
    Suspended(i64),
}

impl PluginFailure {
    /// The short reason used in logs, counters and dead letters.
    pub fn reason(&self) -> FailureReason {
        match self {
            PluginFailure::Timeout(_) => FailureReason::Timeout,
            PluginFailure::Memory(_) | PluginFailure::Tables(_) => FailureReason::Memory,
            PluginFailure::Trap(_) => FailureReason::Trap,
            PluginFailure::OutputTooLarge(_) => FailureReason::OutputTooLarge,
            PluginFailure::SinkRefused(_) => FailureReason::SinkRefused,
            PluginFailure::Returned(_) => FailureReason::Error,
            PluginFailure::Suspended(_) => FailureReason::Suspended,
        }
    }
}

/// A [`PluginFailure`] in one word: how logs, `/admin/status` and dead
/// letters name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    Timeout,
    Memory,
    Trap,
    OutputTooLarge,
    SinkRefused,
    /// The plugin returned an error.
    Error,
    /// Not called: its breaker is open.
    Suspended,
}

impl FailureReason {
    pub const ALL: [FailureReason; 7] = [
        FailureReason::Timeout,
        FailureReason::Memory,
        FailureReason::Trap,
        FailureReason::OutputTooLarge,
        FailureReason::SinkRefused,
        FailureReason::Error,
        FailureReason::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Memory => "memory",
            FailureReason::Trap => "trap",
            FailureReason::OutputTooLarge => "output_too_large",
            FailureReason::SinkRefused => "sink_refused",
            FailureReason::Error => "error",
            FailureReason::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin decided about one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A filter kept the event.
    Keep,
    /// A filter dropped it, with its reason.
    Drop(String),
    /// An enricher returned the event, changed.
    Enriched(Box<Event>),
    /// An action asked for these commands to be delivered.
    Commands(Vec<Outgoing>),
}

/// The outcome of one call, with what the plugin logged.
#[derive(Debug)]
pub struct Call {
    pub result: Result<Decision, PluginFailure>,
    pub logs: Vec<LogLine>,
    pub elapsed: std::time::Duration,
}

/// A loaded plugin, ready to be called on any thread.
pub struct Plugin {
    pub name: String,
    pub world: World,
    /// The component file, as the config resolves it.
    pub path: PathBuf,
    /// Its compiled code and where that came from.
    pub compiled: Compiled,
    /// What a failure does to the event.
    pub on_error: OnError,
    /// What of the event it may see.
    pub secrecy: Secrecy,
    /// An enricher whose changes every later plugin sees, whatever its level.
    pub public_output: bool,
    /// Its calls, failures and circuit breaker; replaced by the pipeline
    /// with the running plugin's of the same name, so counts outlive reloads.
    pub health: Arc<Health>,
    pre: Pre,
    settings: Arc<state::Settings>,
    output: OutputLimits,
    /// Calls of this plugin running now, at most `instances`.
    slots: Arc<Slots>,
}

/// What one call may hand back.
struct OutputLimits {
    bytes: usize,
    attributes: usize,
}

enum Pre {
    Filter(filter::FilterPre<PluginState>),
    Enricher(enricher::EnricherPre<PluginState>),
    Action(action::ActionPre<PluginState>),
}

/// The first line of a wasmtime error, for a one-line message.
fn first_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").lines().next().unwrap_or_default().to_string()
}
