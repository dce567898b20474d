//! The listener: accepts connections within `max_connections`, shakes hands
//! over TLS when `[server.tls]` is set, bounds how long a client may take to
//! send its headers and how large they may be, and hands each request to
//! the admin endpoints or to ingest. Every limit is read from the live set
//! when a connection arrives, so a reload changes them for new connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::Ingest;
use crate::admin::Admin;
use crate::config::ADMIN_PREFIX;
use crate::live::Live;

/// What a connection over `max_connections` is told before it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 32\r\nconnection: close\r\n\r\n{\"error\":\"too_many_connections\"}";

pub struct Listener {
    live: Arc<Live>,
    ingest: Arc<Ingest>,
    admin: Arc<Admin>,
    /// Connections open now.
    open: Arc<AtomicUsize>,
    graceful: GracefulShutdown,
}

/// Counts a connection as open while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Listener {
    pub fn new(live: Arc<Live>, ingest: Arc<Ingest>, admin: Arc<Admin>) -> Listener {
        Listener {
            live,
            ingest,
            admin,
            open: Arc::new(AtomicUsize::new(0)),
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
        let live = self.live.current();
        let server = &live.config.server;
        let open = Open(self.open.clone());
        if self.open.fetch_add(1, Ordering::Relaxed) >= server.max_connections {
            tracing::warn!(%peer, limit = server.max_connections, "Connection refused: too many open.");
            let tls = live.tls.is_some();
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
            .header_read_timeout(server.header_timeout.0)
            .max_buf_size(server.max_header_size.0 as usize);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(server.max_header_size.0 as u32);
        let (ingest, admin) = (self.ingest.clone(), self.admin.clone());
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let (ingest, admin) = (ingest.clone(), admin.clone());
            async move {
                if request.uri().path().starts_with(ADMIN_PREFIX) {
                    Ok(admin.handle(request, peer).await)
                } else {
                    ingest.handle(request).await
                }
            }
        });
        let handshake_timeout = server.header_timeout.0;
        let (tls, watcher) = (live.tls.clone(), self.graceful.watcher());
        tokio::spawn(async move {
            match tls {
                None => serve(builder, stream, service, watcher, peer).await,
                Some(tls) => match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve(builder, stream, service, watcher, peer).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed."),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                },
            }
            drop(open);
        });
    }
}

/// Serve HTTP/1 or HTTP/2 on `io` until the client goes or shutdown ends it.
async fn serve<S, B>(builder: auto::Builder<TokioExecutor>, io: S, service: B, watcher: Watcher, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<http_body_util::Full<bytes::Bytes>>,
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
