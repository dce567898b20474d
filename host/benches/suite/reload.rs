//! Reloading under load: how long from a plugin file written to the new
//! version serving, and what reloads do to request latency — the same
//! fixed-rate load with and without reloads, on one host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use vestibule::Config;

use super::{SECRET, Summary, load, servers};

/// How much to do.
pub struct Plan {
    /// Events per second, with and without reloads.
    pub rate: u32,
    /// Plugin rewrites, one per `period`; the load lasts as long.
    pub reloads: usize,
    pub period: Duration,
}

/// Run both loads; the report's `reload` section.
pub async fn run(dir: &Path, plugins: &HashMap<String, PathBuf>, plan: &Plan) -> Value {
    let folder = dir.join("reload");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("secret"), SECRET).unwrap();
    let stamp = folder.join("stamp.wasm");
    let versions = [
        ("a", std::fs::read(&plugins["stamp-a"]).unwrap()),
        ("b", std::fs::read(&plugins["stamp-b"]).unwrap()),
    ];
    std::fs::write(&stamp, &versions[0].1).unwrap();
    let sink = servers::Sink::default();
    let sink_addr = sink.start().await;
    let file = folder.join("reload.toml");
    std::fs::write(&file, config(&plugins["echo-event"], sink_addr)).unwrap();
    let (addr, stop, task) = super::start(Config::load(&file).unwrap()).await;

    let duration = plan.period * plan.reloads as u32;
    let per_run = (plan.rate as f64 * duration.as_secs_f64()) as usize;
    let warmup = plan.period * 3;
    let warmup_events = (plan.rate as f64 * warmup.as_secs_f64()) as usize;
    // Spares at the end: see the wait for a version below.
    const SPARE: usize = 2000;
    let events = Arc::new(load::prepare(warmup_events + 3 * per_run + 1 + SPARE, SECRET));
    let mut spare = events.len() - SPARE;
    let mut probe = None;
    let path = "/ingest/bench";
    // Each run on fresh events: [warm-up][quiet][reloading][quiet again].
    let quiet_run = |first: usize| {
        let events = events.clone();
        let sink = &sink;
        async move {
            let mut quiet = Summary::of(load::fixed_rate(addr, path, events, first, plan.rate, 8, duration).await);
            quiet.e2e = Some(super::sink_latencies(sink, &quiet.run).await);
            quiet
        }
    };

    load::fixed_rate(addr, path, events.clone(), 0, plan.rate, 8, warmup).await;
    let before = quiet_run(warmup_events).await;
    let first = warmup_events + per_run;
    let paced = tokio::spawn(load::fixed_rate(
        addr,
        path,
        events.clone(),
        first,
        plan.rate,
        8,
        duration,
    ));
    let started = Instant::now();
    let mut reloads = Vec::new();
    for i in 1..=plan.reloads {
        tokio::time::sleep_until((started + plan.period * (i as u32 - 1) + plan.period / 8).into()).await;
        let (name, bytes) = &versions[i % 2];
        sink.first_of_version.lock().unwrap().remove(*name);
        let written = Instant::now();
        std::fs::write(&stamp, bytes).unwrap();
        let serving = loop {
            if let Some(first) = sink.first_of_version.lock().unwrap().get(*name) {
                break first.saturating_duration_since(written);
            }
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "version {name} never served"
            );
            // On a slow machine the paced load can end before the reload
            // does; then nothing would be left to show the new version, so
            // spare events keep coming.
            if paced.is_finished() && spare < events.len() {
                let sender = match &mut probe {
                    Some(sender) => sender,
                    None => probe.insert(load::connect(addr).await),
                };
                load::send(sender, path, &events[spare]).await;
                spare += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        reloads.push((serving, plugin_origin(addr).await));
    }
    let mut reloading = Summary::of(paced.await.unwrap());
    reloading.e2e = Some(super::sink_latencies(&sink, &reloading.run).await);
    let after = quiet_run(first + per_run).await;
    super::stop_host(stop, task).await;

    let mut times: Vec<u64> = reloads.iter().map(|(t, _)| t.as_millis() as u64).collect();
    let mut origins: HashMap<&str, usize> = HashMap::new();
    for (_, origin) in &reloads {
        *origins.entry(origin.as_str()).or_default() += 1;
    }
    let compiled: Vec<u64> = reloads
        .iter()
        .filter(|(_, origin)| origin == "compiled")
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    json!({
        "rate_per_second": plan.rate,
        "seconds": duration.as_secs_f64(),
        "reloads": reloads.len(),
        "debounce_ms": vestibule::config::ReloadConfig::default().debounce.0.as_millis() as u64,
        "written_to_serving_ms": {
            "p50": load::quantile(&mut times, 0.5),
            "max": times.iter().max(),
            "each": reloads.iter().map(|(t, _)| t.as_millis() as u64).collect::<Vec<_>>(),
            "compiled_now_ms": compiled,
            "origins": origins,
        },
        "without_reloads": before.json(None),
        "with_reloads": reloading.json(None),
        "without_reloads_after": after.json(None),
    })
}

/// The bench source, the `stamp` enricher (`stamp.wasm` beside the
/// config) and `echo-event` sending to the sink; journal on disk, admin on
/// with the bench secret as its token, `[reload]` at its defaults.
fn config(echo: &Path, sink: SocketAddr) -> String {
    format!(
        r#"
        [server]
        queue = 65536

        [store]
        path = "data"

        [admin]
        token_file = "secret"

        [[sources]]
        name = "bench"
        vendor = "unifi-access"
        secret_file = "secret"

        [[plugins]]
        name = "stamp"
        world = "enricher"
        path = "stamp.wasm"

        [[plugins]]
        name = "echo"
        world = "action"
        path = "{echo}"
        sinks = ["echo"]

        [[sinks]]
        name = "echo"
        kind = "http"
        url = "http://{sink}/events"
        "#,
        echo = echo.display()
    )
}

/// Where the running `stamp` plugin's code came from, per `/admin/status`.
async fn plugin_origin(addr: SocketAddr) -> String {
    let mut sender = load::connect(addr).await;
    let request = hyper::Request::get("/admin/status")
        .header("host", "bench")
        .header("authorization", format!("Bearer {SECRET}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let status: Value = serde_json::from_slice(&body).unwrap();
    let plugins = status["plugins"].as_array().cloned().unwrap_or_default();
    let stamp = plugins.iter().find(|p| p["name"] == "stamp");
    stamp
        .and_then(|p| p["compiled"].as_str())
        .unwrap_or("unknown")
        .to_string()
}
