//! ProdataKey (PDK) webhooks.
//!
//! Signature: header `X-PDK-Signature` = hex HMAC-SHA1 of the raw body,
//! sent only when the subscription has a secret. A subscription may use HTTP
//! Basic auth instead or as well (`[sources.basic_auth]`). PDK signs no
//! timestamp, so there is no tolerance to check.
//!
//! Two families never mixed in one subscription: panel events
//! `{id, body, metadata {occurred, doorName}, panelId, topic}` and
//! organization events (`ou.*`, `panel.created/updated/deleted`,
//! `permission.*`: top-level `topic`, `user`, `clientInfo`, no id or time).

use super::json::remove;
use super::source::{AuthSettings, BasicAuthConfig, OneOrMany, SignaturePolicy, SourceSettings};
use crate::secrecy::{Redact, Secrecy};
use crate::settings::{ConfigError, Context, HeaderValue};
use serde_json::Value;

use super::{
    Auth, NormalizeError, Request, Vendor, Verified, VerifyError, device, door, full_name, header, hex_matches,
    hmac_sha1, json,
};
use crate::event::{Actor, Credential, Event, Kind};

pub const VENDOR: &str = "pdk";

/// `[[sources]]` with `vendor = "pdk"`: ProdataKey webhooks, `X-PDK-Signature` (HMAC-SHA1 of the body) and/or HTTP Basic.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `name`: how its events are labelled (`event.source`).
    pub name: String,
    /// `path`: the URL path it posts to; default `/ingest/<name>`.
    pub path: Option<String>,
    /// `secret_env` / `secret_file`: the signing secret; a list of either
    /// accepts any of them, so a secret can be rotated without downtime.
    pub secret_env: Option<OneOrMany<String>>,
    pub secret_file: Option<OneOrMany<std::path::PathBuf>>,
    /// `signature`: `"required"` (default), or `"optional"` for webhooks
    /// set up without a secret on the vendor's side; signed ones must
    /// still verify.
    #[serde(default)]
    pub signature: SignaturePolicy,
    /// `[sources.headers]`: headers every request must carry with exactly
    /// this value.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, HeaderValue>,
    /// `[sources.basic_auth]`: HTTP Basic credentials the sender must present too.
    pub basic_auth: Option<BasicAuthConfig>,
}

impl SourceSettings for Settings {
    fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    fn auth(&self) -> Option<AuthSettings<'_>> {
        Some(AuthSettings {
            secret_env: self.secret_env.as_ref(),
            secret_file: self.secret_file.as_ref(),
            signature: self.signature,
            basic_auth: self.basic_auth.as_ref(),
            headers: Some(&self.headers),
            ..AuthSettings::default()
        })
    }

    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        let secret = self.secret_env.is_some() || self.secret_file.is_some();
        if self.signature == SignaturePolicy::Optional && !secret {
            return Err(ctx.error(
                format!("{key}.signature"),
                "`optional` needs a secret to check signed requests with",
            ));
        }
        if !secret && self.basic_auth.is_none() {
            return Err(super::source::needs_secret(ctx, key));
        }
        Ok(())
    }
}

pub struct Pdk;

/// The `X-PDK-Signature` header value for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha1(secret.as_bytes(), body))
}

impl Vendor for Pdk {
    fn name(&self) -> &'static str {
        VENDOR
    }

    fn verify(&self, request: &Request<'_>, auth: &Auth) -> Result<Verified, VerifyError> {
        if auth.secrets.is_empty() {
            // Basic auth only; checked before the vendor is asked.
            return Ok(Verified::default());
        }
        let Some(signature) = header(request.headers, "x-pdk-signature")? else {
            return match auth.signature {
                SignaturePolicy::Optional => Ok(Verified::default()),
                SignaturePolicy::Required => Err(VerifyError::SignatureMissing("X-PDK-Signature")),
            };
        };
        if !auth.any_secret(|secret| hex_matches(&hmac_sha1(secret, request.body), signature)) {
            return Err(VerifyError::SignatureInvalid("X-PDK-Signature does not match the body"));
        }
        Ok(Verified::default())
    }

    fn normalize(&self, request: &Request<'_>, _verified: Verified) -> Result<Event, NormalizeError> {
        let body: Value = serde_json::from_slice(request.body)?;
        let topic = json::text(&body, &["topic"]).ok_or_else(|| NormalizeError::Shape("no `topic` field".into()))?;
        let data = body.get("body").unwrap_or(&Value::Null);
        let metadata = body.get("metadata").unwrap_or(&Value::Null);
        let occurred_at = json::time(metadata, &["occurred"])
            .or_else(|| json::time(&body, &["timestamp"]))
            .unwrap_or(request.received_at);
        let (kind, detail) = kind_of(&topic);
        let mut event = request.event(VENDOR, &topic, kind, occurred_at);
        if let Some(id) = json::text(&body, &["id"]).filter(|_| body.get("topic").is_some() && data.is_object()) {
            event.id = id;
        }
        event.door = door(json::text(data, &["doorId"]), json::text(metadata, &["doorName"]), None);
        event.device = device(
            json::text(&body, &["panelId"]),
            json::text(metadata, &["ioLinkName"])
                .or_else(|| json::text(&body, &["name"]).filter(|_| topic.starts_with("panel."))),
            None,
        );
        if let Some(person) = json::text(data, &["personId"]) {
            event.actor = Some(Actor {
                id: Some(person),
                name: json::text(metadata, &["personName"]),
                email: None,
                phone: None,
                kind: Some("person".into()),
            });
        } else if let Some(user) = body.get("user").filter(|u| u.is_object()) {
            event.actor = Some(Actor {
                id: json::text(user, &["id"]),
                name: full_name(json::text(user, &["firstName"]), json::text(user, &["lastName"])),
                email: json::text(&body, &["email"]),
                phone: None,
                kind: Some("admin".into()),
            });
        }
        if let Some(factor) = json::text(data, &["requestFactor"]) {
            event.credential = Some(Credential {
                method: factor.to_lowercase(),
                value: json::text(data, &["credential"]).or_else(|| json::text(data, &["pin"])),
            });
        }
        if let Some((key, value)) = detail {
            event.attr(key, value);
        }
        if kind == Kind::AccessDenied {
            let reason = match topic.as_str() {
                "door.request.unknown" => "unknown credential".to_string(),
                _ if json::text(data, &["disabled"]).as_deref() == Some("true") => "holder disabled".into(),
                _ => "deny rule".into(),
            };
            event.attr("reason", reason);
        }
        if let Some(message) = json::text(data, &["errorMessage"]) {
            event.attr("error", message);
        }
        if let Some(elevator) = json::text(data, &["elevatorId"]) {
            event.attr("elevator", elevator);
        }
        Ok(event)
    }

    fn samples(&self) -> &'static [(&'static str, &'static str)] {
        SAMPLES
    }

    fn sign(&self, secret: &str, _now: i64, body: &[u8]) -> Vec<(String, String)> {
        vec![("X-PDK-Signature".into(), sign(secret, body))]
    }
}

impl Redact for Pdk {
    fn redact(&self, raw: &mut serde_json::Value, level: Secrecy) {
        if level >= Secrecy::NoCredentials {
            remove(raw, &["body", "credential"]);
        }
        if level >= Secrecy::NoPeople {
            // Organization events about a person name them at the top.
            let about_a_person = json::text(raw, &["topic"]).is_some_and(|t| t.starts_with("permission."));
            if about_a_person {
                remove(raw, &["name"]);
            }
        }
    }
}

/// The kind, and an attribute that says more (a door mode and its state).
fn kind_of(topic: &str) -> (Kind, Option<(&'static str, String)>) {
    let mode = |mode: &str, state: &str| Some(("mode", format!("{mode}:{state}")));
    let kind = match topic {
        "door.request.allowed" | "door.request.multiallowed" => Kind::AccessGranted,
        "door.request.denied" | "door.request.unknown" => Kind::AccessDenied,
        "door.request.duress" => Kind::AccessDuress,
        "door.alarm.forced" => Kind::DoorForced,
        "door.alarm.propped.on" => Kind::DoorHeldOpen,
        "door.alarm.forced.cleared" | "door.alarm.propped.off" | "door.alarm.propped.alloff" => Kind::DoorAlarmCleared,
        "door.input.dps.opened" => Kind::DoorOpened,
        "door.input.dps.closed" => Kind::DoorClosed,
        "door.input.relay.on" => Kind::DoorUnlocked,
        "door.input.relay.off" => Kind::DoorLocked,
        "door.input.rex.on" => return (Kind::DoorUnlocked, Some(("cause", "exit_button".into()))),
        t if t.starts_with("door.autoopen.")
            || t.starts_with("door.forceopen.")
            || t.starts_with("door.forceclose.") =>
        {
            let rest = &t["door.".len()..];
            let (name, state) = rest.rsplit_once('.').unwrap_or((rest, ""));
            return (Kind::DoorModeChanged, mode(name, state));
        }
        "endpoint.alarm.comloss.on" | "panel.disconnected" => Kind::DeviceOffline,
        "endpoint.alarm.comloss.off" | "panel.connected" => Kind::DeviceOnline,
        "endpoint.input.lp.on" => Kind::DeviceBatteryLow,
        t if t.starts_with("endpoint.input.") || t == "door.input.rex.off" => Kind::DeviceStatus,
        t if t.starts_with("error.") => Kind::DeviceError,
        "floorgroup.activated" => Kind::LiftCalled,
        "endpoint.added" | "endpoint.deleted" => Kind::ConfigChanged,
        t if t.starts_with("entity.")
            || t.starts_with("ou.")
            || t.starts_with("permission.")
            || t.starts_with("notification.person.")
            || t.starts_with("notification.device.")
            || t.starts_with("notification.intercom.")
            || matches!(t, "panel.created" | "panel.updated" | "panel.deleted") =>
        {
            Kind::ConfigChanged
        }
        _ => Kind::Other,
    };
    (kind, None)
}

/// One sample per documented topic, taken from PDK's own examples.
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/pdk_samples.rs"));
/// The events a subscription may name (`vestibule connect`), as the vendor
/// documents them: organization events and panel events, never mixed in
/// one subscription.
pub const ORGANIZATION_EVENTS: &[&str] = &[
    "ou.created",
    "ou.deleted",
    "ou.updated",
    "panel.created",
    "panel.deleted",
    "panel.updated",
    "permission.accepted",
    "permission.created",
    "permission.deleted",
    "permission.updated",
];
pub const PANEL_EVENTS: &[&str] = &[
    "door.alarm.forced",
    "door.alarm.forced.cleared",
    "door.alarm.propped.alloff",
    "door.alarm.propped.off",
    "door.alarm.propped.on",
    "door.autoopen.off",
    "door.autoopen.on",
    "door.autoopen.override.off",
    "door.autoopen.override.on",
    "door.forceclose.off",
    "door.forceclose.on",
    "door.forceopen.off",
    "door.forceopen.on",
    "door.input.dps.closed",
    "door.input.dps.opened",
    "door.input.relay.off",
    "door.input.relay.on",
    "door.input.rex.off",
    "door.input.rex.on",
    "door.input.virtualread",
    "door.request.allowed",
    "door.request.denied",
    "door.request.duress",
    "door.request.found",
    "door.request.multiallowed",
    "door.request.unknown",
    "endpoint.added",
    "endpoint.alarm.comloss.off",
    "endpoint.alarm.comloss.on",
    "endpoint.deleted",
    "endpoint.input.bh.state",
    "endpoint.input.lp.off",
    "endpoint.input.lp.on",
    "endpoint.input.pb.connected",
    "endpoint.input.pb.disconnected",
    "endpoint.input.pb.status",
    "endpoint.input.pi.off",
    "endpoint.input.pi.on",
    "endpoint.input.pi.status",
    "endpoint.input.po.absent",
    "endpoint.input.po.present",
    "endpoint.input.pp.status",
    "entity.added",
    "entity.modified",
    "entity.removed",
    "error.card.parse",
    "error.packetized.protocol",
    "floorgroup.activated",
    "notification.client.command",
    "notification.device.created",
    "notification.device.deleted",
    "notification.device.updated",
    "notification.intercom.created",
    "notification.intercom.deleted",
    "notification.intercom.updated",
    "notification.person.created",
    "notification.person.deleted",
    "notification.person.updated",
    "panel.connected",
    "panel.disconnected",
];
