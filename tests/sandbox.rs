//! Plugins that misbehave are cut off, and the host goes on: a filter that
//! loops forever hits its deadline, one that allocates without bound hits its
//! memory limit; the event goes on without them and the next request is
//! answered normally.

mod support;

use support::{Host, SECRET, Sink, lights_config, now, plugin, post, unifi_signature, unifi_unlock, write_config};
use vestibule::pipeline::Pipeline;
use vestibule::plugins::{PluginFailure, Runtime};

/// Two misbehaving filters in front of the lights action.
fn config(sink_url: &str) -> String {
    let filters = format!(
        r#"
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
        "#,
        spinner = plugin("loop-forever").display(),
        hog = plugin("memory-hog").display(),
    );
    lights_config(&filters, sink_url)
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
    let (_dir, config) = write_config(&config("http://127.0.0.1:9/"));
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
