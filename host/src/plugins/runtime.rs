//! The engine, built once, with one linker per world; loading a plugin
//! compiles (or reuses) its code and links it into an `InstancePre`.

use std::path::Path;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Linker;

use super::compiled::Components;
use super::slots::Slots;
use super::state::{self, PluginState};
use super::{Breaker, EPOCH_TICK, Health, LoadError, MAX_PLUGIN_MEMORY, OutputLimits, Plugin, Pre};
use crate::config::{PluginConfig, World};
use crate::time::Clock;
use crate::wit::{action, enricher, filter};

/// The wasmtime engine and one linker per world.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linkers: Arc<Linkers>,
    /// What plugins' suspensions are timed by.
    clock: Clock,
}

struct Linkers {
    filter: Linker<PluginState>,
    enricher: Linker<PluginState>,
    action: Linker<PluginState>,
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
            clock: Clock::system(),
        })
    }

    /// The same runtime, its plugins' suspensions timed by `clock` (a test
    /// moves a manual one instead of sleeping).
    pub fn with_clock(mut self, clock: Clock) -> Runtime {
        self.clock = clock;
        self
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
        let health = Arc::new(Health::new(&config.name, self.clock.clone()));
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
