//! The load generator: pre-signed, unique UniFi Access events posted over
//! keep-alive HTTP/1.1 connections, either as fast as a fixed number of
//! connections allows or at a fixed rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One prepared request: body and `Signature` header.
pub struct Prepared {
    pub body: Bytes,
    pub signature: String,
}

/// `count` distinct `access.door.unlock` events for "Front Door", signed with
/// `secret` now, each with a `bench_seq` so its command can be recognised.
pub fn prepare(count: usize, secret: &str) -> Vec<Prepared> {
    prepare_doors(count, secret, &["Front Door"])
}

/// The same, for `doors` in turn.
pub fn prepare_doors(count: usize, secret: &str, doors: &[&str]) -> Vec<Prepared> {
    let template =
        vestibule::cli::send::sample(vestibule::config::VendorKind::UnifiAccess, "access.door.unlock").unwrap();
    let now = vestibule::time::now_ms() / 1000;
    (0..count)
        .map(|seq| {
            let door = format!("{:?}", doors[seq % doors.len()]);
            let body = template
                .replacen('{', &format!("{{\"bench_seq\":{seq},"), 1)
                .replace("\"Front Door\"", &door);
            let signature = vestibule::vendors::unifi_access::sign(secret, now, body.as_bytes());
            Prepared {
                body: Bytes::from(body),
                signature,
            }
        })
        .collect()
}

/// What a load run measured, client side.
pub struct Run {
    pub requests: usize,
    /// Failed connections and statuses other than 2xx and 503.
    pub errors: usize,
    /// 503 `overloaded` answers.
    pub overloaded: usize,
    pub elapsed: Duration,
    /// Latency of each successful request, in µs.
    pub latencies_us: Vec<u64>,
    /// When each request (by seq) was meant to be sent, for end-to-end
    /// latency at the sink.
    pub sent: Vec<(u64, Instant)>,
    /// The index after the last event used.
    pub next: usize,
    /// Whether events were used more than once.
    pub wrapped: bool,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Two runs at once (against two nodes) as one.
    pub fn merge(mut self, other: Run) -> Run {
        self.requests += other.requests;
        self.errors += other.errors;
        self.overloaded += other.overloaded;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.latencies_us.extend(other.latencies_us);
        self.sent.extend(other.sent);
        self.next = self.next.max(other.next);
        self.wrapped |= other.wrapped;
        self
    }
}

pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// How a request went.
#[derive(PartialEq)]
pub(super) enum Sent {
    Ok,
    /// 503: the host's queue was full.
    Overloaded,
    /// Another status, or the connection failed.
    Failed,
}

pub(super) async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &str,
    prepared: &Prepared,
) -> Sent {
    if sender.ready().await.is_err() {
        return Sent::Failed;
    }
    let request = Request::post(path)
        .header("host", "bench")
        .header("content-type", "application/json")
        .header("signature", &prepared.signature)
        .body(Full::new(prepared.body.clone()))
        .unwrap();
    match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status();
            let _ = response.into_body().collect().await;
            match status.as_u16() {
                200..=299 => Sent::Ok,
                503 => Sent::Overloaded,
                _ => Sent::Failed,
            }
        }
        Err(_) => Sent::Failed,
    }
}

/// `connections` clients, each sending its next request as soon as the last
/// was answered, for `duration`, drawing from `events` in turn from `first`
/// (wrapping around if the run outlasts them; `Run::wrapped` says so).
pub async fn closed_loop(
    addr: SocketAddr,
    path: &str,
    events: Arc<Vec<Prepared>>,
    first: usize,
    connections: usize,
    duration: Duration,
) -> Run {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(first));
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (events, next, path) = (events.clone(), next.clone(), path.to_string());
        workers.spawn(async move {
            let mut sender = connect(addr).await;
            let (mut latencies, mut errors, mut overloaded, mut sent) = (Vec::new(), 0, 0, Vec::new());
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let prepared = &events[i % events.len()];
                let begun = Instant::now();
                match send(&mut sender, &path, prepared).await {
                    Sent::Ok => {
                        latencies.push(begun.elapsed().as_micros() as u64);
                        sent.push(((i % events.len()) as u64, begun));
                    }
                    Sent::Overloaded => overloaded += 1,
                    Sent::Failed => {
                        errors += 1;
                        sender = connect(addr).await;
                    }
                }
            }
            (latencies, errors, overloaded, sent)
        });
    }
    let mut run = collect(workers, started).await;
    run.next = next.load(std::sync::atomic::Ordering::Relaxed);
    run.wrapped = run.next > events.len();
    run
}

/// Requests at a fixed `rate` per second for `duration`, spread over
/// `connections`. Latency counts from when a request was due, so a stall
/// shows in the numbers instead of hiding in a slower send rate.
pub async fn fixed_rate(
    addr: SocketAddr,
    path: &str,
    events: Arc<Vec<Prepared>>,
    first: usize,
    rate: u32,
    connections: usize,
    duration: Duration,
) -> Run {
    let total = ((rate as f64) * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(connections as f64 / rate as f64);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..connections {
        let (events, path) = (events.clone(), path.to_string());
        workers.spawn(async move {
            let mut sender = connect(addr).await;
            let (mut latencies, mut errors, mut overloaded, mut sent) = (Vec::new(), 0, 0, Vec::new());
            let offset = interval.mul_f64(worker as f64 / connections as f64);
            let mut i = worker;
            let mut k = 0u32;
            while i < total {
                let due = started + offset + interval * k;
                tokio::time::sleep_until(due.into()).await;
                let seq = (first + i) % events.len();
                match send(&mut sender, &path, &events[seq]).await {
                    Sent::Ok => {
                        latencies.push(due.elapsed().as_micros() as u64);
                        sent.push((seq as u64, due));
                    }
                    Sent::Overloaded => overloaded += 1,
                    Sent::Failed => {
                        errors += 1;
                        sender = connect(addr).await;
                    }
                }
                i += connections;
                k += 1;
            }
            (latencies, errors, overloaded, sent)
        });
    }
    let mut run = collect(workers, started).await;
    // The next run starts after these: a request sent again is a replay.
    run.next = first + total;
    run
}

/// What one worker measured: latencies, errors, 503s, and when each seq
/// was sent.
type Worker = (Vec<u64>, usize, usize, Vec<(u64, Instant)>);

async fn collect(mut workers: tokio::task::JoinSet<Worker>, started: Instant) -> Run {
    let mut run = Run {
        requests: 0,
        errors: 0,
        overloaded: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        sent: Vec::new(),
        next: 0,
        wrapped: false,
    };
    while let Some(result) = workers.join_next().await {
        let (latencies, errors, overloaded, sent) = result.unwrap();
        run.requests += latencies.len();
        run.errors += errors;
        run.overloaded += overloaded;
        run.latencies_us.extend(latencies);
        run.sent.extend(sent);
    }
    run.elapsed = started.elapsed();
    run
}

/// The `q` quantile (0..=1) of `values`, sorting them.
pub fn quantile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    values[rank]
}
