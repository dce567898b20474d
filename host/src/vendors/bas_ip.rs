//! BAS-IP intercom panels.
//!
//! Headers: `X-Webhook-Signature` (hex HMAC-SHA256 keyed with the webhook's
//! 16–128 character secret), `X-Webhook-Timestamp` (ISO-8601),
//! `X-Webhook-Attempt` (1 + retries). BAS-IP does not document what is
//! signed; we take it to be the raw body alone (an assumption). The
//! timestamp is then not covered by the signature, so it is recorded but not
//! used to refuse requests.
//!
//! Body: `{data {…}, created_at (ms), event_id (per panel), event_type}`.

use super::json::remove;
use super::source::{AuthSettings, BasicAuthConfig, OneOrMany, SourceSettings};
use crate::secrecy::{Redact, Secrecy};
use crate::settings::{ConfigError, Context, HeaderValue};
use serde_json::Value;

use super::{
    Auth, NormalizeError, Request, Vendor, Verified, VerifyError, header, hex_matches, hmac_sha256, json, time,
};
use crate::event::{Actor, Credential, Event, Kind};

pub const VENDOR: &str = "bas-ip";

/// `[[sources]]` with `vendor = "bas-ip"`: BAS-IP intercom panels, `X-Webhook-Signature` (HMAC-SHA256 of the body).
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
            basic_auth: self.basic_auth.as_ref(),
            headers: Some(&self.headers),
            ..AuthSettings::default()
        })
    }

    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        match self.auth() {
            Some(auth) if !auth.has_secret() => Err(super::source::needs_secret(ctx, key)),
            _ => Ok(()),
        }
    }
}

pub struct BasIp;

/// The `X-Webhook-Signature` header value for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
}

impl Vendor for BasIp {
    fn name(&self) -> &'static str {
        VENDOR
    }

    fn verify(&self, request: &Request<'_>, auth: &Auth) -> Result<Verified, VerifyError> {
        let signature = header(request.headers, "x-webhook-signature")?
            .ok_or(VerifyError::SignatureMissing("X-Webhook-Signature"))?;
        if !auth.any_secret(|secret| hex_matches(&hmac_sha256(secret, &[request.body]), signature)) {
            return Err(VerifyError::SignatureInvalid(
                "X-Webhook-Signature does not match the body",
            ));
        }
        let signed_at = header(request.headers, "x-webhook-timestamp")?
            .and_then(time::parse_iso8601)
            .map(|ms| ms / 1000);
        // The timestamp is not signed: nothing to tell a replay by.
        Ok(Verified {
            signed_at,
            replayable_until: None,
        })
    }

    fn normalize(&self, request: &Request<'_>, _verified: Verified) -> Result<Event, NormalizeError> {
        let body: Value = serde_json::from_slice(request.body)?;
        let event_type =
            json::text(&body, &["event_type"]).ok_or_else(|| NormalizeError::Shape("no `event_type` field".into()))?;
        let data = body.get("data").unwrap_or(&Value::Null);
        let occurred_at = json::time(&body, &["created_at"]).unwrap_or(request.received_at);
        let (kind, method) = kind_of(&event_type);
        let mut event = request.event(VENDOR, &event_type, kind, occurred_at);
        // `event_id` counts per panel; with the source name it identifies the
        // event across the panel's retries.
        if let Some(id) = json::text(&body, &["event_id"]) {
            event.id = id;
        }
        let name = json::text(data, &["user_name"]).or_else(|| json::text(data, &["name"]));
        let user = json::text(data, &["user_id"]).or_else(|| json::text(data, &["user_uid"]));
        if name.is_some() || user.is_some() {
            event.actor = Some(Actor {
                id: user,
                name,
                email: None,
                phone: None,
                kind: None,
            });
        }
        if let Some(method) = method {
            event.credential = Some(Credential {
                method: method.into(),
                value: json::text(data, &["identifier"]).or_else(|| json::text(data, &["identifier_number"])),
            });
        }
        if let Some(lock) = json::text(data, &["lock"]).or_else(|| json::text(data, &["lock_number"])) {
            event.door = super::door(Some(lock), None, None);
        }
        if kind == Kind::AccessDenied {
            let reason = event_type.trim_start_matches("log.").replace('_', " ");
            event.attr("reason", reason);
        }
        if let Some(attempt) = request.headers.get("x-webhook-attempt").and_then(|v| v.to_str().ok()) {
            event.attr("attempt", attempt);
        }
        Ok(event)
    }

    fn samples(&self) -> &'static [(&'static str, &'static str)] {
        SAMPLES
    }

    fn sign(&self, secret: &str, now: i64, body: &[u8]) -> Vec<(String, String)> {
        vec![
            ("X-Webhook-Signature".into(), sign(secret, body)),
            ("X-Webhook-Timestamp".into(), time::format_iso8601(now)),
            ("X-Webhook-Attempt".into(), "1".into()),
            ("User-Agent".into(), "BAS-IP-Webhook-Service/1.0".into()),
        ]
    }
}

impl Redact for BasIp {
    fn redact(&self, raw: &mut serde_json::Value, level: Secrecy) {
        if level >= Secrecy::NoCredentials {
            remove(raw, &["data", "identifier"]);
            remove(raw, &["data", "identifier_number"]);
        }
        if level >= Secrecy::NoPeople {
            remove(raw, &["data", "name"]);
        }
    }
}

/// The kind, and the credential method the type names.
fn kind_of(event_type: &str) -> (Kind, Option<&'static str>) {
    let t = event_type.trim_start_matches("log.");
    let method = [
        ("face", "face"),
        ("input_code", "pin"),
        ("master_code", "pin"),
        ("card", "card"),
        ("qr", "qr"),
        ("api_call", "api"),
        ("call_host", "call"),
        ("shared_identifier", "shared_identifier"),
        ("identifier", "identifier"),
    ]
    .iter()
    .find(|(word, _)| t.contains(word))
    .map(|(_, method)| *method);
    let kind = match t {
        _ if t.contains("access_granted") => Kind::AccessGranted,
        _ if t.contains("access_denied") => Kind::AccessDenied,
        "door_was_opened" | "door_sensor_was_opened" => Kind::DoorOpened,
        "door_was_closed" | "door_sensor_was_closed" => Kind::DoorClosed,
        "lock_is_opened_to_long" | "door_was_not_closed_too_long" => Kind::DoorHeldOpen,
        "lock_was_opened_by_exit_btn" | "lock_was_opened_by_free_access_button" => Kind::DoorUnlocked,
        "emergency_lock_is_opened" => Kind::EmergencyStarted,
        "outgoing_call" | "outgoing_call_web" => Kind::DoorbellRing,
        "outgoing_call_missed" => Kind::DoorbellEnded,
        "incoming_call" => Kind::Other,
        "device_booted" => Kind::DeviceOnline,
        "sip_registration_lost" => Kind::DeviceError,
        "tamper_event" => Kind::DeviceTamper,
        "successful_login_api_call" | "successful_login_gui_settings" => Kind::AdminLogin,
        "incorrect_login_api_call" | "incorrect_login_gui_settings" => Kind::AdminLoginFailed,
        "lift_call_success" | "bond_lift_request" => Kind::LiftCalled,
        "lift_call_error" | "lift_module_access_error" => Kind::LiftFailed,
        _ => Kind::Other,
    };
    let method = matches!(kind, Kind::AccessGranted | Kind::AccessDenied)
        .then_some(method)
        .flatten();
    (kind, method)
}

/// One sample per `log.*` event type in BAS-IP's documentation.
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/bas_ip_samples.rs"));
/// The event types a webhook may subscribe to (`vestibule connect`), as the
/// vendor documents them.
pub const EVENTS: &[&str] = &[
    "log.access_denied_by_not_valid_identifier",
    "log.access_denied_by_not_valid_face_identifier",
    "log.access_denied_by_not_valid_input_code",
    "log.access_denied_by_remote_server_api_call",
    "log.access_denied_by_unknown_card",
    "log.access_granted_by_api_call",
    "log.access_granted_by_call_host",
    "log.access_granted_by_master_code",
    "log.access_granted_by_remote_server_api_call",
    "log.access_granted_by_valid_identifier",
    "log.door_was_closed",
    "log.door_sensor_was_closed",
    "log.door_was_opened",
    "log.door_sensor_was_opened",
    "log.emergency_lock_is_opened",
    "log.lock_is_opened_to_long",
    "log.lock_was_opened_by_exit_btn",
    "log.lock_was_opened_by_free_access_button",
    "log.incoming_call",
    "log.outgoing_call",
    "log.outgoing_call_missed",
    "log.device_booted",
    "log.sip_registration_lost",
    "log.outgoing_call_web",
    "log.incorrect_login_api_call",
    "log.incorrect_login_gui_settings",
    "log.successful_login_api_call",
    "log.successful_login_gui_settings",
    "log.door_was_not_closed_too_long",
    "log.tamper_event",
    "log.multi_access_granted",
    "log.identifiers_without_linkage_to_user_access_denied",
    "log.multi_access_denied",
    "log.access_denied_by_unknown_qr",
    "log.access_denied_unknown_identifier",
    "log.lift_call_success",
    "log.lift_call_error",
    "log.lift_module_access_error",
    "log.access_granted_by_shared_identifier",
    "log.access_denied_by_not_valid_shared_identifier",
    "log.bond_lift_request",
];
