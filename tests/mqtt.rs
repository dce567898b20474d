//! The `mqtt` sink against a real mosquitto broker on loopback: commands
//! arrive with QoS 1 and their idempotency key, and wait while the broker
//! cannot be reached.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::mqtt::{Broker, subscribe, wait_for};
use crate::support::{Host, SECRET, echo_config, free_addr, now, post, unifi_signature, unifi_unlock};

/// A TCP relay from `listen` to `to`: the host's way to the broker. Aborting
/// the task cuts every connection and refuses new ones, like a broker that
/// went away; the test subscriber, connected directly, stays subscribed.
fn relay(listen: SocketAddr, to: SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = std::net::TcpListener::bind(listen).unwrap();
    listener.set_nonblocking(true).unwrap();
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut links = tokio::task::JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            links.spawn(async move {
                if let Ok(mut broker) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_published_with_qos1_and_wait_for_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let _broker = Broker::start(addr, dir.path());
    let messages = subscribe(addr).await;
    // The host reaches the broker through a relay the test can cut.
    let way_in = free_addr();
    let link = relay(way_in, addr);
    let host = Host::start(&echo_config(&format!(
        r#"
        kind = "mqtt"
        url = "mqtt://{way_in}"
        topic = "building/doors"
        timeout = "1s"
        backoff = "100ms"
        backoff_max = "200ms"
        attempts = 1000
        "#
    )))
    .await;

    let send = |door: &'static str| {
        let url = host.url("/ingest/office");
        async move {
            let body = unifi_unlock(door);
            let (status, answer) = post(&url, &unifi_signature(SECRET, now(), &body), body).await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    send("Lobby").await;
    let got = wait_for(&messages, 1).await;
    assert_eq!(got.len(), 1, "published");
    assert_eq!(got[0].topic, "building/doors");
    let event: serde_json::Value = serde_json::from_str(&got[0].payload).unwrap();
    assert_eq!(event["door"]["name"], "Lobby");
    let key = &got[0]
        .properties
        .iter()
        .find(|(k, _)| k == "idempotency-key")
        .expect("the idempotency key travels as a user property")
        .1;
    assert_eq!(key.len(), 32);

    // The broker out of reach: the command waits in the outbox and is retried.
    link.abort();
    let _ = link.await;
    send("Garage").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(messages.lock().unwrap().len(), 1, "nothing gets through meanwhile");
    let _link = relay(way_in, addr);
    let got = wait_for(&messages, 2).await;
    // What the host recorded: tried while the broker was out of reach, then
    // acknowledged by it (PUBACK).
    tokio::time::sleep(Duration::from_millis(100)).await;
    use vestibule::store::Records;
    let store = vestibule::store::Store::open(&host.config.parent().unwrap().join("data")).unwrap();
    let listed = store.events(None, 10).unwrap();
    let garage = listed
        .iter()
        .find(|e| e.door == "Garage")
        .expect("the Garage event is journaled");
    let runs = store.event(&garage.event_id).unwrap();
    let command = &runs[0].2[0];
    assert_eq!(got.len(), 2, "delivered once the broker is back: {command:?}");
    let event: serde_json::Value = serde_json::from_str(&got[1].payload).unwrap();
    assert_eq!(event["door"]["name"], "Garage");
    assert_eq!(command.state, "delivered");
    assert!(command.attempts >= 2, "{command:?}");
    host.stop().await;
}
