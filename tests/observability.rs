//! What operators see of a running host: `GET /metrics` after real traffic
//! (and that the Grafana dashboard in `examples/` queries only metrics that
//! exist), silent sources and doors, and the log as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{self, Host, Process, SECRET, Sink, get, post};

/// `[admin]` with the test secret as its token.
const ADMIN: &str = r#"
[admin]
token_file = "{secret_file}"
"#;

fn bearer() -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {SECRET}"))]
}

/// One scrape: each sample by its series (`name{labels}`), and each
/// family's name with its type.
struct Scrape {
    samples: BTreeMap<String, f64>,
    families: BTreeMap<String, String>,
    text: String,
}

impl Scrape {
    async fn of(host: &Host) -> Scrape {
        let (status, text) = get(&host.url("/metrics"), &bearer()).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let mut samples = BTreeMap::new();
        let mut families = BTreeMap::new();
        for line in text.lines() {
            if let Some(family) = line.strip_prefix("# TYPE ") {
                let (name, kind) = family.split_once(' ').unwrap();
                families.insert(name.to_string(), kind.to_string());
            } else if !line.starts_with('#') {
                let (series, value) = line.rsplit_once(' ').unwrap();
                samples.insert(series.to_string(), value.parse().unwrap());
            }
        }
        Scrape {
            samples,
            families,
            text,
        }
    }

    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{}", self.text))
    }

    /// Whether a query may name `metric`: a sample has that name, or a
    /// family does with the suffix its type gives samples.
    fn knows(&self, metric: &str) -> bool {
        let sampled = self.samples.keys().any(|s| s.split('{').next() == Some(metric));
        let declared = self.families.iter().any(|(family, kind)| {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            suffixes.iter().any(|suffix| format!("{family}{suffix}") == metric)
        });
        sampled || declared
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_events_plugins_deliveries_and_reloads() {
    let sink = Sink::start().await;
    // A filter whose failures stop events as dead letters: those series exist too.
    let filter = format!(
        r#"
        [[plugins]]
        name = "front-doors"
        world = "filter"
        path = "{}"
        on_error = "dead-letter"
        [plugins.config]
        doors = ["Front Door", "Garage"]
        "#,
        support::plugin("door-filter").display()
    );
    let config = format!(
        "{}\n{ADMIN}",
        support::lights_config(&filter, &sink.url("/api/services/light/turn_on"))
    );
    let host = Host::start(&config).await;

    let (status, _) = get(&host.url("/metrics"), &[]).await;
    assert_eq!(status, 401, "the metrics need the admin token");
    let (status, _) = get(&host.url("/metrics"), &[("authorization", "Bearer wrong".into())]).await;
    assert_eq!(status, 401);

    let front = support::unifi_unlock("Front Door");
    assert_eq!(host.post_unifi(front.clone()).await.0, 200);
    assert_eq!(host.post_unifi(support::unifi_unlock("Garage")).await.0, 200);
    let forged = support::unifi_signature("not-the-secret", support::now(), &front);
    assert_eq!(post(&host.url("/ingest/office"), &forged, front.clone()).await.0, 401);
    assert_eq!(post(&host.url("/ingest/nowhere"), &[], "{}").await.0, 404);
    // A later signature over the same event: the vendor's retry.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, said) = host.post_unifi(front.clone()).await;
    assert_eq!((status, said.contains("duplicate")), (200, true), "{said}");
    let received = sink.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await;
    assert_eq!(received.len(), 1);
    let (status, report) = post(&host.url("/admin/reload"), &bearer(), "").await;
    assert_eq!(status, 200, "{report}");

    let scrape = Scrape::of(&host).await;
    let requests = |result: &str| {
        scrape.value(&format!(
            r#"vestibule_requests_total{{source="office",vendor="unifi-access",result="{result}"}}"#
        ))
    };
    assert_eq!(requests("accepted"), 2.0);
    assert_eq!(requests("duplicate"), 1.0);
    assert_eq!(requests("signature_invalid"), 1.0);
    assert_eq!(
        scrape.value(r#"vestibule_requests_total{source="-",vendor="-",result="not_found"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_events_total{source="office",kind="access.granted"}"#),
        2.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_plugin_calls_total{plugin="lights",outcome="commands"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_plugin_calls_total{plugin="lights",outcome="none"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_plugin_call_duration_seconds_count{plugin="lights"}"#),
        2.0
    );
    assert!(scrape.value(r#"vestibule_plugin_call_duration_seconds_sum{plugin="lights"}"#) > 0.0);
    assert_eq!(scrape.value(r#"vestibule_plugin_suspended{plugin="lights"}"#), 0.0);
    assert_eq!(
        scrape.value(r#"vestibule_deliveries_total{sink="lights",outcome="delivered"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_delivery_duration_seconds_count{sink="lights"}"#),
        1.0
    );
    assert_eq!(scrape.value(r#"vestibule_commands_pending{sink="lights"}"#), 0.0);
    assert_eq!(
        scrape.value(r#"vestibule_command_oldest_pending_age_seconds{sink="lights"}"#),
        0.0
    );
    assert_eq!(scrape.value("vestibule_queue_capacity"), 1024.0);
    assert_eq!(scrape.value("vestibule_queue_depth"), 0.0);
    assert!(scrape.value("vestibule_journal_commit_duration_seconds_count") >= 1.0);
    assert!(scrape.value("vestibule_journal_batch_size_sum") >= scrape.value("vestibule_journal_batch_size_count"));
    assert_eq!(scrape.value(r#"vestibule_reloads_total{result="ok"}"#), 1.0);
    assert_eq!(scrape.value(r#"vestibule_reloads_total{result="failed"}"#), 0.0);
    assert_eq!(
        scrape.value(r#"vestibule_dead_letters_total{sink="lights",reason="expired"}"#),
        0.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_dead_events_total{plugin="front-doors",reason="timeout"}"#),
        0.0
    );
    assert_eq!(
        scrape.value(r#"vestibule_plugin_calls_total{plugin="front-doors",outcome="kept"}"#),
        2.0
    );
    let last = scrape.value(r#"vestibule_source_last_event_timestamp_seconds{source="office"}"#);
    assert!((last - support::now() as f64).abs() < 60.0, "{last}");
    assert!(scrape.value(r#"vestibule_door_last_event_timestamp_seconds{source="office",door="Garage"}"#) > 0.0);
    for family in scrape.families.keys() {
        assert!(family.starts_with("vestibule_"), "{family}");
    }
    // Nothing secret is in the text.
    assert!(!scrape.text.contains(SECRET));

    // Every metric the dashboard's panels query exists.
    let dashboard = std::fs::read_to_string(support::workspace().join("examples/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} queries nothing", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("vestibule_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                queried.push((panel["title"].to_string(), name));
            }
        }
    }
    assert!(queried.len() >= 16, "{queried:?}");
    for (panel, metric) in &queried {
        assert!(
            scrape.knows(metric),
            "panel {panel} queries {metric}, which /metrics does not have"
        );
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_source_and_door_raise_events_and_their_return_too() {
    let sink = Sink::start().await;
    let config = format!(
        r#"
        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"
        silent_after = "1s"
        [sources.silent_doors]
        "Front Door" = "2s"
        {echo}
        {ADMIN}
        "#,
        echo = support::echo_tables(&format!("kind = \"http\"\nurl = \"{}\"", sink.url("/events"))),
    );
    let host = Host::start(&config).await;
    let events = |received: &[support::Received]| -> Vec<serde_json::Value> {
        received
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    };
    let of_kind = |events: &[serde_json::Value], kind: &str| -> Vec<serde_json::Value> {
        events.iter().filter(|e| e["kind"] == kind).cloned().collect()
    };

    // Nothing arrives: first the source, then its door, are reported once each.
    let received = sink.wait_for(Duration::from_secs(10), |r| r.len() >= 2).await;
    let silent = of_kind(&events(&received), "source.silent");
    assert_eq!(silent.len(), 2, "{silent:#?}");
    assert_eq!(silent[0]["source"], "office");
    assert_eq!(silent[0]["door"], serde_json::Value::Null);
    assert_eq!(silent[1]["door"]["name"], "Front Door");
    assert_eq!(silent[0]["vendor_event_type"], "vestibule.source.silent");
    let attributes = silent[0]["attributes"].to_string();
    assert!(attributes.contains("silent_since"), "{attributes}");
    let scrape = Scrape::of(&host).await;
    assert_eq!(scrape.value(r#"vestibule_source_silent{source="office"}"#), 1.0);
    assert_eq!(
        scrape.value(r#"vestibule_door_silent{source="office",door="Front Door"}"#),
        1.0
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 2, "a silence is reported once");

    // The door speaks again: the event, and both silences end.
    assert_eq!(host.post_unifi(support::unifi_unlock("Front Door")).await.0, 200);
    let received = sink.wait_for(Duration::from_secs(10), |r| r.len() >= 5).await;
    let all = events(&received);
    assert_eq!(of_kind(&all, "access.granted").len(), 1, "{all:#?}");
    let back = of_kind(&all, "source.back");
    assert_eq!(back.len(), 2, "{all:#?}");
    assert!(back.iter().any(|e| e["door"].is_null()));
    assert!(back.iter().any(|e| e["door"]["name"] == "Front Door"));
    let scrape = Scrape::of(&host).await;
    assert_eq!(scrape.value(r#"vestibule_source_silent{source="office"}"#), 0.0);
    assert_eq!(
        scrape.value(r#"vestibule_events_total{source="office",kind="source.back"}"#),
        2.0
    );
    host.stop().await;
}

#[test]
fn json_logs_carry_the_same_fields_as_text() {
    let (_dir, config) = support::write_config(
        r#"
        [server]
        listen = "127.0.0.1:0"
        [log]
        format = "json"
        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{secret_file}"
        "#,
    );
    let host = Process::start(&config.file);
    let addr = host.addr();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = support::unifi_unlock("Front Door");
    let forged = support::unifi_signature("not-the-secret", support::now(), &body);
    let (status, _) = runtime.block_on(post(&format!("http://{addr}/ingest/office"), &forged, body));
    assert_eq!(status, 401);
    host.wait_for_log("signature_invalid", Duration::from_secs(10));
    host.signal("TERM");
    let (code, log) = host.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log:#?}");
    let lines: Vec<serde_json::Value> = log
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "message", "target"] {
            assert!(line.get(field).is_some(), "no {field} in {line}");
        }
    }
    let listening = lines.iter().find(|l| l["message"] == "Listening.").unwrap();
    assert_eq!(listening["addr"], addr.to_string());
    let refused = lines.iter().find(|l| l["reason"] == "signature_invalid").unwrap();
    assert_eq!(
        (refused["level"].as_str(), refused["source"].as_str()),
        (Some("WARN"), Some("office"))
    );
    assert_eq!(refused["path"], "/ingest/office");
    assert!(lines.iter().any(|l| l["message"] == "Stopped."));
}
