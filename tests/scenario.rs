//! A building, end to end, with the reference plugins in the real host:
//!
//! - Ada badges in at the lobby (UniFi Access) → `directory` adds her floor,
//!   7 → `elevator-call` sends the lift to 7 and `lights-on-unlock` switches
//!   on the lobby lights;
//! - a door is forced (ProdataKey) → `forced-door-alarm` publishes an alarm
//!   on a real mosquitto broker and calls the security desk;
//! - a visitor rings the intercom (Verkada) → `doorbell-notify` posts to
//!   the front desk's chat.

use std::time::Duration;

use crate::support::mqtt::{Broker, subscribe, wait_for};
use crate::support::{Host, Sink, free_addr, plugin};
use serde_json::Value;
use vestibule::config::VendorKind;
use vestibule::vendors;

fn config(sink: &Sink, broker: std::net::SocketAddr) -> String {
    let path = |name: &str| plugin(name).display().to_string();
    format!(
        r#"
        [store]
        path = "data"

        [[sources]]
        name = "office"
        vendor = "unifi-access"
        secret_file = "{{secret_file}}"

        [[sources]]
        name = "warehouse"
        vendor = "pdk"
        secret_file = "{{secret_file}}"

        [[sources]]
        name = "intercoms"
        vendor = "verkada"
        secret_file = "{{secret_file}}"

        [[plugins]]
        name = "directory"
        world = "enricher"
        path = "{directory}"
        [plugins.config]
        csv = """
        id,name,department,floor
        daa10301-7744-4623-a90e-372718af1d41,Ada Lovelace,Engineering,7
        """

        [[plugins]]
        name = "elevator"
        world = "action"
        path = "{elevator}"
        sinks = ["elevator"]
        [plugins.config]
        site = "hq"
        lift_group = "A"
        doors = ["Lobby"]

        [[plugins]]
        name = "lights"
        world = "action"
        path = "{lights}"
        sinks = ["lights"]
        [plugins.config.entities]
        "Lobby" = "light.lobby"

        [[plugins]]
        name = "alarm"
        world = "action"
        path = "{alarm}"
        sinks = ["alarms", "security-desk"]

        [[plugins]]
        name = "doorbell"
        world = "action"
        path = "{doorbell}"
        sinks = ["chat"]
        [plugins.config]
        format = "slack"
        time_zone = "Europe/Copenhagen"

        [[sinks]]
        name = "elevator"
        kind = "http"
        url = "{elevator_url}"
        max_age = "15s"

        [[sinks]]
        name = "lights"
        kind = "http"
        url = "{lights_url}"

        [[sinks]]
        name = "security-desk"
        kind = "http"
        url = "{desk_url}"

        [[sinks]]
        name = "chat"
        kind = "http"
        url = "{chat_url}"

        [[sinks]]
        name = "alarms"
        kind = "mqtt"
        url = "mqtt://{broker}"
        topic = "building/alarms"
        "#,
        directory = path("directory"),
        elevator = path("elevator-call"),
        lights = path("lights-on-unlock"),
        alarm = path("forced-door-alarm"),
        doorbell = path("doorbell-notify"),
        elevator_url = sink.url("/elevator"),
        lights_url = sink.url("/lights"),
        desk_url = sink.url("/security"),
        chat_url = sink.url("/chat"),
    )
}

/// Post `vendor`'s sample `event_type` (its door renamed to `door`) to `source`, signed.
async fn send(host: &Host, vendor: VendorKind, source: &str, event_type: &str, door: Option<&str>) {
    let mut body = vendors::sample(vendor, event_type).unwrap().to_string();
    if let Some(door) = door {
        body = vestibule::cli::send::with_door(&body, door).unwrap();
    }
    let (status, answer) = host.post_signed(source, vendor, body).await;
    assert_eq!(status, 200, "{source}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_in_the_building() {
    let dir = tempfile::tempdir().unwrap();
    let broker = free_addr();
    let _mosquitto = Broker::start(broker, dir.path());
    let alarms = subscribe(broker).await;
    let sink = Sink::start().await;
    let host = Host::start(&config(&sink, broker)).await;

    send(
        &host,
        VendorKind::UnifiAccess,
        "office",
        "access.door.unlock",
        Some("Lobby"),
    )
    .await;
    send(
        &host,
        VendorKind::Pdk,
        "warehouse",
        "door.alarm.forced",
        Some("Server Room"),
    )
    .await;
    send(&host, VendorKind::Verkada, "intercoms", "intercom_call_triggered", None).await;

    let received = sink.wait_for(Duration::from_secs(20), |r| r.len() >= 4).await;
    let published = wait_for(&alarms, 1).await;
    host.stop().await;

    let at = |path: &str| -> Value {
        let request = received
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing at {path}"));
        serde_json::from_str(&request.body).unwrap()
    };
    let lift = at("/elevator");
    println!("lift call: {lift}");
    assert_eq!(lift["toFloor"], 7, "Ada's floor, from the directory");
    assert_eq!(lift["fromFloor"], 0);
    assert_eq!(lift["site"], "hq");
    assert_eq!(lift["passenger"], "daa10301-7744-4623-a90e-372718af1d41");
    let lights = at("/lights");
    println!("lights: {lights}");
    assert_eq!(lights, serde_json::json!({ "entity_id": "light.lobby" }));

    let desk = at("/security");
    println!("security desk: {desk}");
    assert_eq!(desk["alarm"], "door.forced");
    assert_eq!(desk["source"], "warehouse");
    assert_eq!(desk["door"], "Server Room");
    assert_eq!(published.len(), 1);
    println!("mqtt {}: {}", published[0].topic, published[0].payload);
    assert_eq!(published[0].topic, "building/alarms");
    let alarm: Value = serde_json::from_str(&published[0].payload).unwrap();
    assert_eq!(alarm, desk, "the same alarm on both");

    let chat = at("/chat");
    println!("chat: {chat}");
    let text = chat["text"].as_str().unwrap();
    assert!(text.starts_with("Doorbell at "), "{text}");
    assert_eq!(received.len(), 4, "nothing else: {received:?}");
}
