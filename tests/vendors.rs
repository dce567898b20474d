//! Every vendor through the real server: each sample event in
//! `examples/events/<vendor>/` is signed or authenticated as the vendor does
//! it, posted, normalized, and seen by a real plugin (`echo-event`, cleared
//! to see everything), which forwards it to a real HTTP sink; what arrives
//! must equal the reviewed expectation in
//! `tests/expected/<vendor>/<type>.json`. Then every way a
//! request can fail authentication, with its status and reason.
//!
//! `VESTIBULE_BLESS=1` rewrites the expectations after a deliberate change
//! to a mapping; review the diff.

use std::path::Path;

use crate::support::{Host, SECRET, Sink, now, plugin};
use serde_json::Value;
use vestibule::cli::send;
use vestibule::config::VendorKind;
use vestibule::vendors;

const BASIC: &str = "vestibule:6601f1243d2ff70f";

/// The `[[sources]]` tables for every vendor, each at `/ingest/<vendor>`.
fn sources() -> String {
    let mut toml = String::new();
    for vendor in VendorKind::WEBHOOKS {
        let auth = match vendor {
            VendorKind::Unloc => "[sources.basic_auth]\nusername = \"vestibule\"\npassword_file = \"{secret_file}\"\n",
            VendorKind::Pdk => {
                "secret_file = \"{secret_file}\"\n[sources.basic_auth]\nusername = \"vestibule\"\npassword_file = \"{secret_file}\"\n"
            }
            _ => "secret_file = \"{secret_file}\"\n",
        };
        toml.push_str(&format!(
            "[[sources]]\nname = \"{vendor}\"\nvendor = \"{vendor}\"\n{auth}\n"
        ));
    }
    toml
}

fn config(sink: &Sink) -> String {
    format!(
        "{}\n[[plugins]]\nname = \"echo\"\nworld = \"action\"\npath = \"{}\"\nsinks = [\"echo\"]\nsecrecy = 0\n\n[[sinks]]\nname = \"echo\"\nkind = \"http\"\nurl = \"{}\"\n",
        sources(),
        plugin("echo-event").display(),
        sink.url("/events"),
    )
}

/// The headers `vendor` sends with `body`, signed at `t`, with the right
/// credentials.
fn genuine(vendor: VendorKind, t: i64, body: &str) -> Vec<(String, String)> {
    let mut headers = vendors::get(vendor).sign(SECRET, t, body.as_bytes());
    if matches!(vendor, VendorKind::Unloc | VendorKind::Pdk) {
        headers.extend(send::sign(vendor, None, Some(BASIC), Vec::new()).headers);
    }
    headers
}

async fn post(host: &Host, vendor: VendorKind, headers: Vec<(String, String)>, body: &str) -> (u16, String) {
    let signed = send::Signed {
        body: body.as_bytes().to_vec(),
        headers,
    };
    send::post(&host.url(&format!("/ingest/{vendor}")), &signed)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_of_every_vendor_is_normalized_as_expected() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let started = now();
    let mut posted = 0;
    for &vendor in VendorKind::WEBHOOKS {
        for (event_type, body) in vendors::get(vendor).samples() {
            let (status, answer) = post(&host, vendor, genuine(vendor, now(), body), body).await;
            assert_eq!(status, 200, "{vendor} {event_type}: {answer}");
            posted += 1;
        }
    }
    host.stop().await;
    let finished = now();

    let received: Vec<Value> = sink
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(received.len(), posted, "one event per sample reached the plugin");

    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/expected");
    let bless = std::env::var_os("VESTIBULE_BLESS").is_some();
    let mut mismatches = Vec::new();
    for &vendor in VendorKind::WEBHOOKS {
        for (event_type, body) in vendors::get(vendor).samples() {
            let mut event = received
                .iter()
                .find(|e| e["vendor"] == vendor.as_str() && e["raw"] == *body)
                .unwrap_or_else(|| panic!("{vendor} {event_type} never reached the plugin"))
                .clone();
            // What depends on the moment of the test run.
            let received_at = event["received_at"].as_i64().unwrap();
            assert!((started * 1000..=(finished + 1) * 1000).contains(&received_at));
            let object = event.as_object_mut().unwrap();
            if vendor == VendorKind::StandardWebhooks {
                // The sender's `webhook-id` header, random per message.
                let id = object["id"].as_str().unwrap();
                assert!(id.starts_with("msg_"), "{event_type}: {id}");
                object.insert("id".into(), "(webhook-id)".into());
            } else {
                crate::support::mask_derived_id(object, body);
            }
            object.remove("received_at");
            object.remove("raw");
            let occurred = object["occurred_at"].as_i64().unwrap();
            if occurred == received_at {
                // The vendor sent no time: the receive time stands in.
                object.insert("occurred_at".into(), "received_at".into());
            } else if vendor == VendorKind::UnifiAccess {
                // UniFi's envelope has no event time: the signed delivery time.
                assert!(
                    (started * 1000..=(finished + 1) * 1000).contains(&occurred),
                    "{event_type}"
                );
                object.insert("occurred_at".into(), "signed_at".into());
            }
            let file = expected_dir.join(vendor.as_str()).join(format!("{event_type}.json"));
            if bless {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, serde_json::to_string_pretty(&event).unwrap() + "\n").unwrap();
            }
            let expected: Value = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_else(|| {
                    panic!(
                        "{} is missing; run with VESTIBULE_BLESS=1 and review it",
                        file.display()
                    )
                });
            if expected != event {
                mismatches.push(format!(
                    "{vendor} {event_type}:\n expected {expected}\n      got {event}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_authentication_failure_has_its_status_and_reason() {
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink)).await;
    let reason = |code: &str| format!(r#"{{"error":"{code}"}}"#);
    let mut checked = 0;

    for &vendor in VendorKind::WEBHOOKS {
        let body = vendors::get(vendor).samples()[0].1;
        let signs = vendor.signs();
        // (what, headers, body, status, reason code)
        type Case = (&'static str, Vec<(String, String)>, String, u16, &'static str);
        let mut cases: Vec<Case> = Vec::new();

        if signs {
            let mut wrong_secret = vendors::get(vendor).sign("not-the-secret-at-all", now(), body.as_bytes());
            if vendor == VendorKind::Pdk {
                wrong_secret.extend(send::sign(vendor, None, Some(BASIC), Vec::new()).headers);
            }
            cases.push(("wrong secret", wrong_secret, body.into(), 401, "signature_invalid"));
            let tampered = body.replacen('{', "{\"tampered\":true,", 1);
            cases.push((
                "tampered body",
                genuine(vendor, now(), body),
                tampered,
                401,
                "signature_invalid",
            ));
            let signature_header = vendors::get(vendor).sign(SECRET, now(), body.as_bytes())[0]
                .0
                .to_lowercase();
            let without: Vec<(String, String)> = genuine(vendor, now(), body)
                .into_iter()
                .filter(|(name, _)| name.to_lowercase() != signature_header)
                .collect();
            cases.push(("no signature", without.clone(), body.into(), 401, "signature_missing"));
            let mut garbled = without;
            garbled.push((signature_header, "v9=???|,".into()));
            cases.push(("malformed signature", garbled, body.into(), 401, "signature_invalid"));
        }
        if matches!(
            vendor,
            VendorKind::UnifiAccess | VendorKind::Verkada | VendorKind::StandardWebhooks
        ) {
            let tolerance = vendors::get(vendor).default_tolerance().as_secs() as i64;
            let stale = genuine(vendor, now() - tolerance - 5, body);
            cases.push(("stale timestamp", stale, body.into(), 401, "timestamp_out_of_range"));
            let future = genuine(vendor, now() + tolerance + 5, body);
            cases.push(("future timestamp", future, body.into(), 401, "timestamp_out_of_range"));
        }
        if matches!(vendor, VendorKind::Unloc | VendorKind::Pdk) {
            let mut wrong_password = vendors::get(vendor).sign(SECRET, now(), body.as_bytes());
            wrong_password.extend(send::sign(vendor, None, Some("vestibule:guess"), Vec::new()).headers);
            cases.push(("wrong Basic password", wrong_password, body.into(), 401, "auth_invalid"));
            let no_basic = vendors::get(vendor).sign(SECRET, now(), body.as_bytes());
            cases.push(("no Basic credentials", no_basic, body.into(), 401, "auth_missing"));
        }
        let not_json = "{\"this is\": not json";
        cases.push((
            "malformed body",
            genuine(vendor, now(), not_json),
            not_json.into(),
            400,
            "malformed_body",
        ));

        for (what, headers, body, status, code) in cases {
            let answer = post(&host, vendor, headers, &body).await;
            assert_eq!(answer, (status, reason(code)), "{vendor}: {what}");
            checked += 1;
        }
    }
    host.stop().await;
    assert!(sink.received().is_empty(), "{:?}", sink.received());
    assert_eq!(checked, 36, "every case ran");
}

/// The table in docs/normalization.md has a row for every sample, with the
/// kind the sample really gets.
#[test]
fn the_docs_table_matches_the_expectations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join("docs/normalization.md")).unwrap();
    let mut rows = 0;
    let websocket = (VendorKind::UnifiAccessWs, vendors::unifi_access_ws::SAMPLES);
    let webhooks = VendorKind::WEBHOOKS.iter().map(|&v| (v, vendors::get(v).samples()));
    for (vendor, samples) in webhooks.chain([websocket]) {
        for (event_type, _) in samples {
            let file = root.join(format!("tests/expected/{vendor}/{event_type}.json"));
            let expected: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let row = format!("| `{event_type}` | `{}` |", expected["kind"].as_str().unwrap());
            assert!(
                docs.contains(&row),
                "docs/normalization.md lacks the row {row} ({vendor})"
            );
            rows += 1;
        }
    }
    assert_eq!(rows, 166, "vendor event types covered");
}

/// A source may require fixed headers (UniFi forwards the custom headers
/// given at registration): without them, or with another value, 401.
#[tokio::test(flavor = "multi_thread")]
async fn required_headers_must_match() {
    let sink = Sink::start().await;
    let text = format!(
        "[[sources]]\nname = \"unifi-access\"\nvendor = \"unifi-access\"\nsecret_file = \"{{secret_file}}\"\n[sources.headers]\nX-Site = \"hq\"\n\n[[plugins]]\nname = \"echo\"\nworld = \"action\"\npath = \"{}\"\nsinks = [\"echo\"]\nsecrecy = 0\n\n[[sinks]]\nname = \"echo\"\nkind = \"http\"\nurl = \"{}\"\n",
        plugin("echo-event").display(),
        sink.url("/events"),
    );
    let host = Host::start(&text).await;
    let vendor = VendorKind::UnifiAccess;
    let body = vendors::sample(vendor, "access.door.unlock").unwrap();
    let with = |value: Option<&str>| {
        let mut headers = genuine(vendor, now(), body);
        headers.extend(value.map(|v| ("X-Site".to_string(), v.to_string())));
        headers
    };
    assert_eq!(
        post(&host, vendor, with(None), body).await,
        (401, r#"{"error":"auth_missing"}"#.into())
    );
    assert_eq!(
        post(&host, vendor, with(Some("branch")), body).await,
        (401, r#"{"error":"auth_invalid"}"#.into())
    );
    assert_eq!(post(&host, vendor, with(Some("hq")), body).await.0, 200);
    host.stop().await;
    assert_eq!(sink.received().len(), 1);
}
