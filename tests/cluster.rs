//! The cluster store for real: a three-server NATS cluster with JetStream
//! and two `vestibule serve` processes running the same config file, all
//! on loopback. Nodes and servers are killed with SIGKILL while vendors
//! post; what was acknowledged must still arrive, once per key, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::nats::Nats;
use crate::support::{Process, Received, SECRET, Sink, cli, free_addr, now, try_post, unifi_signature, unifi_unlock};

const ADMIN_TOKEN: &str = "cluster-admin-token";

/// The config every node runs: the cluster store on `nats` (3 replicas),
/// source `office`, and the echo action sending each event to `sink_url`.
fn write_config(dir: &Path, nats: &Nats, sink_url: &str) -> PathBuf {
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    std::fs::write(dir.join("admin-token"), ADMIN_TOKEN).unwrap();
    let text = format!(
        r#"
        [server]
        listen = "127.0.0.1:0"

        [admin]
        token_file = "admin-token"

        [store]
        kind = "nats"
        {servers}
        replicas = 3
        partitions = 4
        ack_wait = "2s"
        lease = "2s"

        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "secret"
        {echo}
        "#,
        servers = nats.servers_toml(),
        echo = crate::support::echo_tables(&format!(
            "kind = \"http\"\nurl = \"{sink_url}\"\nattempts = 1000\ngive_up_after = \"10m\"\nbackoff = \"100ms\"\nbackoff_max = \"400ms\""
        )),
    );
    let file = dir.join("vestibule.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// A UniFi unlock at `door` with its own event id, the sender's `seq` in
/// the actor's name (the echo plugin passes both on to the sink).
fn body(door: &str, id: &str, seq: usize) -> String {
    unifi_unlock(door)
        .replace("66d6f6c4-2a4b-4c4e-9e4b-7b3a1f0c9d21", id)
        .replace("Ada Lovelace", &format!("seq {seq}"))
}

/// Post `body` as UniFi Access would, to whichever node is up, until one
/// answers 2xx; the answer's status word (`accepted` or `duplicate`), the
/// event id, and how many attempts were refused.
async fn post_until_acknowledged(
    nodes: &Mutex<Vec<Option<SocketAddr>>>,
    first: usize,
    body: &str,
) -> (String, String, usize) {
    // Each attempt that got no 2xx was refused; the next goes to the next node.
    for refused in 0.. {
        let addr = {
            let nodes = nodes.lock().unwrap();
            let n = nodes.len();
            nodes[(first + refused) % n]
        };
        if let Some(addr) = addr {
            let url = format!("http://{addr}/ingest/office");
            // Signed anew each time, as a vendor's retry is.
            match try_post(&url, &unifi_signature(SECRET, now(), body), body.to_string()).await {
                Ok((200, answer)) => {
                    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    let word = |key: &str| answer[key].as_str().unwrap().to_string();
                    return (word("status"), word("id"), refused);
                }
                Ok((401, answer)) if answer.contains("replayed") => {
                    // The same signature within the same second: sign later.
                    tokio::time::sleep(Duration::from_millis(1100)).await;
                }
                // The cluster did not acknowledge in time: try again.
                Ok((503, _)) => {}
                Ok((status, answer)) => panic!("{status} {answer}"),
                // The node is down.
                Err(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// What the sink received, by event: its door, the sender's number and the
/// idempotency key.
struct Delivery {
    id: String,
    door: String,
    seq: usize,
    key: String,
}

fn deliveries(received: &[Received]) -> Vec<Delivery> {
    received
        .iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let name = event["actor"]["name"].as_str().unwrap();
            Delivery {
                id: event["id"].as_str().unwrap().to_string(),
                door: event["door"]["name"].as_str().unwrap().to_string(),
                seq: name.trim_start_matches("seq ").parse().unwrap(),
                key: r.headers["idempotency-key"].to_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// What the sink got, against what the vendors had acknowledged.
struct Verdict {
    deliveries: usize,
    distinct: usize,
    /// Acknowledged events the sink never got.
    missing: Vec<String>,
    /// Events whose command came under more than one idempotency key.
    two_keys: Vec<String>,
    /// Doors whose events' first deliveries were not in the order sent.
    out_of_order: Vec<(String, Vec<usize>)>,
    doors: usize,
}

impl Verdict {
    fn of(acknowledged: &BTreeSet<String>, received: &[Received]) -> Verdict {
        let deliveries = deliveries(received);
        let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut first_seen: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for d in &deliveries {
            keys.entry(&d.id).or_default().insert(&d.key);
            if seen.insert(&d.key) {
                first_seen.entry(&d.door).or_default().push(d.seq);
            }
        }
        Verdict {
            deliveries: deliveries.len(),
            distinct: seen.len(),
            missing: acknowledged
                .iter()
                .filter(|id| !keys.contains_key(id.as_str()))
                .cloned()
                .collect(),
            two_keys: keys
                .iter()
                .filter(|(_, k)| k.len() > 1)
                .map(|(id, _)| id.to_string())
                .collect(),
            out_of_order: first_seen
                .iter()
                .filter(|(_, seqs)| seqs.windows(2).any(|w| w[0] >= w[1]))
                .map(|(door, seqs)| (door.to_string(), seqs.clone()))
                .collect(),
            doors: first_seen.len(),
        }
    }

    fn assert_holds(&self, doors: usize) {
        assert!(
            self.missing.is_empty(),
            "acknowledged, never delivered: {:?}…",
            &self.missing[..self.missing.len().min(10)]
        );
        assert!(
            self.two_keys.is_empty(),
            "events with commands under two keys: {:?}",
            self.two_keys
        );
        assert!(
            self.out_of_order.is_empty(),
            "doors out of order: {:?}",
            self.out_of_order
        );
        assert_eq!(self.doors, doors, "every door was delivered to");
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the sink got {} deliveries of {} distinct idempotency keys ({} repeats, each with its first key); \
             acknowledged events missing at the sink: {}; events with commands under two keys: {}; \
             doors out of order: {} of {}",
            self.deliveries,
            self.distinct,
            self.deliveries - self.distinct,
            self.missing.len(),
            self.two_keys.len(),
            self.out_of_order.len(),
            self.doors,
        )
    }
}

/// What one vendor sends: the ids acknowledged, how many were answered
/// `duplicate`, how many attempts were refused.
type Sent = (Vec<String>, usize, usize);

/// `senders` vendors, each posting to two doors of its own, one event
/// after the other, to whichever node is up, until the flag turns true.
fn send(
    addrs: &Arc<Mutex<Vec<Option<SocketAddr>>>>,
    senders: usize,
) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<Sent>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..senders)
        .map(|s| {
            let (addrs, stop) = (addrs.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let (mut duplicates, mut refused) = (0, 0);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let door = format!("Door {s}-{}", n % 2);
                    let body = body(&door, &format!("ev-{s}-{n}"), n);
                    let (status, id, refusals) = post_until_acknowledged(&addrs, s + n, &body).await;
                    duplicates += usize::from(status == "duplicate");
                    refused += refusals;
                    acknowledged.push(id);
                    n += 1;
                }
                (acknowledged, duplicates, refused)
            })
        })
        .collect();
    (stop, tasks)
}

/// Stop the vendors, wait until the sink has every event they had
/// acknowledged (or two minutes), stop the nodes: the verdict, and how
/// many events were acknowledged, answered `duplicate`, refused.
async fn finish(
    stop: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<Sent>>,
    sink: &Sink,
    nodes: impl IntoIterator<Item = Option<Process>>,
) -> (Verdict, BTreeSet<String>, usize, usize) {
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut duplicates, mut refused) = (BTreeSet::new(), 0, 0);
    for sender in senders {
        let (ids, d, r) = sender.await.unwrap();
        acknowledged.extend(ids);
        duplicates += d;
        refused += r;
    }
    let received = sink
        .wait_for(Duration::from_secs(120), |received| {
            let ids: BTreeSet<String> = deliveries(received).into_iter().map(|d| d.id).collect();
            acknowledged.iter().all(|id| ids.contains(id))
        })
        .await;
    for node in nodes.into_iter().flatten() {
        node.kill();
    }
    (Verdict::of(&acknowledged, &received), acknowledged, duplicates, refused)
}

fn start_node(config: &Path) -> Process {
    Process::start(config)
}

/// Two nodes on a three-server cluster while four vendors post: SIGKILL
/// one node, restart it; SIGKILL one NATS server, restart it. Every
/// acknowledged event reaches the sink at least once, each event's command
/// has one idempotency key, and each door's events arrive in the order
/// they were journaled (each door is posted to by one vendor, one event
/// after the other, so that order is the vendor's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_servers_die_and_nothing_acknowledged_is_lost() {
    let _turn = crate::support::heavy();
    const SENDERS: usize = 4;
    let mut nats = Nats::start(3);
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &sink.url("/echo"));
    let nodes = [start_node(&config), start_node(&config)];
    let addrs = Arc::new(Mutex::new(nodes.iter().map(|n| Some(n.addr())).collect::<Vec<_>>()));
    let mut nodes = nodes.map(Some);

    let (stop, senders) = send(&addrs, SENDERS);

    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    pause(1500).await;
    nodes[0].take().unwrap().kill();
    addrs.lock().unwrap()[0] = None;
    pause(1500).await;
    let restarted = tokio::task::spawn_blocking({
        let config = config.clone();
        move || start_node(&config)
    })
    .await
    .unwrap();
    addrs.lock().unwrap()[0] = Some(restarted.addr());
    nodes[0] = Some(restarted);
    pause(1500).await;
    // The server leading the events stream: publishes find no leader
    // until another is elected.
    let leader = nats
        .leader_of("VESTIBULE_EVENTS")
        .expect("the events stream has a leader");
    tokio::task::block_in_place(|| nats.kill(leader));
    pause(3000).await;
    tokio::task::block_in_place(|| nats.restart(leader));
    pause(1500).await;
    let (verdict, acknowledged, duplicates, refused) = finish(stop, senders, &sink, nodes).await;
    println!(
        "cluster kill test: {} events acknowledged by 2 nodes on 3 NATS servers ({duplicates} of them answered \
         `duplicate` to a vendor's retry, {refused} attempts refused while a node or server was down); \
         1 node and the events stream's leader (NATS server n{}) killed with SIGKILL and restarted; {verdict}",
        acknowledged.len(),
        leader + 1,
    );
    assert!(
        acknowledged.len() >= 40,
        "too few events to prove anything: {}",
        acknowledged.len()
    );
    verdict.assert_holds(SENDERS * 2);
}

/// The partitions `node` owns, as its `/admin/status` says; none if it
/// does not answer.
async fn owned_by(node: SocketAddr) -> Option<BTreeSet<u64>> {
    let admin = [("authorization", format!("Bearer {ADMIN_TOKEN}"))];
    let url = format!("http://{node}/admin/status");
    let asked = crate::support::try_get(&url, &admin);
    let (200, answer) = tokio::time::timeout(Duration::from_secs(5), asked).await.ok()?.ok()? else {
        return None;
    };
    let answer: serde_json::Value = serde_json::from_str(&answer).ok()?;
    answer["store"]["owns"]
        .as_array()
        .map(|owns| owns.iter().filter_map(serde_json::Value::as_u64).collect())
}

/// Wait until `nodes` own every one of `partitions` between them, each
/// some and none twice; how long it took, and who owns what.
async fn shared_by(nodes: &[SocketAddr], partitions: u64, within: Duration) -> (Duration, Vec<BTreeSet<u64>>) {
    let started = std::time::Instant::now();
    loop {
        let mut owned = Vec::new();
        for node in nodes {
            owned.push(owned_by(*node).await.unwrap_or_default());
        }
        let all: BTreeSet<u64> = owned.iter().flatten().copied().collect();
        let count: usize = owned.iter().map(BTreeSet::len).sum();
        if all.len() as u64 == partitions && count as u64 == partitions && owned.iter().all(|o| !o.is_empty()) {
            return (started.elapsed(), owned);
        }
        assert!(
            started.elapsed() < within,
            "the partitions were not shared within {within:?}: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ownership moves while four vendors post: a node stopped with SIGTERM
/// hands its partitions over at once, one killed with SIGKILL loses them
/// when its leases run out (`lease = "2s"`), and each node that comes
/// back takes its share again. Nothing acknowledged is lost, each event's
/// command has one idempotency key, and each door's events reach the sink
/// in the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_to_the_other_node_and_back_in_order() {
    let _turn = crate::support::heavy();
    const SENDERS: usize = 4;
    const PARTITIONS: u64 = 16;
    let nats = Nats::start(3);
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &sink.url("/echo"));
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("partitions = 4", &format!("partitions = {PARTITIONS}")),
    )
    .unwrap();
    let start = |config: &Path| {
        let config = config.to_path_buf();
        tokio::task::spawn_blocking(move || start_node(&config))
    };
    let mut nodes = [Some(start(&config).await.unwrap()), Some(start(&config).await.unwrap())];
    let addr = |nodes: &[Option<Process>; 2], i: usize| nodes[i].as_ref().unwrap().addr();
    let addrs = Arc::new(Mutex::new(vec![Some(addr(&nodes, 0)), Some(addr(&nodes, 1))]));
    let within = Duration::from_secs(60);
    let (_, at_first) = shared_by(&[addr(&nodes, 0), addr(&nodes, 1)], PARTITIONS, within).await;

    let (stop, senders) = send(&addrs, SENDERS);
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    pause(1500).await;

    // SIGTERM: node 0 finishes what it holds and gives its leases up.
    addrs.lock().unwrap()[0] = None;
    let stopping = nodes[0].take().unwrap();
    stopping.signal("TERM");
    let (code, _) = tokio::task::spawn_blocking(move || stopping.wait_exit(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "node 0 stopped cleanly");
    let (after_term, _) = shared_by(&[addr(&nodes, 1)], PARTITIONS, within).await;
    pause(1000).await;

    nodes[0] = Some(start(&config).await.unwrap());
    addrs.lock().unwrap()[0] = Some(addr(&nodes, 0));
    let (back_0, shares_0) = shared_by(&[addr(&nodes, 0), addr(&nodes, 1)], PARTITIONS, within).await;
    pause(1500).await;

    // SIGKILL: node 1's partitions wait out their leases.
    addrs.lock().unwrap()[1] = None;
    nodes[1].take().unwrap().kill();
    let (after_kill, _) = shared_by(&[addr(&nodes, 0)], PARTITIONS, within).await;
    pause(1000).await;

    nodes[1] = Some(start(&config).await.unwrap());
    addrs.lock().unwrap()[1] = Some(addr(&nodes, 1));
    let (back_1, shares_1) = shared_by(&[addr(&nodes, 0), addr(&nodes, 1)], PARTITIONS, within).await;
    pause(1500).await;
    let (verdict, acknowledged, duplicates, refused) = finish(stop, senders, &sink, nodes).await;
    let sizes = |shares: &[BTreeSet<u64>]| shares.iter().map(BTreeSet::len).collect::<Vec<_>>();
    println!(
        "hand-over test: {PARTITIONS} partitions, lease 2s, 2 nodes on 3 NATS servers; shares at start {:?}; \
         node 0 stopped with SIGTERM: node 1 owned all {after_term:.1?} after it exited; node 0 restarted: \
         shares {:?} {back_0:.1?} after it answered; node 1 killed with SIGKILL: node 0 owned all {after_kill:.1?} \
         later; node 1 restarted: shares {:?} {back_1:.1?} after it answered; {} events acknowledged \
         ({duplicates} answered `duplicate`, {refused} attempts refused); {verdict}",
        sizes(&at_first),
        sizes(&shares_0),
        sizes(&shares_1),
        acknowledged.len(),
    );
    assert!(
        acknowledged.len() >= 40,
        "too few events to prove anything: {}",
        acknowledged.len()
    );
    verdict.assert_holds(SENDERS * 2);
}

/// A node killed right after writing what its events did leaves a floor
/// kept at its last renewal, behind what it wrote: the next owner looks up
/// the runs past it and runs none of those events again (its plugin is
/// called for the one new event only), and the sink has each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_owner_does_not_run_again_what_a_killed_node_wrote() {
    let _turn = crate::support::heavy();
    const EVENTS: usize = 40;
    let nats = Nats::start(3);
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &sink.url("/echo"));
    // Floors kept every 2 s: the kill lands well before the next keep.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("lease = \"2s\"", "lease = \"8s\"")).unwrap();
    let first = start_node(&config);
    shared_by(&[first.addr()], 4, Duration::from_secs(60)).await;
    let addrs = Mutex::new(vec![Some(first.addr())]);
    for i in 0..EVENTS {
        let body = body(&format!("Door {}", i % 8), &format!("ev-kill-{i}"), i);
        let (status, _, _) = post_until_acknowledged(&addrs, 0, &body).await;
        assert_eq!(status, "accepted");
    }
    let received = sink.wait_for(Duration::from_secs(30), |r| r.len() >= EVENTS).await;
    assert_eq!(received.len(), EVENTS, "every event reached the sink before the kill");
    first.kill();

    let second = start_node(&config);
    shared_by(&[second.addr()], 4, Duration::from_secs(60)).await;
    let addrs = Mutex::new(vec![Some(second.addr())]);
    let (status, _, _) = post_until_acknowledged(&addrs, 0, &body("Door 0", "ev-after", EVENTS)).await;
    assert_eq!(status, "accepted");
    let received = sink.wait_for(Duration::from_secs(30), |r| r.len() > EVENTS).await;
    assert_eq!(
        received.len(),
        EVENTS + 1,
        "the new event, and nothing twice: {received:?}"
    );

    let (_, metrics) = crate::support::get(
        &format!("http://{}/metrics", second.addr()),
        &[("authorization", format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await;
    let calls: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("vestibule_plugin_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        calls, 1,
        "the second node called the plugin for the new event only:\n{metrics}"
    );
    second.kill();
}

/// A node retrying commands while their sink is down hands half of its
/// partitions to a node that joins: it stops retrying the commands of those
/// (its log says so) and the new owner goes on with them, so that once the
/// sink is back every command arrives, each door's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_over_the_retries_of_its_share() {
    let _turn = crate::support::heavy();
    const DOORS: usize = 16;
    const PARTITIONS: u64 = 16;
    let nats = Nats::start(3);
    let sink_addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &format!("http://{sink_addr}/echo"));
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("partitions = 4", &format!("partitions = {PARTITIONS}")),
    )
    .unwrap();
    let first = start_node(&config);
    shared_by(&[first.addr()], PARTITIONS, Duration::from_secs(60)).await;
    let addrs = Mutex::new(vec![Some(first.addr())]);
    let mut acknowledged = BTreeSet::new();
    for n in 0..2 {
        for door in 0..DOORS {
            let body = body(&format!("Door {door}"), &format!("ev-join-{door}-{n}"), n);
            let (status, id, _) = post_until_acknowledged(&addrs, 0, &body).await;
            assert_eq!(status, "accepted");
            acknowledged.insert(id);
        }
    }
    // A few retries on the first node (backoff 100–400 ms).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = tokio::task::spawn_blocking({
        let config = config.clone();
        move || start_node(&config)
    })
    .await
    .unwrap();
    let (_, shares) = shared_by(&[first.addr(), second.addr()], PARTITIONS, Duration::from_secs(60)).await;
    const RELEASED: &str = "now another node's to deliver";
    tokio::task::block_in_place(|| first.wait_for_log(RELEASED, Duration::from_secs(30)));
    // The others' next retries come within the backoff.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let released = first.log().iter().filter(|l| l.contains(RELEASED)).count();

    let sink = Sink::start_at(sink_addr).await;
    let received = sink
        .wait_for(Duration::from_secs(60), |received| {
            let ids: BTreeSet<String> = deliveries(received).into_iter().map(|d| d.id).collect();
            acknowledged.iter().all(|id| ids.contains(id))
        })
        .await;
    let verdict = Verdict::of(&acknowledged, &received);
    println!(
        "joining node test: {} events to {DOORS} doors while the sink was down; a second node joined, shares {:?}; \
         the first node stopped {released} command(s) now the second's; {verdict}",
        acknowledged.len(),
        shares.iter().map(BTreeSet::len).collect::<Vec<_>>(),
    );
    assert!(released >= 1, "the first node stopped retrying what it handed over");
    verdict.assert_holds(DOORS);
    first.kill();
    second.kill();
}

/// A vendor's retry of an event to the other node is a duplicate there:
/// answered `duplicate`, and the sink sees one command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_to_the_other_node_is_a_duplicate() {
    let _turn = crate::support::heavy();
    let nats = Nats::start(3);
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &sink.url("/echo"));
    let (a, b) = (start_node(&config), start_node(&config));
    let body = body("Lobby", "ev-retry", 0);
    let post = |node: &Process, t: i64| {
        let url = format!("http://{}/ingest/office", node.addr());
        let body = body.clone();
        async move { try_post(&url, &unifi_signature(SECRET, t, &body), body).await.unwrap() }
    };
    let t = now();
    let (status, first) = post(&a, t).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("\"accepted\""), "{first}");
    // The vendor signs its retry anew, a second later.
    let (status, retry) = post(&b, t + 1).await;
    assert_eq!(status, 200, "{retry}");
    assert!(retry.contains("\"duplicate\""), "{retry}");
    let id = |answer: &str| serde_json::from_str::<serde_json::Value>(answer).unwrap()["id"].clone();
    assert_eq!(id(&first), id(&retry));

    let received = sink.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await;
    // Time for a second delivery, were there one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = if received.len() == 1 { sink.received() } else { received };
    assert_eq!(received.len(), 1, "processed once: {received:?}");
    a.kill();
    b.kill();
}

/// The sink is down while both nodes retry its commands (one per partition
/// at a time); the node holding the most of them dies. The survivor
/// delivers them all once the sink is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_commands_are_delivered_by_the_survivor() {
    let _turn = crate::support::heavy();
    const EVENTS: usize = 8;
    let nats = Nats::start(3);
    let sink_addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &format!("http://{sink_addr}/echo"));
    let mut nodes = [Some(start_node(&config)), Some(start_node(&config))];
    let addrs = Mutex::new(nodes.iter().map(|n| n.as_ref().map(Process::addr)).collect::<Vec<_>>());
    for n in 0..EVENTS {
        let body = body(&format!("Door {n}"), &format!("ev-down-{n}"), n);
        let (status, _, _) = post_until_acknowledged(&addrs, n, &body).await;
        assert_eq!(status, "accepted");
    }
    // Which node retries which command, from its log.
    let retrying = |node: &Process| -> BTreeSet<String> {
        node.log()
            .iter()
            .filter(|l| l.contains("will retry"))
            .filter_map(|l| l.split("key=").nth(1)?.split_whitespace().next().map(String::from))
            .collect()
    };
    // A few retries each (backoff 100–400 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = [0, 1].map(|i| retrying(nodes[i].as_ref().unwrap()));
    assert!(
        held[0].len() + held[1].len() >= 2,
        "commands are being retried: {held:?}"
    );
    let victim = if held[0].len() >= held[1].len() { 0 } else { 1 };
    assert!(!held[victim].is_empty());
    nodes[victim].take().unwrap().kill();

    let sink = Sink::start_at(sink_addr).await;
    let received = sink.wait_for(Duration::from_secs(30), |r| r.len() >= EVENTS).await;
    let keys: BTreeSet<String> = deliveries(&received).into_iter().map(|d| d.key).collect();
    println!(
        "sink down, node {victim} killed while retrying {} of {EVENTS} commands: the survivor delivered {} distinct \
         keys in {} requests",
        held[victim].len(),
        keys.len(),
        received.len()
    );
    for key in &held[victim] {
        assert!(
            keys.contains(key),
            "command {key}, held by the dead node, never delivered"
        );
    }
    assert_eq!(keys.len(), EVENTS);
    for node in nodes.into_iter().flatten() {
        node.kill();
    }
}

/// `check` says what it will make and then what is there; `/admin/status`
/// shows the backend, this node, the streams and the consumers; `events
/// list|show`, `dead-letters list` and `replay` read and change the
/// cluster as they do the data folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_and_status_speak_to_the_cluster() {
    let _turn = crate::support::heavy();
    let nats = Nats::start(3);
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &nats, &sink.url("/echo"));

    let before = cli(&["check"], &config);
    assert!(before.contains("journal in NATS JetStream"), "{before}");
    assert!(
        before.contains("stream VESTIBULE_EVENTS: missing; the first start creates it with 3 replica(s)"),
        "{before}"
    );

    let node = start_node(&config);
    let addrs = Mutex::new(vec![Some(node.addr())]);
    let (status, id, _) = post_until_acknowledged(&addrs, 0, &body("Lobby", "ev-cli", 0)).await;
    assert_eq!(status, "accepted");
    sink.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await;

    let after = cli(&["check"], &config);
    assert!(
        after.contains("stream VESTIBULE_EVENTS: exists, 1 message(s), 3 replica(s)"),
        "{after}"
    );

    let (code, answer) = crate::support::get(
        &format!("http://{}/admin/status", node.addr()),
        &[("authorization", format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let status: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let store = &status["store"];
    assert_eq!(store["backend"], "nats", "{store}");
    assert!(store["node"].as_str().is_some_and(|n| !n.is_empty()), "{store}");
    assert_eq!(store["replicas"], 3);
    let streams: Vec<&str> = store["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        streams.contains(&"VESTIBULE_EVENTS") && streams.contains(&"VESTIBULE_COMMANDS"),
        "{streams:?}"
    );
    let consumers = store["consumers"].as_array().unwrap();
    assert_eq!(
        consumers.len(),
        4 + 1,
        "a commands consumer per partition, and the delayed one: {consumers:?}"
    );
    assert!(consumers.iter().all(|c| c["pending"].is_u64()), "{consumers:?}");
    // The lone node owns all four partitions; the one event's (sequence 1)
    // is written up to it, and nothing is read past it.
    let floors = store["floors"].as_array().unwrap();
    assert_eq!(floors.len(), 4, "{floors:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, answer) = crate::support::get(
            &format!("http://{}/admin/status", node.addr()),
            &[("authorization", format!("Bearer {ADMIN_TOKEN}"))],
        )
        .await;
        let status: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let floors: Vec<(u64, bool)> = status["store"]["floors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["floor"].as_u64().unwrap(), f["clean"].as_bool().unwrap()))
            .collect();
        if floors.contains(&(1, true)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no partition's floor reached the event: {floors:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A reload applies what it can; the cluster's settings wait for a restart.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("ack_wait = \"2s\"", "ack_wait = \"3s\"")).unwrap();
    let admin = [("authorization", format!("Bearer {ADMIN_TOKEN}"))];
    let url = format!("http://{}/admin/reload", node.addr());
    let (code, report) = try_post(&url, &admin, "").await.unwrap();
    assert_eq!(code, 200, "{report}");
    let (_, answer) = crate::support::get(&format!("http://{}/admin/status", node.addr()), &admin).await;
    let status: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        status["reloads"]["restart_needed"],
        serde_json::json!(["[store] (the cluster and its streams)"])
    );

    let list = cli(&["events", "list"], &config);
    assert!(
        list.contains("office") && list.contains("Lobby") && list.contains("done"),
        "{list}"
    );
    let show = cli(&["events", "show", &id], &config);
    assert!(
        show.contains("run 0") && show.contains("delivered, 1 attempt"),
        "{show}"
    );
    let dead = cli(&["dead-letters", "list"], &config);
    assert!(dead.contains("no dead letters"), "{dead}");
    let replay = cli(&["replay", "--since", "1h"], &config);
    assert!(replay.starts_with("1 event(s)"), "{replay}");
    let received = sink.wait_for(Duration::from_secs(10), |r| r.len() >= 2).await;
    assert_eq!(received.len(), 2, "the replay reached the sink");
    let keys: BTreeSet<String> = deliveries(&received).into_iter().map(|d| d.key).collect();
    assert_eq!(keys.len(), 2, "a replay is a new run, with new keys");
    node.kill();
}
