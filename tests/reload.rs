//! Changing the rules while the doors are in use: plugin files rewritten
//! under load lose and double no event; broken changes are refused,
//! reported and change nothing; sources, sinks and the listen address
//! follow the config without a restart; SIGHUP reloads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{
    Host, Process, SECRET, Sink, free_addr, get, now, plugin, try_post, unifi_signature, unifi_unlock,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The admin token: the tests' secret file serves as its `token_file`.
fn admin() -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {SECRET}"))]
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A host config: the sources named in `sources`, the `stamp` enricher at
/// `stamp`, then `echo-event` sending each event to sink `echo`, whose
/// settings are the lines in `sink` (see [`http`]); admin on, journal on
/// disk, a short debounce.
fn stamp_config(stamp: &Path, sink: &str, sources: &[&str]) -> String {
    let mut text = format!(
        r#"
        [store]
        path = "data"

        [admin]
        token_file = "{{secret_file}}"

        [reload]
        debounce = "200ms"

        [[plugins]]
        name = "stamp"
        world = "enricher"
        path = "{stamp}"
        {echo}
        "#,
        stamp = stamp.display(),
        echo = crate::support::echo_tables(sink),
    );
    for name in sources {
        text.push_str(&format!(
            "\n[[sources]]\nname = \"{name}\"\nvendor = \"unifi-access\"\nsecret_file = \"{{secret_file}}\"\n"
        ));
    }
    text
}

/// The settings of an HTTP sink at `url`.
fn http(url: &str) -> String {
    format!("kind = \"http\"\nurl = \"{url}\"")
}

/// A host on [`stamp_config`] with source `office`, its `stamp` plugin a
/// copy of `stamp-a` the test may rewrite: the folder of that copy, the
/// copy, and the host.
async fn stamp_host(sink_url: &str) -> (tempfile::TempDir, PathBuf, Host) {
    let folder = tempfile::tempdir().unwrap();
    let stamp = folder.path().join("stamp.wasm");
    std::fs::write(&stamp, std::fs::read(plugin("stamp-a")).unwrap()).unwrap();
    let host = Host::start(&stamp_config(&stamp, &http(sink_url), &["office"])).await;
    (folder, stamp, host)
}

/// `GET /admin/status`.
async fn status(host: &Host) -> Value {
    let (code, body) = get(&host.url("/admin/status"), &admin()).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Poll the status until `done` holds (20 s at most); returns it.
async fn status_until(host: &Host, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = status(host).await;
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: the status is still {status:#}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The SHA-256 of the running plugin `name`.
fn plugin_sha(status: &Value, name: &str) -> String {
    let plugins = status["plugins"].as_array().unwrap();
    let plugin = plugins.iter().find(|p| p["name"] == name).unwrap();
    plugin["sha256"].as_str().unwrap().to_string()
}

fn reloads(status: &Value, result: &str) -> u64 {
    status["reloads"][result].as_u64().unwrap()
}

/// Replace `file` as an operator would: in place (`cp`), or by renaming a
/// new file over it (editors, `install`, deploy tools).
fn replace(file: &Path, bytes: &[u8], by_rename: bool) {
    if by_rename {
        let temporary = file.with_extension("new");
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(&temporary, file).unwrap();
    } else {
        std::fs::write(file, bytes).unwrap();
    }
}

/// Post one signed UniFi unlock at `door`, retrying like a vendor until it
/// is acknowledged; its event id.
async fn post_until_acknowledged(url: &str, door: &str) -> String {
    let body = unifi_unlock(door);
    for _ in 0..200 {
        match try_post(url, &unifi_signature(SECRET, now(), &body), body.clone()).await {
            Ok((200, answer)) => {
                let answer: Value = serde_json::from_str(&answer).unwrap();
                return answer["id"].as_str().unwrap().to_string();
            }
            Ok((503, _)) | Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Ok((status, answer)) => panic!("{door}: {status} {answer}"),
        }
    }
    panic!("{door}: never acknowledged");
}

/// The events at the sink: event id → (idempotency key, `version`
/// attributes) of each delivery.
fn deliveries(sink: &Sink) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let mut by_event: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for received in sink.received() {
        let event: Value = serde_json::from_str(&received.body).unwrap();
        let versions = event["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["key"] == "version")
            .map(|a| a["value"].as_str().unwrap().to_string())
            .collect();
        let key = received.headers["idempotency-key"].to_str().unwrap().to_string();
        by_event
            .entry(event["id"].as_str().unwrap().to_string())
            .or_default()
            .push((key, versions));
    }
    by_event
}

/// A vendor posting continuously from a few connections.
#[derive(Default)]
struct Load {
    next: AtomicUsize,
    stop: AtomicBool,
    /// Each acknowledged event's id, and when its request was sent.
    acknowledged: Mutex<Vec<(String, Instant)>>,
}

impl Load {
    async fn post(self: Arc<Self>, url: String) {
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let id = post_until_acknowledged(&url, &format!("Door {n}")).await;
            self.acknowledged.lock().unwrap().push((id, sent));
        }
    }
}

/// The test the issue asks for: while a vendor posts continuously, the
/// plugin file is rewritten 22 times alternating two versions that stamp
/// events differently — in place and by rename — with a broken component
/// and an invalid config written once each. Every acknowledged event
/// reaches the sink exactly once, stamped by exactly one version, and once
/// the last version is running every event sent after it gets that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_rewritten_under_load_loses_and_doubles_nothing() {
    let _turn = crate::support::heavy();
    const REWRITES: usize = 22;
    let sink = Sink::start().await;
    let (_folder, stamp, host) = stamp_host(&sink.url("/echo")).await;
    let versions = [
        ("a", std::fs::read(plugin("stamp-a")).unwrap()),
        ("b", std::fs::read(plugin("stamp-b")).unwrap()),
    ];
    let config = std::fs::read_to_string(&host.config).unwrap();

    let load = Arc::new(Load::default());
    let clients: Vec<_> = (0..3)
        .map(|_| tokio::spawn(load.clone().post(host.url("/ingest/office"))))
        .collect();
    // Traffic before the first rewrite.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut reload_times = Vec::new();
    let mut newest = "a";
    for i in 1..=REWRITES {
        if i == 7 {
            // A component that does not compile: refused, version unchanged.
            let before = status(&host).await;
            replace(&stamp, b"\0asm\x0d\0\x01\0 half a component", false);
            let after = status_until(&host, "the broken component is refused", |s| {
                reloads(s, "failed") > reloads(&before, "failed")
            })
            .await;
            let error = after["reloads"]["last"]["error"].as_str().unwrap();
            assert!(error.contains(&stamp.display().to_string()), "{error}");
            assert!(error.contains("is not a valid WebAssembly component"), "{error}");
            assert_eq!(plugin_sha(&after, "stamp"), plugin_sha(&before, "stamp"));
        }
        if i == 14 {
            // An invalid config: refused, then put back.
            let before = status(&host).await;
            std::fs::write(&host.config, format!("{config}\n[[sources]\n")).unwrap();
            let after = status_until(&host, "the invalid config is refused", |s| {
                reloads(s, "failed") > reloads(&before, "failed")
            })
            .await;
            let error = after["reloads"]["last"]["error"].as_str().unwrap();
            assert!(error.starts_with(&host.config.display().to_string()), "{error}");
            assert_eq!(after["config"]["sha256"], before["config"]["sha256"]);
            std::fs::write(&host.config, &config).unwrap();
            status_until(&host, "the config put back reloads", |s| {
                reloads(s, "ok") > reloads(&after, "ok") && s["reloads"]["last"]["result"] == "ok"
            })
            .await;
        }
        let (name, bytes) = &versions[i % 2];
        let written = Instant::now();
        replace(&stamp, bytes, i % 3 == 0);
        status_until(&host, &format!("rewrite {i} (version {name}) runs"), |s| {
            plugin_sha(s, "stamp") == sha256(bytes)
        })
        .await;
        reload_times.push(written.elapsed());
        newest = name;
    }
    let last_swap = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let acknowledged = load.acknowledged.lock().unwrap().clone();
    let ids: BTreeSet<&String> = acknowledged.iter().map(|(id, _)| id).collect();
    let all_arrived = |received: &[crate::support::Received]| received.len() >= ids.len();
    sink.wait_for(Duration::from_secs(60), all_arrived).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // a late double would show now
    let delivered = deliveries(&sink);
    let status = status(&host).await;
    host.stop().await;

    let mut stamped: BTreeMap<String, usize> = BTreeMap::new();
    for (id, sent) in &acknowledged {
        let Some(deliveries) = delivered.get(id) else {
            panic!("acknowledged event {id} never reached the sink");
        };
        assert_eq!(deliveries.len(), 1, "event {id} delivered {} times", deliveries.len());
        let (_, versions) = &deliveries[0];
        assert!(
            versions.len() == 1 && (versions[0] == "a" || versions[0] == "b"),
            "event {id} was stamped {versions:?}"
        );
        if *sent > last_swap {
            assert_eq!(versions[0], newest, "event {id}, sent after the last version ran");
        }
        *stamped.entry(versions[0].clone()).or_default() += 1;
    }
    let keys: BTreeSet<&String> = delivered.values().flatten().map(|(key, _)| key).collect();
    assert_eq!(keys.len(), ids.len(), "one idempotency key per event");
    assert_eq!(delivered.len(), ids.len(), "nothing arrived that was not acknowledged");
    assert!(stamped.get("a").is_some_and(|n| *n > 0) && stamped.get("b").is_some_and(|n| *n > 0));
    assert_eq!(reloads(&status, "failed"), 2);
    let after_last = acknowledged.iter().filter(|(_, sent)| *sent > last_swap).count();
    assert!(after_last > 0, "no event was sent after the last version ran");

    reload_times.sort();
    println!(
        "reload under load: {} events acknowledged, {} delivered once each ({} stamped a, {} stamped b), \
         {after_last} sent after the last swap all stamped {newest}; {} reloads ok, {} refused; \
         file written → new version in status: p50 {:?}, max {:?} (debounce 200 ms, debug build)",
        ids.len(),
        delivered.len(),
        stamped["a"],
        stamped["b"],
        reloads(&status, "ok"),
        reloads(&status, "failed"),
        reload_times[reload_times.len() / 2],
        reload_times[reload_times.len() - 1],
    );
}

/// Each kind of broken change is refused with the file and the reason in
/// the status; the running set goes on serving the old version; fixing the
/// file reloads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_changes_are_refused_reported_and_change_nothing() {
    let sink = Sink::start().await;
    let (_folder, stamp, host) = stamp_host(&sink.url("/echo")).await;
    let good_stamp = std::fs::read(&stamp).unwrap();
    let good = std::fs::read_to_string(&host.config).unwrap();
    let config_file = host.config.display().to_string();
    let stamp_file = stamp.display().to_string();
    let first = status(&host).await;

    // (what, the file broken, its broken content, what the error must say)
    let action = std::fs::read(plugin("echo-event")).unwrap();
    let cases: Vec<(&str, &Path, Vec<u8>, Vec<&str>)> = vec![
        (
            "invalid TOML",
            &host.config,
            format!("{good}\n[[sources]\n").into_bytes(),
            vec![&config_file, ": line ", "unclosed array table, expected `]`"],
        ),
        (
            "an unknown key",
            &host.config,
            good.replace("debounce =", "debounse =").into_bytes(),
            vec![&config_file, "unknown field `debounse`"],
        ),
        (
            "a missing secret",
            &host.config,
            good.replace("[admin]\n", "[admin]\ntoken_env = \"VESTIBULE_TEST_UNSET\"\n")
                .replace(&format!("token_file = \"{}\"", secret_file(&host)), "")
                .into_bytes(),
            vec![&config_file, "environment variable `VESTIBULE_TEST_UNSET` is not set"],
        ),
        (
            "a plugin config the plugin refuses",
            &host.config,
            good.replace(
                &format!("path = \"{stamp_file}\""),
                &format!("path = \"{stamp_file}\"\n[plugins.config]\nstray = 1"),
            )
            .into_bytes(),
            vec![
                &config_file,
                "plugins[0].config: the plugin `stamp` refuses it: unknown field `stray`",
            ],
        ),
        (
            "a file that is not a component",
            &stamp,
            b"#!/bin/sh\necho not a plugin\n".to_vec(),
            vec![&config_file, "plugins[0].path", &stamp_file, "not a WebAssembly file"],
        ),
        (
            "a component of another world",
            &stamp,
            action,
            vec![&stamp_file, "does not fit the `enricher` world"],
        ),
    ];
    for (n, (what, file, broken, expected)) in cases.into_iter().enumerate() {
        let fixed = std::fs::read(file).unwrap();
        std::fs::write(file, &broken).unwrap();
        let refused = status_until(&host, what, |s| reloads(s, "failed") == n as u64 + 1).await;
        let last = &refused["reloads"]["last"];
        assert_eq!(last["result"], "failed", "{what}");
        let error = last["error"].as_str().unwrap();
        for part in expected {
            assert!(error.contains(part), "{what}: `{part}` is not in: {error}");
        }
        // Nothing changed: same config and plugin, and events still go
        // through the old version.
        assert_eq!(refused["config"]["sha256"], first["config"]["sha256"], "{what}");
        assert_eq!(plugin_sha(&refused, "stamp"), sha256(&good_stamp), "{what}");
        let id = post_until_acknowledged(&host.url("/ingest/office"), &format!("Door {what}")).await;
        let received = sink
            .wait_for(Duration::from_secs(10), |_| deliveries(&sink).contains_key(&id))
            .await;
        assert!(!received.is_empty());
        assert_eq!(deliveries(&sink)[&id][0].1, ["a"], "{what}: served by the old set");

        std::fs::write(file, fixed).unwrap();
        let fixed = status_until(&host, &format!("{what}, fixed"), |s| reloads(s, "ok") == n as u64 + 1).await;
        assert_eq!(fixed["reloads"]["last"]["result"], "ok");
        assert_eq!(fixed["reloads"]["failed"], n as u64 + 1);
    }
    host.stop().await;
}

/// The secret file the test config names (see `crate::support::write_config`).
fn secret_file(host: &Host) -> String {
    host.config.parent().unwrap().join("unifi-secret").display().to_string()
}

/// Sources added to the config accept events at once, removed ones answer
/// 404, and a sink's new URL and credentials take the next delivery — no
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_and_sinks_follow_the_config_without_a_restart() {
    let (old_sink, new_sink) = (Sink::start().await, Sink::start().await);
    let (_folder, stamp, host) = stamp_host(&old_sink.url("/echo")).await;
    let lobby = host.url("/ingest/lobby");
    let body = unifi_unlock("Lobby");
    let (code, answer) = try_post(&lobby, &unifi_signature(SECRET, now(), &body), body.clone())
        .await
        .unwrap();
    assert_eq!((code, answer.as_str()), (404, r#"{"error":"not_found"}"#));

    let secret = secret_file(&host);
    // The new sink URL, with a token from a file.
    let token = host.config.parent().unwrap().join("sink-token");
    std::fs::write(&token, "first-token").unwrap();
    let new_sink_settings = format!(
        "{}\n[sinks.headers]\nAuthorization = {{ secret_file = \"sink-token\", prefix = \"Bearer \" }}\n",
        http(&new_sink.url("/echo"))
    );
    let edited = stamp_config(&stamp, &new_sink_settings, &["office", "lobby"]).replace("{secret_file}", &secret);
    std::fs::write(&host.config, &edited).unwrap();
    status_until(&host, "source lobby added", |s| {
        s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|source| source["name"] == "lobby")
    })
    .await;
    let reloaded = status(&host).await;
    let stamp_plugin = &reloaded["plugins"][0];
    assert_eq!(stamp_plugin["name"], "stamp");
    assert_eq!(
        stamp_plugin["compiled"], "reused",
        "an unchanged plugin is not compiled again"
    );
    let id = post_until_acknowledged(&lobby, "Lobby").await;
    let received = new_sink
        .wait_for(Duration::from_secs(10), |r| r.iter().any(|r| r.body.contains(&id)))
        .await;
    assert!(
        received.iter().any(|r| r.body.contains(&id)),
        "the lobby event reached the new sink URL"
    );
    assert!(old_sink.received().is_empty(), "nothing goes to the old URL");
    let authorization = |r: &crate::support::Received| r.headers["authorization"].to_str().unwrap().to_string();
    assert_eq!(authorization(&received[0]), "Bearer first-token");

    // A rotated secret file is read by the next reload (here on request).
    std::fs::write(&token, "second-token").unwrap();
    let (code, body) = try_post(&host.url("/admin/reload"), &admin(), "").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let id = post_until_acknowledged(&lobby, "Lobby again").await;
    let received = new_sink
        .wait_for(Duration::from_secs(10), |r| r.iter().any(|r| r.body.contains(&id)))
        .await;
    let delivery = received.iter().find(|r| r.body.contains(&id)).unwrap();
    assert_eq!(authorization(delivery), "Bearer second-token");

    // Remove `office`: its path answers 404 from the next request on.
    let without_office = stamp_config(&stamp, &new_sink_settings, &["lobby"]).replace("{secret_file}", &secret);
    std::fs::write(&host.config, &without_office).unwrap();
    let status = status_until(&host, "source office removed", |s| {
        s["sources"].as_array().unwrap().len() == 1
    })
    .await;
    let changes = status["reloads"]["last"]["changes"].to_string();
    assert!(
        changes.contains("source office no longer at /ingest/office"),
        "{changes}"
    );
    let body = unifi_unlock("Front Door");
    let (code, _) = try_post(
        &host.url("/ingest/office"),
        &unifi_signature(SECRET, now(), &body),
        body,
    )
    .await
    .unwrap();
    assert_eq!(code, 404);
    host.stop().await;
}

/// `[reload] watch = false`: an edited config waits for SIGHUP, which then
/// moves the listener to the new address (the old one stops answering). A
/// broken config refused by several reloads is logged once.
#[test]
fn sighup_reloads_and_a_refusal_is_logged_once() {
    let (first, second) = (free_addr(), free_addr());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    let config = dir.path().join("vestibule.toml");
    let text = |addr: std::net::SocketAddr| {
        format!(
            "[server]\nlisten = \"{addr}\"\n[reload]\nwatch = false\n\
             [[sources]]\nname = \"office\"\nvendor = \"unifi-access\"\nsecret_file = \"secret\"\n"
        )
    };
    std::fs::write(&config, text(first)).unwrap();
    let host = Process::start(&config);
    let answers = |addr: std::net::SocketAddr| std::net::TcpStream::connect(addr).is_ok();
    assert!(answers(first));

    std::fs::write(&config, text(second)).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        answers(first) && !answers(second),
        "not watching: nothing moves before SIGHUP"
    );
    host.signal("HUP");
    host.wait_for_log(&format!("Listening. addr={second}"), Duration::from_secs(10));
    assert!(answers(second));
    assert!(!answers(first), "the old address is closed");

    std::fs::write(&config, format!("{}\nlisen = 1\n", text(second))).unwrap();
    for _ in 0..3 {
        host.signal("HUP");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::fs::write(&config, text(second)).unwrap();
    host.signal("HUP");
    host.wait_for_log("Reloaded; nothing changed.", Duration::from_secs(10));
    let refusals = host.wait_for_log("Reload refused", Duration::from_secs(1));
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(refusals[0].contains("unknown field `lisen`"), "{}", refusals[0]);
    host.kill();
}

/// `/admin/` answers only with the token, says what runs without showing a
/// secret, and reloads on request: 200 with what changed, 422 with why not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_their_token() {
    let sink = Sink::start().await;
    let (_folder, stamp, host) = stamp_host(&sink.url("/echo")).await;
    let stamp_bytes = std::fs::read(&stamp).unwrap();
    let url = host.url("/admin/status");
    let refused = |reason: &str| (401, format!(r#"{{"error":"{reason}"}}"#));
    assert_eq!(get(&url, &[]).await, refused("auth_missing"));
    let wrong = [("authorization", "Bearer 6601f1243d2ff70e".to_string())];
    assert_eq!(get(&url, &wrong).await, refused("auth_invalid"));
    let basic = [("authorization", format!("Basic {SECRET}"))];
    assert_eq!(get(&url, &basic).await, refused("auth_missing"));
    assert_eq!(get(&host.url("/admin/reload"), &admin()).await.0, 405);
    assert_eq!(get(&host.url("/admin/other"), &admin()).await.0, 404);

    let (code, body) = get(&url, &admin()).await;
    assert_eq!(code, 200);
    assert!(!body.contains(SECRET), "the status shows a secret: {body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    let config = std::fs::read(&host.config).unwrap();
    assert_eq!(first["config"]["file"], host.config.display().to_string());
    assert_eq!(first["config"]["sha256"], sha256(&config));
    let plugins: Vec<(String, String, String, String)> = first["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap().to_string();
            (field("name"), field("world"), field("sha256"), field("compiled"))
        })
        .collect();
    let echo = std::fs::read(plugin("echo-event")).unwrap();
    assert_eq!(
        plugins,
        [
            (
                "stamp".into(),
                "enricher".into(),
                sha256(&stamp_bytes),
                "compiled".into()
            ),
            ("echo".into(), "action".into(), sha256(&echo), "compiled".into()),
        ]
    );
    assert_eq!(first["sources"][0]["path"], "/ingest/office");
    assert_eq!(first["sinks"][0], serde_json::json!({ "name": "echo", "kind": "http" }));
    assert_eq!(first["journal"]["durable"], true);

    let reload = |headers: Vec<(&'static str, String)>| {
        let url = host.url("/admin/reload");
        async move { try_post(&url, &headers, "").await.unwrap() }
    };
    assert_eq!(reload(Vec::new()).await, refused("auth_missing"));
    let (code, body) = reload(admin()).await;
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["result"], "ok");
    assert_eq!(report["trigger"], "POST /admin/reload");
    assert_eq!(report["changes"], serde_json::json!([]));
    let after = status(&host).await;
    assert_eq!(after["plugins"][0]["compiled"], "reused");
    assert_eq!(after["plugins"][0]["loaded_at"], first["plugins"][0]["loaded_at"]);

    // `[store] path` waits for a restart, and the status says so.
    let text = String::from_utf8(config).unwrap();
    std::fs::write(&host.config, text.replace("path = \"data\"", "path = \"elsewhere\"")).unwrap();
    let (code, body) = reload(admin()).await;
    assert_eq!(code, 200, "{body}");
    let moved = status(&host).await;
    assert_eq!(moved["reloads"]["restart_needed"], serde_json::json!(["[store] path"]));

    std::fs::write(&host.config, format!("{text}\n[reload]\nwatch = false\n")).unwrap();
    let (code, body) = reload(admin()).await;
    assert_eq!(code, 422, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["result"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("(`[reload]`): duplicate key"),
        "{report}"
    );
    host.stop().await;

    // Without `[admin]` there is nothing under /admin/.
    let host = Host::start(&crate::support::lights_config("", &sink.url("/lights"))).await;
    assert_eq!(
        get(&host.url("/admin/status"), &admin()).await,
        (404, r#"{"error":"not_found"}"#.to_string())
    );
    host.stop().await;
}

/// A device or a FIFO where a plugin or a secret should be is refused at
/// reload with the file named — the host neither reads `/dev/zero` into
/// memory nor waits on a FIFO — and a good change after it applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_are_refused_on_reload_and_the_next_change_applies() {
    let sink = Sink::start().await;
    let (_folder, stamp, host) = stamp_host(&sink.url("/echo")).await;
    let good_stamp = std::fs::read(&stamp).unwrap();
    let good = std::fs::read_to_string(&host.config).unwrap();

    // The plugin swapped for a symlink to /dev/zero: the watcher sees it.
    std::fs::remove_file(&stamp).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &stamp).unwrap();
    let refused = status_until(&host, "/dev/zero", |s| reloads(s, "failed") == 1).await;
    let error = refused["reloads"]["last"]["error"].as_str().unwrap().to_string();
    assert!(error.contains(&stamp.display().to_string()), "{error}");
    assert!(error.contains("is not a regular file"), "{error}");
    std::fs::remove_file(&stamp).unwrap();
    std::fs::write(&stamp, &good_stamp).unwrap();
    status_until(&host, "plugin back", |s| reloads(s, "ok") == 1).await;

    // A sink's secret file that is a FIFO nobody writes: the reload answers.
    let fifo = host.config.parent().unwrap().join("token-fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let with_fifo = good.replace(
        "[[sinks]]\n        name = \"echo\"",
        &format!(
            "[[sinks]]\n        name = \"echo\"\n        headers = {{ Authorization = {{ secret_file = \"{}\" }} }}",
            fifo.display()
        ),
    );
    assert_ne!(with_fifo, good);
    std::fs::write(&host.config, &with_fifo).unwrap();
    let (code, answer) = tokio::time::timeout(Duration::from_secs(30), async {
        try_post(&host.url("/admin/reload"), &admin(), "").await.unwrap()
    })
    .await
    .expect("POST /admin/reload answered");
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer.contains("token-fifo") && answer.contains("is not a regular file"),
        "{answer}"
    );

    // And the next good change goes through.
    std::fs::write(
        &host.config,
        good.replace("debounce = \"200ms\"", "debounce = \"300ms\""),
    )
    .unwrap();
    let applied = status_until(&host, "a good change", |s| reloads(s, "ok") == 2).await;
    assert_eq!(applied["reloads"]["last"]["result"], "ok");
    host.stop().await;
}
