//! The benchmark suite: a bare hyper baseline and Vestibule under the same
//! load in one run, a micro-benchmark of one sandboxed plugin call against
//! the same logic in native Rust, and idle memory with 1 and 20 plugins.
//! Used by `cargo bench` (benches/vestibule.rs) and, with a tiny load, by
//! the smoke test (tests/bench_smoke.rs).

#![allow(dead_code)]

pub mod cluster;
pub mod load;
pub mod outside;
mod quota;
pub mod reload;
pub mod servers;

#[path = "../../../tests/support/wasm.rs"]
mod wasm;

// The NATS servers the cluster rows run on, as the tests start them.
#[path = "../../../tests/support/nats.rs"]
mod nats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use vestibule::{App, Config, Runtime};

const SECRET: &str = "6601f1243d2ff70f";

/// How much to run, and where results go.
pub struct Options {
    /// A few requests per scenario: proves the suite runs, measures nothing.
    pub smoke: bool,
    /// `results.json` and `results.md` go here.
    pub out_dir: PathBuf,
    /// Also write the Markdown report to this file (docs/benchmarks.md).
    pub docs: Option<PathBuf>,
    /// The command line that produced the run, for the report.
    pub command: String,
}

struct Sizes {
    warmup: Duration,
    measure: Duration,
    connections: usize,
    rate: u32,
    rate_duration: Duration,
    calls: usize,
    reload: reload::Plan,
    /// Events per second of the cluster's paced rows: what a building
    /// sends, not what saturates the machine.
    cluster_rate: u32,
    outside: outside::Plan,
}

impl Options {
    fn sizes(&self) -> Sizes {
        if self.smoke {
            Sizes {
                warmup: Duration::from_millis(100),
                measure: Duration::from_millis(300),
                connections: 2,
                rate: 100,
                rate_duration: Duration::from_millis(500),
                calls: 50,
                reload: reload::Plan {
                    rate: 100,
                    reloads: 2,
                    period: Duration::from_secs(1),
                },
                cluster_rate: 50,
                outside: outside::Plan {
                    connections: 4,
                    duration: Duration::from_secs(1),
                    pool: 3_000,
                },
            }
        } else {
            Sizes {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(5),
                connections: 16,
                rate: 1000,
                rate_duration: Duration::from_secs(8),
                calls: 5000,
                reload: reload::Plan {
                    rate: 1000,
                    reloads: 10,
                    period: Duration::from_secs(1),
                },
                cluster_rate: 200,
                outside: outside::Plan {
                    connections: 32,
                    duration: Duration::from_secs(5),
                    pool: 150_000,
                },
            }
        }
    }
}

/// Run everything; returns the JSON report (also written to files).
pub async fn run(options: &Options) -> Value {
    let sizes = options.sizes();
    let plugins = wasm::plugins(&["door-filter", "tag-enricher", "echo-event", "stamp-a", "stamp-b"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();

    let started = Instant::now();
    let pool = if options.smoke { 2_000 } else { 200_000 };
    eprintln!("Preparing {pool} signed events…");
    let events = Arc::new(load::prepare(pool, SECRET));

    eprintln!("bare hyper…");
    let bare = servers::bare_hyper().await;
    let baseline = measure(bare, "/", &events, &sizes).await;

    eprintln!("vestibule, verify + normalize, journal in memory…");
    let (addr, stop, task) = start(config(dir.path(), &[], None, None)).await;
    let verify_only = measure(addr, "/ingest/bench", &events, &sizes).await;
    stop_host(stop, task).await;

    eprintln!("vestibule, verify + normalize, journal on disk…");
    let (addr, stop, task) = start(config(dir.path(), &[], None, Some("journal-on"))).await;
    let journaled = measure(addr, "/ingest/bench", &events, &sizes).await;
    stop_host(stop, task).await;

    eprintln!("vestibule, three plugins and an HTTP sink…");
    let sink = servers::Sink::default();
    let sink_addr = sink.start().await;
    let (addr, stop, task) = start(config(dir.path(), &chain(&plugins), Some(sink_addr), Some("chain"))).await;
    let mut with_plugins = measure(addr, "/ingest/bench", &events, &sizes).await;
    let closed_e2e = sink_latencies(&sink, &with_plugins.run).await;
    sink.arrivals.lock().unwrap().clear();
    // The paced row is the median of three runs by their p99 to the sink:
    // one run's tail on this shared machine says little.
    let mut paced_runs = paced(addr, &sink, &events, with_plugins.run.next, &sizes).await;
    stop_host(stop, task).await;
    with_plugins.e2e = Some(closed_e2e);
    let p99s: Vec<u64> = paced_runs.iter().map(|r| r.e2e.map_or(0, |e| e.1)).collect();
    paced_runs.sort_by_key(|r| r.e2e.map_or(0, |e| e.1));
    let paced_run = paced_runs.swap_remove(1);

    let outside = outside::run(dir.path(), &plugins, &sizes.outside).await;

    let cluster = cluster::run(dir.path(), &plugins, &sizes, pool, &baseline).await;
    let quota = if options.smoke {
        json!({ "skipped": "a smoke run" })
    } else {
        quota::run(dir.path(), &plugins, &sizes, pool).await
    };

    eprintln!(
        "reloading a plugin {} times under {} events/s…",
        sizes.reload.reloads, sizes.reload.rate
    );
    let reloads = reload::run(dir.path(), &plugins, &sizes.reload).await;

    eprintln!("one plugin call, fresh instance vs native…");
    // The TypeScript build needs npm's packages: not in a smoke run.
    let typescript = (!options.smoke).then(|| wasm::typescript_plugin("door-filter"));
    let micro = micro(&plugins["door-filter"], typescript.as_deref(), sizes.calls).await;

    eprintln!("idle memory…");
    let rss_1 = idle_rss(dir.path(), &plugins["door-filter"], 1).await;
    let rss_20 = idle_rss(dir.path(), &plugins["door-filter"], 20).await;
    let elapsed = started.elapsed();

    let report = json!({
        "machine": machine(),
        "command": options.command,
        "run_seconds": elapsed.as_secs(),
        "smoke": options.smoke,
        "load": {
            "connections": sizes.connections,
            "measure_seconds": sizes.measure.as_secs_f64(),
            "bare_hyper": baseline.json(None),
            "verify_normalize": verify_only.json(Some(&baseline)),
            "verify_normalize_journal": journaled.json(Some(&baseline)),
            "journal_on_vs_off_rps": (journaled.run.rps() / verify_only.run.rps() * 1000.0).round() / 1000.0,
            "three_plugins_http_sink": with_plugins.json(Some(&baseline)),
            "three_plugins_fixed_rate": paced_run.json(Some(&baseline)),
            "fixed_rate_to_sink_p99_us_by_run": p99s,
            "fixed_rate_seconds": sizes.rate_duration.as_secs_f64(),
            "fixed_rate_per_second": sizes.rate,
        },
        "outside": outside,
        "cluster": cluster,
        "cluster_quota": quota,
        "reload": reloads,
        "plugin_call": micro,
        "idle_rss_kib": { "plugins_1": rss_1, "plugins_20": rss_20 },
    });
    std::fs::create_dir_all(&options.out_dir).unwrap();
    std::fs::write(
        options.out_dir.join("results.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let markdown = markdown(&report);
    std::fs::write(options.out_dir.join("results.md"), &markdown).unwrap();
    if let Some(docs) = &options.docs {
        std::fs::write(docs, &markdown).unwrap();
    }
    report
}

/// A measured scenario.
struct Summary {
    run: load::Run,
    p50: u64,
    p99: u64,
    p999: u64,
    /// Request sent → command at the sink, µs: (p50, p99, p99.9, count).
    e2e: Option<(u64, u64, u64, usize)>,
}

impl Summary {
    fn of(mut run: load::Run) -> Summary {
        let p50 = load::quantile(&mut run.latencies_us, 0.50);
        let p99 = load::quantile(&mut run.latencies_us, 0.99);
        let p999 = load::quantile(&mut run.latencies_us, 0.999);
        Summary {
            run,
            p50,
            p99,
            p999,
            e2e: None,
        }
    }

    fn json(&self, baseline: Option<&Summary>) -> Value {
        let mut value = json!({
            "events_reused": self.run.wrapped,
            "requests": self.run.requests,
            "errors": self.run.errors,
            "overloaded_503": self.run.overloaded,
            "rps": self.run.rps().round() as u64,
            "latency_us": { "p50": self.p50, "p99": self.p99, "p99_9": self.p999 },
        });
        if let Some(base) = baseline {
            value["rps_vs_bare_hyper"] = json!((self.run.rps() / base.run.rps() * 1000.0).round() / 1000.0);
            value["p99_vs_bare_hyper"] = json!((self.p99 as f64 / base.p99.max(1) as f64 * 100.0).round() / 100.0);
        }
        if let Some((p50, p99, p999, count)) = self.e2e {
            value["to_sink_us"] = json!({ "p50": p50, "p99": p99, "p99_9": p999, "delivered": count });
        }
        value
    }
}

/// Warm up, then measure, on fresh events.
async fn measure(addr: std::net::SocketAddr, path: &str, events: &Arc<Vec<load::Prepared>>, sizes: &Sizes) -> Summary {
    let warm = load::closed_loop(addr, path, events.clone(), 0, sizes.connections, sizes.warmup).await;
    Summary::of(load::closed_loop(addr, path, events.clone(), warm.next, sizes.connections, sizes.measure).await)
}

/// Wait until the sink has every event of `run` (or stops receiving), then
/// the send → sink latencies.
async fn sink_latencies(sink: &servers::Sink, run: &load::Run) -> (u64, u64, u64, usize) {
    // Until every event of the run arrived, or none has for a while: a
    // pipeline that stalls shows in the tail (or in the count delivered),
    // rather than ending the wait with its slowest events left out. It is
    // given up to 10 s to start delivering at all, on a loaded machine.
    let started = Instant::now();
    let mut last = (usize::MAX, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (now, all) = {
            let arrivals = sink.arrivals.lock().unwrap();
            (
                arrivals.len(),
                run.sent.iter().all(|(seq, _)| arrivals.contains_key(seq)),
            )
        };
        if all {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        }
        let quiet = last.1.elapsed() > Duration::from_secs(5);
        if quiet && (now > 0 || started.elapsed() > Duration::from_secs(10)) {
            break;
        }
    }
    let arrivals = sink.arrivals.lock().unwrap();
    let mut latencies: Vec<u64> = run
        .sent
        .iter()
        .filter_map(|(seq, sent)| {
            arrivals
                .get(seq)
                .map(|at| at.saturating_duration_since(*sent).as_micros() as u64)
        })
        .collect();
    let count = latencies.len();
    (
        load::quantile(&mut latencies, 0.50),
        load::quantile(&mut latencies, 0.99),
        load::quantile(&mut latencies, 0.999),
        count,
    )
}

/// The three plugins of the chain rows: `door-filter` keeping the Front
/// Door, `tag-enricher`, and `echo-event` sending to the sink `echo`.
fn chain(plugins: &std::collections::HashMap<String, PathBuf>) -> [(&'static str, &PathBuf, &'static str); 3] {
    [
        (
            "filter",
            &plugins["door-filter"],
            "[plugins.config]\ndoors = [\"Front Door\"]\n",
        ),
        ("enricher", &plugins["tag-enricher"], ""),
        ("action", &plugins["echo-event"], "sinks = [\"echo\"]\n"),
    ]
}

/// A host config; `store` names a data folder (in `dir`) for a journal on
/// disk, else the journal is in memory.
fn config(
    dir: &Path,
    plugins: &[(&str, &PathBuf, &str)],
    sink: Option<std::net::SocketAddr>,
    store: Option<&str>,
) -> Config {
    let mut text = "[server]\nqueue = 65536\n".to_string();
    if let Some(store) = store {
        text.push_str(&format!("\n[store]\npath = \"{store}\"\n"));
    }
    text.push_str(&config_body(plugins, sink));
    let file = dir.join("bench.toml");
    std::fs::write(&file, text).unwrap();
    Config::load(&file).unwrap()
}

/// The config's source, plugins and sink, as every host of the suite has them.
fn config_body(plugins: &[(&str, &PathBuf, &str)], sink: Option<std::net::SocketAddr>) -> String {
    let mut text = "\n[[sources]]\nname = \"bench\"\nvendor = \"unifi-access\"\nsecret_file = \"secret\"\n".to_string();
    for (i, (world, path, extra)) in plugins.iter().enumerate() {
        text.push_str(&format!(
            "\n[[plugins]]\nname = \"p{i}\"\nworld = \"{world}\"\npath = \"{}\"\n{extra}",
            path.display()
        ));
    }
    if let Some(sink) = sink {
        text.push_str(&format!(
            "\n[[sinks]]\nname = \"echo\"\nkind = \"http\"\nurl = \"http://{sink}/events\"\n"
        ));
    }
    text
}

type Stop = tokio::sync::oneshot::Sender<()>;

async fn start(config: Config) -> (std::net::SocketAddr, Stop, tokio::task::JoinHandle<std::io::Result<()>>) {
    let app = App::build(config, &Runtime::new().unwrap()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

async fn stop_host(stop: Stop, task: tokio::task::JoinHandle<std::io::Result<()>>) {
    let _ = stop.send(());
    let _ = task.await;
}

/// Three runs at the fixed rate against the host at `addr`, its commands
/// going to `sink`, starting with event `next` of `events`.
async fn paced(
    addr: std::net::SocketAddr,
    sink: &servers::Sink,
    events: &Arc<Vec<load::Prepared>>,
    mut next: usize,
    sizes: &Sizes,
) -> Vec<Summary> {
    let mut runs = Vec::new();
    for round in 1..=3 {
        eprintln!("vestibule, three plugins, {} events/s, run {round} of 3…", sizes.rate);
        sink.arrivals.lock().unwrap().clear();
        let run = load::fixed_rate(
            addr,
            "/ingest/bench",
            events.clone(),
            next,
            sizes.rate,
            8,
            sizes.rate_duration,
        )
        .await;
        next = run.next;
        let mut run = Summary::of(run);
        run.e2e = Some(sink_latencies(sink, &run.run).await);
        runs.push(run);
    }
    runs
}

/// The sizes of a full run, for the runs of one part.
fn full_sizes() -> Sizes {
    Options {
        smoke: false,
        out_dir: std::env::temp_dir(),
        docs: None,
        command: String::new(),
    }
    .sizes()
}

/// Only the fixed-rate rows (`cargo bench -p vestibule -- --paced`): three
/// plugins and an HTTP sink, journal on disk, three runs; their latencies
/// to the sink.
pub async fn paced_only() -> Value {
    let sizes = full_sizes();
    let plugins = wasm::plugins(&["door-filter", "tag-enricher", "echo-event"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let events = Arc::new(load::prepare(20_000, SECRET));
    let sink = servers::Sink::default();
    let sink_addr = sink.start().await;
    let (addr, stop, task) = start(config(dir.path(), &chain(&plugins), Some(sink_addr), Some("chain"))).await;
    let runs = paced(addr, &sink, &events, 0, &sizes).await;
    stop_host(stop, task).await;
    let to_sink: Vec<Value> = runs
        .iter()
        .map(|r| {
            let (p50, p99, p999, _) = r.e2e.unwrap_or_default();
            json!({ "p50_us": p50, "p99_us": p99, "p99_9_us": p999 })
        })
        .collect();
    json!({ "rate_per_s": sizes.rate, "seconds": sizes.rate_duration.as_secs_f64(), "to_sink": to_sink })
}

/// Only the cluster rows (`cargo bench -p vestibule -- --cluster`): one node
/// on one NATS server and two nodes on three, saturated and at a fixed
/// rate, after bare hyper for their ratios; then one node and two, each on
/// a CPU quota of its own.
pub async fn cluster_only() -> Value {
    let sizes = full_sizes();
    let plugins = wasm::plugins(&["door-filter", "tag-enricher", "echo-event"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let pool = 200_000;
    let events = Arc::new(load::prepare(pool, SECRET));
    let baseline = measure(servers::bare_hyper().await, "/", &events, &sizes).await;
    let rows = cluster::run(dir.path(), &plugins, &sizes, pool, &baseline).await;
    let quota = quota::run(dir.path(), &plugins, &sizes, pool).await;
    let summary = |row: &Value| {
        json!({
            "requests_per_s": row["saturated"]["rps"],
            "processed_per_s": row["saturated_processed_per_second"],
            "paced": row["paced"],
        })
    };
    json!({
        "bare_hyper_rps": baseline.json(None)["rps"],
        "one_node_one_server": summary(&rows["one_node_one_server"]),
        "two_nodes_three_servers": summary(&rows["two_nodes_three_servers"]),
        "versus_sqlite": rows["versus_sqlite"],
        "each_node_on_a_quota": quota,
    })
}

/// Only the rows with each node on a CPU quota (`cargo bench -p vestibule
/// -- --quota`): one node, then two, on a three-server cluster.
pub async fn quota_only() -> Value {
    let sizes = full_sizes();
    let plugins = wasm::plugins(&["door-filter", "tag-enricher", "echo-event"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    quota::run(dir.path(), &plugins, &sizes, 200_000).await
}

/// Only the plugin-call micro-benchmark (`cargo bench -p vestibule -- --micro`).
pub fn plugin_call_only() -> Value {
    let plugins = wasm::plugins(&["door-filter"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let typescript = wasm::typescript_plugin("door-filter");
    runtime.block_on(micro(&plugins["door-filter"], Some(&typescript), 5000))
}

/// One call of door-filter in a fresh sandboxed instance, against the same
/// decision in native Rust (config parsed from JSON on every call in both,
/// as the plugin does).
async fn micro(door_filter: &Path, typescript: Option<&Path>, calls: usize) -> Value {
    let event: vestibule::event::Event = serde_json::from_str(include_str!(
        "../../../examples/events/normalized/front-door-granted.json"
    ))
    .unwrap();
    let config = toml::from_str("doors = [\"Front Door\"]").unwrap();
    let config_json = serde_json::to_string(&config).unwrap();
    let wasm_us = fresh_call_us(door_filter, &config, &event, calls).await;
    // A JavaScript engine's instance costs about ten Rust ones: fewer
    // calls make a sample of about the same length.
    let typescript_us = match typescript {
        Some(path) => Some(fresh_call_us(path, &config, &event, (calls / 10).max(1)).await),
        None => None,
    };
    let samples = 5;
    let mut native = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(native_door_filter(&config_json, std::hint::black_box(&event)));
        }
        native.push(started.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    let native_us = median(native);
    json!({
        "normalize": normalize_only(calls),
        "plugin": "door-filter (filter world)",
        "fresh_instance_us": (wasm_us * 100.0).round() / 100.0,
        "typescript_fresh_instance_us": typescript_us.map(|us| (us * 100.0).round() / 100.0),
        "typescript_calls_per_sample": (calls / 10).max(1),
        "native_us": (native_us * 1000.0).round() / 1000.0,
        "overhead_us": ((wasm_us - native_us) * 100.0).round() / 100.0,
        "ratio": (wasm_us / native_us).round(),
        "calls_per_sample": calls,
    })
}

/// One call of the filter at `path` on `event` in a fresh instance, in µs:
/// the median of 5 samples of `calls`, after a warm-up.
async fn fresh_call_us(path: &Path, config: &toml::Table, event: &vestibule::event::Event, calls: usize) -> f64 {
    let runtime = Runtime::new().unwrap();
    let mut spec = vestibule::config::PluginConfig::new("door-filter", vestibule::config::World::Filter, path);
    spec.config = config.clone();
    let plugin = runtime.load(&spec, path).unwrap();
    for _ in 0..calls.min(200) {
        assert!(plugin.call(event).await.result.is_ok());
    }
    let mut samples = Vec::with_capacity(5);
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..calls {
            assert!(plugin.call(event).await.result.is_ok());
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    median(samples)
}

/// Normalizing one UniFi Access event as ingest does (reading the fields
/// mapped, deriving its id, keeping the body as `raw`), without the HTTP
/// around it or the signature check; median of 5 samples of `calls`.
fn normalize_only(calls: usize) -> Value {
    let body = include_bytes!("../../../examples/events/unifi-access/access.door.unlock.json");
    let headers = hyper::HeaderMap::new();
    let id_key = vestibule::event::IdKey::new([7; 32]);
    let request = vestibule::vendors::Request {
        source: "bench",
        headers: &headers,
        body,
        received_at: 1_695_902_233_000,
        id_key: &id_key,
    };
    let normalize = || vestibule::vendors::unifi_access::normalize(&request, Default::default()).unwrap();
    assert_eq!(normalize().door.and_then(|d| d.name).as_deref(), Some("Front Door"));
    let samples = (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(normalize());
            }
            started.elapsed().as_secs_f64() * 1e6 / calls as f64
        })
        .collect();
    json!({ "body_bytes": body.len(), "us": (median(samples) * 100.0).round() / 100.0 })
}

/// The middle of `samples`.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// door-filter's decision, natively.
fn native_door_filter(config_json: &str, event: &vestibule::event::Event) -> bool {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        doors: Vec<String>,
    }
    let config: Config = serde_json::from_str(config_json).unwrap();
    let door = event.door.as_ref();
    config.doors.is_empty()
        || [door.and_then(|d| d.name.as_deref()), door.and_then(|d| d.id.as_deref())]
            .into_iter()
            .flatten()
            .any(|d| config.doors.iter().any(|want| want == d))
}

/// VmRSS of an idle `vestibule serve` with `count` plugins loaded, KiB.
async fn idle_rss(dir: &Path, plugin: &Path, count: usize) -> u64 {
    let mut text = "[server]\nlisten = \"127.0.0.1:0\"\n".to_string();
    for i in 0..count {
        text.push_str(&format!(
            "\n[[plugins]]\nname = \"p{i}\"\nworld = \"filter\"\npath = \"{}\"\n",
            plugin.display()
        ));
    }
    let file = dir.join(format!("rss-{count}.toml"));
    std::fs::write(&file, text).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .args(["serve", "--config"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("Listening.") {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap_or_default();
    let _ = child.kill().await;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
        "memory": memory,
        "os": std::env::consts::OS,
    })
}

fn markdown(r: &Value) -> String {
    let l = &r["load"];
    let row = |name: &str, v: &Value| {
        let ratio = match (v["rps_vs_bare_hyper"].as_f64(), v["p99_vs_bare_hyper"].as_f64()) {
            (Some(rps), Some(p99)) => format!("{rps:.2} / {p99:.1}"),
            _ => "1 / 1 (baseline)".into(),
        };
        let sink = match v.get("to_sink_us") {
            Some(s) => format!("{} / {} / {} µs", s["p50"], s["p99"], s["p99_9"]),
            None => "–".into(),
        };
        format!(
            "| {name} | {} | {ratio} | {} / {} / {} µs | {sink} | {} | {} |\n",
            v["rps"],
            v["latency_us"]["p50"],
            v["latency_us"]["p99"],
            v["latency_us"]["p99_9"],
            v["overloaded_503"],
            v["errors"]
        )
    };
    let m = &r["machine"];
    let p = &r["plugin_call"];
    let rss = &r["idle_rss_kib"];
    let cluster_text = cluster::markdown(r, &row) + &quota::markdown(&r["cluster_quota"]);
    let typescript_call = match p["typescript_fresh_instance_us"].as_f64() {
        Some(us) => format!("{us} µs"),
        None => "not measured in a smoke run".to_string(),
    };
    format!(
        "# Benchmarks\n\n\
         Produced by `{command}` (the Markdown below is written by the run itself; the run took \
         {run_seconds} s after the build).\n\n\
         Machine: {cpus} × {cpu}, {memory} memory, {os}. Everything runs on this one machine: \
         the load generator, the servers and the sink share its cores, so compare ratios, \
         not absolute numbers.{smoke}\n\n\
         ## HTTP load\n\n\
         {connections} keep-alive HTTP/1.1 connections on loopback, each sending its next \
         request when the last is answered, {secs} s per scenario after a warm-up. Every \
         request is a distinct, correctly signed UniFi Access `access.door.unlock` event, so \
         Vestibule does the real verification. Latency is the client's: request sent → answer. \
         \"To sink\" is request sent → command received by the HTTP sink on loopback (the \
         event through the filter `door-filter`, the enricher `tag-enricher` and the action \
         `echo-event`). \
         \"Journal in memory\" keeps the SQLite journal in memory; \"journal on disk\" writes \
         it to a file in WAL mode with `synchronous = FULL` — every answer waits for an fsync, \
         shared by all requests of one group commit — and the plugin scenarios run durably \
         like that too. \
         When plugins cannot keep up, the queue of accepted events fills and further requests \
         get 503 `overloaded` (the vendor retries; counted apart from other errors); the \
         \"to sink\" time of a saturated run is mostly time spent in that queue.\n\n\
         | scenario | requests/s | × bare hyper: requests/s / client p99 | client p50 / p99 / p99.9 | to sink p50 / p99 / p99.9 | 503 overloaded | errors |\n\
         |---|---|---|---|---|---|---|\n\
         {bare}{verify}{journal}{chain}{paced}\n\
         The fixed-rate row is the median of three runs of {rate_secs} s by p99 to the sink; \
         the three p99s to the sink: {paced_p99s} µs.\n\n\
         The cost of durability: with the journal on disk, ingest serves {journal_ratio}× the \
         requests per second it serves with the journal in memory, in the same run.\n\n\
         {outside}\
         {profile}\
         {cluster}\
         {reload}\
         ## One plugin call\n\n\
         `door-filter` called on one event, a fresh sandboxed instance per call (pooling \
         allocator, `InstancePre`, new `Store`, WASI context granting nothing), against the same \
         decision as a native Rust function; median of 5 samples of {calls} calls.\n\n\
         | fresh instance + call | native | overhead per call | ratio |\n|---|---|---|---|\n\
         | {wasm} µs | {native} µs | {overhead} µs | {ratio}× |\n\n\
         The same plugin in TypeScript (`plugins/typescript/door-filter`, built by the SDK with \
         QuickJS), fresh instance + call, median of 5 samples of {ts_calls}: {ts}.\n\n\
         Normalizing one UniFi Access `access.door.unlock` of {normalize_bytes} bytes as ingest \
         does — reading the fields it maps in one pass, deriving the event's id, keeping the body \
         as `raw` — without the HTTP around it or the signature check: {normalize_us} µs (median \
         of 5 samples of {calls}).\n\n\
         ## Idle memory\n\n\
         RSS of `vestibule serve` after start, no traffic: {rss1} KiB with 1 plugin, {rss20} KiB \
         with 20.\n",
        normalize_bytes = p["normalize"]["body_bytes"],
        normalize_us = p["normalize"]["us"],
        command = r["command"].as_str().unwrap_or_default(),
        run_seconds = r["run_seconds"],
        cpus = m["cpus"],
        cpu = m["cpu"].as_str().unwrap_or_default(),
        memory = m["memory"].as_str().unwrap_or_default(),
        os = m["os"].as_str().unwrap_or_default(),
        smoke = if r["smoke"].as_bool() == Some(true) {
            " **Smoke run: tiny load, the numbers mean nothing.**"
        } else {
            ""
        },
        connections = l["connections"],
        secs = l["measure_seconds"],
        bare = row("bare hyper (answers 200)", &l["bare_hyper"]),
        verify = row(
            "Vestibule: verify + normalize, journal in memory",
            &l["verify_normalize"]
        ),
        journal = row(
            "Vestibule: verify + normalize, journal on disk (fsync)",
            &l["verify_normalize_journal"]
        ),
        journal_ratio = l["journal_on_vs_off_rps"],
        rate_secs = l["fixed_rate_seconds"],
        paced_p99s = l["fixed_rate_to_sink_p99_us_by_run"],
        chain = row(
            "Vestibule: 3 plugins + HTTP sink (durable)",
            &l["three_plugins_http_sink"]
        ),
        paced = row(
            &format!(
                "Vestibule: 3 plugins + HTTP sink (durable), fixed {} events/s",
                l["fixed_rate_per_second"]
            ),
            &l["three_plugins_fixed_rate"]
        ),
        calls = p["calls_per_sample"],
        ts_calls = p["typescript_calls_per_sample"],
        ts = typescript_call,
        wasm = p["fresh_instance_us"],
        native = p["native_us"],
        overhead = p["overhead_us"],
        ratio = p["ratio"],
        reload = reload_markdown(&r["reload"]),
        cluster = cluster_text,
        outside = outside::markdown(&r["outside"]),
        profile = include_str!("profile.md"),
        rss1 = rss["plugins_1"],
        rss20 = rss["plugins_20"],
    )
}

fn reload_markdown(r: &Value) -> String {
    let row = |name: &str, v: &Value| {
        let sink = &v["to_sink_us"];
        format!(
            "| {name} | {} | {} / {} / {} µs | {} / {} / {} µs | {} | {} |\n",
            v["requests"],
            v["latency_us"]["p50"],
            v["latency_us"]["p99"],
            v["latency_us"]["p99_9"],
            sink["p50"],
            sink["p99"],
            sink["p99_9"],
            v["overloaded_503"],
            v["errors"]
        )
    };
    let t = &r["written_to_serving_ms"];
    format!(
        "## Reloading under load\n\n\
         One host (journal on disk, `[reload]` at its defaults: watching, {debounce} ms debounce) \
         runs `stamp-a` — an enricher stamping `version = \"a\"` — then `echo-event` to the HTTP \
         sink, at a fixed {rate} events/s for {secs} s, three times after a warm-up: untouched, \
         while the plugin file is rewritten {n} times, once a second, alternating `stamp-a` and \
         `stamp-b`, and untouched again (the two quiet runs show how much this machine varies). \
         \"Written → serving\" runs from the end of the file write to the first event stamped by \
         the new version arriving at the sink: the debounce, loading the component, the swap and \
         that event's own way through the pipeline.\n\n\
         | reloads | written → serving p50 | max | each, in order | where the new code came from |\n\
         |---|---|---|---|---|\n\
         | {n} | {p50} ms | {max} ms | {each} ms | {origins}; written → serving of those compiled now: {compiled} ms |\n\n\
         | load at {rate} events/s | requests | client p50 / p99 / p99.9 | to sink p50 / p99 / p99.9 | 503 | errors |\n\
         |---|---|---|---|---|---|\n\
         {quiet}{busy}{again}\n",
        debounce = r["debounce_ms"],
        rate = r["rate_per_second"],
        secs = r["seconds"],
        n = r["reloads"],
        p50 = t["p50"],
        max = t["max"],
        each = t["each"],
        origins = t["origins"],
        compiled = t["compiled_now_ms"],
        quiet = row("without reloads", &r["without_reloads"]),
        busy = row(
            &format!("while the plugin is reloaded {} times", r["reloads"]),
            &r["with_reloads"]
        ),
        again = row("without reloads, again", &r["without_reloads_after"]),
    )
}
