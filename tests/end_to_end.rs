//! The whole path of one event: a signed UniFi Access webhook goes into the
//! real host, the real `door-filter` and `lights-on-unlock` components decide,
//! and a Home Assistant `light.turn_on` call arrives at a real HTTP listener.

use crate::support::{Host, SECRET, Sink, lights_config, now, plugin, post, unifi_signature, unifi_unlock};

fn config(sink: &Sink) -> String {
    let filter = format!(
        r#"
        [[plugins]]
        name = "front-doors"
        world = "filter"
        path = "{}"
        [plugins.config]
        doors = ["Front Door", "Lobby"]
        "#,
        plugin("door-filter").display()
    );
    lights_config(&filter, &sink.url("/api/services/light/turn_on"))
}

#[tokio::test(flavor = "multi_thread")]
async fn granted_unlock_switches_on_the_light() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;

    let body = unifi_unlock("Front Door");
    let (status, answer) = host.post_unifi(body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.starts_with(r#"{"status":"accepted","id":""#), "{answer}");

    host.stop().await;
    let received = sink.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let call = &received[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/api/services/light/turn_on");
    assert_eq!(call.headers["authorization"], format!("Bearer {SECRET}"));
    assert_eq!(call.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body, serde_json::json!({ "entity_id": "light.front_door" }));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_listed_door_gets_its_own_light() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let body = unifi_unlock("Lobby");
    let (status, _) = post(
        &host.url("/ingest/office"),
        &unifi_signature(SECRET, now(), &body),
        body,
    )
    .await;
    assert_eq!(status, 200);
    host.stop().await;
    let bodies: Vec<String> = sink.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, [r#"{"entity_id":"light.lobby"}"#]);
}

#[tokio::test(flavor = "multi_thread")]
async fn door_the_filter_drops_sends_nothing() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;

    let body = unifi_unlock("Loading Dock");
    let (status, _) = post(
        &host.url("/ingest/office"),
        &unifi_signature(SECRET, now(), &body),
        body,
    )
    .await;
    assert_eq!(status, 200, "accepted: the filter runs after the answer");
    // A door the filter keeps, after it: the pipeline ran, and only this
    // one reached the action.
    let (status, _) = host.post_unifi(unifi_unlock("Lobby")).await;
    assert_eq!(status, 200);

    host.stop().await;
    let bodies: Vec<_> = sink.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, [r#"{"entity_id":"light.lobby"}"#]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_get_their_reason_and_send_nothing() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let url = host.url("/ingest/office");
    let body = unifi_unlock("Front Door");

    let wrong_secret = post(&url, &unifi_signature("not-the-secret", now(), &body), body.clone()).await;
    assert_eq!(wrong_secret, (401, r#"{"error":"signature_invalid"}"#.into()));

    let stale = post(&url, &unifi_signature(SECRET, now() - 301, &body), body.clone()).await;
    assert_eq!(stale, (401, r#"{"error":"timestamp_out_of_range"}"#.into()));

    let unsigned = post(&url, &[], body.clone()).await;
    assert_eq!(unsigned, (401, r#"{"error":"signature_missing"}"#.into()));

    // Signed correctly, but over the 4 KiB limit.
    let big = format!(r#"{{"event":"access.door.unlock","pad":"{}"}}"#, "x".repeat(5000));
    let too_large = post(&url, &unifi_signature(SECRET, now(), &big), big.clone()).await;
    assert_eq!(too_large, (413, r#"{"error":"body_too_large"}"#.into()));

    let not_json = "{not json";
    let malformed = post(&url, &unifi_signature(SECRET, now(), not_json), not_json).await;
    assert_eq!(malformed, (400, r#"{"error":"malformed_body"}"#.into()));

    let unknown = post(
        &host.url("/ingest/nobody"),
        &unifi_signature(SECRET, now(), &body),
        body.clone(),
    )
    .await;
    assert_eq!(unknown, (404, r#"{"error":"not_found"}"#.into()));
    // Then one that is right: it alone arrives.
    let (status, _) = host.post_unifi(body).await;
    assert_eq!(status, 200);

    host.stop().await;
    let bodies: Vec<_> = sink.received().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        [r#"{"entity_id":"light.front_door"}"#],
        "only the accepted request acts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_post_is_accepted() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let response = client.get(host.url("/ingest/office").parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 405);
    host.stop().await;
}

/// A body sent in chunks with no length announced is cut off at the limit
/// too, not read to the end.
#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_over_the_limit_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let mut stream = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let chunk = "x".repeat(1024);
    let mut request = String::from(
        "POST /ingest/office HTTP/1.1\r\nhost: vestibule\r\nsignature: t=1,v1=00\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for _ in 0..8 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"body_too_large"}"#), "{answer}");
    host.stop().await;
}

/// `off_after`: the lights go off through a delayed command, due that long
/// after the unlock; a second unlock before it is due restarts the timer,
/// so only the second unlock's "off" is sent.
#[tokio::test(flavor = "multi_thread")]
async fn lights_go_off_after_the_last_unlock() {
    lights_go_off("[store]\npath = \"data\"\n").await;
}

/// The same with the cluster store: the delayed commands wait in JetStream,
/// and the later one replaces the earlier across the cluster.
#[tokio::test(flavor = "multi_thread")]
async fn lights_go_off_after_the_last_unlock_in_a_cluster() {
    let nats = crate::support::nats::Nats::start(1);
    lights_go_off(&format!("[store]\nkind = \"nats\"\n{}\n", nats.servers_toml())).await;
}

async fn lights_go_off(store: &str) {
    let sink = Sink::start().await;
    let text = lights_config("", &sink.url("/on"))
        .replace("sinks = [\"lights\"]", "sinks = [\"lights\", \"lights-off\"]")
        .replace(
            "[plugins.config.entities]",
            "[plugins.config]\noff_after = \"1s\"\n[plugins.config.entities]",
        );
    let text = format!(
        "{store}{text}\n[[sinks]]\nname = \"lights-off\"\nkind = \"http\"\nurl = \"{}\"\n",
        sink.url("/off")
    );
    let host = Host::start(&text).await;
    for n in 0..2 {
        let body = unifi_unlock("Lobby").replacen('{', &format!("{{\"n\":{n},"), 1);
        assert_eq!(host.post_unifi(body).await.0, 200);
    }
    let paths =
        |received: &[crate::support::Received]| -> Vec<String> { received.iter().map(|r| r.path.clone()).collect() };
    sink.wait_for(std::time::Duration::from_secs(10), |r| {
        paths(r).contains(&"/off".to_string())
    })
    .await;
    // Longer than the delay again: a second "off" would have come by now.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(paths(&sink.received()), ["/on", "/on", "/off"]);
    assert_eq!(sink.received()[2].body, r#"{"entity_id":"light.lobby"}"#);
    host.stop().await;
}

/// A door whose events wait out a plugin's deadline holds back only its
/// own: every other door's events reach the sink meanwhile, each door's in
/// the order they were sent, and the stalled door's follow in theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_door_holds_back_only_itself() {
    let sink = Sink::start().await;
    let stall = crate::support::config::PluginTable::new("stall", "filter", "misbehave")
        .set("deadline", "2s")
        .set("on_error", "skip")
        .config("misbehave", "sleep")
        .config("only_door", "Stuck");
    let config = format!(
        r#"
        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"
        {stall}
        {echo}
        "#,
        stall = stall.render(),
        echo = crate::support::echo_tables(&format!("kind = \"http\"\nurl = \"{}\"", sink.url("/echo"))),
    );
    let host = Host::start(&config).await;
    let send = |door: &str, n: usize| {
        let body = unifi_unlock(door).replace("7b3a1f0c9d21", &format!("{n:012}"));
        host.post_unifi(body)
    };
    let mut sent: Vec<(String, usize)> = Vec::new();
    for n in 0..3 {
        assert_eq!(send("Stuck", n).await.0, 200);
        sent.push(("Stuck".into(), n));
    }
    for n in 3..35 {
        let door = format!("Door {}", n % 8);
        assert_eq!(send(&door, n).await.0, 200);
        sent.push((door, n));
    }
    let received = sink
        .wait_for(std::time::Duration::from_secs(60), |r| r.len() >= sent.len())
        .await;
    // Each arrival as (door, n), n being what its vendor id ends in.
    let arrived: Vec<(String, usize)> = received
        .iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let raw: serde_json::Value = serde_json::from_str(event["raw"].as_str().unwrap()).unwrap();
            let id = raw["event_object_id"].as_str().unwrap();
            let door = event["door"]["name"].as_str().unwrap().to_string();
            (door, id[id.len() - 12..].parse().unwrap())
        })
        .collect();
    assert_eq!(arrived.len(), sent.len(), "{arrived:?}");
    for door in arrived
        .iter()
        .map(|(d, _)| d.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let order = |list: &[(String, usize)]| -> Vec<usize> {
            list.iter().filter(|(d, _)| *d == door).map(|(_, n)| *n).collect()
        };
        assert_eq!(order(&arrived), order(&sent), "{door}: in the order sent");
    }
    let second_stuck = arrived.iter().position(|a| *a == ("Stuck".to_string(), 1)).unwrap();
    let last_other = arrived.iter().rposition(|(d, _)| d != "Stuck").unwrap();
    assert!(
        last_other < second_stuck,
        "every other door's events arrive while Stuck waits out its deadlines: {arrived:?}"
    );
    host.stop().await;
}
