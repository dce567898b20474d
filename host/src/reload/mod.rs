//! Reloading while the doors are in use.
//!
//! A reload — a changed file ([`watch`]), SIGHUP, or `POST /admin/reload` —
//! reads the config file again and builds the complete next
//! [generation](crate::live::Generation) beside the running one, off the
//! async threads: config parsed and checked, every secret read, plugins
//! whose file changed compiled, unchanged ones reused. Only when all of it
//! succeeded is it swapped in. Anything wrong and the running set stays:
//! the reason, naming the file, is logged once and shown by
//! `GET /admin/status`.
//!
//! Nothing is lost or done twice by a reload: accepted events are in the
//! journal, not in the generation, and each event runs wholly on one
//! generation's pipeline.

pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch as tokio_watch};

use crate::config::Config;
use crate::ingest::dialers::Dialers;
use crate::live::{Generation, Live};
use crate::plugins::Runtime;
use crate::store::{Journal, Settings};
use crate::time::format_iso8601;
use crate::time::now_ms;
use watch::WatchSet;

/// The longest a reload may take to build the next set (compiling plugins
/// included) before it is given up and the running set stays.
const BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What asked for a reload.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// These watched files changed.
    Files(Vec<PathBuf>),
    /// SIGHUP.
    Signal,
    /// `POST /admin/reload`.
    Admin,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Files(files) => {
                let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                write!(f, "changed: {}", files.join(", "))
            }
            Trigger::Signal => f.write_str("SIGHUP"),
            Trigger::Admin => f.write_str("POST /admin/reload"),
        }
    }
}

/// How one reload went, as `GET /admin/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it finished.
    pub at: String,
    pub trigger: String,
    pub result: ReloadResult,
    /// What differs from the set that ran before, in words.
    pub changes: Vec<String>,
    /// Why it failed: the file, the key or plugin, and the reason.
    pub error: Option<String>,
    pub took_ms: u64,
}

/// Whether a reload took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadResult {
    /// The new set is running.
    Ok,
    /// The old set still is.
    Failed,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.result == ReloadResult::Ok
    }
}

/// Reload counts and the last reload.
#[derive(Debug, Default, Clone, Serialize)]
pub struct History {
    pub ok: u64,
    pub failed: u64,
    pub last: Option<Report>,
    /// Settings changed in the file that take effect only at the next
    /// start; the running host keeps its old values.
    pub restart_needed: Vec<String>,
    /// The latest reloads, refused ones too, oldest first.
    pub recent: std::collections::VecDeque<Report>,
}

/// How many reloads [`History::recent`] keeps.
const RECENT_RELOADS: usize = 20;

/// The parts a reload starts and stops, beyond the generation itself.
struct Running {
    /// The `[server] listen` the listener was bound for.
    listen: SocketAddr,
    /// The store the journal was opened on (see `Config::store_identity`).
    store: String,
    dialers: Dialers,
}

/// Builds and swaps generations; one reload at a time.
pub struct Reloader {
    file: PathBuf,
    runtime: Runtime,
    /// The disk cache of compiled components.
    compiled: Option<PathBuf>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    /// Held for the whole of a reload, so reloads never overlap.
    running: tokio::sync::Mutex<Running>,
    history: Mutex<History>,
    /// The last failure logged, so that the same one is not logged again.
    last_error: Mutex<Option<String>>,
    /// A new listener for the accept loop, when `listen` changed.
    rebind: mpsc::UnboundedSender<TcpListener>,
    /// The files the watcher follows, and how.
    watch_set: tokio_watch::Sender<WatchSet>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// The receiving ends [`Reloader::new`] hands to whoever runs the host.
pub struct Channels {
    pub rebinds: mpsc::UnboundedReceiver<TcpListener>,
    pub watch_set: tokio_watch::Receiver<WatchSet>,
}

impl Reloader {
    /// A reloader for the host running `live`, read from its config file.
    pub fn new(
        runtime: Runtime,
        compiled: Option<PathBuf>,
        live: Arc<Live>,
        journal: Arc<dyn Journal>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> (Reloader, Channels) {
        let current = live.current();
        let config = &current.config;
        let (rebind, rebinds) = mpsc::unbounded_channel();
        let (watch_set, watched) = tokio_watch::channel(WatchSet::of(&current));
        let reloader = Reloader {
            file: config.file.clone(),
            runtime,
            compiled,
            running: tokio::sync::Mutex::new(Running {
                listen: config.server.listen,
                store: config.store_identity(),
                dialers: Dialers::new(journal.clone()),
            }),
            live: live.clone(),
            journal,
            history: Mutex::new(History::default()),
            last_error: Mutex::new(None),
            rebind,
            watch_set,
            metrics,
        };
        (
            reloader,
            Channels {
                rebinds,
                watch_set: watched,
            },
        )
    }

    /// Start the running generation's dial-out sources.
    pub async fn start(&self) {
        let current = self.live.current();
        self.running.lock().await.dialers.update(&current.dialers).await;
    }

    /// Stop the dial-out sources, for shutdown.
    pub async fn stop(&self) {
        self.running.lock().await.dialers.stop_all().await;
    }

    /// Reload counts, the last reload and what waits for a restart.
    pub fn history(&self) -> History {
        self.history.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Build the next generation from the files as they are now and swap it
    /// in; on any error keep the running one. Waits for a reload already
    /// under way to finish first.
    pub async fn reload(&self, trigger: Trigger) -> Report {
        let mut running = self.running.lock().await;
        let started = Instant::now();
        let current = self.live.current();
        let (file, runtime, compiled, previous) = (
            self.file.clone(),
            self.runtime.clone(),
            self.compiled.clone(),
            current.clone(),
        );
        let building = tokio::task::spawn_blocking(move || {
            let config = Config::load(&file).map_err(|e| e.one_line())?;
            Generation::build(config, &runtime, compiled.as_deref(), Some(&previous)).map_err(|e| e.one_line())
        });
        // Files are read within limits and never waited on, but whatever
        // else could hold a build up must not hold every later reload too.
        let built = match tokio::time::timeout(BUILD_TIMEOUT, building).await {
            Ok(built) => built.unwrap_or_else(|e| Err(format!("building the new set failed: {e}"))),
            Err(_) => Err(format!(
                "building the new set took longer than {BUILD_TIMEOUT:?}; gave up on it"
            )),
        };
        let applied = match built {
            Ok(next) => self.apply(&mut running, &current, next).await,
            Err(error) => Err(error),
        };
        drop(current);
        let report = Report {
            at: format_iso8601(now_ms() / 1000),
            trigger: trigger.to_string(),
            result: if applied.is_ok() {
                ReloadResult::Ok
            } else {
                ReloadResult::Failed
            },
            changes: applied.as_ref().map(|(changes, _)| changes.clone()).unwrap_or_default(),
            error: applied.as_ref().err().cloned(),
            took_ms: started.elapsed().as_millis() as u64,
        };
        self.record(&report, applied.ok().map(|(_, restart)| restart));
        report
    }

    /// Start what `next` needs beside the running set, then swap. Returns
    /// the changes and the settings that wait for a restart.
    async fn apply(
        &self,
        running: &mut Running,
        current: &Generation,
        next: Generation,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        let mut changes = describe(current, &next);
        let config = &next.config;
        let listener = if config.server.listen != running.listen {
            let listener = crate::ingest::listener::bind(config).await.map_err(|e| e.to_string())?;
            changes.push(format!(
                "listening on {} (was {})",
                config.server.listen, running.listen
            ));
            Some(listener)
        } else {
            None
        };
        let mut restart_needed = Vec::new();
        if config.store_identity() != running.store {
            restart_needed.push(match config.store.kind {
                crate::config::StoreKind::Sqlite => "[store] path".to_string(),
                crate::config::StoreKind::Nats => "[store] (the cluster and its streams)".to_string(),
            });
        }
        self.journal.configure(Settings::from_config(config));
        let _ = self.watch_set.send(WatchSet::of(&next));
        changes.extend(running.dialers.update(&next.dialers).await);
        let listen = next.config.server.listen;
        self.live.swap(next);
        if let Some(listener) = listener {
            running.listen = listen;
            let _ = self.rebind.send(listener);
        }
        Ok((changes, restart_needed))
    }

    /// Log the reload (a failure only the first time it is seen) and keep
    /// it for the status endpoint.
    fn record(&self, report: &Report, restart_needed: Option<Vec<String>>) {
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        match &report.error {
            None => {
                *last_error = None;
                history.ok += 1;
                let changes = report.changes.join("; ");
                if report.changes.is_empty() {
                    tracing::info!(trigger = %report.trigger, took_ms = report.took_ms, "Reloaded; nothing changed.");
                } else {
                    tracing::info!(trigger = %report.trigger, %changes, took_ms = report.took_ms, "Reloaded.");
                }
                let restart_needed = restart_needed.unwrap_or_default();
                if !restart_needed.is_empty() && restart_needed != history.restart_needed {
                    tracing::warn!(settings = %restart_needed.join(", "), "Changed settings take effect at the next start; the old values stay in use until then.");
                }
                history.restart_needed = restart_needed;
            }
            Some(error) => {
                history.failed += 1;
                if last_error.as_ref() != Some(error) {
                    tracing::error!(trigger = %report.trigger, %error, "Reload refused; the running set is unchanged.");
                    *last_error = Some(error.clone());
                } else {
                    tracing::debug!(trigger = %report.trigger, "Reload refused again for the same reason.");
                }
            }
        }
        history.last = Some(report.clone());
        if history.recent.len() == RECENT_RELOADS {
            history.recent.pop_front();
        }
        history.recent.push_back(report.clone());
        let result = if report.error.is_none() { "ok" } else { "failed" };
        let labels = crate::metrics::ResultLabels { result: result.into() };
        self.metrics.reloads.get_or_create(&labels).inc();
    }
}

/// What differs between two generations, in words.
fn describe(old: &Generation, new: &Generation) -> Vec<String> {
    let mut changes = Vec::new();
    if old.config.sha256 != new.config.sha256 {
        changes.push(format!(
            "config {} (was {})",
            short(&new.config.sha256),
            short(&old.config.sha256)
        ));
    }
    for plugin in new.pipeline.plugins() {
        match old.pipeline.plugins().find(|p| p.name == plugin.name) {
            None => changes.push(format!("plugin {} added", plugin.name)),
            Some(before) if before.compiled.sha256 != plugin.compiled.sha256 => changes.push(format!(
                "plugin {}: component {} (was {}), {}",
                plugin.name,
                short(&plugin.compiled.sha256),
                short(&before.compiled.sha256),
                plugin.compiled.origin
            )),
            Some(_) => {}
        }
    }
    for plugin in old.pipeline.plugins() {
        if new.pipeline.plugins().all(|p| p.name != plugin.name) {
            changes.push(format!("plugin {} removed", plugin.name));
        }
    }
    let webhook_sources = |g: &Generation| -> Vec<(String, String)> {
        g.config
            .sources
            .iter()
            .filter(|s| !s.vendor.dials_out())
            .map(|s| (s.name.clone(), s.path()))
            .collect()
    };
    let (before, after) = (webhook_sources(old), webhook_sources(new));
    for (name, path) in &after {
        if !before.contains(&(name.clone(), path.clone())) {
            changes.push(format!("source {name} at {path}"));
        }
    }
    for (name, path) in &before {
        if !after.iter().any(|(_, p)| p == path) {
            changes.push(format!("source {name} no longer at {path}"));
        }
    }
    // Secrets by their files' digests, never their values.
    let mut rotated: Vec<&str> = new
        .secret_files
        .iter()
        .filter(|(_, file, sha)| old.secret_files.iter().any(|(_, f, s)| f == file && s != sha))
        .map(|(source, _, _)| source.as_str())
        .collect();
    rotated.dedup();
    for source in rotated {
        changes.push(format!("source {source}: its secret file changed"));
    }
    for sink in &new.config.sinks {
        if old.config.sinks.iter().all(|s| s.name != sink.name) {
            changes.push(format!("sink {} added", sink.name));
        }
    }
    for sink in &old.config.sinks {
        if new.config.sinks.iter().all(|s| s.name != sink.name) {
            changes.push(format!("sink {} removed", sink.name));
        }
    }
    changes
}

/// The first 12 hex digits: enough to tell versions apart in a log line.
fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}
