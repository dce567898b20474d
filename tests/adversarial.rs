//! Plugins that misbehave are contained, and the host goes on: a loop hits
//! its deadline, a memory bomb its memory limit, unbounded recursion the
//! stack limit, a panic traps, a flood of output or log lines is cut off, a
//! send to a sink the plugin was not granted is refused — each next to
//! well-behaved plugins that keep working, each counted with its reason.
//! A plugin that keeps failing is suspended, and one whose failure policy
//! is `dead-letter` stops the event until it is retried.

use std::time::Duration;

use crate::support::{Host, SECRET, Sink, get, lights_config, now, plugin, unifi_unlock, vestibule, write_config};
use serde_json::Value;
use vestibule::pipeline::Pipeline;
use vestibule::plugins::{PluginFailure, Runtime};

use crate::support::config::{PluginTable, plugins};

/// The admin token and the `office` UniFi Access source, both read from
/// the test's secret file.
const OFFICE: &str = r#"
[admin]
token_file = "{secret_file}"

[[sources]]
name = "office"
vendor = "unifi-access"
secret_file = "{secret_file}"
"#;

/// Every misbehaving plugin, with the well-behaved `stamp` enricher and
/// `echo` action between them, and the `vault` sink nobody was granted.
fn rogues_gallery(sink_url: &str) -> String {
    // Skipped when they fail, so that the events go on past them all.
    let rogue = |name: &str, world: &str, package: &str| {
        PluginTable::new(name, world, package)
            .set("suspend_after", 0)
            .set("on_error", "skip")
    };
    let plugins = plugins(&[
        rogue("spinner", "filter", "loop-forever").set("deadline", "50ms"),
        rogue("hog", "filter", "memory-hog").set("memory", "16MiB"),
        rogue("recurse", "filter", "misbehave").config("misbehave", "recurse"),
        rogue("trap", "filter", "misbehave").config("misbehave", "trap"),
        rogue("storm", "filter", "misbehave").config("misbehave", "log-storm"),
        rogue("stamp", "enricher", "stamp-a"),
        rogue("huge", "enricher", "big-enricher")
            .set("memory", "64MiB")
            .config("attribute_bytes", 1_000_000),
        rogue("many", "enricher", "big-enricher").config("attributes", 1000),
        rogue("thief", "action", "sink-thief").set("sinks", vec!["echo"]),
    ]);
    format!(
        r#"
        [store]
        path = "data"
        {OFFICE}
        {plugins}
        {echo}

        [[sinks]]
        name = "vault"
        kind = "http"
        url = "{sink_url}/vault"
        "#,
        echo = crate::support::echo_tables(&format!("kind = \"http\"\nurl = \"{sink_url}/echo\"")),
    )
}

/// Post the `n`-th UniFi unlock at `door`, signed now; asserts the host
/// accepted it.
async fn unlock(host: &Host, door: &str, n: usize) {
    // A number in each body, so each is an event of its own.
    let body = unifi_unlock(door).replacen('{', &format!("{{\"n\":{n},"), 1);
    let (status, answer) = host.post_unifi(body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn status(host: &Host) -> Value {
    let token = [("authorization", format!("Bearer {SECRET}"))];
    let (code, body) = get(&host.url("/admin/status"), &token).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Each plugin's failures by reason, from the status.
fn failures(status: &Value) -> Vec<(String, Value)> {
    let plugins = status["plugins"].as_array().unwrap();
    plugins
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["health"]["failures"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_is_contained_counted_and_the_good_plugins_go_on() {
    let _turn = crate::support::heavy();
    const EVENTS: usize = 3;
    let sink = Sink::start().await;
    let host = Host::start(&rogues_gallery(&sink.url(""))).await;
    for n in 0..EVENTS {
        unlock(&host, "Front Door", n).await;
    }
    sink.wait_for(Duration::from_secs(30), |r| r.len() >= EVENTS).await;
    // Long enough for a stray delivery to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = status(&host).await;
    host.stop().await;

    // The good plugins did their work on every event, and only theirs arrived.
    assert_eq!(
        sink.received().len(),
        EVENTS,
        "one delivery per event, from `echo` alone"
    );
    for delivery in sink.received() {
        assert_eq!(delivery.path, "/echo", "nothing reached the vault");
        let event: Value = serde_json::from_str(&delivery.body).unwrap();
        let attributes = event["attributes"].as_array().unwrap();
        let keys: Vec<&str> = attributes.iter().map(|a| a["key"].as_str().unwrap()).collect();
        assert!(keys.contains(&"version"), "stamped: {keys:?}");
        assert!(
            !keys.contains(&"big") && !keys.contains(&"a0"),
            "nothing of the failed enrichers: {keys:?}"
        );
    }
    let n = EVENTS as u64;
    let expected = [
        ("spinner", serde_json::json!({ "timeout": n })),
        ("hog", serde_json::json!({ "memory": n })),
        ("recurse", serde_json::json!({ "trap": n })),
        ("trap", serde_json::json!({ "trap": n })),
        ("storm", serde_json::json!({ "output_too_large": n })),
        ("stamp", serde_json::json!({})),
        ("huge", serde_json::json!({ "output_too_large": n })),
        ("many", serde_json::json!({ "output_too_large": n })),
        ("thief", serde_json::json!({ "sink_refused": n })),
        ("echo", serde_json::json!({})),
    ]
    .map(|(name, failures)| (name.to_string(), failures));
    assert_eq!(failures(&status), expected);
    for plugin in status["plugins"].as_array().unwrap() {
        assert_eq!(plugin["health"]["calls"], n, "{}", plugin["name"]);
        assert_eq!(plugin["health"]["state"], "active", "suspend_after = 0");
    }
}

/// The same plugins run through the pipeline alone: each failure says what
/// happened, in words an operator can act on.
#[tokio::test]
async fn each_failure_is_reported_with_its_reason() {
    let (_dir, config) = write_config(&rogues_gallery("http://127.0.0.1:9"));
    let pipeline = Pipeline::from_config(&config, &Runtime::new().unwrap()).unwrap();
    let event = serde_json::from_str(include_str!("../examples/events/normalized/front-door-granted.json")).unwrap();
    let outcome = pipeline.run(event).await;
    let failures: Vec<(&str, &str, String)> = outcome
        .failures
        .iter()
        .map(|(plugin, failure)| (plugin.as_str(), failure.reason().as_str(), failure.to_string()))
        .collect();
    let expect = |plugin: &str, reason: &str, says: &str| {
        let found = failures.iter().find(|(p, _, _)| *p == plugin).unwrap();
        assert_eq!(found.1, reason, "{plugin}");
        assert!(found.2.contains(says), "{plugin}: `{says}` is not in `{}`", found.2);
    };
    expect("spinner", "timeout", "still running at its 50ms deadline");
    expect("hog", "memory", "tried to grow past its 16777216-byte limit");
    expect("recurse", "trap", "call stack exhausted");
    expect("trap", "trap", "unreachable");
    expect("storm", "output_too_large", "more than 100 log lines");
    expect("huge", "output_too_large", "at most 262144");
    expect("many", "output_too_large", "attributes, at most 64");
    expect("thief", "sink_refused", "tried to send to `vault`");
    assert_eq!(failures.len(), 8);
    assert!(matches!(outcome.failures[0].1, PluginFailure::Timeout(d) if d.as_millis() == 50));
    // The event went on to the well-behaved action.
    assert_eq!(outcome.commands.len(), 1);
    assert_eq!(outcome.commands[0].plugin, "echo");
}

/// Two misbehaving filters in front of the lights action: the host answers
/// every request and the lights go on each time.
#[tokio::test(flavor = "multi_thread")]
async fn failing_plugins_are_skipped_and_the_host_keeps_serving() {
    let sink = Sink::start().await;
    let filters = plugins(&[
        PluginTable::new("spinner", "filter", "loop-forever").set("on_error", "skip"),
        PluginTable::new("hog", "filter", "memory-hog").set("on_error", "skip"),
    ]);
    let host = Host::start(&lights_config(&filters, &sink.url("/api/services/light/turn_on"))).await;
    unlock(&host, "Front Door", 1).await;
    unlock(&host, "Front Door", 2).await;
    host.stop().await;
    let bodies: Vec<String> = sink.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, [r#"{"entity_id":"light.front_door"}"#; 2]);
}

/// A plugin failing `suspend_after` times is not called for `suspend_for`;
/// then one trial call, which fails again and suspends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_failing_is_suspended_then_tried_again() {
    let sink = Sink::start().await;
    let trap = PluginTable::new("trap", "filter", "misbehave")
        .set("on_error", "skip")
        .set("suspend_after", 2)
        .set("suspend_window", "1m")
        .set("suspend_for", "3s")
        .config("misbehave", "trap")
        .render();
    let config = format!(
        "{}\n[admin]\ntoken_file = \"{{secret_file}}\"\n",
        lights_config(&trap, &sink.url("/on"))
    );
    let clock = vestibule::time::Clock::manual();
    let host = Host::start_with_clock(&config, &clock).await;
    for n in 0..4 {
        unlock(&host, "Front Door", n).await;
    }
    sink.wait_for(Duration::from_secs(20), |r| r.len() >= 4).await;
    let health = status(&host).await["plugins"][0]["health"].clone();
    assert_eq!(health["failures"]["trap"], 2, "{health}");
    assert_eq!(health["skipped_while_suspended"], 2, "{health}");
    assert_eq!(health["state"], "suspended", "{health}");
    assert!(health["suspended_until"].is_string());

    // Still suspended a moment before `suspend_for` is over…
    clock.advance(Duration::from_millis(2900));
    unlock(&host, "Front Door", 4).await;
    sink.wait_for(Duration::from_secs(20), |r| r.len() >= 5).await;
    let health = status(&host).await["plugins"][0]["health"].clone();
    assert_eq!(health["skipped_while_suspended"], 3, "{health}");
    // …and tried again once it is.
    clock.advance(Duration::from_millis(200));
    unlock(&host, "Front Door", 5).await;
    sink.wait_for(Duration::from_secs(20), |r| r.len() >= 6).await;
    let health = status(&host).await["plugins"][0]["health"].clone();
    assert_eq!(health["failures"]["trap"], 3, "the trial call ran: {health}");
    assert_eq!(health["state"], "suspended", "and failed, so suspended again: {health}");
    host.stop().await;
    assert_eq!(
        sink.received().len(),
        6,
        "the lights went on every time: `trap` is skipped"
    );
}

/// `on_error = "dead-letter"`: the event stops at the failing plugin, with
/// none of its commands, and waits in the dead letters; once the plugin is
/// fixed, `dead-letters retry --event` runs it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_policy_stops_the_event_until_it_is_retried() {
    let sink = Sink::start().await;
    let filter = |behaviour: &str| {
        PluginTable::new("gate", "filter", "misbehave")
            .set("on_error", "dead-letter")
            .config("misbehave", behaviour)
            .render()
    };
    let config = |behaviour: &str| {
        format!(
            "[store]\npath = \"data\"\n{}",
            lights_config(&filter(behaviour), &sink.url("/on"))
        )
    };
    let host = Host::start(&config("trap")).await;
    unlock(&host, "Front Door", 0).await;

    let cli = |args: &[&str]| {
        let output = vestibule()
            .args(args)
            .arg("--config")
            .arg(&host.config)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let mut listed = String::new();
    for _ in 0..100 {
        listed = cli(&["dead-letters", "list"]);
        if listed.contains("gate") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(listed.contains("Events a plugin stopped"), "{listed}");
    let row = listed.lines().find(|l| l.contains("gate")).unwrap();
    assert!(row.contains("trap") && row.contains("access.granted"), "{row}");
    let seq = row.split_whitespace().next().unwrap().to_string();
    assert!(sink.received().is_empty(), "no command of a stopped event is sent");

    // Fix the plugin's config; the host reloads; retry the event.
    let secret = host.config.parent().unwrap().join("unifi-secret").display().to_string();
    std::fs::write(&host.config, config("none").replace("{secret_file}", &secret)).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let retried = cli(&["dead-letters", "retry", "--event", &seq]);
    assert!(retried.contains("1 event(s) back in the journal"), "{retried}");
    let received = sink.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await;
    assert_eq!(received.len(), 1, "the retried event went through");
    assert!(!cli(&["dead-letters", "list"]).contains("gate"));
    host.stop().await;
}

/// A component is checked against the world it is declared as: an action
/// (which imports `sinks`) cannot be loaded as a filter, so a filter can
/// never send commands.
#[test]
fn a_component_must_fit_its_declared_world() {
    let text = format!(
        "[[plugins]]\nname = \"sneaky\"\nworld = \"filter\"\npath = \"{}\"\n",
        plugin("lights-on-unlock").display()
    );
    let (_dir, config) = write_config(&text);
    let err = Pipeline::from_config(&config, &Runtime::new().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugins[0].path: "), "{err}");
    assert!(err.contains("does not fit the `filter` world"), "{err}");
    assert!(err.contains("vestibule:plugin/sinks"), "{err}");
}

/// A plugin reaches nothing the WIT contract does not hand it: no files,
/// no environment, no network; its clock reads the time the event was
/// received and stands still — unless the operator gives it the real one.
#[tokio::test]
async fn a_plugin_reaches_no_files_environment_network_or_clock() {
    let probe = async |clock: &str| {
        let text = format!(
            "[[plugins]]\nname = \"probe\"\nworld = \"enricher\"\npath = \"{}\"\ndeadline = \"1s\"\n{clock}\n",
            plugin("probe").display()
        );
        let (_dir, config) = write_config(&text);
        let pipeline = Pipeline::from_config(&config, &Runtime::new().unwrap()).unwrap();
        let event: vestibule::event::Event =
            serde_json::from_str(include_str!("../examples/events/normalized/front-door-granted.json")).unwrap();
        let received_at = event.received_at;
        let outcome = pipeline.run(event).await;
        assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
        let event = outcome.event.unwrap();
        let seen = |key: &str| {
            let attribute = event.attributes.iter().find(|a| a.key == key).unwrap();
            attribute.value.clone()
        };
        (
            received_at,
            seen("clock"),
            seen("monotonic"),
            seen("env"),
            seen("files"),
            seen("net"),
        )
    };

    let (received_at, clock, monotonic, env, files, net) = probe("").await;
    assert_eq!(clock, received_at.to_string(), "the wall clock reads the event's time");
    assert_eq!(monotonic, "still");
    assert_eq!(env, "0", "no environment");
    assert_eq!(
        files, "/: NotFound; .: NotFound; /etc/passwd: NotFound",
        "no file system"
    );
    assert_ne!(net, "connected");

    let before = now() as u128 * 1000;
    let (_, clock, monotonic, ..) = probe("clock = \"real\"").await;
    let clock: u128 = clock.parse().unwrap();
    assert!(clock >= before && clock < before + 60_000, "the real clock: {clock}");
    assert_eq!(monotonic, "moves");
}

/// The `misbehave` filter doing `what`, with `settings` (TOML lines); it is
/// skipped when it fails, so that the tests see the events behind it.
fn misbehaving(name: &str, what: &str) -> PluginTable {
    PluginTable::new(name, "filter", "misbehave")
        .set("on_error", "skip")
        .config("misbehave", what)
}

fn front_door_event() -> vestibule::event::Event {
    serde_json::from_str(include_str!("../examples/events/normalized/front-door-granted.json")).unwrap()
}

/// A plugin that sleeps for an hour waits in a WASI clock subscription —
/// host code, where epoch interruption never fires. Its deadline still
/// bounds the call, with the event's clock and with the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_plugin_is_stopped_at_its_deadline_with_either_clock() {
    for clock in ["event", "real"] {
        let text = misbehaving("sleeper", "sleep")
            .set("deadline", "200ms")
            .set("clock", clock)
            .render();
        let (_dir, config) = write_config(&text);
        let spec = &config.plugins[0];
        let plugin = Runtime::new().unwrap().load(spec, &config.resolve(&spec.path)).unwrap();
        let call = tokio::time::timeout(Duration::from_secs(60), plugin.call(&front_door_event()))
            .await
            .unwrap_or_else(|_| panic!("clock {clock}: the call was still running a minute later"));
        assert_eq!(
            call.result,
            Err(PluginFailure::Timeout(Duration::from_millis(200))),
            "clock {clock}"
        );
        // Reported at its deadline, not when the sleep would have ended
        // (bound generous for a loaded machine).
        assert!(
            call.elapsed < Duration::from_secs(10),
            "clock {clock}: {:?}",
            call.elapsed
        );
    }
}

/// In the host, the sleeper times out on every event, is counted, and its
/// breaker opens; the events behind it go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_plugin_does_not_stall_the_pipeline() {
    const EVENTS: usize = 8;
    let sink = Sink::start().await;
    let config = format!(
        "[admin]\ntoken_file = \"{{secret_file}}\"\n{}",
        lights_config(&misbehaving("sleeper", "sleep").render(), &sink.url("/on"))
    );
    let host = Host::start(&config).await;
    for n in 0..EVENTS {
        unlock(&host, "Front Door", n).await;
    }
    let received = sink.wait_for(Duration::from_secs(60), |r| r.len() >= EVENTS).await;
    assert_eq!(received.len(), EVENTS, "every event went on past the sleeper");
    let health = status(&host).await["plugins"][0]["health"].clone();
    host.stop().await;
    assert_eq!(health["failures"]["timeout"], 5, "{health}");
    assert_eq!(health["calls"], 5, "{health}");
    assert_eq!(health["skipped_while_suspended"], 3, "{health}");
    assert_eq!(health["state"], "suspended", "{health}");
}

/// Plugins run on threads apart from those that answer vendors: while
/// spinning plugins hold every pipeline thread until their deadline, the
/// host still answers requests — the answers come back before any of those
/// calls has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_running_to_their_deadline_hold_no_thread_a_vendor_waits_on() {
    let _turn = crate::support::heavy();
    // As many spinning calls as the pipeline has threads (one per core),
    // each on a door of its own so that they run at once.
    let spinning = std::thread::available_parallelism().map_or(2, usize::from);
    let spinner = PluginTable::new("spinner", "filter", "loop-forever")
        .set("deadline", "5s")
        .set("instances", spinning as i64)
        .set("on_error", "skip")
        // Once they time out, the requests below skip it: the test ends.
        .set("suspend_after", spinning as i64)
        .set("suspend_for", "1h");
    let config = format!("{OFFICE}\n{}", plugins(&[spinner]));
    let host = Host::start(&config).await;
    for n in 0..spinning {
        unlock(&host, &format!("Door {n}"), n).await;
    }
    // Time for the calls to start; the answers below must not wait for them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..5 {
        unlock(&host, "Front Door", spinning + n).await;
    }
    let health = status(&host).await["plugins"][0]["health"].clone();
    assert_eq!(
        health["failures"],
        serde_json::json!({}),
        "answered while every spinning call was still running: {health}"
    );
    // And they did run, each to its deadline.
    let timed_out = serde_json::json!({ "timeout": spinning });
    for _ in 0..300 {
        if status(&host).await["plugins"][0]["health"]["failures"] == timed_out {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = status(&host).await["plugins"][0]["health"].clone();
    host.stop().await;
    assert_eq!(health["failures"], timed_out, "{health}");
}

/// SIGTERM while a plugin sleeps: the host stops cleanly, and what it had
/// not processed runs at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopped_while_a_plugin_sleeps_stops_cleanly_and_catches_up() {
    // More sleeping than shutdown waits for (10 s): some are left over.
    const EVENTS: usize = 7;
    let sink = Sink::start().await;
    let sleeper = misbehaving("sleeper", "sleep")
        .set("deadline", "2s")
        .set("suspend_after", 0)
        .render();
    let addr = crate::support::free_addr();
    let config = format!(
        "[store]\npath = \"data\"\n{}",
        lights_config(&sleeper, &sink.url("/on"))
    )
    .replacen("[server]\n", &format!("[server]\nlisten = \"{addr}\"\n"), 1);
    let (dir, config) = write_config(&config);
    let host = crate::support::Process::start(&config.file);
    let url = format!("http://{addr}/ingest/office");
    for n in 0..EVENTS {
        let body = unifi_unlock("Front Door").replacen('{', &format!("{{\"n\":{n},"), 1);
        let (status, answer) =
            crate::support::post(&url, &crate::support::unifi_signature(SECRET, now(), &body), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    host.signal("TERM");
    let (code, log) = host.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{}", log.join("\n"));
    assert!(!log.iter().any(|l| l.contains("panicked")), "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("Left in the journal for the next start")),
        "{}",
        log.join("\n")
    );

    let host = crate::support::Process::start(&config.file);
    let received = sink.wait_for(Duration::from_secs(60), |r| r.len() >= EVENTS).await;
    drop(host);
    drop(dir);
    assert_eq!(
        received.len(),
        EVENTS,
        "every accepted event was processed, after the restart if not before"
    );
}

/// What a plugin writes reaches the host's log bounded and escaped: a flood
/// of long lines is cut at 4 KiB a line and 64 KiB a call, and fails the
/// call; a newline or a terminal escape cannot start a line that looks like
/// the host's; a megabyte of error message is cut to a kilobyte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_plugin_logs_is_bounded_and_cannot_forge_host_lines() {
    const EVENTS: usize = 3;
    let sink = Sink::start().await;
    let addr = crate::support::free_addr();
    let plugins = [
        misbehaving("flood", "log-flood").set("suspend_after", 0).render(),
        misbehaving("forger", "forge").render(),
        misbehaving("liar", "fail-long").set("suspend_after", 0).render(),
    ]
    .concat();
    let config = lights_config(&plugins, &sink.url("/on")).replacen(
        "[server]\n",
        &format!("[server]\nlisten = \"{addr}\"\n"),
        1,
    );
    let (dir, config) = write_config(&config);
    let host = crate::support::Process::start(&config.file);
    for n in 0..EVENTS {
        let body = unifi_unlock("Front Door").replacen('{', &format!("{{\"n\":{n},"), 1);
        let url = format!("http://{addr}/ingest/office");
        let (status, answer) =
            crate::support::post(&url, &crate::support::unifi_signature(SECRET, now(), &body), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    sink.wait_for(Duration::from_secs(30), |r| r.len() >= EVENTS).await;
    host.wait_for_log("more than 65536 bytes of log lines", Duration::from_secs(10));
    let log = host.log();
    drop(host);
    drop(dir);

    let bytes: usize = log.iter().map(|l| l.len() + 1).sum();
    // Without the bounds: 3 × 99 lines of 100 KB, and 3 MB of error.
    assert!(bytes < 512 << 10, "{bytes} bytes of log");
    let longest = log.iter().map(String::len).max().unwrap();
    assert!(longest < 6 << 10, "a line of {longest} bytes");
    assert!(
        log.iter()
            .all(|l| !l.starts_with("2099") && !l.chars().any(|c| c.is_control())),
        "a forged line: {log:#?}"
    );
    let forged: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("vestibule::plugin: Looks fine."))
        .collect();
    assert_eq!(forged.len(), EVENTS, "{log:#?}");
    assert!(
        forged[0].contains(r"Looks fine.\n2099-01-01T00:00:00Z ERROR vestibule::admin"),
        "{}",
        forged[0]
    );
    assert!(forged[0].contains(r"key\r\n2099"), "{}", forged[0]);
    assert!(forged[0].contains(r"value\u{1b}[2Jcleared"), "{}", forged[0]);
    let lies: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("Plugin failed") && l.contains("plugin=liar"))
        .collect();
    assert_eq!(lies.len(), EVENTS, "{lies:#?}");
    assert!(lies.iter().all(|l| l.len() < 2048), "{lies:#?}");
}

/// A filter that fails does not let the event through: by default a
/// failing filter drops it — also while its breaker has it suspended — and
/// the journal says why. An enricher that fails is skipped by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_filter_fails_closed_by_default() {
    const EVENTS: usize = 7;
    let sink = Sink::start().await;
    let trap = PluginTable::new("gate", "filter", "misbehave")
        .config("misbehave", "trap")
        .render();
    let config = format!("[store]\npath = \"data\"\n{}", lights_config(&trap, &sink.url("/on")));
    let host = Host::start(&config).await;
    for n in 0..EVENTS {
        unlock(&host, "Front Door", n).await;
    }
    let config_file = host.config.clone();
    let cli = |args: &[&str]| {
        let output = vestibule()
            .args(args)
            .arg("--config")
            .arg(&config_file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let listed = cli(&["events", "list"]);
        if listed.matches("processed").count() >= EVENTS || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    host.stop().await;
    assert!(sink.received().is_empty(), "the lights went on: {:?}", sink.received());
    assert_eq!(
        listed.matches("gate: failed (trap), event dropped").count(),
        5,
        "{listed}"
    );
    assert_eq!(
        listed.matches("gate: failed (suspended), event dropped").count(),
        EVENTS - 5,
        "suspended after 5, it still drops: {listed}"
    );
}
