//! Clients that are slow, greedy or replaying cannot hold the host: a
//! slow-loris client is cut off at the header and body timeouts, oversized
//! headers get 431, connections beyond the limit 503, a replayed signed
//! request 401 `replayed`; the admin endpoints refuse wrong tokens and, by
//! default, other machines; and HTTPS works when configured.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{Host, SECRET, Sink, get, lights_config, now, try_post, unifi_signature, unifi_unlock};

/// The lights config with tight ingest limits and the admin endpoints on.
fn config(sink: &Sink, server: &str, admin: &str) -> String {
    format!(
        "[server]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\n{server}\n\
         [admin]\ntoken_file = \"{{secret_file}}\"\n{admin}\n{}",
        lights_config("", &sink.url("/on")).replace("[server]\n        max_body = \"4KiB\"", "")
    )
}

/// Connect and write `bytes` to the host; the open connection.
fn raw(host: &Host, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(host.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// Everything the host sends until it closes the connection.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_is_cut_off_and_others_are_served() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink, "", "")).await;

    // Headers, one byte every 200 ms: closed at the 1 s header timeout.
    let started = Instant::now();
    let addr = host.addr;
    let headers = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for byte in b"POST /ingest/office HTTP/1.1\r\nHost: vestibule\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        (read_to_close(&mut stream), started.elapsed())
    });
    // Meanwhile others are answered.
    let (status, _) = host.post_unifi(unifi_unlock("Front Door")).await;
    assert_eq!(status, 200);
    let (_, took) = headers.await.unwrap();
    assert!(took < Duration::from_secs(5), "the slow client was held for {took:?}");

    // A body that never finishes: 408 at the 1 s body timeout.
    let body = unifi_unlock("Front Door");
    let signature = &unifi_signature(SECRET, now(), &body)[0].1;
    let head = format!(
        "POST /ingest/office HTTP/1.1\r\nHost: vestibule\r\nSignature: {signature}\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    let mut stream = raw(&host, head.as_bytes());
    let answer = tokio::task::spawn_blocking(move || read_to_close(&mut stream))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"body_timeout"}"#), "{answer}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink, "max_header_size = \"16KiB\"", "")).await;
    let big = format!(
        "POST /ingest/office HTTP/1.1\r\nHost: vestibule\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let mut stream = raw(&host, big.as_bytes());
    let answer = tokio::task::spawn_blocking(move || read_to_close(&mut stream))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    host.stop().await;
}

/// Headers of a signed request whose body never comes: the connection is
/// busy answering it until the body timeout.
fn busy(host: &Host) -> TcpStream {
    raw(
        host,
        b"POST /ingest/office HTTP/1.1\r\nHost: vestibule\r\nContent-Length: 1000\r\n\r\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_when_none_is_idle() {
    let sink = Sink::start().await;
    let server = "max_connections = 2\nbody_timeout = \"5s\"";
    let host = Host::start(&config(&sink, server, "").replace("body_timeout = \"1s\"\n", "")).await;
    let first = busy(&host);
    let second = busy(&host);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = raw(&host, b"");
    let answer = tokio::task::spawn_blocking(move || read_to_close(&mut third))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"too_many_connections"}"#), "{answer}");
    drop((first, second));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = host.post_unifi(unifi_unlock("Front Door")).await;
    assert_eq!(status, 200, "served again once connections closed");
    host.stop().await;
}

/// What clients that connect and then say nothing send first.
const SILENCES: [&[u8]; 4] = [
    b"",
    b"P",
    // Half an HTTP/2 preface.
    b"PRI * HTTP/2.0\r\n",
    // The whole preface and an empty SETTINGS frame.
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
];

/// A connection with no request in progress is closed at the header
/// timeout, whatever protocol it started to speak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_at_the_header_timeout() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink, "", "")).await;
    let addr = host.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let streams: Vec<(usize, TcpStream)> = SILENCES
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                stream.write_all(bytes).unwrap();
                (i, stream)
            })
            .collect();
        let started = Instant::now();
        streams
            .into_iter()
            .map(|(i, mut stream)| {
                let mut buffer = [0u8; 1024];
                // Closed: end of stream (or a reset), not the read timeout.
                let closed = loop {
                    match stream.read(&mut buffer) {
                        Ok(0) => break true,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break false,
                        Err(_) => break true,
                    }
                };
                (i, closed, started.elapsed())
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (i, closed, after) in closed {
        assert!(closed, "silence {i} was still open after {after:?}");
    }
    host.stop().await;
}

/// 2,000 connections that say nothing, held open, and every vendor's
/// signed events are still accepted: at the connection limit a new
/// connection takes the place of the longest idle one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_silent_connections_do_not_lock_the_vendors_out() {
    let _turn = crate::support::heavy();
    const SILENT: usize = 2000;
    const EVENTS: usize = 20;
    let sink = Sink::start().await;
    // Long enough that none of the silent ones is closed for idleness
    // during the test: only the limit makes room.
    let host =
        Host::start(&config(&sink, "header_timeout = \"60s\"", "").replace("header_timeout = \"1s\"\n", "")).await;
    let addr = host.addr;
    let held = tokio::task::spawn_blocking(move || {
        (0..SILENT)
            .filter_map(|i| {
                let mut stream = TcpStream::connect(addr).ok()?;
                let _ = stream.write_all(SILENCES[i % SILENCES.len()]);
                Some(stream)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(held.len(), SILENT);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..EVENTS {
        let body = unifi_unlock("Front Door").replacen('{', &format!("{{\"n\":{n},"), 1);
        let (status, answer) = host.post_unifi(body).await;
        assert_eq!(status, 200, "event {n}: {answer}");
    }
    let received = sink.wait_for(Duration::from_secs(20), |r| r.len() >= EVENTS).await;
    assert_eq!(received.len(), EVENTS);
    drop(held);
    host.stop().await;
}

/// The same signed request twice: the second is a replay. A retry signed
/// anew is the vendor's, and is answered as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_signature_is_refused() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink, "", "")).await;
    let url = host.url("/ingest/office");
    let body = unifi_unlock("Front Door");
    let signed = unifi_signature(SECRET, now() - 5, &body);
    let first = try_post(&url, &signed, body.clone()).await.unwrap();
    assert_eq!(first.0, 200, "{first:?}");
    let replay = try_post(&url, &signed, body.clone()).await.unwrap();
    assert_eq!(replay, (401, r#"{"error":"replayed"}"#.to_string()));
    let resigned = try_post(&url, &unifi_signature(SECRET, now(), &body), body)
        .await
        .unwrap();
    assert_eq!(resigned.0, 200);
    assert!(resigned.1.contains(r#""status":"duplicate""#), "{resigned:?}");
    host.stop().await;
    assert_eq!(sink.received().len(), 1, "processed once");
}

/// This machine's address on its network: the source address of a route
/// out (no packet is sent).
fn non_loopback_address() -> IpAddr {
    for target in ["192.0.2.1:9", "10.255.255.255:9", "8.8.8.8:53"] {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        if socket.connect(target).is_ok()
            && let Ok(local) = socket.local_addr()
            && !local.ip().is_loopback()
            && !local.ip().is_unspecified()
        {
            return local.ip();
        }
    }
    panic!("this machine has no network address but loopback");
}

/// The admin endpoints: a wrong token is refused, and a right one from
/// another machine too — unless `[admin] public = true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_its_token_and_loopback_unless_public() {
    let sink = Sink::start().await;
    let token = [("authorization", format!("Bearer {SECRET}"))];
    let wrong = [("authorization", "Bearer not-the-token".to_string())];
    let outside = non_loopback_address();
    for (public, expected_outside) in [("", 404), ("public = true", 200)] {
        let host = Host::start_on(&config(&sink, "", public), "0.0.0.0:0").await;
        let port = host.addr.port();
        let local = format!("http://127.0.0.1:{port}/admin/status");
        let remote = format!("http://{}/admin/status", SocketAddr::new(outside, port));
        assert_eq!(get(&local, &wrong).await, (401, r#"{"error":"auth_invalid"}"#.into()));
        assert_eq!(get(&local, &token).await.0, 200);
        assert_eq!(
            get(&remote, &token).await.0,
            expected_outside,
            "from {outside}, {public:?}"
        );
        host.stop().await;
    }
}

/// `[server.tls]`: the ingest listener speaks HTTPS with the configured
/// certificate; plain HTTP on it gets nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_when_configured() {
    let sink = Sink::start().await;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let tls = format!(
        "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"",
        cert.display(),
        key.display()
    );
    let host = Host::start(&config(&sink, &tls, "")).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    let body = unifi_unlock("Front Door");
    let signature = &unifi_signature(SECRET, now(), &body)[0].1;
    let request = format!(
        "POST /ingest/office HTTP/1.1\r\nHost: localhost\r\nSignature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"accepted""#), "{answer}");

    let plain = try_post(&host.url("/ingest/office"), &[], "{}").await;
    assert!(plain.is_err() || plain.as_ref().unwrap().0 != 200, "{plain:?}");
    host.stop().await;
}

/// A flood of refused requests — bad signatures, unknown paths, wrong
/// methods — writes a line for the first of each kind, then one line with
/// how many more there were: the log does not grow with the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_summarised_in_the_log() {
    const FLOOD: usize = 300;
    let addr = crate::support::free_addr();
    let (dir, config) = crate::support::write_config(&format!(
        "[server]\nlisten = \"{addr}\"\n[log]\nrefusal_summary = \"1s\"\n\
         [[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"{{secret_file}}\"\n"
    ));
    let host = crate::support::Process::start(&config.file);
    let started = std::time::Instant::now();
    let url = |path: &str| format!("http://{addr}{path}");
    for n in 0..FLOOD {
        let body = unifi_unlock("Front Door");
        let (status, _) = try_post(&url("/ingest/office"), &unifi_signature("wrong", now(), &body), body)
            .await
            .unwrap();
        assert_eq!(status, 401);
        let (status, _) = try_post(&url(&format!("/scan/{n}")), &[], "").await.unwrap();
        assert_eq!(status, 404);
    }
    let (status, _) = get(&url("/ingest/office"), &[]).await;
    assert_eq!(status, 405);
    // Every refusal is in the log, as a line of its own or in a count; on a
    // slow machine the flood may span a summary interval or two.
    let counted = |log: &[String], reason: &str| -> u64 {
        let reason = format!("reason=\"{reason}\"");
        log.iter()
            .filter(|l| l.contains("refused") && l.contains(&reason))
            .map(|l| match l.split(" count=").nth(1) {
                Some(count) => count.split(' ').next().unwrap().parse::<u64>().unwrap(),
                None => 1,
            })
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while counted(&host.log(), "not_found") < FLOOD as u64 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed().as_secs() + 2;
    let log = host.log();
    drop(host);
    drop(dir);
    assert_eq!(counted(&log, "signature_invalid"), FLOOD as u64, "{log:#?}");
    assert_eq!(counted(&log, "not_found"), FLOOD as u64, "{log:#?}");
    assert_eq!(counted(&log, "method_not_allowed"), 1, "{log:#?}");
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("refused")).collect();
    // At most a first line and a summary per reason and interval (1 s).
    assert!(
        refused.len() as u64 <= 1 + 2 * 2 * elapsed,
        "{} lines in {elapsed} s: {refused:#?}",
        refused.len()
    );
    let line = |says: &[&str]| refused.iter().any(|l| says.iter().all(|s| l.contains(s)));
    assert!(
        line(&["Request refused", "source=office", "reason=\"signature_invalid\""]),
        "{refused:#?}"
    );
    assert!(
        line(&["More requests refused", "source=office", "signature_invalid", "count="]),
        "{refused:#?}"
    );
    assert!(
        line(&["Request refused", "reason=\"not_found\"", "path=/scan/0"]),
        "{refused:#?}"
    );
}
