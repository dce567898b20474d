//! Secrecy levels: the same UniFi Access, Verkada and ProdataKey events
//! reach three plugins cleared to levels 0, 1 and 2; each sends what it saw
//! to its own sink. Credentials are gone from level 1 up, names, e-mail
//! addresses and phone numbers from level 2 — from the normalized event and
//! from the vendor's raw JSON alike — and nothing else is.

use std::time::Duration;

use crate::support::{Host, Sink, plugin};
use serde_json::Value;
use vestibule::config::VendorKind;
use vestibule::vendors;

/// A ProdataKey panel event as it comes with PDK's own `secrecyLevel` 0: the
/// credential and PIN presented, and the person's name.
const PDK_WITH_CREDENTIALS: &str = r#"{"id":"5f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b","body":{"doorId":1,"personId":7,"requestFactor":"CARD_OR_PIN","credential":"0004729311","pin":"2580"},"metadata":{"occurred":1646922708300,"doorName":"Front Door","personName":"Grace Hopper"},"panelId":"1070000","topic":"door.request.allowed"}"#;

/// Each case: the vendor, the body, the credentials and the personal data in it.
fn cases() -> Vec<(VendorKind, String, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            VendorKind::UnifiAccess,
            vendors::sample(VendorKind::UnifiAccess, "access.door.unlock")
                .unwrap()
                .to_string(),
            vec!["04A1B2C3D4E5F6"],
            vec!["Ada Lovelace"],
        ),
        (
            VendorKind::Verkada,
            vendors::sample(VendorKind::Verkada, "door_code_entered_accepted")
                .unwrap()
                .to_string(),
            vec!["4711"],
            vec!["John", "Smith", "john.smith@example.com", "+1234567890"],
        ),
        (
            VendorKind::Pdk,
            PDK_WITH_CREDENTIALS.to_string(),
            vec!["0004729311", "2580"],
            vec!["Grace Hopper"],
        ),
    ]
}

fn config(sink: &Sink) -> String {
    let mut text = String::new();
    for (vendor, ..) in cases() {
        text.push_str(&format!(
            "[[sources]]\nname = \"{vendor}\"\nvendor = \"{vendor}\"\nsecret_file = \"{{secret_file}}\"\n\n"
        ));
    }
    for level in 0..3 {
        text.push_str(&format!(
            "[[plugins]]\nname = \"level{level}\"\nworld = \"action\"\npath = \"{}\"\nsinks = [\"seen{level}\"]\n\
             secrecy = {level}\n[plugins.config]\nsink = \"seen{level}\"\n\n\
             [[sinks]]\nname = \"seen{level}\"\nkind = \"http\"\nurl = \"{}\"\n\n",
            plugin("echo-event").display(),
            sink.url(&format!("/{level}")),
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_sees_exactly_what_it_is_cleared_for() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let cases = cases();
    for (vendor, body, ..) in &cases {
        let (status, answer) = host.post_signed(vendor.as_str(), *vendor, body.clone()).await;
        assert_eq!(status, 200, "{vendor}: {answer}");
    }
    let received = sink.wait_for(Duration::from_secs(20), |r| r.len() >= 9).await;
    host.stop().await;
    assert_eq!(received.len(), 9);

    for (vendor, _, credentials, people) in &cases {
        for level in 0..3 {
            let seen = received
                .iter()
                .filter(|r| r.path == format!("/{level}"))
                .find(|r| r.body.contains(&format!("\"vendor\":\"{vendor}\"")))
                .unwrap_or_else(|| panic!("{vendor} never reached level {level}"))
                .body
                .clone();
            let what = format!("{vendor} at level {level}");
            for credential in credentials {
                assert_eq!(
                    seen.contains(credential),
                    level == 0,
                    "{what}: credential {credential}: {seen}"
                );
            }
            for personal in people {
                assert_eq!(seen.contains(personal), level < 2, "{what}: {personal}: {seen}");
            }
            assert!(seen.contains("Front Door"), "{what}: the door is not personal: {seen}");
            let event: Value = serde_json::from_str(&seen).unwrap();
            let raw: Value = serde_json::from_str(event["raw"].as_str().unwrap()).unwrap();
            assert!(raw.is_object(), "{what}: raw is still the vendor's JSON");
            assert_eq!(event["credential"]["value"].is_null(), level > 0, "{what}");
            assert!(event["credential"]["method"].is_string(), "{what}: how, not what");
            assert_eq!(event["actor"]["name"].is_null(), level == 2, "{what}");
            assert!(event["actor"]["id"].is_string(), "{what}: the id stays, for lookups");
        }
    }
}

/// An event id derived from a PIN says nothing about the PIN: a plugin
/// cleared only to level 2 tries every 4-digit PIN against the id of a
/// Verkada code entry (which has no `event_id`, so its id is derived from
/// its fields, `input_value` among them) and finds nothing. The same event
/// sent again keeps its id, also after a restart on the same data folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_id_gives_no_redacted_field_away() {
    let sink = Sink::start().await;
    let config = format!(
        "[store]\npath = \"data\"\n\
         [[sources]]\nname = \"verkada\"\nvendor = \"verkada\"\nsecret_file = \"{{secret_file}}\"\n\
         [[plugins]]\nname = \"cracker\"\nworld = \"action\"\npath = \"{}\"\nsinks = [\"echo\"]\nsecrecy = 2\ndeadline = \"5s\"\n\
         [[sinks]]\nname = \"echo\"\nkind = \"http\"\nurl = \"{}\"\n",
        plugin("pin-cracker").display(),
        sink.url("/echo"),
    );
    let body = vendors::sample(VendorKind::Verkada, "door_code_entered_accepted").unwrap();
    assert!(body.contains(r#""input_value": "4711""#));
    let (dir, config) = crate::support::write_config(&config);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let runtime = vestibule::Runtime::new().unwrap();
        let app = vestibule::App::build(vestibule::Config::load(&config.file).unwrap(), &runtime)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest/verkada", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run(listener, async {
            let _ = stopped.await;
        }));
        let headers =
            vendors::get(VendorKind::Verkada).sign(crate::support::SECRET, crate::support::now(), body.as_bytes());
        let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let (status, answer) = crate::support::post(&url, &headers, body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        ids.push(answer["id"].as_str().unwrap().to_string());
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
    drop(dir);
    assert_eq!(ids[0], ids[1], "the same event, the same id, across a restart");
    let received = sink.received();
    assert_eq!(received.len(), 1, "the second delivery was a duplicate");
    assert_eq!(received[0].body, "not found");
}

/// The echo actions at levels 0, 1 and 2 after `enricher` (a `[[plugins]]`
/// table), with source `unifi-access`.
fn after(enricher: &str, sink: &Sink) -> String {
    let levels = config(sink);
    let unifi = levels.split("[[sources]]").nth(1).unwrap();
    let plugins = &levels[levels.find("[[plugins]]").unwrap()..];
    format!("[[sources]]{unifi}{enricher}\n{plugins}")
}

/// The UniFi unlock sample through the leaky enricher, cleared to
/// `settings`, doing `leak`; what the echo plugin at each level received.
async fn seen_after_leaky(settings: &str, leak: &str) -> Vec<Value> {
    let body = vendors::sample(VendorKind::UnifiAccess, "access.door.unlock").unwrap();
    let sink = Sink::start().await;
    let enricher = format!(
        "[[plugins]]\nname = \"leaky\"\nworld = \"enricher\"\npath = \"{}\"\n{settings}\n\
         [plugins.config]\nleak = \"{leak}\"\n",
        plugin("leaky-enricher").display()
    );
    let host = Host::start(&after(&enricher, &sink)).await;
    let (status, answer) = host
        .post_signed("unifi-access", VendorKind::UnifiAccess, body.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    let received = sink.wait_for(Duration::from_secs(20), |r| r.len() >= 3).await;
    host.stop().await;
    (0..3)
        .map(|level| {
            let body = &received.iter().find(|r| r.path == format!("/{level}")).unwrap().body;
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

/// A level-0 enricher that copies the card number and the name into an
/// attribute and into the door's name hands them to level 0 alone; marked
/// `public_output` by the operator, what it writes reaches every level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_privileged_enricher_adds_stays_at_its_level() {
    let card = "04A1B2C3D4E5F6";
    for public in [false, true] {
        let seen = seen_after_leaky(&format!("secrecy = 0\npublic_output = {public}"), "copy").await;
        let stolen = |event: &Value| {
            let attributes = event["attributes"].as_array().unwrap();
            let found = attributes.iter().find(|a| a["key"] == "stolen");
            found.map(|a| a["value"].as_str().unwrap().to_string())
        };
        assert_eq!(stolen(&seen[0]), Some(format!("{card}/Ada Lovelace")));
        assert_eq!(seen[0]["door"]["name"], format!("{card}/Ada Lovelace"));
        for level in 1..3 {
            let text = seen[level].to_string();
            if public {
                // The operator's choice: what it wrote reaches every level.
                assert_eq!(stolen(&seen[level]), stolen(&seen[0]), "public, level {level}: {text}");
            } else {
                assert!(!text.contains(card), "level {level}: {text}");
                assert!(!text.contains("Ada Lovelace/"), "level {level}: {text}");
                assert_eq!(stolen(&seen[level]), None, "level {level}: {text}");
                assert_eq!(seen[level]["door"]["name"], "Front Door", "level {level}");
            }
        }
    }
}

/// A level-2 enricher that forges the credential and clears the actor
/// changes nothing the level-0 plugins after it see of either, but for the
/// fields it could see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enricher_cannot_overwrite_what_it_cannot_see() {
    let seen = seen_after_leaky("secrecy = 2", "overwrite").await;
    assert_eq!(seen[0]["credential"]["value"], "04A1B2C3D4E5F6", "{}", seen[0]);
    assert_eq!(seen[0]["actor"]["name"], "Ada Lovelace", "{}", seen[0]);
    assert_eq!(seen[1]["actor"]["name"], "Ada Lovelace", "{}", seen[1]);
    assert!(
        seen[0]["actor"]["id"].is_null(),
        "the id it saw, it may clear: {}",
        seen[0]
    );
    assert!(
        seen[2]["actor"].is_null(),
        "at its own level the actor is gone: {}",
        seen[2]
    );
}
