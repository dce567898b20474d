//! The listener: accepts connections within `max_connections`, shakes hands
//! over TLS when `[server.tls]` is set, bounds how large a client's headers
//! may be and how long it may keep a connection without a request in
//! progress, and hands each request to the handler it was given (the app
//! routes `/admin/` to the admin endpoints, the rest to ingest). The limits
//! are asked for when each connection arrives, so a reload changes them for
//! new connections.
//!
//! A connection that has no request in progress for `header_timeout` —
//! from when it opens (TLS handshake included), or since its last answer —
//! is closed, whatever it sent: nothing, half an HTTP/2 preface, a preface
//! and SETTINGS and then silence. At `max_connections`, a new connection
//! takes the place of the connection idle the longest; only when every
//! open connection is answering a request is the new one refused. So
//! clients that connect and say nothing cannot lock the vendors out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;

use crate::config::{Config, ConfigError};

/// What a connection over `max_connections` is told before it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 32\r\nconnection: close\r\n\r\n{\"error\":\"too_many_connections\"}";

/// How connections are taken, from one version of the config.
pub struct Limits {
    /// `[server] header_timeout`: the longest a connection may go without
    /// a request in progress.
    pub idle_timeout: Duration,
    pub max_header_size: usize,
    pub max_connections: usize,
    /// HTTPS (`[server.tls]`); `None` serves plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Limits {
    /// The limits `config` sets, with `tls` built from its `[server.tls]`.
    pub fn from_config(config: &Config, tls: Option<tokio_rustls::TlsAcceptor>) -> Limits {
        let server = &config.server;
        Limits {
            idle_timeout: server.header_timeout.0,
            max_header_size: server.max_header_size.0 as usize,
            max_connections: server.max_connections,
            tls,
        }
    }
}

/// An answer's body: most are whole (`Full`), the console's live tail is a
/// stream.
pub type Body = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// What answers a request, given who sent it.
pub type Handler =
    Arc<dyn Fn(hyper::Request<Incoming>, SocketAddr) -> BoxFuture<'static, hyper::Response<Body>> + Send + Sync>;

/// A body that keeps its request counted as in progress until it has been
/// sent whole: a streamed answer is not an idle connection.
struct Guarded {
    body: Body,
    _answering: Answering,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The limits in force now.
pub type CurrentLimits = Arc<dyn Fn() -> Arc<Limits> + Send + Sync>;

pub struct Listener {
    limits: CurrentLimits,
    handler: Handler,
    /// Connections open now.
    open: Arc<AtomicUsize>,
    /// The open connections, for choosing one to close at the limit.
    connections: Arc<Connections>,
    graceful: GracefulShutdown,
}

/// Counts a connection as open while it lives, and forgets it when it ends.
struct Open {
    count: Arc<AtomicUsize>,
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.connections.forget(self.id);
    }
}

/// The open connections by id.
struct Connections {
    by_id: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    /// What `Tracked::idle_since` counts from.
    epoch: Instant,
}

/// One open connection, as the listener follows it.
struct Tracked {
    /// Requests being answered on it now.
    in_flight: AtomicUsize,
    /// Since when it has had none (ms after [`Connections::epoch`]).
    idle_since: AtomicU64,
    /// Told to close: it was idle when a new connection needed its place.
    evicted: Notify,
}

impl Connections {
    fn new() -> Connections {
        Connections {
            by_id: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        // Nothing panics while holding it.
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now()),
            evicted: Notify::new(),
        });
        self.lock().insert(id, tracked.clone());
        (id, tracked)
    }

    fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Close the connection idle the longest, if any is idle; whether one was.
    fn evict_idlest(&self) -> bool {
        let mut by_id = self.lock();
        let idlest = by_id
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match idlest.and_then(|id| by_id.remove(&id)) {
            Some(connection) => {
                connection.evicted.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A request in progress on a connection, from when its headers arrived
/// until it was answered — or given up, when its future is dropped (an
/// HTTP/2 stream the client reset).
struct Answering {
    connection: Arc<Tracked>,
    connections: Arc<Connections>,
}

impl Answering {
    fn begin(connection: &Arc<Tracked>, connections: &Arc<Connections>) -> Answering {
        connection.in_flight.fetch_add(1, Ordering::Relaxed);
        Answering {
            connection: connection.clone(),
            connections: connections.clone(),
        }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let connection = &self.connection;
        connection.idle_since.store(self.connections.now(), Ordering::Relaxed);
        connection.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tracked {
    /// Resolves once the connection has had no request in progress for
    /// `timeout`, or was evicted.
    async fn idle_for(&self, timeout: Duration, connections: &Connections) {
        let evicted = self.evicted.notified();
        tokio::pin!(evicted);
        loop {
            let since = self.idle_since.load(Ordering::Relaxed);
            let due = connections.epoch + Duration::from_millis(since) + timeout;
            tokio::select! {
                () = &mut evicted => return,
                () = tokio::time::sleep_until(due.into()) => {}
            }
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            if !busy && self.idle_since.load(Ordering::Relaxed) == since {
                return;
            }
            if busy {
                // Check again a timeout after it next goes idle at the latest.
                tokio::select! {
                    () = &mut evicted => return,
                    () = tokio::time::sleep(timeout) => {}
                }
            }
        }
    }
}

impl Listener {
    pub fn new(limits: CurrentLimits, handler: Handler) -> Listener {
        Listener {
            limits,
            handler,
            open: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(Connections::new()),
            graceful: GracefulShutdown::new(),
        }
    }

    /// Accept on `listener` — or on the one a reload sends through
    /// `rebinds` — until `shutdown` resolves.
    pub async fn run(
        &self,
        mut listener: TcpListener,
        rebinds: &mut mpsc::UnboundedReceiver<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                Some(new) = rebinds.recv() => {
                    // The old port closes; connections on it finish.
                    if let Ok(addr) = new.local_addr() {
                        tracing::info!(%addr, "Listening.");
                    }
                    listener = new;
                    continue;
                }
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
                () = &mut shutdown => return,
            };
            self.connection(stream, peer);
        }
    }

    /// Let open connections finish their requests, for up to `timeout`;
    /// `false` if some were still open then.
    pub async fn drain(self, timeout: std::time::Duration) -> bool {
        tokio::time::timeout(timeout, self.graceful.shutdown()).await.is_ok()
    }

    fn connection(&self, mut stream: TcpStream, peer: SocketAddr) {
        let limits = (self.limits)();
        let at_limit = self.open.fetch_add(1, Ordering::Relaxed) >= limits.max_connections;
        // Make room before joining: a new connection is idle too.
        let room = !at_limit || self.connections.evict_idlest();
        let (id, tracked) = self.connections.add();
        let open = Open {
            count: self.open.clone(),
            connections: self.connections.clone(),
            id,
        };
        if !room {
            tracing::warn!(%peer, limit = limits.max_connections, "Connection refused: too many open, none idle.");
            let tls = limits.tls.is_some();
            tokio::spawn(async move {
                if !tls {
                    let _ = stream.write_all(TOO_MANY).await;
                }
                let _ = stream.shutdown().await;
                drop(open);
            });
            return;
        }
        let _ = stream.set_nodelay(true);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.idle_timeout)
            .max_buf_size(limits.max_header_size);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(limits.max_header_size as u32);
        let (handler, connections) = (self.handler.clone(), self.connections.clone());
        let connection = tracked.clone();
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let answering = Answering::begin(&connection, &connections);
            let answer = handler(request, peer);
            async move {
                let answer = answer.await.map(|body| Guarded {
                    body,
                    _answering: answering,
                });
                Ok::<_, std::convert::Infallible>(answer)
            }
        });
        let idle_timeout = limits.idle_timeout;
        let (tls, watcher, connections) = (limits.tls.clone(), self.graceful.watcher(), self.connections.clone());
        tokio::spawn(async move {
            let serving = async {
                match tls {
                    None => serve(builder, stream, service, watcher, peer).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => serve(builder, stream, service, watcher, peer).await,
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed."),
                    },
                }
            };
            tokio::select! {
                () = serving => {}
                () = tracked.idle_for(idle_timeout, &connections) => {
                    tracing::debug!(%peer, "Connection closed: no request in progress for {idle_timeout:?}.");
                }
            }
            drop(open);
        });
    }
}

/// Bind `config.server.listen`.
pub async fn bind(config: &Config) -> Result<TcpListener, ConfigError> {
    let addr: SocketAddr = config.server.listen;
    TcpListener::bind(addr)
        .await
        .map_err(|e| config.error("server.listen", format!("cannot listen on {addr}: {e}")))
}

/// Serve HTTP/1 or HTTP/2 on `io` until the client goes or shutdown ends it.
async fn serve<S, B>(builder: auto::Builder<TokioExecutor>, io: S, service: B, watcher: Watcher, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<Guarded>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    B::Future: Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, error = %e, "Connection ended with an error.");
    }
}
