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

mod compiled;
mod health;
mod slots;
mod state;
pub mod text;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

use crate::config::{OnError, PluginConfig, World};
use crate::event::Event;
use crate::secrecy::Secrecy;
use crate::wit::{action, enricher, filter};

pub use compiled::{Compiled, Components, Origin};
pub use health::{Breaker, BreakerState, Health};
use slots::Slots;
pub use state::{ANY_SINK, LogLine, MAX_DELAY_MS, Outgoing};
use state::{LimitExceeded, PluginState};

pub use crate::config::MAX_PLUGIN_MEMORY;

/// How often the epoch advances; plugin deadlines are counted in these ticks.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// The least time a plugin is given to answer whether its config fits.
const CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// The most of a plugin's error message that is kept, in bytes.
const MAX_ERROR: usize = 1024;

/// The most of a filter's drop reason that is kept, in bytes.
pub const MAX_REASON: usize = 1024;

/// A call was still running at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline passed")]
struct DeadlinePassed;

/// The wasmtime engine and one linker per world.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linkers: Arc<Linkers>,
}

struct Linkers {
    filter: Linker<PluginState>,
    enricher: Linker<PluginState>,
    action: Linker<PluginState>,
}

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

impl Runtime {
    /// Build the engine: pooling allocator (instantiation in microseconds),
    /// epoch interruption (deadlines), and a ticker thread driving the epoch.
    pub fn new() -> wasmtime::Result<Runtime> {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // Instances in use at once: one per pipeline worker plus headroom for
        // `check`/`plugin run` and reloads.
        pool.total_component_instances(256);
        // A Rust component built for wasm32-wasip2 is the program plus the
        // WASI adapter and a few shims: a handful of core instances each.
        pool.max_core_instances_per_component(16);
        pool.total_core_instances(256 * 8);
        pool.max_memories_per_component(4);
        pool.total_memories(512);
        pool.max_tables_per_component(8);
        pool.total_tables(1024);
        // The ceiling for any plugin's `memory`; the per-plugin limit is
        // enforced by the store's limiter below this.
        pool.max_memory_size(MAX_PLUGIN_MEMORY as usize);
        // Between instances, reset only the pages a plugin dirtied (Linux
        // PAGEMAP_SCAN, 6.7+) and keep them resident, instead of handing
        // them back to the kernel and faulting them in again next call.
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.linear_memory_keep_resident(4 << 20);
        pool.table_keep_resident(64 << 10);
        // Each call runs on a fiber stack of its own (see `call`); one per
        // instance that can run at once.
        pool.total_stacks(256);

        let mut config = wasmtime::Config::new();
        config
            .allocation_strategy(pool)
            .epoch_interruption(true)
            .wasm_component_model(true)
            // Deep recursion traps cleanly at 512 KiB instead of eating the
            // host thread's stack.
            .max_wasm_stack(512 * 1024)
            // The fiber a call runs on holds the plugin's stack (above) and
            // the host functions it calls.
            .async_stack_size(2 << 20);
        let engine = Engine::new(&config)?;
        spawn_epoch_ticker(&engine);

        let linkers = Linkers {
            filter: linker(&engine, |l| filter::Filter::add_to_linker::<_, PluginState>(l, |s| s))?,
            enricher: linker(&engine, |l| {
                enricher::Enricher::add_to_linker::<_, PluginState>(l, |s| s)
            })?,
            action: linker(&engine, |l| action::Action::add_to_linker::<_, PluginState>(l, |s| s))?,
        };
        Ok(Runtime {
            engine,
            linkers: Arc::new(linkers),
        })
    }

    /// The engine every plugin is compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile and link the plugin at `path` for `config.world`.
    pub fn load(&self, config: &PluginConfig, path: &Path) -> Result<Plugin, LoadError> {
        self.load_with(config, path, &Components::uncached(&self.engine))
    }

    /// Link the plugin at `path` for `config.world`, its compiled code from
    /// `components` (reused, cached, or compiled now).
    pub fn load_with(&self, config: &PluginConfig, path: &Path, components: &Components) -> Result<Plugin, LoadError> {
        let shown = path.display().to_string();
        let bytes = crate::files::read(path, crate::files::PLUGIN_LIMIT).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        let not_a_component = |reason: String| LoadError::NotAComponent {
            path: shown.clone(),
            reason,
        };
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => {}
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
                return Err(not_a_component(
                    "it is a core WebAssembly module; build the plugin for wasm32-wasip2 to get a component".into(),
                ));
            }
            _ => return Err(not_a_component("it is not a WebAssembly file".into())),
        }
        let compiled = components.get(&bytes).map_err(not_a_component)?;
        let component = &compiled.component;
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
            path: shown.clone(),
            world: config.world,
            reason: format!("{e:#}"),
        };
        let pre = match config.world {
            World::Filter => {
                let pre = self.linkers.filter.instantiate_pre(component).map_err(wrong_world)?;
                Pre::Filter(filter::FilterPre::new(pre).map_err(wrong_world)?)
            }
            World::Enricher => {
                let pre = self.linkers.enricher.instantiate_pre(component).map_err(wrong_world)?;
                Pre::Enricher(enricher::EnricherPre::new(pre).map_err(wrong_world)?)
            }
            World::Action => {
                let pre = self.linkers.action.instantiate_pre(component).map_err(wrong_world)?;
                Pre::Action(action::ActionPre::new(pre).map_err(wrong_world)?)
            }
        };
        let plugin_config = serde_json::to_string(&config.config).expect("a TOML table is valid JSON");
        let health = Arc::new(Health::new(&config.name));
        health.configure(Breaker::from_config(config), true);
        let plugin = Plugin {
            name: config.name.clone(),
            world: config.world,
            path: path.to_path_buf(),
            compiled,
            on_error: config.on_error(),
            secrecy: config.secrecy,
            public_output: config.public_output,
            health,
            pre,
            settings: Arc::new(state::Settings {
                name: config.name.clone(),
                config_json: plugin_config,
                memory_limit: config.memory.0,
                table_limit: config.tables,
                deadline: config.deadline.0,
                sinks: config.sinks.clone(),
                max_commands: config.max_commands,
                max_log_lines: config.max_log_lines,
                max_log_bytes: config.max_log_bytes.0,
                clock: config.clock,
            }),
            output: OutputLimits {
                bytes: config.max_output.0 as usize,
                attributes: config.max_attributes as usize,
            },
            slots: Arc::new(Slots::new(config.instances)),
        };
        // A plugin serves only with a config it accepts.
        plugin.check_config_now().map_err(|message| LoadError::Config {
            name: config.name.clone(),
            message,
        })?;
        Ok(plugin)
    }
}

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
    fn check_config_now(&self) -> Result<(), String> {
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

fn first_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").lines().next().unwrap_or_default().to_string()
}

fn linker(
    engine: &Engine,
    add_world: impl FnOnce(&mut Linker<PluginState>) -> wasmtime::Result<()>,
) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    // Rust's standard library on wasm32-wasip2 imports WASI; the context
    // behind it grants nothing (see `PluginState::new`). The asynchronous
    // versions: a WASI function that waits must not hold the thread past
    // the call's deadline.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    add_world(&mut linker)?;
    Ok(linker)
}

/// Advance the engine's epoch every tick until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("vestibule-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
