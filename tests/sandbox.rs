//! Plugins that misbehave are cut off, and the host goes on: a filter that
//! loops forever hits its deadline, one that allocates without bound hits its
//! memory limit; the event goes on without them and the next request is
//! answered normally.

mod support;

use support::{Host, SECRET, Sink, now, plugin, post, unifi_signature, unifi_unlock};
use vestibule::config::Config;
use vestibule::pipeline::Pipeline;
use vestibule::plugins::{PluginFailure, Runtime};

/// Two misbehaving filters in front of the lights action.
fn config(sink_url: &str) -> String {
    format!(
        r#"
        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"

        [[plugins]]
        name = "spinner"
        world = "filter"
        path = "{spinner}"
        deadline = "50ms"

        [[plugins]]
        name = "hog"
        world = "filter"
        path = "{hog}"
        memory = "16MiB"

        [[plugins]]
        name = "lights"
        world = "action"
        path = "{lights}"
        sinks = ["lights"]
        [plugins.config.entities]
        "Front Door" = "light.front_door"

        [[sinks]]
        name = "lights"
        kind = "http"
        url = "{sink_url}"
        "#,
        spinner = plugin("loop-forever").display(),
        hog = plugin("memory-hog").display(),
        lights = plugin("lights-on-unlock").display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_plugins_are_skipped_and_the_host_keeps_serving() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink.url("/api/services/light/turn_on"))).await;

    for _ in 0..2 {
        let body = unifi_unlock("Front Door");
        // Distinct bodies, so distinct events.
        let body = body.replacen('{', &format!("{{\"n\":{},", rand_suffix()), 1);
        let (status, answer) = post(
            &host.url("/ingest/office"),
            &unifi_signature(SECRET, now(), &body),
            body,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }

    host.stop().await;
    let bodies: Vec<String> = sink.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, [r#"{"entity_id":"light.front_door"}"#; 2]);
}

#[test]
fn each_failure_is_reported_with_its_reason() {
    // Nothing is delivered here: the pipeline alone is run.
    let text = config("http://127.0.0.1:9/");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vestibule.toml");
    std::fs::write(&file, text).unwrap();
    let config = Config::load(&file).unwrap();
    let pipeline = Pipeline::from_config(&config, &Runtime::new().unwrap()).unwrap();

    let event = serde_json::from_str(include_str!("../examples/events/normalized/front-door-granted.json")).unwrap();
    let outcome = pipeline.run(event);
    let reasons: Vec<(&str, &str)> = outcome
        .failures
        .iter()
        .map(|(plugin, failure)| (plugin.as_str(), failure.reason()))
        .collect();
    assert_eq!(reasons, [("spinner", "timeout"), ("hog", "memory")]);
    assert!(matches!(outcome.failures[0].1, PluginFailure::Timeout(d) if d.as_millis() == 50));
    assert!(matches!(outcome.failures[1].1, PluginFailure::Memory(16_777_216)));
    // The event went on to the action.
    assert_eq!(outcome.commands.len(), 1);
    assert_eq!(outcome.commands[0].body, r#"{"entity_id":"light.front_door"}"#);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A component is checked against the world it is declared as: an action
/// (which imports `sinks`) cannot be loaded as a filter, so a filter can
/// never send commands.
#[test]
fn a_component_must_fit_its_declared_world() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vestibule.toml");
    let text = format!(
        "[[plugins]]\nname = \"sneaky\"\nworld = \"filter\"\npath = \"{}\"\n",
        plugin("lights-on-unlock").display()
    );
    std::fs::write(&file, text).unwrap();
    let config = Config::load(&file).unwrap();
    let err = Pipeline::from_config(&config, &Runtime::new().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugins[0].path: "), "{err}");
    assert!(err.contains("does not fit the `filter` world"), "{err}");
    assert!(err.contains("vestibule:plugin/sinks"), "{err}");
}
