//! `unifi-access-ws` against a fake UniFi Access controller: TLS with a
//! certificate generated here, Bearer token check, the `Hello` frame,
//! notifications, the controller dropping the connection and coming back,
//! a wrong token, and a certificate that is not pinned.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Host, SECRET, Sink};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use vestibule::vendors::unifi_access_ws::SAMPLES;

const PATH: &str = "/api/v1/developer/devices/notifications";

/// What the controller does after sending a connection's frames.
#[derive(Clone, Copy, Default)]
enum After {
    /// Close the connection.
    Close,
    /// Stay connected, pinging every 500 ms.
    #[default]
    Ping,
    /// Stay connected and send nothing at all.
    Silent,
}

/// What the controller does on each successive connection.
type Script = VecDeque<(Vec<String>, After)>;

struct Controller {
    port: u16,
    cert_pem: String,
    /// TCP connections accepted.
    attempts: Arc<AtomicUsize>,
    /// WebSocket handshakes completed (TLS and token accepted).
    upgrades: Arc<AtomicUsize>,
    /// When each was.
    upgraded_at: Arc<Mutex<Vec<std::time::Instant>>>,
}

impl Controller {
    #[allow(clippy::result_large_err, reason = "the handshake callback's type is tungstenite's")]
    async fn start(script: Script) -> Controller {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert_pem = certified.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let attempts = Arc::new(AtomicUsize::new(0));
        let upgrades = Arc::new(AtomicUsize::new(0));
        let upgraded_at = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let (a, u, at) = (attempts.clone(), upgrades.clone(), upgraded_at.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                a.fetch_add(1, Ordering::SeqCst);
                let (acceptor, script, upgrades, at) = (acceptor.clone(), script.clone(), u.clone(), at.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
                        let authorized = request.uri().path() == PATH
                            && request
                                .headers()
                                .get("authorization")
                                .is_some_and(|v| v == &format!("Bearer {SECRET}")[..]);
                        if authorized {
                            Ok(response)
                        } else {
                            let mut refused = ErrorResponse::new(Some("unauthorized".into()));
                            *refused.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                            Err(refused)
                        }
                    };
                    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(tls, check).await else {
                        return;
                    };
                    upgrades.fetch_add(1, Ordering::SeqCst);
                    at.lock().unwrap().push(std::time::Instant::now());
                    let (frames, after) = script.lock().unwrap().pop_front().unwrap_or_default();
                    for frame in frames {
                        socket.send(Message::text(frame)).await.unwrap();
                    }
                    if let After::Close = after {
                        let _ = socket.close(None).await;
                    } else if let After::Silent = after {
                        while let Some(Ok(_)) = socket.next().await {}
                    } else {
                        // Stay connected, pinging, until the host goes.
                        loop {
                            tokio::select! {
                                frame = socket.next() => if !matches!(frame, Some(Ok(_))) { return },
                                () = tokio::time::sleep(Duration::from_millis(500)) => {
                                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                });
            }
        });
        Controller {
            port,
            cert_pem,
            attempts,
            upgrades,
            upgraded_at,
        }
    }

    fn url(&self) -> String {
        format!("wss://127.0.0.1:{}{PATH}", self.port)
    }
}

fn sample(event_type: &str) -> String {
    SAMPLES.iter().find(|(t, _)| *t == event_type).unwrap().1.to_string()
}

/// A host with one WebSocket source (TLS settings in `tls`) and the echo
/// plugin forwarding every event to `sink`.
fn config(controller: &Controller, tls: &str, sink: &Sink) -> String {
    format!(
        r#"
        [[sources]]
        name = "controller"
        vendor = "unifi-access-ws"
        url = "{url}"
        token_file = "{{secret_file}}"
        backoff = "200ms"
        {tls}
        {echo}
        "#,
        url = controller.url(),
        echo = crate::support::echo_tables(&format!("kind = \"http\"\nurl = \"{}\"", sink.url("/events"))),
    )
}

/// The host's log lines, for the tests that check what is logged.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("vestibule=info")
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        log
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn pinned(controller: &Controller, dir: &Path) -> String {
    let ca = dir.join("controller.pem");
    std::fs::write(&ca, &controller.cert_pem).unwrap();
    format!("ca_file = \"{}\"", ca.display())
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_arrive_across_a_reconnect() {
    let first = vec![
        "Hello".to_string(),
        sample("access.remote_view"),
        sample("access.logs.add"),
    ];
    let second: Vec<String> = std::iter::once("Hello".to_string())
        .chain(
            [
                "access.hw.door_bell",
                "access.remote_view.change",
                "access.data.device.remote_unlock",
                "access.data.device.update",
                "access.data.v2.location.update",
            ]
            .map(sample),
        )
        .collect();
    let controller = Controller::start(VecDeque::from([(first, After::Close), (second, After::Ping)])).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let host = Host::start(&config(&controller, &pinned(&controller, dir.path()), &sink)).await;

    wait_for("seven events", || sink.received().len() >= 7).await;
    host.stop().await;
    assert_eq!(
        controller.upgrades.load(Ordering::SeqCst),
        2,
        "connected, dropped, connected again"
    );

    let events: Vec<Value> = sink
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(events.len(), 7, "Hello is not an event: {events:?}");
    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/expected/unifi-access-ws");
    let bless = std::env::var_os("VESTIBULE_BLESS").is_some();
    for (event_type, body) in SAMPLES {
        let mut event = events
            .iter()
            .find(|e| e["raw"] == *body)
            .unwrap_or_else(|| panic!("{event_type} did not arrive"))
            .clone();
        let object = event.as_object_mut().unwrap();
        let received_at = object.remove("received_at").unwrap();
        object.remove("raw");
        crate::support::mask_derived_id(object, body);
        if object["occurred_at"] == received_at {
            object.insert("occurred_at".into(), "received_at".into());
        }
        let file = expected_dir.join(format!("{event_type}.json"));
        if bless {
            std::fs::create_dir_all(&expected_dir).unwrap();
            std::fs::write(&file, serde_json::to_string_pretty(&event).unwrap() + "\n").unwrap();
        }
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(event, expected, "{event_type}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_retried_with_backoff_not_in_a_busy_loop() {
    let controller = Controller::start(VecDeque::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let text = config(&controller, &pinned(&controller, dir.path()), &sink).replace("{secret_file}", "{wrong_token}");
    let token = dir.path().join("wrong-token");
    std::fs::write(&token, "not-the-token").unwrap();
    let text = text.replace("name = \"controller\"", "name = \"wrong-token\"");
    let log = captured_log();
    let host = Host::start(&text.replace("{wrong_token}", &token.display().to_string())).await;

    // Backoff 200 ms doubling: attempts near 0 s, 0.2 s, 0.6 s, 1.4 s.
    wait_for("a retry", || controller.attempts.load(Ordering::SeqCst) >= 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    host.stop().await;
    let attempts = controller.attempts.load(Ordering::SeqCst);
    assert!(attempts <= 8, "{attempts} attempts: a busy loop");
    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("source=wrong-token") && l.contains("Controller connection failed"))
        .collect();
    assert_eq!(failures.len(), 1, "logged once, not once per retry: {failures:#?}");
    assert!(failures[0].contains("401"), "{}", failures[0]);
    assert_eq!(controller.upgrades.load(Ordering::SeqCst), 0, "the token was refused");
    assert!(sink.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_that_is_not_pinned_is_refused_unless_told_otherwise() {
    let frames = || vec!["Hello".to_string(), sample("access.hw.door_bell")];
    let controller = Controller::start(VecDeque::from([(frames(), After::Ping)])).await;
    let sink = Sink::start().await;

    // System roots only: the controller's own certificate is not among them.
    let host = Host::start(&config(&controller, "", &sink)).await;
    wait_for("a connection attempt", || {
        controller.attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    host.stop().await;
    assert_eq!(controller.upgrades.load(Ordering::SeqCst), 0, "TLS must fail");
    assert!(sink.received().is_empty());

    // Told to accept any certificate, it connects.
    let host = Host::start(&config(&controller, "accept_invalid_certs = true", &sink)).await;
    wait_for("the doorbell", || sink.received().len() == 1).await;
    host.stop().await;
    assert_eq!(controller.upgrades.load(Ordering::SeqCst), 1);
}

/// A controller that goes quiet is given up on after `silence` and dialled
/// again; pings count as signs of life.
#[tokio::test(flavor = "multi_thread")]
async fn silence_means_reconnect_and_pings_mean_alive() {
    let bell = vec!["Hello".to_string(), sample("access.hw.door_bell")];
    let controller = Controller::start(VecDeque::from([
        (vec!["Hello".to_string()], After::Silent),
        (bell, After::Ping),
    ]))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let tls = format!("{}\nsilence = \"1s\"", pinned(&controller, dir.path()));
    let host = Host::start(&config(&controller, &tls, &sink)).await;

    wait_for("the doorbell after a reconnect", || sink.received().len() == 1).await;
    assert_eq!(
        controller.upgrades.load(Ordering::SeqCst),
        2,
        "the silent connection was dropped"
    );
    // Twice the silence window, with pings every 500 ms: still the same connection.
    tokio::time::sleep(Duration::from_secs(2)).await;
    host.stop().await;
    assert_eq!(controller.upgrades.load(Ordering::SeqCst), 2, "pings kept it alive");
}

/// A reload keeps the controller connection when the source did not
/// change — the controller does not resend what it pushed meanwhile — and
/// dials again with the new settings when it did.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_keeps_an_unchanged_connection_and_redials_a_changed_one() {
    let controller = Controller::start(VecDeque::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    // Only the admin endpoint reloads: the watcher must not race it.
    let admin = "\n[admin]\ntoken_file = \"{secret_file}\"\n[reload]\nwatch = false\n";
    let tls = pinned(&controller, dir.path());
    let host = Host::start(&format!("{}{admin}", config(&controller, &tls, &sink))).await;
    wait_for("the connection", || controller.upgrades.load(Ordering::SeqCst) == 1).await;
    let secret_file = host.config.parent().unwrap().join("unifi-secret").display().to_string();
    let reload = |text: String| {
        let (config, url) = (host.config.clone(), host.url("/admin/reload"));
        let text = text.replace("{secret_file}", &secret_file);
        async move {
            std::fs::write(&config, text).unwrap();
            let token = [("authorization", format!("Bearer {SECRET}"))];
            let (status, report) = crate::support::try_post(&url, &token, "").await.unwrap();
            assert_eq!(status, 200, "{report}");
            serde_json::from_str::<Value>(&report).unwrap()
        }
    };

    // Another source added: the controller's stays connected.
    let webhook = "\n[[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"{secret_file}\"\n";
    let report = reload(format!("{}{admin}{webhook}", config(&controller, &tls, &sink))).await;
    assert_eq!(report["changes"][1], "source office at /ingest/office", "{report}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(controller.upgrades.load(Ordering::SeqCst), 1, "not redialled");

    // Its own settings changed: it dials again.
    let changed = format!("{tls}\nsilence = \"30s\"");
    let report = reload(format!("{}{admin}{webhook}", config(&controller, &changed, &sink))).await;
    let changes = report["changes"].to_string();
    assert!(
        changes.contains("source controller reconnects with its new settings"),
        "{changes}"
    );
    wait_for("the new connection", || controller.upgrades.load(Ordering::SeqCst) == 2).await;
    host.stop().await;
}

/// A controller that accepts the connection and drops it at once, again
/// and again, is redialled with growing waits: the backoff starts over only
/// after a connection proved healthy.
#[tokio::test(flavor = "multi_thread")]
async fn a_controller_that_keeps_dropping_is_redialled_with_growing_waits() {
    let script: Script = (0..4).map(|_| (vec!["Hello".to_string()], After::Close)).collect();
    let controller = Controller::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let host = Host::start(&config(&controller, &pinned(&controller, dir.path()), &sink)).await;
    wait_for("four handshakes", || controller.upgrades.load(Ordering::SeqCst) >= 4).await;
    host.stop().await;
    let at = controller.upgraded_at.lock().unwrap().clone();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // backoff = 200 ms: about 200, 400, 800 ms (each up to a quarter more).
    assert!(gaps[1] > gaps[0] && gaps[2] > gaps[1], "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(700), "{gaps:?}");
}

/// A frame larger than `[server] max_body` is refused, as a webhook body
/// would be; the next connection's events come through.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_over_max_body_is_refused() {
    let huge = sample("access.remote_view").replacen(
        "\"data\": {",
        &format!("\"data\": {{\"padding\": \"{}\",", "x".repeat(200_000)),
        1,
    );
    assert!(huge.len() > 200_000);
    let script: Script = [
        (vec!["Hello".to_string(), huge], After::Close),
        (vec![sample("access.logs.add")], After::Ping),
    ]
    .into_iter()
    .collect();
    let controller = Controller::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start().await;
    let text = format!(
        "[server]\nmax_body = \"64KiB\"\n{}",
        config(&controller, &pinned(&controller, dir.path()), &sink)
    );
    let log = captured_log();
    let host = Host::start(&text).await;
    let received = sink.wait_for(Duration::from_secs(20), |r| !r.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.stop().await;
    assert_eq!(sink.received().len(), 1, "only the event of a fitting size");
    assert!(received[0].body.contains("access.logs.add"));
    let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        log.contains("a frame over [server] max_body (65536 bytes) was refused"),
        "{log}"
    );
}
