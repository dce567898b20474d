//! The servers a benchmark run needs besides Vestibule: the bare hyper
//! baseline and the sink that receives commands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Serve every connection on `listener` with `answer`, HTTP/1.1 keep-alive.
async fn serve<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let answer = answer.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The ceiling: a hyper server that reads the body and answers 200.
pub async fn bare_hyper() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, |request: Request<hyper::body::Incoming>| async move {
        let _ = request.into_body().collect().await;
        Response::new(Full::new(Bytes::from_static(b"{}")))
    }));
    addr
}

/// A sink that notes when each command arrived, by the `seq` the benchmark
/// put into the event (the echo plugin forwards the whole event), and when
/// an event stamped by each plugin version (attribute `version`) first
/// arrived.
#[derive(Clone, Default)]
pub struct Sink {
    pub arrivals: Arc<Mutex<HashMap<u64, Instant>>>,
    pub first_of_version: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Sink {
    pub async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (arrivals, versions) = (self.arrivals.clone(), self.first_of_version.clone());
        tokio::spawn(serve(listener, move |request: Request<hyper::body::Incoming>| {
            let (arrivals, versions) = (arrivals.clone(), versions.clone());
            async move {
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let now = Instant::now();
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(seq) = seq_of(&event) {
                    arrivals.lock().unwrap().insert(seq, now);
                }
                if let Some(version) = version_of(&event) {
                    versions.lock().unwrap().entry(version).or_insert(now);
                }
                Response::new(Full::new(Bytes::from_static(b"[]")))
            }
        }));
        addr
    }
}

/// The `seq` the load generator wrote into the vendor body, found in the
/// forwarded event's `raw`.
fn seq_of(event: &serde_json::Value) -> Option<u64> {
    let raw: serde_json::Value = serde_json::from_str(event["raw"].as_str()?).ok()?;
    raw["bench_seq"].as_u64()
}

/// The `version` attribute a stamp plugin added.
fn version_of(event: &serde_json::Value) -> Option<String> {
    let attributes = event["attributes"].as_array()?;
    let version = attributes.iter().find(|a| a["key"] == "version")?;
    Some(version["value"].as_str()?.to_string())
}
