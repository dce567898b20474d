//! What the host promises once it answered 2xx: the event is processed, and
//! every command is delivered or visible in the dead letters — through
//! crashes, sink outages and vendors that send the same event twice.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{
    Host, Process, SECRET, Sink, cli, free_addr, now, post, try_post, unifi_signature, unifi_unlock, vestibule,
};

/// The echo host config (see [`crate::support::echo_config`]) with an HTTP sink
/// at `sink_url` and the given extra sink settings.
fn echo_config(sink_url: &str, sink_settings: &str) -> String {
    crate::support::echo_config(&format!("kind = \"http\"\nurl = \"{sink_url}\"\n{sink_settings}"))
}

/// Where a test below keeps its journal: the data folder, or a lone
/// nats-server with JetStream. The same test body runs on both.
enum Store {
    Sqlite,
    Nats(crate::support::nats::Nats),
}

impl Store {
    /// `config`, an [`echo_config`], on this store.
    fn config(&self, config: String) -> String {
        match self {
            Store::Sqlite => config,
            Store::Nats(nats) => {
                let cluster = format!("kind = \"nats\"\n{}\nack_wait = \"2s\"", nats.servers_toml());
                let moved = config.replacen("path = \"data\"", &cluster, 1);
                assert_ne!(moved, config, "the config names a data folder");
                moved
            }
        }
    }
}

/// A test of each store for `body`: `NAME::sqlite` and `NAME::nats`.
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Store::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nats() {
                super::$name(super::Store::Nats(crate::support::nats::Nats::start(1))).await;
            }
        }
    };
}

/// Post a UniFi unlock at `door`, signed now; the status and answer.
async fn unlock(host: &Host, door: &str) -> (u16, String) {
    let body = unifi_unlock(door);
    post(
        &host.url("/ingest/office"),
        &unifi_signature(SECRET, now(), &body),
        body,
    )
    .await
}

/// The door named in each request the sink received, in arrival order.
fn doors(received: &[crate::support::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            event["door"]["name"].as_str().unwrap().to_string()
        })
        .collect()
}

fn idempotency_key(received: &crate::support::Received) -> String {
    received.headers["idempotency-key"].to_str().unwrap().to_string()
}

/// Kill the host with SIGKILL again and again while a vendor posts signed
/// events (retrying, as vendors do, until it gets a 2xx), restarting it on
/// the same data folder each time. Every acknowledged event reaches the sink
/// and, by idempotency key, the sink sees each command exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let _turn = crate::support::heavy();
    // At least this many events, and events all the while the host is
    // being killed.
    const EVENTS: usize = 300;
    const KILLS: usize = 5;
    let sink = Sink::start().await;
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let config = dir.path().join("vestibule.toml");
    let text = format!("[server]\nlisten = \"{addr}\"\n{}", echo_config(&sink.url("/echo"), ""))
        .replace("{secret_file}", "secret");
    std::fs::write(&config, text).unwrap();

    let host = Arc::new(Mutex::new(Some(Process::start(&config))));
    let killer = {
        let host = host.clone();
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            for kill in 0..KILLS {
                std::thread::sleep(Duration::from_millis(300 + 97 * kill as u64));
                host.lock().unwrap().take().unwrap().kill();
                let restarted = Process::start(&config);
                *host.lock().unwrap() = Some(restarted);
            }
        })
    };

    let url = format!("http://{addr}/ingest/office");
    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    let mut posted = 0;
    while posted < EVENTS || !killer.is_finished() {
        let body = unifi_unlock(&format!("Door {posted}"));
        posted += 1;
        loop {
            match try_post(&url, &unifi_signature(SECRET, now(), &body), body.clone()).await {
                Ok((200, answer)) => {
                    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
                    acknowledged.insert(answer["id"].as_str().unwrap().to_string());
                    break;
                }
                Ok((status, answer)) => panic!("{status} {answer}"),
                Err(_) => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    killer.await.unwrap();
    let received = sink
        .wait_for(Duration::from_secs(60), |received| {
            let ids: BTreeSet<&str> = received
                .iter()
                .filter_map(|r| r.body.split("\"id\":\"").nth(1)?.split('"').next())
                .collect();
            acknowledged.iter().all(|id| ids.contains(id.as_str()))
        })
        .await;
    host.lock().unwrap().take().unwrap().kill();

    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &received {
        let event: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        by_key
            .entry(idempotency_key(r))
            .or_default()
            .insert(event["id"].as_str().unwrap().to_string());
    }
    let delivered: BTreeSet<&String> = by_key.values().flatten().collect();
    println!(
        "crash test: {posted} events posted, {} acknowledged, {KILLS} SIGKILLs, {refused} requests refused while \
         the host was down; the sink got {} deliveries, {} distinct idempotency keys, {} repeats dropped by key; \
         acknowledged events missing at the sink: {}",
        acknowledged.len(),
        received.len(),
        by_key.len(),
        received.len() - by_key.len(),
        acknowledged.iter().filter(|id| !delivered.contains(id)).count(),
    );
    assert_eq!(acknowledged.len(), posted);
    for id in &acknowledged {
        assert!(delivered.contains(id), "acknowledged event {id} never reached the sink");
    }
    // One command per event: one key per event, and each key for one event.
    assert_eq!(by_key.len(), posted);
    assert!(by_key.values().all(|ids| ids.len() == 1));
}

on_both_stores!(commands_wait_for_a_sink_that_is_down_and_keep_their_order);
/// While the sink is down commands wait and are retried; when it comes back
/// they all arrive, each door's in the order its events came.
async fn commands_wait_for_a_sink_that_is_down_and_keep_their_order(store: Store) {
    let sink_addr: SocketAddr = free_addr();
    let host = Host::start(&store.config(echo_config(
        &format!("http://{sink_addr}/echo"),
        "backoff = \"50ms\"\nbackoff_max = \"200ms\"\nattempts = 1000\ntimeout = \"1s\"",
    )))
    .await;
    for n in 0..10 {
        for door in ["Lobby", "Garage"] {
            // A number in each body, so each event has its own id and the
            // test can tell the order they arrive in.
            let mut body: serde_json::Value = serde_json::from_str(&unifi_unlock(door)).unwrap();
            body["n"] = n.into();
            let body = body.to_string();
            let (status, answer) = host.post_unifi(body).await;
            assert_eq!(status, 200, "{answer}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sink = Sink::start_at(sink_addr).await;
    let received = sink.wait_for(Duration::from_secs(20), |r| r.len() >= 20).await;
    assert_eq!(received.len(), 20, "every command arrives once the sink is back");
    let order: Vec<u64> = received
        .iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let raw: serde_json::Value = serde_json::from_str(event["raw"].as_str().unwrap()).unwrap();
            raw["n"].as_u64().unwrap()
        })
        .collect();
    for door in ["Lobby", "Garage"] {
        let of_door: Vec<u64> = doors(&received)
            .iter()
            .zip(&order)
            .filter(|(d, _)| *d == door)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(of_door, (0..10).collect::<Vec<_>>(), "{door} in order");
    }
    host.stop().await;
}

on_both_stores!(failing_sink_fills_dead_letters_that_retry_delivers);
/// A sink that always fails: after the configured attempts each command is
/// a dead letter with the last error; `dead-letters retry` delivers it once
/// the sink works again.
async fn failing_sink_fills_dead_letters_that_retry_delivers(store: Store) {
    let sink = Sink::start().await;
    sink.answer(500);
    let host = Host::start(&store.config(echo_config(
        &sink.url("/echo"),
        "attempts = 3\nbackoff = \"10ms\"\nbackoff_max = \"20ms\"",
    )))
    .await;
    for door in ["Lobby", "Garage"] {
        assert_eq!(unlock(&host, door).await.0, 200);
    }
    sink.wait_for(Duration::from_secs(10), |r| r.len() >= 6).await;
    // The third attempt is recorded a moment after the sink answered it.
    let mut listing = String::new();
    for _ in 0..100 {
        listing = cli(&["dead-letters", "list"], &host.config);
        if listing.lines().count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(lines[0].starts_with("ID "), "{listing}");
    for line in &lines[1..] {
        assert!(line.contains(" echo "), "{line}");
        assert!(line.contains(" exhausted "), "{line}");
        assert!(line.contains(" 3 "), "three attempts: {line}");
        assert!(line.ends_with("answered 500 Internal Server Error"), "{line}");
    }
    assert_eq!(sink.received().len(), 6, "three attempts each, no more");

    sink.answer(200);
    let retried = cli(&["dead-letters", "retry", "--all"], &host.config);
    assert_eq!(
        retried,
        "2 command(s) back in the outbox, 0 event(s) back in the journal; a running host takes them within a second\n"
    );
    let received = sink.wait_for(Duration::from_secs(10), |r| r.len() >= 8).await;
    assert_eq!(received.len(), 8);
    let mut doors = doors(&received[6..]);
    doors.sort();
    assert_eq!(doors, ["Garage", "Lobby"]);
    // A retried dead letter carries the key its first attempts did.
    let first: BTreeSet<String> = received[..6].iter().map(idempotency_key).collect();
    let retried: BTreeSet<String> = received[6..].iter().map(idempotency_key).collect();
    assert_eq!(first.len(), 2);
    assert_eq!(first, retried);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cli(&["dead-letters", "list"], &host.config), "no dead letters\n");
    host.stop().await;
}

on_both_stores!(commands_past_max_age_expire_instead_of_arriving_late);
/// A command still undelivered `max_age` after its event arrived is
/// dead-lettered as `expired` and never sent, even when the sink returns.
async fn commands_past_max_age_expire_instead_of_arriving_late(store: Store) {
    let sink_addr = free_addr();
    let host = Host::start(&store.config(echo_config(
        &format!("http://{sink_addr}/echo"),
        "max_age = \"300ms\"\nbackoff = \"50ms\"\nbackoff_max = \"50ms\"\nattempts = 1000",
    )))
    .await;
    assert_eq!(unlock(&host, "Lobby").await.0, 200);
    let mut listing = String::new();
    for _ in 0..200 {
        listing = cli(&["dead-letters", "list"], &host.config);
        if listing.contains("expired") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listing.contains(" expired "), "{listing}");
    assert!(
        listing.contains("not delivered within max_age 300ms of the event; last error: connection failed"),
        "{listing}"
    );
    let sink = Sink::start_at(sink_addr).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty(), "an expired command is never sent");
    // A retry says it will expire again at once, and why; and it does.
    let retried = cli(&["dead-letters", "retry", "--all"], &host.config);
    assert!(
        retried.contains("note: command 1 is ")
            && retried.contains(" old, past sink `echo`'s max_age of 300ms: it will be dead-lettered again at once"),
        "{retried}"
    );
    assert!(
        retried.contains("max_age keeps a door or light from acting late"),
        "{retried}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cli(&["dead-letters", "list"], &host.config).contains(" expired "));
    assert!(sink.received().is_empty(), "still never sent late");
    host.stop().await;
}

on_both_stores!(a_repeated_event_is_acknowledged_and_processed_once);
/// A vendor that sends the same event twice (a retry after a lost answer)
/// gets 2xx both times; the event is processed once.
async fn a_repeated_event_is_acknowledged_and_processed_once(store: Store) {
    let sink = Sink::start().await;
    let host = Host::start(&store.config(echo_config(&sink.url("/echo"), ""))).await;
    let body = unifi_unlock("Lobby");
    let first = post(
        &host.url("/ingest/office"),
        &unifi_signature(SECRET, now(), &body),
        body.clone(),
    )
    .await;
    // Re-signed a second later, as a vendor's retry would be.
    let again = post(
        &host.url("/ingest/office"),
        &unifi_signature(SECRET, now() + 1, &body),
        body,
    )
    .await;
    assert_eq!(first.0, 200);
    assert!(first.1.starts_with(r#"{"status":"accepted","id":""#), "{}", first.1);
    let id = first.1.split("\"id\":\"").nth(1).unwrap();
    assert_eq!(again, (200, format!(r#"{{"status":"duplicate","id":"{id}"#)));
    // A stopping cluster node leaves unpulled events to the others, so wait
    // for the delivery; then long enough for a second one, were there one.
    sink.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.stop().await;
    assert_eq!(sink.received().len(), 1);
}

on_both_stores!(events_can_be_listed_shown_and_replayed);
/// `events list` and `events show` tell what happened to each event;
/// `replay` runs stored events through the pipeline again, as a new run with
/// new idempotency keys.
async fn events_can_be_listed_shown_and_replayed(store: Store) {
    let sink = Sink::start().await;
    let host = Host::start(&store.config(echo_config(&sink.url("/echo"), ""))).await;
    let (_, answer) = unlock(&host, "Lobby").await;
    let id = answer
        .split("\"id\":\"")
        .nth(1)
        .unwrap()
        .trim_end_matches("\"}")
        .to_string();
    sink.wait_for(Duration::from_secs(10), |r| r.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let list = cli(&["events", "list"], &host.config);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("SEQ "), "{list}");
    assert!(lines[1].starts_with("1 "), "{list}");
    assert!(lines[1].contains(" office "), "{list}");
    assert!(lines[1].contains(" access.granted "), "{list}");
    assert!(lines[1].contains(" Lobby "), "{list}");
    assert!(lines[1].ends_with(" done    echo: 1 command"), "{list}");

    let unknown = vestibule()
        .args(["replay", "--since", "1h", "--source", "nope", "--config"])
        .arg(&host.config)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("--source nope: no such source in ") && said.contains("its sources: office"),
        "{said}"
    );
    let replayed = cli(&["replay", "--since", "1h"], &host.config);
    assert!(replayed.starts_with("1 event(s) since "), "{replayed}");
    let received = sink.wait_for(Duration::from_secs(10), |r| r.len() == 2).await;
    assert_eq!(received.len(), 2);
    assert_ne!(idempotency_key(&received[0]), idempotency_key(&received[1]));
    assert_eq!(received[0].body, received[1].body);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let show = cli(&["events", "show", &id], &host.config);
    assert!(show.contains(&format!("\"id\": \"{id}\"")), "{show}");
    assert!(show.contains("run 0 (journal #1)"), "{show}");
    assert!(show.contains("run 1 (journal #2)"), "{show}");
    assert_eq!(show.matches("  echo: 1 command").count(), 2, "{show}");
    assert_eq!(show.matches("to echo: delivered, 1 attempt").count(), 2, "{show}");
    host.stop().await;
}

/// A host without `[store] path` says so when asked for its journal.
#[test]
fn journal_commands_need_a_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("vestibule.toml");
    std::fs::write(&config, "[server]\n").unwrap();
    let output = vestibule()
        .args(["events", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("store.path: not set, so the host keeps its journal in memory"),
        "{stderr}"
    );
}
