//! Does a second node add throughput? On one machine every node shares the
//! same two cores, so two nodes could only ever split them. Here each
//! `vestibule serve` node runs in a cgroup of its own (the v1 `cpu`
//! controller) capped at the same CPU quota, as if each had a small machine
//! of its own, while the three NATS servers, the load generator and the
//! sink run outside any quota. One node, then two, on the same three-server
//! cluster (3 replicas), each saturated with requests; what counts is how
//! many events a second reach the sink while they are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster::{DOORS, chain_toml, closed, pairs, store_toml};
use super::nats::Nats;
use super::outside::{Host, cpu_seconds};
use super::{SECRET, Sizes, load, servers};

/// Each node's share of a core, one run each: 0.4, and 0.25, which leaves
/// this two-core machine room for the three servers outside the quota, so
/// that the nodes' quota and not the machine is what limits.
pub(super) const QUOTAS: [f64; 2] = [0.4, 0.25];

/// The cgroup v1 `cpu` hierarchy (writable as root).
const CPU_CGROUPS: &str = "/sys/fs/cgroup/cpu";

/// The CFS period the quota is a part of, in µs.
const PERIOD_US: u64 = 100_000;

/// Long enough for the backlog in JetStream to build, so that what is
/// measured after it is the pipeline at saturation.
const WARM_UP: Duration = Duration::from_secs(2);

/// A cgroup holding one node's process, removed when dropped.
struct Group {
    path: PathBuf,
}

impl Group {
    fn create(name: &str, cores: f64) -> Result<Group, String> {
        let path = Path::new(CPU_CGROUPS).join(name);
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let group = Group { path };
        group.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
        let quota = (cores * PERIOD_US as f64) as u64;
        group.write("cpu.cfs_quota_us", &quota.to_string())?;
        Ok(group)
    }

    /// Move process `pid` and all its threads into the group.
    fn add(&self, pid: u32) -> Result<(), String> {
        self.write("cgroup.procs", &pid.to_string())
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        let path = self.path.join(file);
        std::fs::write(&path, value).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Empty once its process has exited, which may take a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// For each of [`QUOTAS`], one node, then two, each on that quota:
/// requests accepted and events processed per second. Without a writable
/// `cpu` cgroup (not root, or cgroup v2 only) the rows are skipped, saying
/// why.
pub(super) async fn run(
    dir: &Path,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    pool: usize,
) -> Value {
    if let Err(why) = Group::create("vestibule-bench-probe", QUOTAS[0]) {
        return json!({ "skipped": why });
    }
    let nats = tokio::task::block_in_place(|| Nats::start(3));
    let events = Arc::new(load::prepare_doors(pool, SECRET, &DOORS));
    let mut runs = Vec::new();
    for (q, cores) in QUOTAS.into_iter().enumerate() {
        eprintln!("vestibule on NATS JetStream, each node on {cores} of a core: 1 node, then 2…");
        runs.push(on_quota(dir, plugins, sizes, &nats, &events, q, cores).await);
    }
    drop(nats);
    let versus = versus_sqlite(dir, plugins, sizes, &events).await;
    json!({
        "connections_per_node": (sizes.connections / 2).max(1),
        "measure_seconds": sizes.measure.as_secs_f64(),
        "runs": runs,
        "versus_sqlite": versus,
    })
}

/// One node, then two, each on `cores` of a core, on `nats`.
async fn on_quota(
    dir: &Path,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    nats: &Nats,
    events: &Arc<Vec<load::Prepared>>,
    q: usize,
    cores: f64,
) -> Value {
    let mut rows = serde_json::Map::new();
    for nodes in [1usize, 2] {
        // Streams of their own: the first run's backlog is not the second's,
        // nor are its events duplicates there.
        let store = store_toml(nats, 3, &format!("QUOTA{q}N{nodes}"));
        let name = format!("quota-{q}-{nodes}");
        let per_node = (sizes.connections / 2).max(1);
        match saturate(
            dir,
            &name,
            &store,
            nodes,
            plugins,
            sizes,
            &nats.pids(),
            events,
            cores,
            per_node,
        )
        .await
        {
            Ok(row) => rows.insert(format!("nodes_{nodes}"), row),
            Err(why) => return json!({ "skipped": why }),
        };
    }
    let processed = |nodes: &str| rows[nodes]["processed_per_s"].as_f64().unwrap_or(0.0);
    let ratio = processed("nodes_2") / processed("nodes_1").max(1.0);
    json!({
        "quota_cores": cores,
        "rows": rows,
        "two_vs_one_processed": (ratio * 100.0).round() / 100.0,
    })
}

/// The quota of the SQLite-against-NATS pairs: each host on one core, the
/// other core left to the NATS server, the load and the sink.
pub(super) const VERSUS_CORES: f64 = 1.0;

/// Pairs, one after the other, of one host on [`VERSUS_CORES`]: the SQLite
/// store (its journal on disk, in the host's process and so on its quota),
/// then one node on one NATS server (one replica, the server outside the
/// quota, as on a machine of its own). What a node does with the CPU it has,
/// store by store.
async fn versus_sqlite(
    dir: &Path,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    events: &Arc<Vec<load::Prepared>>,
) -> Value {
    let what = format!(", each on {VERSUS_CORES} core");
    let mut versus = pairs(dir, "quota-versus", &what, |store, name, servers| async move {
        let connections = sizes.connections;
        saturate(
            dir,
            &name,
            &store,
            1,
            plugins,
            sizes,
            &servers,
            events,
            VERSUS_CORES,
            connections,
        )
        .await
    })
    .await;
    versus["quota_cores"] = json!(VERSUS_CORES);
    versus["connections"] = json!(sizes.connections);
    versus
}

/// `nodes` hosts of `store` (a `[store]` table) and the chain, each in a
/// cgroup of its own on `cores`, saturated by `connections` each: after [`WARM_UP`], what they
/// accept and process, and the CPU they, the `servers` and the rest of the
/// machine use. Err when a cgroup cannot be made.
#[allow(clippy::too_many_arguments)]
async fn saturate(
    dir: &Path,
    name: &str,
    store: &str,
    nodes: usize,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    servers: &[u32],
    events: &Arc<Vec<load::Prepared>>,
    cores: f64,
    connections: usize,
) -> Result<Value, String> {
    let sink = servers::Sink::default();
    let sink_addr = sink.start().await;
    let mut hosts = Vec::new();
    let mut groups = Vec::new();
    for i in 0..nodes {
        let host = Host::spawn(dir, &format!("{name}-{i}"), store, &chain_toml(plugins, sink_addr)).await;
        let group = Group::create(&format!("vestibule-bench-node{i}"), cores)?;
        group.add(host.pid())?;
        groups.push(group);
        hosts.push(host);
    }
    let addrs: Vec<SocketAddr> = hosts.iter().map(|h| h.addr).collect();
    let load = {
        let (addrs, events) = (addrs.clone(), events.clone());
        let duration = WARM_UP + sizes.measure;
        tokio::spawn(async move { closed(&addrs, &events, 0, connections, duration).await.0 })
    };
    tokio::time::sleep(WARM_UP).await;
    let (arrived_before, cpu_before, machine_before, servers_before, own_before) = (
        sink.arrivals.lock().unwrap().len(),
        cpu(&hosts),
        machine_busy(),
        cpu_of(servers),
        cpu_seconds(std::process::id()),
    );
    let started = Instant::now();
    tokio::time::sleep(sizes.measure).await;
    let (arrived, cpu_used, machine_used, servers_used, own_used) = (
        sink.arrivals.lock().unwrap().len() - arrived_before,
        cpu(&hosts) - cpu_before,
        machine_busy() - machine_before,
        cpu_of(servers) - servers_before,
        cpu_seconds(std::process::id()) - own_before,
    );
    let seconds = started.elapsed().as_secs_f64();
    let run = load.await.unwrap();
    for host in hosts {
        host.stop().await;
    }
    drop(groups);
    Ok(json!({
        "requests_per_s": run.rps().round() as u64,
        "processed_per_s": (arrived as f64 / seconds).round() as u64,
        // Each node's, averaged: at most the quota.
        "cpu_cores_per_node": (cpu_used / seconds / nodes as f64 * 100.0).round() / 100.0,
        // Everything on the machine: the nodes, the servers, the load and
        // the sink. At the number of cores, the machine and not the
        // nodes' quota is what limits.
        "machine_busy_cores": (machine_used / seconds * 100.0).round() / 100.0,
        // Of which the NATS servers, and this process: the load generator
        // and the sink.
        "servers_cores": (servers_used / seconds * 100.0).round() / 100.0,
        "load_and_sink_cores": (own_used / seconds * 100.0).round() / 100.0,
    }))
}

/// The CPU seconds all of `hosts` have used.
fn cpu(hosts: &[Host]) -> f64 {
    hosts.iter().map(Host::cpu_seconds).sum()
}

/// The CPU seconds the processes `pids` have used.
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

/// The CPU seconds the whole machine has been busy (not idle, not waiting
/// on a disk), from `/proc/stat`; zero where it cannot be read.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal, then guest time,
    // already counted in user.
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    // USER_HZ is 100 on Linux.
    busy / 100.0
}

/// The report's section on these rows.
pub(super) fn markdown(q: &Value) -> String {
    let title = "### A second node, each node on a CPU quota\n\n";
    if let Some(why) = q["skipped"].as_str() {
        return format!("{title}Not run: {why}.\n\n");
    }
    let machine = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut text = format!(
        "{title}Each `vestibule serve` node runs in a cgroup of its own (cgroup v1 `cpu` controller, \
         `cpu.cfs_quota_us` out of every {PERIOD_US} µs), as if each had a small machine of its \
         own; the three NATS servers (3 replicas), the load generator and the sink run outside \
         any quota. One node, then two, each saturated by {conns} keep-alive connections of its \
         own; after {warm} s for the backlog in JetStream to build, the events that reach the sink \
         during {measure} s. Twice: each node on 0.4 of a core, then on 0.25 — which leaves this \
         machine room for the servers beside two nodes, so that what limits is the nodes' quota \
         rather than the machine (see its last column). The quota models CPU alone: the nodes \
         still share the machine's memory bandwidth, caches and loopback with the servers, the \
         load and the sink, and the servers are not capped, so this says whether a node's own \
         CPU is what limits the cluster — not what two machines would do.\n\n\
         | quota | nodes | requests accepted/s | events processed/s while saturated | CPU used per node (cores) | the three NATS servers (cores) | load and sink (cores) | the whole machine busy (cores of {machine}) |\n\
         |---|---|---|---|---|---|---|---|\n",
        conns = q["connections_per_node"],
        warm = WARM_UP.as_secs(),
        measure = q["measure_seconds"],
    );
    let runs = q["runs"].as_array().cloned().unwrap_or_default();
    for run in &runs {
        for (nodes, label) in [("nodes_1", "1"), ("nodes_2", "2")] {
            let r = &run["rows"][nodes];
            text.push_str(&format!(
                "| {} core | {label} | {} | {} | {} | {} | {} | {} |\n",
                run["quota_cores"],
                r["requests_per_s"],
                r["processed_per_s"],
                r["cpu_cores_per_node"],
                r["servers_cores"],
                r["load_and_sink_cores"],
                r["machine_busy_cores"]
            ));
        }
    }
    text.push('\n');
    for run in &runs {
        text.push_str(&format!(
            "On {} of a core each, two nodes process {}× the events one does.\n",
            run["quota_cores"], run["two_vs_one_processed"]
        ));
    }
    text.push('\n');
    text.push_str(&versus_markdown(&q["versus_sqlite"]));
    text
}

/// The SQLite-against-NATS pairs on a quota.
fn versus_markdown(v: &Value) -> String {
    let title = "### One node on one server against the SQLite store, each host on a CPU quota\n\n";
    if let Some(why) = v["skipped"].as_str() {
        return format!("{title}Not run: {why}.\n\n");
    }
    let mut text = format!(
        "{title}The same pairs as above, but each `vestibule serve` host in a cgroup of its own on \
         {cores} core, saturated by {conns} connections: the SQLite store's journal is written by \
         the host, on its quota; the NATS server (one, one replica) runs outside it, as it would \
         on a machine of its own. What a host does with the CPU it has, store by store.\n\n\
         | pair | store | requests accepted/s | events processed/s while saturated | CPU used by the host (cores) | the NATS server (cores) | the whole machine busy (cores) |\n\
         |---|---|---|---|---|---|---|\n",
        cores = v["quota_cores"],
        conns = v["connections"],
    );
    for (i, pair) in v["pairs"].as_array().cloned().unwrap_or_default().iter().enumerate() {
        for (key, label) in [("sqlite", "SQLite"), ("one_node_one_server", "NATS, 1 node")] {
            let r = &pair[key];
            text.push_str(&format!(
                "| {} | {label} | {} | {} | {} | {} | {} |\n",
                i + 1,
                r["requests_per_s"],
                r["processed_per_s"],
                r["cpu_cores_per_node"],
                r["servers_cores"],
                r["machine_busy_cores"],
            ));
        }
    }
    text.push_str(&format!(
        "\nThe median of the pairs: on the same quota, one node on one server processes {}× what \
         the SQLite store does.\n\n",
        v["median_processed_ratio"]
            .as_f64()
            .map_or("–".into(), |r| format!("{r:.2}"))
    ));
    text
}
