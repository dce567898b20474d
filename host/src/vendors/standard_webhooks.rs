//! Standard Webhooks (standardwebhooks.com), for any system that speaks it.
//!
//! Headers `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64>` — several space-separated signatures are
//! allowed, for key rotation — where the signature is base64 HMAC-SHA256 over
//! `id.timestamp.body`, keyed with the base64-decoded part of a `whsec_…`
//! secret. The body's `type` is the vendor event type; a type that is
//! already one of our normalized kinds is taken as that kind.

use super::json::remove;
use crate::secrecy::{Redact, Secrecy};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::auth::ct_eq;
use super::{
    Auth, NormalizeError, Request, Vendor, Verified, VerifyError, header, hmac_sha256, json, verify_timestamped,
};
use crate::event::{Actor, Event, Kind};

pub const VENDOR: &str = "standard-webhooks";

/// `[[sources]]` with `vendor = "standard-webhooks"`: anything speaking
/// Standard Webhooks (`webhook-signature: v1,…`, a `whsec_…` secret).
pub type Settings = super::source::SignedWebhook;

pub struct StandardWebhooks;

/// The key a `whsec_` secret stands for (a secret without the prefix is
/// used as it is).
fn key(secret: &[u8]) -> Vec<u8> {
    match secret.strip_prefix(b"whsec_") {
        Some(encoded) => STANDARD.decode(encoded).unwrap_or_else(|_| secret.to_vec()),
        None => secret.to_vec(),
    }
}

/// The `webhook-signature` value for `id`, `t` and `body`.
pub fn sign(secret: &str, id: &str, t: i64, body: &[u8]) -> String {
    let mac = hmac_sha256(
        &key(secret.as_bytes()),
        &[id.as_bytes(), b".", t.to_string().as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(mac))
}

impl Vendor for StandardWebhooks {
    fn name(&self) -> &'static str {
        VENDOR
    }

    fn verify(&self, request: &Request<'_>, auth: &Auth) -> Result<Verified, VerifyError> {
        let signatures =
            header(request.headers, "webhook-signature")?.ok_or(VerifyError::SignatureMissing("webhook-signature"))?;
        let id = header(request.headers, "webhook-id")?.ok_or(VerifyError::SignatureInvalid("no webhook-id header"))?;
        let t_text = header(request.headers, "webhook-timestamp")?
            .ok_or(VerifyError::SignatureInvalid("no webhook-timestamp header"))?;
        let given: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .collect();
        if given.is_empty() {
            return Err(VerifyError::SignatureInvalid("no v1 signature"));
        }
        verify_timestamped(request, auth, t_text, "no signature matches", |secret| {
            let mac = hmac_sha256(
                &key(secret),
                &[id.as_bytes(), b".", t_text.trim().as_bytes(), b".", request.body],
            );
            given.iter().fold(false, |found, sig| ct_eq(sig, &mac) | found)
        })
    }

    fn normalize(&self, request: &Request<'_>, verified: Verified) -> Result<Event, NormalizeError> {
        let body: Value = serde_json::from_slice(request.body)?;
        let event_type = json::text(&body, &["type"]).ok_or_else(|| NormalizeError::Shape("no `type` field".into()))?;
        let kind = KINDS
            .iter()
            .copied()
            .find(|k| k.as_str() == event_type)
            .unwrap_or(Kind::Other);
        let occurred_at = json::time(&body, &["timestamp"])
            .or(verified.signed_at.map(|t| t * 1000))
            .unwrap_or(request.received_at);
        let mut event = request.event(VENDOR, &event_type, kind, occurred_at);
        if let Ok(Some(id)) = header(request.headers, "webhook-id") {
            event.id = id.to_string();
        }
        let data = body.get("data").unwrap_or(&Value::Null);
        event.door = super::door(
            json::text(data, &["door_id"]),
            json::text(data, &["door"]).or_else(|| json::text(data, &["door_name"])),
            json::text(data, &["location"]),
        );
        if let Some(actor) = json::text(data, &["actor"]).or_else(|| json::text(data, &["person"])) {
            event.actor = Some(Actor {
                id: json::text(data, &["actor_id"]),
                name: Some(actor),
                email: None,
                phone: None,
                kind: None,
            });
        }
        Ok(event)
    }

    fn samples(&self) -> &'static [(&'static str, &'static str)] {
        SAMPLES
    }

    fn sign(&self, secret: &str, now: i64, body: &[u8]) -> Vec<(String, String)> {
        // A random id, as senders choose theirs: one derived from the body
        // would let a plugin that sees the id test guesses of what the
        // body holds.
        let mut random = [0u8; 10];
        getrandom::fill(&mut random).expect("the operating system's random source is available");
        let id = format!("msg_{}", hex::encode(random));
        vec![
            ("webhook-signature".into(), sign(secret, &id, now, body)),
            ("webhook-id".into(), id),
            ("webhook-timestamp".into(), now.to_string()),
        ]
    }
}

impl Redact for StandardWebhooks {
    fn redact(&self, raw: &mut serde_json::Value, level: Secrecy) {
        if level >= Secrecy::NoPeople {
            remove(raw, &["data", "actor"]);
            remove(raw, &["data", "person"]);
        }
    }
}

/// Kinds a sender may name directly as its `type`.
const KINDS: &[Kind] = &[
    Kind::AccessGranted,
    Kind::AccessDenied,
    Kind::DoorUnlocked,
    Kind::DoorLocked,
    Kind::DoorOpened,
    Kind::DoorClosed,
    Kind::DoorForced,
    Kind::DoorHeldOpen,
    Kind::DoorbellRing,
    Kind::DoorbellEnded,
    Kind::EmergencyStarted,
    Kind::EmergencyEnded,
];

/// Samples (`examples/events/standard-webhooks/`).
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/standard_webhooks_samples.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_base64_keys_and_any_listed_signature_may_match() {
        // Key "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" base64-encoded, as in the
        // Standard Webhooks reference tests.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

        let mut headers = hyper::HeaderMap::new();
        headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap());
        headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
        headers.insert(
            "webhook-signature",
            format!("v1,bm90IHRoaXMgb25l {signature}").parse().unwrap(),
        );
        let request = Request {
            source: "s",
            headers: &headers,
            body,
            received_at: 1_614_265_330_000,
            id_key: &crate::event::IdKey::new([0; 32]),
        };
        let auth = Auth::with_secrets(&[secret], StandardWebhooks.default_tolerance());
        assert!(StandardWebhooks.verify(&request, &auth).is_ok());
    }
}
