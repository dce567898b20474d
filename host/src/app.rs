//! Wiring: the ingest server, the journal between ingest and the pipeline,
//! the dispatcher that runs plugins, the outbox that delivers their
//! commands, and the reloader that swaps the live set under them.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::Admin;
use http_body_util::BodyExt;

use crate::config::{Config, ConfigError, StoreKind};
use crate::ingest::Ingest;
use crate::ingest::listener::{Handler, Listener};
use crate::live::{Generation, Live};
use crate::observe::{ObservedJournal, Observer, silence};
use crate::plugins::Runtime;
use crate::reload::{Channels, Reloader};
use crate::store::{self, DataLock, Journal, JournalFeeds};
use crate::{dispatch, outbox, reload};

/// How long shutdown waits for open requests to finish, and then for
/// accepted events to be processed and their commands tried once.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The folder of the data folder where compiled components are cached.
const COMPILED_DIR: &str = "compiled";

/// A built host, ready to serve.
pub struct App {
    /// The data folder is this host's while it runs.
    _lock: Option<DataLock>,
    live: Arc<Live>,
    journal: Arc<dyn Journal>,
    feeds: JournalFeeds,
    reloader: Arc<Reloader>,
    channels: Channels,
    observer: Arc<Observer>,
}

impl App {
    /// Build every part from `config`: open the journal, read secrets, load
    /// and link plugins, set up sinks. Any problem is reported against the
    /// config file.
    pub async fn build(config: Config, runtime: &Runtime) -> Result<App, ConfigError> {
        // Before anything in the folder is opened: a second host must not
        // touch the journal at all.
        let lock = match &config.store.path {
            Some(path) => {
                Some(DataLock::take(&config.resolve(path)).map_err(|e| config.error("store.path", e.to_string()))?)
            }
            None => None,
        };
        let key = match config.store.kind {
            StoreKind::Sqlite => "store.path",
            StoreKind::Nats => "store.servers",
        };
        let observer = Arc::new(Observer::new());
        let (journal, feeds) = store::start(&config, observer.metrics.commits.clone())
            .await
            .map_err(|e| config.error(key, e.to_string()))?;
        // Every part writes through this one: each accepted event is seen.
        let journal: Arc<dyn Journal> = Arc::new(ObservedJournal::new(journal, observer.clone()));
        let compiled = compiled_dir(&config);
        let generation = Generation::build(config, runtime, compiled.as_deref(), None)?;
        let live = Arc::new(Live::new(generation));
        let (reloader, channels) = Reloader::new(
            runtime.clone(),
            compiled,
            live.clone(),
            journal.clone(),
            observer.metrics.clone(),
        );
        Ok(App {
            _lock: lock,
            live,
            journal,
            feeds,
            reloader: Arc::new(reloader),
            channels,
            observer,
        })
    }

    /// The running generation: config, plugins, sinks.
    pub fn live(&self) -> &Live {
        &self.live
    }

    pub fn journal(&self) -> &dyn Journal {
        self.journal.as_ref()
    }

    /// What the host counts and shows of itself (`/metrics`, the console).
    pub fn observer(&self) -> &Arc<Observer> {
        &self.observer
    }

    /// What reloads the host: hand it SIGHUP (`vestibule serve` does).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// Serve on `listener` until `shutdown` resolves, then stop accepting,
    /// let open requests finish, and give accepted events and their
    /// commands a last chance (see [`DRAIN_TIMEOUT`]) before returning.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let journal = self.journal;
        let reloader = self.reloader;
        let observer = self.observer;
        let Channels { mut rebinds, watch_set } = self.channels;
        let (stop_work, stopping) = watch::channel(false);
        let pipeline = Pipeline::start()?;
        let dispatcher = pipeline.spawn(dispatch::run(
            self.feeds.events,
            self.live.clone(),
            journal.clone(),
            observer.clone(),
            stopping.clone(),
        ));
        let outbox = pipeline.spawn(outbox::run(
            self.feeds.commands,
            self.live.clone(),
            journal.clone(),
            observer.clone(),
            stopping,
        ));
        reloader.start().await;
        let (stop_watching, watching_stop) = watch::channel(false);
        let watcher = tokio::spawn(reload::watch::run(reloader.clone(), watch_set, watching_stop.clone()));
        let routes = {
            let live = self.live.clone();
            Arc::new(move || live.current().routes.clone()) as crate::ingest::CurrentRoutes
        };
        let ingest = Arc::new(Ingest::new(routes, journal.clone(), observer.metrics.clone()));
        let summaries = {
            let (ingest, live) = (ingest.clone(), self.live.clone());
            let stopping = watching_stop.clone();
            tokio::spawn(async move {
                let interval = || live.current().config.log.refusal_summary.0;
                ingest.refusals.run(interval, stopping).await;
            })
        };
        let silences = {
            let live = self.live.clone();
            let watched = Arc::new(move || watched(&live.current().config)) as silence::CurrentWatch;
            tokio::spawn(silence::run(
                watched,
                observer.clone(),
                journal.clone(),
                watching_stop.clone(),
            ))
        };
        let admin = Arc::new(Admin::new(
            self.live.clone(),
            reloader.clone(),
            journal.clone(),
            observer.clone(),
            watching_stop.clone(),
        ));

        let limits = {
            let live = self.live.clone();
            Arc::new(move || live.current().connections.clone()) as crate::ingest::listener::CurrentLimits
        };
        let server = Listener::new(limits, router(ingest, admin));
        server.run(listener, &mut rebinds, shutdown).await;

        tracing::info!("Shutting down: finishing open requests.");
        let _ = stop_watching.send(true);
        let _ = watcher.await;
        let _ = summaries.await;
        let _ = silences.await;
        reloader.stop().await;
        if !server.drain(DRAIN_TIMEOUT).await {
            tracing::warn!("Some connections were still open after {DRAIN_TIMEOUT:?}; closing them.");
        }
        journal.quiesce();
        drain(journal.as_ref()).await;
        let _ = stop_work.send(true);
        let _ = dispatcher.await;
        let _ = outbox.await;
        // The cluster store records outcomes and deliveries in tasks the
        // pipeline started: they finish while the journal closes, so the
        // pipeline's threads stop only after it.
        journal.close().await;
        drop(pipeline);
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// The threads the pipeline runs on — the dispatcher with its plugin calls,
/// and the outbox with its deliveries — apart from those that answer
/// requests. A flood of requests cannot starve the events already accepted
/// (each door's events wait in line behind only that door's), and a plugin
/// that runs to its deadline holds no thread a vendor is waiting on. The
/// operating system shares the cores between the two.
struct Pipeline(Option<tokio::runtime::Runtime>);

impl Pipeline {
    fn start() -> std::io::Result<Pipeline> {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("pipeline")
            .enable_all()
            .build()?;
        Ok(Pipeline(Some(runtime)))
    }

    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().expect("running until dropped").spawn(task)
    }
}

impl Drop for Pipeline {
    /// Its tasks have ended or are abandoned by now; a runtime may not be
    /// dropped from async code, only told to stop.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Wait, up to [`DRAIN_TIMEOUT`], until every accepted event went through
/// the pipeline and every command was tried once. What is left stays in the
/// store for the next start — or, without a data folder, is lost; say so.
async fn drain(journal: &dyn Journal) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while journal.backlog() + journal.unattempted() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (events, commands) = (journal.backlog(), journal.unattempted());
    if events + commands > 0 {
        if journal.durable() {
            tracing::info!(events, commands, "Left in the journal for the next start.");
        } else {
            tracing::warn!(events, commands, "Lost: no [store] path is configured.");
        }
    }
}

/// Where `config` keeps compiled components: in its data folder, if any.
pub fn compiled_dir(config: &Config) -> Option<std::path::PathBuf> {
    config.store.path.as_ref().map(|p| config.resolve(p).join(COMPILED_DIR))
}

/// The sources and doors `config` watches for silence, with each one's vendor.
fn watched(config: &Config) -> Vec<(crate::observe::activity::Watched, String)> {
    use crate::observe::activity::Watched;
    let mut watched = Vec::new();
    for source in &config.sources {
        let vendor = source.vendor.as_str().to_string();
        let doors = source
            .silent_doors
            .iter()
            .map(|(door, after)| (Some(door.clone()), after));
        for (door, after) in source.silent_after.iter().map(|after| (None, after)).chain(doors) {
            let watch = Watched {
                source: source.name.clone(),
                door,
                after_ms: after.0.as_millis() as i64,
            };
            watched.push((watch, vendor.clone()));
        }
    }
    watched
}

/// The host's own paths (admin, metrics, console) to the admin endpoints,
/// the rest to ingest.
fn router(ingest: Arc<Ingest>, admin: Arc<Admin>) -> Handler {
    Arc::new(move |request, peer| {
        let (ingest, admin) = (ingest.clone(), admin.clone());
        Box::pin(async move {
            if Admin::serves(request.uri().path()) {
                admin.handle(request, peer).await
            } else {
                ingest.handle(request).await.map(BodyExt::boxed_unsync)
            }
        })
    })
}
