//! Wiring: the ingest server, the journal between ingest and the pipeline,
//! the dispatcher that runs plugins, and the outbox that delivers their
//! commands.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, ConfigError};
use crate::ingest::Ingest;
use crate::ingest::unifi_ws::UnifiWs;
use crate::pipeline::Pipeline;
use crate::plugins::Runtime;
use crate::store::{Journal, JournalFeeds, Settings, Store};
use crate::{dispatch, outbox};

/// How long a slow client may take to send its request headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long shutdown waits for open requests to finish, and then for
/// accepted events to be processed and their commands tried once.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A built host, ready to serve.
pub struct App {
    ingest: Arc<Ingest>,
    /// Sources we dial (UniFi Access notifications).
    dialers: Vec<UnifiWs>,
    pipeline: Arc<Pipeline>,
    journal: Arc<Journal>,
    feeds: JournalFeeds,
}

impl App {
    /// Build every part from `config`: read secrets, load and link plugins,
    /// set up sinks. Any problem is reported against the config file.
    pub fn build(config: &Config, runtime: &Runtime) -> Result<App, ConfigError> {
        let store = Store::for_config(config).map_err(|e| config.error("store.path", e.to_string()))?;
        let settings = Settings {
            dedup_window: config.store.dedup_window.0,
            retention: config.store.retention.0,
            capacity: config.server.queue.max(1),
        };
        let (journal, feeds) =
            Journal::start(store, settings).map_err(|e| config.error("store.path", e.to_string()))?;
        let journal = Arc::new(journal);
        let ingest = Arc::new(Ingest::from_config(config, journal.clone())?);
        let mut dialers = Vec::new();
        for (i, source) in config.sources.iter().enumerate() {
            if source.vendor.dials_out() {
                dialers.push(UnifiWs::from_config(config, i, source)?);
            }
        }
        let pipeline = Arc::new(Pipeline::from_config(config, runtime)?);
        Ok(App {
            ingest,
            dialers,
            pipeline,
            journal,
            feeds,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Serve on `listener` until `shutdown` resolves, then stop accepting,
    /// let open requests finish, and give accepted events and their
    /// commands a last chance (see [`DRAIN_TIMEOUT`]) before returning.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let journal = self.journal;
        let (stop_work, stopping) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatch::run(
            self.feeds.events,
            self.pipeline.clone(),
            journal.clone(),
            stopping.clone(),
        ));
        let outbox = tokio::spawn(outbox::run(
            self.feeds.commands,
            self.pipeline.sinks.clone(),
            journal.clone(),
            stopping,
        ));
        let (stop_dialers, dialers_stop) = watch::channel(false);
        let mut dialers = JoinSet::new();
        for dialer in self.dialers {
            dialers.spawn(dialer.run(journal.clone(), dialers_stop.clone()));
        }

        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin.
                        tracing::warn!(error = %e, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let ingest = self.ingest.clone();
            let service = service_fn(move |request| ingest.clone().handle(request));
            let connection = server.serve_connection(TokioIo::new(stream), service).into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "Connection ended with an error.");
                }
            });
        }

        tracing::info!("Shutting down: finishing open requests.");
        drop(listener);
        let _ = stop_dialers.send(true);
        while dialers.join_next().await.is_some() {}
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
            tracing::warn!("Some connections were still open after {DRAIN_TIMEOUT:?}; closing them.");
        }
        drain(&journal).await;
        let _ = stop_work.send(true);
        let _ = dispatcher.await;
        let _ = outbox.await;
        journal.close().await;
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// Wait, up to [`DRAIN_TIMEOUT`], until every accepted event went through
/// the pipeline and every command was tried once. What is left stays in the
/// store for the next start — or, without a data folder, is lost; say so.
async fn drain(journal: &Journal) {
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

/// Bind `config.server.listen`.
pub async fn bind(config: &Config) -> Result<TcpListener, ConfigError> {
    let addr: SocketAddr = config.server.listen;
    TcpListener::bind(addr)
        .await
        .map_err(|e| config.error("server.listen", format!("cannot listen on {addr}: {e}")))
}
