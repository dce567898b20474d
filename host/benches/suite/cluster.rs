//! The cluster store under load: one node on one NATS server (one replica),
//! and two nodes on a three-server cluster (three replicas), with the same
//! three plugins and HTTP sink as the SQLite rows. Events are spread over 64
//! doors: one door's events are worked on one after the other, cluster-wide,
//! each door's writes waiting for the last one's to be stored, so a few
//! doors would measure that wait, not the cluster (16 doors held two nodes
//! on a CPU quota to 1.2–1.5× one, 64 let them reach about 2×).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use vestibule::Config;

use super::nats::Nats;
use super::{SECRET, Sizes, Summary, load, servers, sink_latencies, start, stop_host};

pub(super) static DOORS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    (1..=64)
        .map(|i| &*Box::leak(format!("Door {i}").into_boxed_str()))
        .collect()
});

pub(super) async fn run(
    dir: &Path,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    pool: usize,
    baseline: &Summary,
) -> Value {
    let events = Arc::new(load::prepare_doors(pool, SECRET, &DOORS));
    let mut rows = serde_json::Map::new();
    for (name, servers, nodes) in [("one_node_one_server", 1, 1), ("two_nodes_three_servers", 3, 2)] {
        eprintln!("vestibule on NATS JetStream: {nodes} node(s), {servers} server(s)…");
        let nats = tokio::task::block_in_place(|| Nats::start(servers));
        let sink = servers::Sink::default();
        let sink_addr = sink.start().await;
        let config = config(dir, name, &nats, plugins, sink_addr, servers);
        let mut hosts = Vec::new();
        for _ in 0..nodes {
            hosts.push(start(Config::load(&config).unwrap()).await);
        }
        let addrs: Vec<SocketAddr> = hosts.iter().map(|h| h.0).collect();

        let per_node = (sizes.connections / nodes).max(1);
        let (_, offset) = closed(&addrs, &events, 0, per_node, sizes.warmup).await;
        let (run, offset) = closed(&addrs, &events, offset, per_node, sizes.measure).await;
        let mut saturated = Summary::of(run);
        saturated.e2e = Some(sink_latencies(&sink, &saturated.run).await);
        let processed = processed_per_second(&sink, &saturated.run);
        sink.arrivals.lock().unwrap().clear();

        let rate = sizes.cluster_rate;
        let mut paced = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let events = events.clone();
            let first = slice_start(events.len(), nodes, i, offset);
            let addr = *addr;
            let share = rate / nodes as u32;
            let duration = sizes.rate_duration;
            let run = tokio::spawn(async move {
                load::fixed_rate(addr, "/ingest/bench", events, first, share, 4, duration).await
            });
            paced.push((first, run));
        }
        let mut merged: Option<load::Run> = None;
        for (first, run) in paced {
            let mut run = run.await.unwrap();
            run.wrapped |= past_slice(events.len(), nodes, offset + run.next - first);
            merged = Some(match merged {
                Some(m) => m.merge(run),
                None => run,
            });
        }
        let mut paced = Summary::of(merged.unwrap());
        paced.e2e = Some(sink_latencies(&sink, &paced.run).await);
        for (_, stop, task) in hosts {
            stop_host(stop, task).await;
        }
        drop(nats);
        rows.insert(
            name.into(),
            json!({
                "saturated": saturated.json(Some(baseline)),
                "paced": paced.json(Some(baseline)),
                "paced_rate": rate,
                "saturated_processed_per_second": processed,
            }),
        );
    }
    Value::Object(rows)
}

/// Where node `i` of `nodes` starts sending, `offset` into its own slice of
/// `events`: no event is sent by two nodes, nor in two phases of a run (a
/// second copy would be answered as a duplicate, cheaply, and never reach
/// the sink again).
fn slice_start(events: usize, nodes: usize, i: usize, offset: usize) -> usize {
    i * (events / nodes) + offset
}

/// Whether a node that went `end` into its slice went past it, into the
/// next node's events: the run is then marked as sending events again.
fn past_slice(events: usize, nodes: usize, end: usize) -> bool {
    end > events / nodes
}

/// A closed loop of `connections` per node against every node in `addrs`
/// at once, each node sending from its own slice of `events`, `offset`
/// into it. The run, and the offset the next phase starts at.
pub(super) async fn closed(
    addrs: &[SocketAddr],
    events: &Arc<Vec<load::Prepared>>,
    offset: usize,
    connections: usize,
    duration: std::time::Duration,
) -> (load::Run, usize) {
    let mut runs = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let events = events.clone();
        let start = slice_start(events.len(), addrs.len(), i, offset);
        let addr = *addr;
        let run = tokio::spawn(async move {
            load::closed_loop(addr, "/ingest/bench", events, start, connections, duration).await
        });
        runs.push((start, run));
    }
    let (mut merged, mut used): (Option<load::Run>, usize) = (None, 0);
    for (start, run) in runs {
        let mut run = run.await.unwrap();
        used = used.max(run.next - start);
        run.wrapped |= past_slice(events.len(), addrs.len(), offset + run.next - start);
        merged = Some(match merged {
            Some(m) => m.merge(run),
            None => run,
        });
    }
    (merged.unwrap(), offset + used)
}

/// Events of `run` through the pipeline to the sink per second: from the
/// first request sent to the last command received. Under a saturating
/// load, ingest accepts more than the partitions process; the rest waits in
/// JetStream.
fn processed_per_second(sink: &servers::Sink, run: &load::Run) -> u64 {
    let arrivals = sink.arrivals.lock().unwrap();
    let first = run.sent.iter().map(|(_, at)| *at).min();
    let last = run.sent.iter().filter_map(|(seq, _)| arrivals.get(seq)).max();
    let delivered = run.sent.iter().filter(|(seq, _)| arrivals.contains_key(seq)).count();
    match (first, last) {
        (Some(first), Some(last)) if last > &first => (delivered as f64 / (*last - first).as_secs_f64()) as u64,
        _ => 0,
    }
}

fn config(
    dir: &Path,
    name: &str,
    nats: &Nats,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sink: SocketAddr,
    replicas: usize,
) -> PathBuf {
    let text = format!(
        "[server]\nqueue = 65536\n\n{}\n{}",
        store_toml(nats, replicas, "BENCH"),
        chain_toml(plugins, sink)
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

/// The `[store]` table of a node of the cluster `nats`.
pub(super) fn store_toml(nats: &Nats, replicas: usize, prefix: &str) -> String {
    format!(
        "[store]\nkind = \"nats\"\n{servers}\nreplicas = {replicas}\nstream_prefix = \"{prefix}\"\n",
        servers = nats.servers_toml(),
    )
}

/// The source, the three plugins over [`DOORS`] and the HTTP sink at `sink`.
pub(super) fn chain_toml(plugins: &std::collections::HashMap<String, PathBuf>, sink: SocketAddr) -> String {
    let doors: Vec<String> = DOORS.iter().map(|d| format!("{d:?}")).collect();
    format!(
        "[[sources]]\nname = \"bench\"\nvendor = \"unifi-access\"\nsecret_file = \"secret\"\n\n\
         [[plugins]]\nname = \"p0\"\nworld = \"filter\"\npath = \"{filter}\"\n[plugins.config]\ndoors = [{doors}]\n\n\
         [[plugins]]\nname = \"p1\"\nworld = \"enricher\"\npath = \"{enricher}\"\n\n\
         [[plugins]]\nname = \"p2\"\nworld = \"action\"\npath = \"{action}\"\nsinks = [\"echo\"]\n\n\
         [[sinks]]\nname = \"echo\"\nkind = \"http\"\nurl = \"http://{sink}/events\"\n",
        filter = plugins["door-filter"].display(),
        enricher = plugins["tag-enricher"].display(),
        action = plugins["echo-event"].display(),
        doors = doors.join(", "),
    )
}

/// The report's section on the cluster rows, with `row` the table row of a
/// scenario.
pub(super) fn markdown(r: &Value, row: &dyn Fn(&str, &Value) -> String) -> String {
    let c = &r["cluster"];
    let one = &c["one_node_one_server"];
    let two = &c["two_nodes_three_servers"];
    let ratio = |a: &Value, b: &Value| match (a["rps"].as_f64(), b["rps"].as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    };
    format!(
        "## Cluster store (NATS JetStream)\n\n\
         The same three plugins and HTTP sink with `[store] kind = \"nats\"` (16 partitions): \
         one node on one nats-server (1 replica), and two nodes on a three-server cluster \
         (3 replicas: each 2xx waits until two servers stored the event), the load split \
         evenly over the two nodes. Events go to 64 doors in turn (one door's events are \
         processed one after the other, cluster-wide, each door's writes after the last one's). nats-server {version}, default `sync_interval`, \
         so no fsync per message ([cluster.md](cluster.md#what-a-2xx-promises)). \
         Everything shares this machine's cores — the load generator, the sink, one or three \
         nats-servers and one or two Vestibule nodes — so the three-server rows pay for \
         replication in CPU on the same cores, not in network round trips between machines; \
         compare ratios.\n\n\
         | scenario | requests/s | × bare hyper: requests/s / client p99 | client p50 / p99 / p99.9 | to sink p50 / p99 / p99.9 | 503 overloaded | errors |\n\
         |---|---|---|---|---|---|---|\n\
         {one_saturated}{one_paced}{two_saturated}{two_paced}\n\
         Two nodes on three servers serve {two_vs_one}× the requests per second of one node on \
         one server, in the same run; one node on one server serves {one_vs_sqlite}× what the \
         SQLite store serves with the same plugins (journal on disk). Ingest does not wait for \
         the plugins in cluster mode: while saturated, the pipeline took {one_processed} events/s \
         (one node) and {two_processed} events/s (two nodes) from the sent request to the command \
         at the sink, and the rest waited in JetStream — which is what the saturated rows' \
         \"to sink\" times are. Each partition is worked on by the one node that owns it, up to \
         256 of its events at once, each door's one after the other.\n\n",
        version = NATS_VERSION,
        one_saturated = row("1 node, 1 NATS server: 3 plugins + HTTP sink", &one["saturated"]),
        one_paced = row(
            &format!("1 node, 1 NATS server: fixed {} events/s", one["paced_rate"]),
            &one["paced"]
        ),
        two_saturated = row("2 nodes, 3 NATS servers: 3 plugins + HTTP sink", &two["saturated"]),
        two_paced = row(
            &format!("2 nodes, 3 NATS servers: fixed {} events/s", two["paced_rate"]),
            &two["paced"]
        ),
        two_vs_one = ratio(&two["saturated"], &one["saturated"]),
        one_vs_sqlite = ratio(&one["saturated"], &r["load"]["three_plugins_http_sink"]),
        one_processed = one["saturated_processed_per_second"],
        two_processed = two["saturated_processed_per_second"],
    )
}

/// The nats-server the suite runs (`examples/setup.sh --tests` unpacks it).
const NATS_VERSION: &str = "2.15.1";
