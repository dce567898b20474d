//! Load from outside: wrk (1 thread, keep-alive connections) against a
//! `vestibule serve` process of its own, as a building's vendors would
//! reach it — no load generator sharing the host's runtime. Rows: the bare
//! hyper baseline, ingest alone, the durable three-plugin chain over 64
//! doors (the headline) and over one door, and a flood of invalid
//! signatures.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{SECRET, load, servers};

/// The door names of the 64-door mix.
fn doors(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("Door {i}")).collect()
}

pub(super) struct Plan {
    pub connections: usize,
    pub duration: Duration,
    pub pool: usize,
}

/// Every row, as JSON.
pub(super) async fn run(dir: &Path, plugins: &std::collections::HashMap<String, PathBuf>, plan: &Plan) -> Value {
    let Some(wrk) = which("wrk") else {
        panic!("wrk is not installed: `bash examples/setup.sh --tests` installs it (Debian package `wrk`)");
    };
    let many = doors(64);
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let spread = write_requests(dir, "spread", &load::prepare_doors(plan.pool, SECRET, &many));
    let one_door = write_requests(dir, "one-door", &load::prepare_doors(plan.pool, SECRET, &["Door 1"]));
    let forged = write_requests(
        dir,
        "forged",
        &load::prepare_doors(plan.pool.min(20_000), "not-the-secret", &many),
    );
    let wrk = Wrk {
        program: wrk,
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/suite/wrk.lua"),
        connections: plan.connections,
        duration: plan.duration,
    };

    eprintln!("wrk: bare hyper…");
    let bare = wrk.run(servers::bare_hyper().await, "/", &spread).await;

    eprintln!("wrk: vestibule, ingest only…");
    let host = Host::start(dir, "ingest", &[], None).await;
    let ingest = wrk.run_against(&host, &spread).await;
    let ingest_cpu = host.stop().await;

    let doors_toml = format!(
        "[plugins.config]\ndoors = [{}]\n",
        many.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ")
    );
    let chain = [
        ("filter", &plugins["door-filter"], doors_toml.as_str()),
        ("enricher", &plugins["tag-enricher"], ""),
        ("action", &plugins["echo-event"], "sinks = [\"echo\"]\n"),
    ];
    let mut chain_rows = serde_json::Map::new();
    for (name, requests) in [("doors_64", &spread), ("one_door", &one_door)] {
        eprintln!("wrk: vestibule, three plugins and an HTTP sink, {name}…");
        let sink = servers::Sink::default();
        let sink_addr = sink.start().await;
        let round_trip = sink_round_trip(sink_addr).await;
        sink.arrivals.lock().unwrap().clear();
        let host = Host::start(dir, name, &chain, Some(sink_addr)).await;
        let mut row = wrk.run_against(&host, requests).await;
        let at_end = sink.arrivals.lock().unwrap().len();
        // What was accepted, delivered: wait until the sink stops receiving.
        let ended = Instant::now();
        let accepted = row["accepted"].as_u64().unwrap_or(0) as usize;
        let mut last = (at_end, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = sink.arrivals.lock().unwrap().len();
            if now >= accepted || (now == last.0 && last.1.elapsed() > Duration::from_secs(2)) {
                break;
            }
            if now != last.0 {
                last = (now, Instant::now());
            }
        }
        let delivered = sink.arrivals.lock().unwrap().len();
        let secs = row["seconds"].as_f64().unwrap_or(1.0);
        row["delivered_during_run_per_s"] = json!((at_end as f64 / secs).round() as u64);
        row["delivered"] = json!(delivered);
        row["drained_after_ms"] = json!(if delivered >= accepted {
            ended.elapsed().as_millis() as u64
        } else {
            u64::MAX
        });
        row["sink_round_trip_us"] = json!(round_trip.as_micros() as u64);
        row["one_door_bound_per_s"] = json!((1.0 / round_trip.as_secs_f64()).round() as u64);
        row["cpu"] = host.stop().await;
        chain_rows.insert(name.into(), row);
    }

    eprintln!("wrk: vestibule, invalid signatures…");
    let host = Host::start(dir, "forged", &[], None).await;
    let flood = wrk.run_against(&host, &forged).await;
    let flood_cpu = host.stop().await;

    json!({
        "connections": plan.connections,
        "seconds": plan.duration.as_secs_f64(),
        "bare_hyper": bare,
        "ingest": with_cpu(ingest, ingest_cpu),
        "chain": chain_rows,
        "forged": with_cpu(flood, flood_cpu),
    })
}

fn with_cpu(mut row: Value, cpu: Value) -> Value {
    row["cpu"] = cpu;
    row
}

/// One `vestibule serve` process: on its own data folder (SQLite), or a
/// node of a cluster.
pub(super) struct Host {
    child: tokio::process::Child,
    pub(super) addr: SocketAddr,
    started: Instant,
}

impl Host {
    async fn start(dir: &Path, name: &str, plugins: &[(&str, &PathBuf, &str)], sink: Option<SocketAddr>) -> Host {
        let data = dir.join(format!("outside-{name}"));
        let _ = std::fs::remove_dir_all(&data);
        let store = format!("[store]\npath = \"{}\"\n", data.display());
        Host::spawn(dir, name, &store, &super::config_body(plugins, sink)).await
    }

    /// `vestibule serve` on a config of `store` (its `[store]` table) and
    /// `rest` (sources, plugins, sinks), listening on a free port; returns
    /// once it listens.
    pub(super) async fn spawn(dir: &Path, name: &str, store: &str, rest: &str) -> Host {
        // `/metrics` (for the WAL's bytes) needs the admin token.
        let token = dir.join("admin-token");
        std::fs::write(&token, ADMIN_TOKEN).unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nqueue = 65536\n\n{store}\n[admin]\ntoken_file = \"{}\"\n{rest}",
            token.display(),
        );
        let config = dir.join(format!("outside-{name}.toml"));
        std::fs::write(&config, text).unwrap();
        let log = dir.join(format!("outside-{name}.log"));
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vestibule"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn,vestibule::cli=info")
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find(|l| l.contains("Listening."))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|a| a.split_whitespace().next()?.parse().ok())
            {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("vestibule serve exited ({status}) before listening:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "vestibule serve did not listen within 60 s:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Host {
            child,
            addr,
            started: Instant::now(),
        }
    }

    /// Its process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// CPU seconds (user + system) it has used so far, all threads.
    pub(super) fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, cpu_seconds)
    }

    /// Stop it (SIGTERM, as systemd would); the CPU time it used, by thread
    /// name, while it ran.
    pub(super) async fn stop(mut self) -> Value {
        let pid = self.child.id().unwrap();
        let cpu = cpu_by_thread(pid);
        let wal_bytes = metric(self.addr, "vestibule_journal_wal_written_bytes_total").await;
        let wall = self.started.elapsed().as_secs_f64();
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let _ = self.child.kill().await;
        let mut shares = serde_json::Map::new();
        for (thread, seconds) in cpu {
            shares.insert(thread, json!((seconds / wall * 100.0).round()));
        }
        json!({ "percent_of_one_core_by_thread": shares, "wal_bytes": wal_bytes })
    }
}

/// What each bench host's `[admin]` token is.
const ADMIN_TOKEN: &str = "bench-admin-token";

/// The value of counter `name` in the host's `/metrics`, if it has one.
async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

/// CPU seconds (user + system) process `pid` has used, all threads.
pub(super) fn cpu_seconds(pid: u32) -> f64 {
    cpu_by_thread(pid).iter().map(|(_, s)| s).sum()
}

/// CPU seconds (user + system) of each thread of `pid`, summed by name.
fn cpu_by_thread(pid: u32) -> Vec<(String, f64)> {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut by_name = std::collections::BTreeMap::<String, f64>::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: utime is the 14th field, stime the 15th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11..13)
            .map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
        *by_name.entry(name.trim().to_string()).or_default() += ticks / tick;
    }
    by_name.into_iter().filter(|(_, s)| *s > 0.0).collect()
}

/// The sink's round trip from a keep-alive connection, median of 200
/// requests: what one command in flight per (sink, door) is bound by.
async fn sink_round_trip(sink: SocketAddr) -> Duration {
    let mut sender = load::connect(sink).await;
    let body = load::prepare_doors(1, SECRET, &["Door 1"]).remove(0);
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let _ = load::send(&mut sender, "/events", &body).await;
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

struct Wrk {
    program: PathBuf,
    script: PathBuf,
    connections: usize,
    duration: Duration,
}

impl Wrk {
    /// One run against `host`'s ingest path, with the CPU the host used
    /// during it per request answered (µs): what each costs, however
    /// noisy the machine's latency is.
    async fn run_against(&self, host: &Host, requests: &Path) -> Value {
        let before = host.cpu_seconds();
        let mut row = self.run(host.addr, "/ingest/bench", requests).await;
        let used = host.cpu_seconds() - before;
        let answered = row["requests"].as_f64().unwrap_or(0.0);
        if answered > 0.0 {
            row["host_cpu_us_per_request"] = json!((used / answered * 1e7).round() / 10.0);
        }
        row
    }

    /// One wrk run; its counts and latencies, as the script reports them.
    async fn run(&self, addr: SocketAddr, path: &str, requests: &Path) -> Value {
        let output = tokio::process::Command::new(&self.program)
            .args(["-t1", &format!("-c{}", self.connections)])
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg("-s")
            .arg(&self.script)
            .arg(format!("http://{addr}"))
            .env("WRK_REQUESTS", requests)
            .env("WRK_PATH", path)
            .env("WRK_THREADS", "1")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("WRK_JSON "))
            .unwrap_or_else(|| {
                panic!(
                    "wrk printed no result:\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let mut row: Value = serde_json::from_str(line).unwrap();
        let seconds = row["seconds"].as_f64().unwrap_or(1.0).max(1e-3);
        let status = |code: &str| row["statuses"][code].as_u64().unwrap_or(0);
        let (ok, overloaded, refused) = (status("200"), status("503"), status("401"));
        row["accepted"] = json!(ok);
        row["accepted_per_s"] = json!((ok as f64 / seconds).round() as u64);
        row["overloaded_per_s"] = json!((overloaded as f64 / seconds).round() as u64);
        row["refused_401_per_s"] = json!((refused as f64 / seconds).round() as u64);
        row["answered_per_s"] = json!((row["requests"].as_f64().unwrap_or(0.0) / seconds).round() as u64);
        row
    }
}

/// The requests in the file format wrk.lua reads: records separated by
/// 0x1e, each "signature 0x1f body" (neither byte occurs in JSON or a
/// signature).
fn write_requests(dir: &Path, name: &str, requests: &[load::Prepared]) -> PathBuf {
    let path = dir.join(format!("wrk-{name}.requests"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for request in requests {
        file.write_all(request.signature.as_bytes()).unwrap();
        file.write_all(b"\x1f").unwrap();
        file.write_all(&request.body).unwrap();
        file.write_all(b"\x1e").unwrap();
    }
    file.flush().unwrap();
    path
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// The Markdown section.
pub(super) fn markdown(o: &Value) -> String {
    let base = o["bare_hyper"]["accepted_per_s"].as_f64().unwrap_or(1.0).max(1.0);
    let ratio = |v: &Value| format!("{:.2}", v["accepted_per_s"].as_f64().unwrap_or(0.0) / base);
    let row = |name: &str, v: &Value, mut extra: String| {
        // Past the end of its share wrk starts again: Vestibule refuses a
        // repeated signed request as a replay (401), so the row is not clean.
        if v["reused"].as_u64().unwrap_or(0) > 0 && !name.starts_with("bare") {
            extra.push_str(" (the pool ran out: requests sent twice, refused as replays)");
        }
        format!(
            "| {name} | {} | {} | {} | {} | {} / {} / {} µs | {} | {extra} |\n",
            v["accepted_per_s"],
            ratio(v),
            v["overloaded_per_s"],
            v["refused_401_per_s"],
            v["p50_us"],
            v["p99_us"],
            v["p999_us"],
            v["host_cpu_us_per_request"]
                .as_f64()
                .map_or("–".into(), |us| format!("{us} µs")),
        )
    };
    let chain = |v: &Value| {
        format!(
            "delivered while loaded {} /s; all {} delivered {} ms after the load ended; sink round trip {} µs",
            v["delivered_during_run_per_s"], v["delivered"], v["drained_after_ms"], v["sink_round_trip_us"],
        )
    };
    let one = &o["chain"]["one_door"];
    format!(
        "## Load from outside (wrk)\n\n\
         wrk, 1 thread, {connections} keep-alive connections, {secs} s per row, against a \
         `vestibule serve` process of its own (journal on disk, fsync per group commit) — \
         the load generator is another process, as a vendor is. Each request is a distinct, \
         correctly signed UniFi Access `access.door.unlock` (\"invalid signatures\": signed with \
         the wrong secret). Ratios are to bare hyper under the same wrk in the same run. \
         wrk's latency percentiles are corrected for coordinated omission: each slow \
         answer adds samples as if requests had kept coming at the run's rate, so a few stalls \
         fill the p99 and p99.9 (see the profile below for the host's own timing).\n\n\
         | scenario | 2xx/s | × bare hyper | 503/s | 401/s | client p50 / p99 / p99.9 | host CPU per request | notes |\n\
         |---|---|---|---|---|---|---|---|\n\
         {bare}{ingest}{doors}{one}{forged}\n\
         One door: one command in flight per (sink, door), so its commands are bound by the \
         sink's round trip: {rtt} µs, at most {bound} commands/s; delivered {got}/s while loaded \
         ({share} of that bound).\n\n\
         Written to SQLite's write-ahead log per event (`vestibule_journal_wal_written_bytes_total` \
         over the run, frame headers included): ingest only {ingest_wal}; 3 plugins + HTTP sink over \
         64 doors {chain_wal} (the event, its outcome, its command and the command's delivery).\n\n\
         Host CPU per request: the user and system time of the `vestibule serve` process during \
         the row's run, all threads, over the requests answered (for the plugin rows it includes \
         the plugins' work done during the run, not the backlog worked off after it). \
         CPU of the host by thread (% of one core, averaged over its run, start to stop): \
         ingest {ingest_cpu}; 3 plugins, 64 doors {chain_cpu}; invalid signatures {forged_cpu}.\n\n",
        connections = o["connections"],
        secs = o["seconds"],
        bare = row("bare hyper (answers 200)", &o["bare_hyper"], String::new()),
        ingest = row("ingest only: verify + normalize + journal", &o["ingest"], String::new()),
        doors = row(
            "3 plugins + HTTP sink, 64 doors",
            &o["chain"]["doors_64"],
            chain(&o["chain"]["doors_64"])
        ),
        one = row("3 plugins + HTTP sink, one door", one, chain(one)),
        forged = row("invalid signatures (refused 401)", &o["forged"], String::new()),
        rtt = one["sink_round_trip_us"],
        bound = one["one_door_bound_per_s"],
        got = one["delivered_during_run_per_s"],
        share = match (
            one["delivered_during_run_per_s"].as_f64(),
            one["one_door_bound_per_s"].as_f64()
        ) {
            (Some(got), Some(bound)) if bound > 0.0 => format!("{:.0} %", got / bound * 100.0),
            _ => "–".into(),
        },
        ingest_wal = wal_per_event(&o["ingest"], "accepted"),
        chain_wal = wal_per_event(&o["chain"]["doors_64"], "delivered"),
        ingest_cpu = o["ingest"]["cpu"]["percent_of_one_core_by_thread"],
        chain_cpu = o["chain"]["doors_64"]["cpu"]["percent_of_one_core_by_thread"],
        forged_cpu = o["forged"]["cpu"]["percent_of_one_core_by_thread"],
    )
}

/// WAL bytes per event of a row: over its `count` (accepted or delivered).
fn wal_per_event(row: &Value, count: &str) -> String {
    match (row["cpu"]["wal_bytes"].as_f64(), row[count].as_f64()) {
        (Some(bytes), Some(n)) if n > 0.0 => format!("{:.1} KB", bytes / n / 1000.0),
        _ => "–".into(),
    }
}
