//! Wiring: the ingest server, the queue between ingest and the pipeline, the
//! workers that run plugins, and delivery of their commands.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::config::{Config, ConfigError};
use crate::event::Event;
use crate::ingest::Ingest;
use crate::ingest::unifi_ws::UnifiWs;
use crate::pipeline::Pipeline;
use crate::plugins::Runtime;

/// How long a slow client may take to send its request headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long shutdown waits for open requests to finish.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A built host, ready to serve.
pub struct App {
    ingest: Arc<Ingest>,
    /// Sources we dial (UniFi Access notifications).
    dialers: Vec<UnifiWs>,
    /// Where dialled sources put their events, beside the HTTP ingest.
    sender: mpsc::Sender<Event>,
    pipeline: Arc<Pipeline>,
    queue: mpsc::Receiver<Event>,
}

impl App {
    /// Build every part from `config`: read secrets, load and link plugins,
    /// set up sinks. Any problem is reported against the config file.
    pub fn build(config: &Config, runtime: &Runtime) -> Result<App, ConfigError> {
        let (sender, queue) = mpsc::channel(config.server.queue.max(1));
        let ingest = Arc::new(Ingest::from_config(config, sender.clone())?);
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
            sender,
            pipeline,
            queue,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Serve on `listener` until `shutdown` resolves, then stop accepting,
    /// let open requests finish, and run every accepted event through the
    /// pipeline before returning.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_dispatch, stopped) = oneshot::channel();
        let dispatcher = tokio::spawn(dispatch(self.queue, self.pipeline, stopped));
        let (stop_dialers, dialers_stop) = watch::channel(false);
        let mut dialers = JoinSet::new();
        for dialer in self.dialers {
            dialers.spawn(dialer.run(self.sender.clone(), dialers_stop.clone()));
        }
        drop(self.sender);

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
        let _ = stop_dispatch.send(());
        let _ = dispatcher.await;
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// Take events off the queue and run each through the pipeline on a
/// blocking thread, at most one per core at a time; then deliver the
/// commands. After `stop`, drain what is queued and return.
async fn dispatch(mut queue: mpsc::Receiver<Event>, pipeline: Arc<Pipeline>, stop: oneshot::Receiver<()>) {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let permits = Arc::new(Semaphore::new(workers));
    let mut tasks = JoinSet::new();
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        let event = tokio::select! {
            event = queue.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = &mut stop, if !stopping => {
                // Refuse new events; `recv` still yields the queued ones.
                queue.close();
                stopping = true;
                continue;
            }
        };
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let pipeline = pipeline.clone();
        tasks.spawn(async move {
            let runner = pipeline.clone();
            let outcome = tokio::task::spawn_blocking(move || runner.run(event)).await;
            drop(permit);
            let Ok(outcome) = outcome else {
                tracing::error!("A pipeline worker panicked.");
                return;
            };
            for command in &outcome.commands {
                // Failures are logged by the sink; durable retries come with
                // the outbox.
                let _ = pipeline.sinks.deliver(command).await;
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Bind `config.server.listen`.
pub async fn bind(config: &Config) -> Result<TcpListener, ConfigError> {
    let addr: SocketAddr = config.server.listen;
    TcpListener::bind(addr)
        .await
        .map_err(|e| config.error("server.listen", format!("cannot listen on {addr}: {e}")))
}
