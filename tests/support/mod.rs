//! Shared by the end-to-end tests: building the real plugins, a stand-in
//! HTTP sink, and starting the real host on port 0.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vestibule::{App, Config, Runtime};

pub mod browser;
pub mod config;
pub mod mqtt;
pub mod nats;
pub mod process;
pub mod vendor_api;
mod wasm;

pub use process::{Process, cli, vestibule};

/// The repository's root.
pub fn workspace() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Tests that load both cores on purpose (fuzzing, floods, load under
/// reload, the benchmark smoke run, kill -9 loops) take turns: one runs
/// beside light tests, never beside another, so deadlines and timings the
/// others assert hold on a 2-core machine.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    // A failed heavy test must not fail the ones after it.
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `.wasm` file of each plugin package — every crate in `plugins/` and
/// `tests/plugins/` — built once per test run, all in one cargo call.
pub fn plugin(package: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let packages = wasm::packages_in(&["plugins", "tests/plugins"]);
            wasm::plugins(&packages.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .get(package)
        .unwrap_or_else(|| panic!("plugin {package} was not built"))
        .clone()
}

/// The component of the TypeScript plugin in `plugins/typescript/NAME`,
/// built once per test run with npm (see `wasm::typescript_plugin`).
pub fn typescript_plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_insert_with(|| wasm::typescript_plugin(name))
        .clone()
}

/// The component of the Python plugin in `plugins/python/NAME`, built once
/// per test run (see `wasm::python_plugin`).
pub fn python_plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_insert_with(|| wasm::python_plugin(name))
        .clone()
}

pub use wasm::{npm, npm_install, python};

/// The plugins in `plugins/FOLDER/` (each a folder with `manifest`), sorted.
pub fn plugins_in(folder: &str, manifest: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace().join("plugins").join(folder))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(manifest).exists())
        .collect();
    dirs.sort();
    dirs
}

/// `vestibule check` on a config of one source and `plugin` (a
/// `[[plugins]]` table): it must refuse it; what it said.
pub fn check_refuses(plugin: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vestibule.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret = \"x\"\n\n{plugin}"),
    )
    .unwrap();
    let output = vestibule().args(["check", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

/// `vestibule plugin run COMPONENT --events DIR --config CONFIG`, as a
/// plugin author runs golden tests: asserts that every event of `dir`
/// came out as the `NAME.expected.json` beside it says; how many there are.
pub fn golden(component: &std::path::Path, dir: &std::path::Path, config: &std::path::Path) -> usize {
    let output = vestibule()
        .args(["plugin", "run"])
        .arg(component)
        .arg("--events")
        .arg(dir)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let shown = component.display();
    assert!(
        output.status.success(),
        "{shown}:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".expected.json"))
        .count();
    assert!(
        stdout.ends_with(&format!("{events} passed, 0 failed\n")),
        "{shown}: {stdout}"
    );
    events
}

/// What the stand-in sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// A real HTTP server on loopback standing in for Home Assistant. It
/// records every request, and answers with the status set by [`Sink::answer`]
/// (200 to start with).
pub struct Sink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Sink {
    pub async fn start() -> Sink {
        Sink::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// Start on `addr`: a sink that was down comes back where it was.
    pub async fn start_at(addr: SocketAddr) -> Sink {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        let status = answer.load(Ordering::Relaxed);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            log.lock().unwrap().push(Received {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            let mut response = Response::new(Full::new(Bytes::from_static(b"[]")));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Sink { addr, received, status }
    }

    /// Answer every request from now on with `status`.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Wait until `done` holds for what was received, or `within` passes.
    pub async fn wait_for(&self, within: std::time::Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if done(&received) || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Write `config` (TOML) to a fresh folder, with `{secret_file}` replaced by
/// a file there holding [`SECRET`], and load it.
pub fn write_config(config: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("unifi-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    // Private, as a secret file should be (the host warns otherwise).
    std::fs::set_permissions(&secret_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let text = config.replace("{secret_file}", &secret_file.display().to_string());
    let config_file = dir.path().join("vestibule.toml");
    std::fs::write(&config_file, &text).unwrap();
    let config = Config::load(&config_file).unwrap_or_else(|e| panic!("{e}"));
    (dir, config)
}

/// The real host, serving on a port of its own.
pub struct Host {
    pub addr: SocketAddr,
    /// The config file it runs on (in a folder of its own).
    pub config: PathBuf,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// The secret the test sources use.
pub const SECRET: &str = "6601f1243d2ff70f";

impl Host {
    /// Start the host on `config` (TOML, see [`write_config`]).
    pub async fn start(config: &str) -> Host {
        Host::start_on(config, "127.0.0.1:0").await
    }

    /// Start the host on `config`, listening on `addr`.
    pub async fn start_on(config: &str, addr: &str) -> Host {
        Host::start_with(config, addr, Runtime::new().unwrap()).await
    }

    /// Start the host on `config` with its plugins' suspensions timed by
    /// `clock`.
    pub async fn start_with_clock(config: &str, clock: &vestibule::time::Clock) -> Host {
        let runtime = Runtime::new().unwrap().with_clock(clock.clone());
        Host::start_with(config, "127.0.0.1:0", runtime).await
    }

    async fn start_with(config: &str, addr: &str, runtime: Runtime) -> Host {
        let (dir, config) = write_config(config);
        let file = config.file.clone();
        let app = App::build(config, &runtime).await.unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(listener, async {
            let _ = stopped.await;
        }));
        Host {
            addr,
            config: file,
            stop,
            task,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POST `body` to source `office`, signed now as UniFi Access would
    /// with [`SECRET`]; the status and the answer.
    pub async fn post_unifi(&self, body: String) -> (u16, String) {
        post(
            &self.url("/ingest/office"),
            &unifi_signature(SECRET, now(), &body),
            body,
        )
        .await
    }

    /// POST `body` to source `source`, signed now as `vendor` signs with
    /// [`SECRET`]; the status and the answer.
    pub async fn post_signed(
        &self,
        source: &str,
        vendor: vestibule::config::VendorKind,
        body: String,
    ) -> (u16, String) {
        let signed = vestibule::vendors::get(vendor).sign(SECRET, now(), body.as_bytes());
        let headers: Vec<(&str, String)> = signed.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        post(&self.url(&format!("/ingest/{source}")), &headers, body).await
    }

    /// Stop, after every accepted event has gone through the pipeline and
    /// its commands were delivered.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A port nobody listens on (yet).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// POST `body` with `headers`; the status and the answer, or why there was none.
pub async fn try_post(url: &str, headers: &[(&str, String)], body: impl Into<Bytes>) -> Result<(u16, String), String> {
    let request = Request::post(url).header("content-type", "application/json");
    send(request, headers, body.into()).await
}

/// GET `url` with `headers`; the status and the answer.
pub async fn get(url: &str, headers: &[(&str, String)]) -> (u16, String) {
    try_get(url, headers).await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GET `url` with `headers`; the status and the answer, or why there was none.
pub async fn try_get(url: &str, headers: &[(&str, String)]) -> Result<(u16, String), String> {
    send(Request::get(url), headers, Bytes::new()).await
}

async fn send(
    mut request: hyper::http::request::Builder,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<(u16, String), String> {
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(body)).unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// POST `body` with `headers`; returns the status and the answer.
pub async fn post(url: &str, headers: &[(&str, String)], body: impl Into<Bytes>) -> (u16, String) {
    try_post(url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A UniFi Access sample event body, with its door renamed to `door`.
pub fn unifi_unlock(door: &str) -> String {
    vestibule::cli::send::sample(vestibule::config::VendorKind::UnifiAccess, "access.door.unlock")
        .unwrap()
        .replace("\"Front Door\"", &format!("{door:?}"))
}

/// The `Signature` header UniFi Access would send for `body`.
pub fn unifi_signature(secret: &str, t: i64, body: &str) -> Vec<(&'static str, String)> {
    vec![(
        "signature",
        vestibule::vendors::unifi_access::sign(secret, t, body.as_bytes()),
    )]
}

/// A host config: source `office` (UniFi Access, signed with [`SECRET`]),
/// then the `[[plugins]]` tables in `filters`, then the real
/// `lights-on-unlock` action sending Home Assistant calls to `sink_url`.
pub fn lights_config(filters: &str, sink_url: &str) -> String {
    format!(
        r#"
        [server]
        max_body = "4KiB"

        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"

        {filters}

        [[plugins]]
        name = "lights"
        world = "action"
        path = "{lights}"
        sinks = ["lights"]
        [plugins.config.entities]
        "Front Door" = "light.front_door"
        "Lobby" = "light.lobby"

        [[sinks]]
        name = "lights"
        kind = "http"
        url = "{sink_url}"
        [sinks.headers]
        Authorization = {{ secret_file = "{{secret_file}}", prefix = "Bearer " }}
        "#,
        lights = plugin("lights-on-unlock").display(),
    )
}

/// The `echo-event` action sending every event, as JSON, to sink `echo`,
/// and that sink — whose `kind`, `url` and other settings are the lines in
/// `sink`. It is cleared to see everything (secrecy 0): the tests see the
/// event exactly as normalized, `raw` as received.
pub fn echo_tables(sink: &str) -> String {
    format!(
        r#"
        [[plugins]]
        name = "echo"
        world = "action"
        path = "{echo}"
        sinks = ["echo"]
        secrecy = 0

        [[sinks]]
        name = "echo"
        {sink}
        "#,
        echo = plugin("echo-event").display(),
    )
}

/// A host config keeping its journal in `data`: source `office` (UniFi
/// Access, signed with [`SECRET`]) and [`echo_tables`] with `sink`.
pub fn echo_config(sink: &str) -> String {
    format!(
        r#"
        [store]
        path = "data"

        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"
        {echo}
        "#,
        echo = echo_tables(sink),
    )
}

/// An event id the vendor did not send (it is not in `body`) is derived
/// with the host's key, which differs from one data folder to the next:
/// check it looks like one and show it as `(derived)`.
pub fn mask_derived_id(event: &mut serde_json::Map<String, serde_json::Value>, body: &str) {
    let id = event["id"].as_str().unwrap().to_string();
    if !body.contains(&id) {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "derived id {id}"
        );
        event.insert("id".into(), "(derived)".into());
    }
}
