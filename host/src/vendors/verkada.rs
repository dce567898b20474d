//! Verkada Access webhooks.
//!
//! Signature: header `Verkada-Signature: <unix seconds>|<hex>`, the hex being
//! HMAC-SHA256 keyed with the webhook's secret over the raw body + `|` +
//! the timestamp text (body first). Verkada signs only when a secret is set,
//! so a source may say `signature = "optional"`. Default tolerance 60 s:
//! Verkada retries once, with a fresh timestamp and signature.

use super::json::remove;
use super::source::{AuthSettings, BasicAuthConfig, OneOrMany, SignaturePolicy, SourceSettings};
use crate::secrecy::{Redact, Secrecy};
use crate::settings::{ConfigError, Context, Duration, HeaderValue};
use serde_json::Value;

use super::{
    Auth, NormalizeError, Request, Vendor, Verified, VerifyError, device, door, full_name, header, hex_matches,
    hmac_sha256, json, verify_timestamped,
};
use crate::event::{Actor, Credential, Event, Kind};

pub const VENDOR: &str = "verkada";

/// `[[sources]]` with `vendor = "verkada"`: Verkada Access webhooks, `Verkada-Signature: ts|sig`.
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
    /// `tolerance`: how far a signed timestamp may be from our clock;
    /// default the vendor's.
    pub tolerance: Option<Duration>,
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
            tolerance: self.tolerance,
        })
    }

    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        // Optional or not, a signed request is checked: with a secret.
        if self.secret_env.is_none() && self.secret_file.is_none() {
            return Err(super::source::needs_secret(ctx, key));
        }
        Ok(())
    }
}

pub struct Verkada;

/// The `Verkada-Signature` header value for `body` at `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[body, b"|", t.as_bytes()]);
    format!("{t}|{}", hex::encode(mac))
}

impl Vendor for Verkada {
    fn name(&self) -> &'static str {
        VENDOR
    }

    fn default_tolerance(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }

    fn verify(&self, request: &Request<'_>, auth: &Auth) -> Result<Verified, VerifyError> {
        let Some(header) = header(request.headers, "verkada-signature")? else {
            return match auth.signature {
                SignaturePolicy::Optional => Ok(Verified::default()),
                SignaturePolicy::Required => Err(VerifyError::SignatureMissing("Verkada-Signature")),
            };
        };
        let (t_text, sig) = header
            .split_once('|')
            .ok_or(VerifyError::SignatureInvalid("Verkada-Signature is not `ts|sig`"))?;
        verify_timestamped(request, auth, t_text, "signature does not match the body", |secret| {
            hex_matches(
                &hmac_sha256(secret, &[request.body, b"|", t_text.trim().as_bytes()]),
                sig,
            )
        })
    }

    fn normalize(&self, request: &Request<'_>, _verified: Verified) -> Result<Event, NormalizeError> {
        let body: Value = serde_json::from_slice(request.body)?;
        let data = body
            .get("data")
            .filter(|d| d.is_object())
            .ok_or_else(|| NormalizeError::Shape("no `data` object".into()))?;
        let event_type = json::text(data, &["notification_type"])
            .ok_or_else(|| NormalizeError::Shape("no `data.notification_type`".into()))?;
        let occurred_at = json::time(data, &["created"])
            .or_else(|| json::time(data, &["created_at"]))
            .or_else(|| json::time(&body, &["created_at"]))
            .unwrap_or(request.received_at);
        let (kind, method) = kind_of(&event_type, data);
        let mut event = request.event(VENDOR, &event_type, kind, occurred_at);
        // Retries carry a new envelope time and signature but the same event;
        // identify it by the event's own fields.
        event.id = match json::text(data, &["event_id"]) {
            Some(id) => id,
            None => {
                let fields = [
                    "device_id",
                    "door_id",
                    "created",
                    "created_at",
                    "notification_type",
                    "input_value",
                ]
                .map(|k| json::text(data, &[k]).unwrap_or_default());
                request.id_key.derive(&fields.each_ref().map(|f| f.as_bytes()))
            }
        };
        event.door = door(
            json::text(data, &["door_id"]),
            json::text(data, &["door_info", "name"]),
            json::text(data, &["door_info", "site"]),
        );
        event.device = device(
            json::text(data, &["door_info", "acu_id"]).or_else(|| json::text(data, &["device_id"])),
            json::text(data, &["door_info", "acu_name"]),
            json::text(data, &["device_type"]),
        );
        if let Some(user) = data.get("user_info").filter(|u| u.is_object()) {
            event.actor = Some(Actor {
                id: json::text(user, &["user_id"]),
                name: json::text(user, &["name"])
                    .or_else(|| full_name(json::text(user, &["first_name"]), json::text(user, &["last_name"]))),
                email: json::text(user, &["email"]),
                phone: json::text(user, &["phone"]),
                kind: Some("user".into()),
            });
        }
        if let Some(method) = method {
            event.credential = Some(Credential {
                method: method.into(),
                value: json::text(data, &["input_value"]),
            });
        }
        if kind == Kind::AccessDenied {
            event.attr("reason", event_type.clone());
        }
        for (key, path) in [
            ("direction", &["direction"][..]),
            ("aux_input", &["aux_info", "aux_input_name"]),
            ("lockdown", &["lockdown_info", "lockdown_name"]),
            ("lockdown_action", &["lockdown_info", "action"]),
        ] {
            if let Some(value) = json::text(data, path) {
                event.attr(key, value);
            }
        }
        Ok(event)
    }

    fn samples(&self) -> &'static [(&'static str, &'static str)] {
        SAMPLES
    }

    fn sign(&self, secret: &str, now: i64, body: &[u8]) -> Vec<(String, String)> {
        vec![("Verkada-Signature".into(), sign(secret, now, body))]
    }
}

impl Redact for Verkada {
    fn redact(&self, raw: &mut serde_json::Value, level: Secrecy) {
        if level >= Secrecy::NoCredentials {
            remove(raw, &["data", "input_value"]);
        }
        if level >= Secrecy::NoPeople {
            remove(raw, &["data", "user_info", "name"]);
        }
    }
}

/// The normalized kind, and the credential method the type implies.
fn kind_of(event_type: &str, data: &Value) -> (Kind, Option<&'static str>) {
    let method = [
        ("door_keycard_entered", "card"),
        ("door_code_entered", "pin"),
        ("door_remote_unlock", "remote"),
        ("door_mobile_nfc_scan", "mobile_nfc"),
        ("door_ble_unlock_attempt", "ble"),
        ("door_face_presented", "face"),
        ("door_press_to_exit", "exit_button"),
    ]
    .iter()
    .find(|(prefix, _)| event_type.starts_with(prefix))
    .map(|(_, method)| *method);
    let kind = match event_type {
        "door_press_to_exit_accepted" => Kind::DoorUnlocked,
        t if t.ends_with("_accepted") || t == "door_granted" => Kind::AccessGranted,
        t if t.ends_with("_rejected") || t == "door_rejected" => Kind::AccessDenied,
        "door_opened" => Kind::DoorOpened,
        "door_forced_open" => Kind::DoorForced,
        "door_held_open" => Kind::DoorHeldOpen,
        "door_tailgating" => Kind::DoorTailgating,
        "door_tamper" => Kind::DeviceTamper,
        "door_locked" => Kind::DoorLocked,
        "door_unlocked" => Kind::DoorUnlocked,
        "door_lockdown" => match json::text(data, &["lockdown_info", "enabled"]).as_deref() {
            Some("false" | "False" | "0") => Kind::EmergencyEnded,
            _ => Kind::EmergencyStarted,
        },
        "door_fire_alarm_triggered" => Kind::EmergencyStarted,
        "door_fire_alarm_released" => Kind::EmergencyEnded,
        "door_acu_offline" => Kind::DeviceOffline,
        "door_low_battery" => Kind::DeviceBatteryLow,
        "door_schedule_override_applied" | "door_schedule_override_removed" => Kind::DoorModeChanged,
        "intercom_call_triggered" => Kind::DoorbellRing,
        "intercom_missed_call" | "intercom_receiver_admitted" => Kind::DoorbellEnded,
        _ => Kind::Other,
    };
    (kind, method)
}

/// One sample per notification type, shaped as Verkada's documented examples.
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/verkada_samples.rs"));
