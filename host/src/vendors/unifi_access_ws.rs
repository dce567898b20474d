//! UniFi Access WebSocket notifications (Access 1.20.11+): the mapping of
//! what the controller pushes on
//! `wss://HOST:12445/api/v1/developer/devices/notifications`. The connection
//! itself is in [`crate::ingest::unifi_ws`].
//!
//! Frames carry the same envelope as the webhooks (`{event, data, …}`) but
//! other events with flat `data`: `access.remote_view` (a doorbell ring),
//! `access.remote_view.change` (its end, with a reason code),
//! `access.data.device.remote_unlock` (`data` is the door),
//! `access.logs.add` (`data._source {actor, event, authentication,
//! target[]}`) and `access.hw.door_bell`; also seen are device and
//! location updates. Anything else goes through the
//! webhook mapping, which passes unknown events as `other`.

use std::path::PathBuf;

use serde_json::Value;

use super::source::{AuthSettings, SourceSettings};
use super::unifi_access::{self, VENDOR, doorbell_outcome};
use super::{NormalizeError, Request, Verified, device, door, json};
use crate::event::{Actor, Credential, Event, Kind};
use crate::settings::{ConfigError, Context, Duration};

/// `[[sources]]` with `vendor = "unifi-access-ws"`: the host dials the
/// controller's notifications WebSocket.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `name`: how its events are labelled (`event.source`).
    pub name: String,
    /// `url`: `wss://HOST:12445/api/v1/developer/devices/notifications`.
    pub url: String,
    /// `token_env` / `token_file`: the API token, sent as
    /// `Authorization: Bearer …`.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `ca_file`: trust only this CA (PEM), e.g. the controller's
    /// self-generated certificate.
    pub ca_file: Option<PathBuf>,
    /// `accept_invalid_certs`: accept any certificate. Logged as a warning
    /// at start; prefer `ca_file`.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// `silence`: reconnect when nothing arrived for this long. Default 90 s.
    pub silence: Option<Duration>,
    /// `backoff`: the first wait before reconnecting; it doubles up to
    /// 60 s. Default 1 s.
    pub backoff: Option<Duration>,
}

impl SourceSettings for Settings {
    fn name(&self) -> &str {
        &self.name
    }

    fn auth(&self) -> Option<AuthSettings<'_>> {
        None
    }

    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        match self.url.parse::<hyper::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("wss" | "ws")) && uri.host().is_some() => {}
            _ => {
                return Err(ctx.error(
                    format!("{key}.url"),
                    "expected wss://HOST:12445/api/v1/developer/devices/notifications",
                ));
            }
        }
        if self.token_env.is_some() == self.token_file.is_some() {
            return Err(ctx.error(
                format!("{key}.token_env"),
                "expected either `token_env = \"VAR\"` or `token_file = \"PATH\"`",
            ));
        }
        if self.accept_invalid_certs && self.ca_file.is_some() {
            return Err(ctx.error(
                format!("{key}.accept_invalid_certs"),
                "give either `ca_file` (trust that CA) or `accept_invalid_certs`, not both",
            ));
        }
        Ok(())
    }
}

/// Map one notification frame.
pub fn normalize(request: &Request<'_>) -> Result<Event, NormalizeError> {
    let body: Value = serde_json::from_slice(request.body)?;
    let event_type = json::text(&body, &["event"]).ok_or_else(|| NormalizeError::Shape("no `event` field".into()))?;
    let data = body.get("data").unwrap_or(&Value::Null);
    let new = |kind: Kind, occurred_at: Option<i64>| {
        request.event(VENDOR, &event_type, kind, occurred_at.unwrap_or(request.received_at))
    };
    let event = match event_type.as_str() {
        "access.remote_view" => {
            let mut event = new(Kind::DoorbellRing, json::time(data, &["create_time"]));
            event.door = door(
                None,
                json::text(data, &["door_name"]),
                json::text(data, &["floor_name"]),
            );
            event.device = device(
                json::text(data, &["device_id"]),
                json::text(data, &["device_name"]),
                json::text(data, &["device_type"]),
            );
            for (key, field) in [("request_id", "request_id"), ("direction", "in_or_out")] {
                if let Some(value) = json::text(data, &[field]) {
                    event.attr(key, value);
                }
            }
            event
        }
        "access.remote_view.change" => {
            let mut event = new(Kind::DoorbellEnded, None);
            if let Some(code) = json::text(data, &["reason_code"]) {
                if let Some(outcome) = doorbell_outcome(&code) {
                    event.attr("outcome", outcome);
                }
                event.attr("reason_code", code);
            }
            if let Some(id) = json::text(data, &["remote_call_request_id"]) {
                event.attr("request_id", id);
            }
            event
        }
        "access.data.device.remote_unlock" => {
            let mut event = new(Kind::DoorUnlocked, None);
            event.door = door(
                json::text(data, &["unique_id"]),
                json::text(data, &["name"]),
                json::text(data, &["full_name"]),
            );
            event.attr("cause", "remote");
            event
        }
        "access.hw.door_bell" => {
            let mut event = new(Kind::DoorbellRing, None);
            event.door = door(json::text(data, &["door_id"]), json::text(data, &["door_name"]), None);
            if let Some(id) = json::text(data, &["request_id"]) {
                event.attr("request_id", id);
            }
            event
        }
        "access.logs.add" => logs_add(request, &event_type, data),
        "access.data.device.update" => {
            let mut event = new(Kind::DeviceStatus, None);
            event.device = device(
                json::text(data, &["unique_id"]),
                json::text(data, &["name"]),
                json::text(data, &["device_type"]),
            );
            if let Some(online) = data.get("online").and_then(Value::as_bool) {
                event.attr("online", online.to_string());
            }
            event
        }
        "access.data.v2.location.update" => new(Kind::ConfigChanged, None),
        _ => unifi_access::normalize(request, Verified::default())?,
    };
    Ok(event)
}

/// `access.logs.add`: a line of the access log.
fn logs_add(request: &Request<'_>, event_type: &str, data: &Value) -> Event {
    let source = data.get("_source").unwrap_or(&Value::Null);
    let log = source.get("event").unwrap_or(&Value::Null);
    let result = json::text(log, &["result"]).map(|r| r.to_ascii_uppercase());
    let kind = match (json::text(log, &["type"]).as_deref(), result.as_deref()) {
        (Some("access.door.unlock"), Some("ACCESS" | "GRANTED")) => Kind::AccessGranted,
        (Some("access.door.unlock"), Some(_)) => Kind::AccessDenied,
        (Some("access.door.unlock"), None) => Kind::DoorUnlocked,
        _ => Kind::Other,
    };
    let occurred_at = json::time(log, &["published"]).unwrap_or(request.received_at);
    let mut event = request.event(VENDOR, event_type, kind, occurred_at);
    let targets = source
        .get("target")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let target = |wanted: &dyn Fn(&str) -> bool| {
        targets
            .iter()
            .find(|t| json::text(t, &["type"]).is_some_and(|kind| wanted(&kind)))
    };
    if let Some(t) = target(&|kind| kind == "door") {
        event.door = door(json::text(t, &["id"]), json::text(t, &["display_name"]), None);
    }
    if let Some(t) = target(&|kind| kind != "door") {
        event.device = device(
            json::text(t, &["id"]),
            json::text(t, &["display_name"]),
            json::text(t, &["type"]),
        );
    }
    if let Some(actor) = source.get("actor").filter(|a| a.is_object()) {
        event.actor = Some(Actor {
            id: json::text(actor, &["id"]),
            name: json::text(actor, &["display_name"]),
            email: None,
            phone: None,
            kind: json::text(actor, &["type"]),
        });
    }
    if let Some(method) = json::text(source, &["authentication", "credential_provider"]) {
        event.credential = Some(Credential {
            method: method.to_lowercase(),
            value: None,
        });
    }
    if let Some(message) = json::text(log, &["display_message"]) {
        event.attr("message", message);
    }
    if let Some(result) = result {
        if kind == Kind::AccessDenied {
            event.attr("reason", json::text(log, &["reason"]).unwrap_or_else(|| result.clone()));
        }
        event.attr("result", result);
    }
    event
}

/// Sample frames (`examples/events/unifi-access-ws/`).
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/unifi_access_ws_samples.rs"));
