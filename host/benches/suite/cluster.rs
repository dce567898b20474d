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
    rows.insert(
        "versus_sqlite".into(),
        versus_sqlite(dir, plugins, sizes, &events).await,
    );
    Value::Object(rows)
}

/// Pairs of saturated runs one after the other — the SQLite store (its
/// journal on disk), then one node on one NATS server — with the same
/// config but for `[store]`, the same 64 doors, load, sink and measure:
/// what the cluster store costs against the single-machine one. Three
/// pairs, because one run moves by up to 40 % on this shared machine.
pub(super) const PAIRS: usize = 3;

async fn versus_sqlite(
    dir: &Path,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    events: &Arc<Vec<load::Prepared>>,
) -> Value {
    let mut versus = pairs(dir, "versus", "", |store, _, _| async move {
        let (processed, requests) = saturate(dir, &store, plugins, sizes, events).await;
        Ok(json!({ "processed_per_s": processed, "requests_per_s": requests }))
    })
    .await;
    versus["connections"] = json!(sizes.connections);
    versus
}

/// [`PAIRS`] pairs: `measure` given the `[store]` table of the SQLite
/// store (a data folder in `dir`), then of one NATS server started for it,
/// with a name for the run (after `tag`) and the server's processes (none
/// for SQLite); each measure's `processed_per_s` compared. `what` is said
/// in the progress line.
pub(super) async fn pairs<F, Fut>(dir: &Path, tag: &str, what: &str, mut measure: F) -> Value
where
    F: FnMut(String, String, Vec<u32>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let mut pairs = Vec::new();
    let mut ratios = Vec::new();
    for i in 0..PAIRS {
        eprintln!(
            "the SQLite store, then one node on one NATS server{what} ({} of {PAIRS})…",
            i + 1
        );
        let name = format!("{tag}-sqlite-{i}");
        let data = dir.join(&name);
        let sqlite = measure(
            format!("[store]\npath = {:?}\n", data.display().to_string()),
            name,
            Vec::new(),
        )
        .await;
        let nats = tokio::task::block_in_place(|| Nats::start(1));
        let store = store_toml(&nats, 1, "VERSUS");
        let one = measure(store, format!("{tag}-nats-{i}"), nats.pids()).await;
        drop(nats);
        let (sqlite, one) = match (sqlite, one) {
            (Ok(sqlite), Ok(one)) => (sqlite, one),
            (Err(why), _) | (_, Err(why)) => return json!({ "skipped": why }),
        };
        let processed = |row: &Value| row["processed_per_s"].as_f64().unwrap_or(0.0);
        let ratio = processed(&one) / processed(&sqlite).max(1.0);
        ratios.push(ratio);
        pairs.push(json!({
            "sqlite": sqlite,
            "one_node_one_server": one,
            "processed_ratio": (ratio * 100.0).round() / 100.0,
        }));
    }
    ratios.sort_by(f64::total_cmp);
    json!({
        "pairs": pairs,
        "median_processed_ratio": (ratios[PAIRS / 2] * 100.0).round() / 100.0,
    })
}

/// One host with `store` (a `[store]` table) and the chain, saturated by
/// the closed loop on fresh events: events processed per second (from the
/// first request sent to the last command at the sink, see
/// [`processed_per_second`]) and requests per second.
async fn saturate(
    dir: &Path,
    store: &str,
    plugins: &std::collections::HashMap<String, PathBuf>,
    sizes: &Sizes,
    events: &Arc<Vec<load::Prepared>>,
) -> (u64, u64) {
    let sink = servers::Sink::default();
    let sink_addr = sink.start().await;
    let file = dir.join("versus.toml");
    std::fs::write(
        &file,
        format!("[server]\nqueue = 65536\n\n{store}\n{}", chain_toml(plugins, sink_addr)),
    )
    .unwrap();
    let (addr, stop, task) = start(Config::load(&file).unwrap()).await;
    let (_, offset) = closed(&[addr], events, 0, sizes.connections, sizes.warmup).await;
    let (run, _) = closed(&[addr], events, offset, sizes.connections, sizes.measure).await;
    sink_latencies(&sink, &run).await;
    let processed = processed_per_second(&sink, &run);
    stop_host(stop, task).await;
    (processed, run.rps().round() as u64)
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
         one server, in the same run. Ingest does not wait for \
         the plugins in cluster mode: while saturated, the pipeline took {one_processed} events/s \
         (one node) and {two_processed} events/s (two nodes) from the sent request to the command \
         at the sink, and the rest waited in JetStream — which is what the saturated rows' \
         \"to sink\" times are. Each partition is worked on by the one node that owns it, up to \
         256 of its events at once, each door's one after the other.\n\n\
         ### One node on one server against the SQLite store\n\n\
         The SQLite store (its journal on disk) and then one node on one NATS server, {pairs} \
         pairs one after the other, each host with the same source, plugins, sink and 64 doors \
         and the same saturating load ({connections} connections), measured the same way: events \
         processed per second from the first request sent to the last command at the sink.\n\n\
         | pair | SQLite: processed/s | SQLite: requests/s | NATS, 1 node: processed/s | NATS, 1 node: requests/s | NATS ÷ SQLite, processed |\n\
         |---|---|---|---|---|---|\n\
         {pair_rows}\n\
         The median of the pairs: one node on one server processes {median}× what the SQLite \
         store does.\n\n",
        pairs = PAIRS,
        connections = c["versus_sqlite"]["connections"],
        pair_rows = c["versus_sqlite"]["pairs"]
            .as_array()
            .map(|pairs| pairs
                .iter()
                .enumerate()
                .map(|(i, p)| format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    i + 1,
                    p["sqlite"]["processed_per_s"],
                    p["sqlite"]["requests_per_s"],
                    p["one_node_one_server"]["processed_per_s"],
                    p["one_node_one_server"]["requests_per_s"],
                    p["processed_ratio"].as_f64().map_or("–".into(), |r| format!("{r:.2}")),
                ))
                .collect::<String>())
            .unwrap_or_default(),
        median = c["versus_sqlite"]["median_processed_ratio"]
            .as_f64()
            .map_or("–".into(), |r| format!("{r:.2}")),
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
        one_processed = one["saturated_processed_per_second"],
        two_processed = two["saturated_processed_per_second"],
    )
}

/// The nats-server the suite runs (`examples/setup.sh --tests` unpacks it).
const NATS_VERSION: &str = "2.15.1";
