//! UniFi Access webhooks (Access 2.2.10+).
//!
//! Signature: header `Signature: t=<unix seconds>,v1=<hex>`, where `v1` is
//! HMAC-SHA256 keyed with the endpoint's `secret` over `t` + `.` + raw body.
//! The timestamp tolerance (300 s by default) is what every known receiver
//! uses; UniFi does not document one.
//!
//! The envelope is `{event, event_object_id, data {location, device, actor,
//! object}}`. It carries no event time, so `occurred_at` is the signed
//! delivery time `t`. `event_object_id` names the object (often the device),
//! not the event, so the event id is derived from the body.

use super::json::{Field, remove};
use crate::secrecy::{Redact, Secrecy};

use super::{
    Auth, NormalizeError, Request, Vendor, Verified, VerifyError, header, hex_matches, hmac_sha256, json,
    verify_timestamped,
};
use crate::event::{Actor, Credential, Device, Door, Event, Kind};

pub const VENDOR: &str = "unifi-access";

/// `[[sources]]` with `vendor = "unifi-access"`: UniFi Access webhooks,
/// signed `Signature: t=…,v1=…` with the endpoint's secret.
pub type Settings = super::source::SignedWebhook;

pub struct UnifiAccess;

/// The `Signature` header value UniFi Access would send for `body` at `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
}

impl Vendor for UnifiAccess {
    fn name(&self) -> &'static str {
        VENDOR
    }

    fn verify(&self, request: &Request<'_>, auth: &Auth) -> Result<Verified, VerifyError> {
        let header = header(request.headers, "signature")?.ok_or(VerifyError::SignatureMissing("Signature"))?;
        let (mut t, mut v1) = (None, None);
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => t = Some(value),
                Some(("v1", value)) => v1 = Some(value),
                _ => {}
            }
        }
        let t_text = t.ok_or(VerifyError::SignatureInvalid("Signature header has no t="))?;
        let v1 = v1.ok_or(VerifyError::SignatureInvalid("Signature header has no v1="))?;
        verify_timestamped(request, auth, t_text, "v1 does not match the body", |secret| {
            hex_matches(&hmac_sha256(secret, &[t_text.as_bytes(), b".", request.body]), v1)
        })
    }

    fn normalize(&self, request: &Request<'_>, verified: Verified) -> Result<Event, NormalizeError> {
        normalize(request, verified)
    }

    fn samples(&self) -> &'static [(&'static str, &'static str)] {
        SAMPLES
    }

    fn sign(&self, secret: &str, now: i64, body: &[u8]) -> Vec<(String, String)> {
        vec![("Signature".into(), sign(secret, now, body))]
    }
}

impl Redact for UnifiAccess {
    fn redact(&self, raw: &mut serde_json::Value, level: Secrecy) {
        // Webhooks; then the WebSocket frames, which share the envelope.
        if level >= Secrecy::NoCredentials {
            remove(raw, &["data", "object", "authentication_value"]);
            remove(raw, &["data", "_source", "authentication", "issuer"]);
        }
        if level >= Secrecy::NoPeople {
            remove(raw, &["data", "actor", "name"]);
            for key in ["display_name", "alternate_name", "avatar", "sso_picture"] {
                remove(raw, &["data", "_source", "actor", key]);
            }
        }
    }
}

/// What is read of a UniFi Access envelope; the rest of the body is kept
/// as sent, in `raw`, and not parsed further.
const SHAPE: &[Field] = &[
    Field::text("event"),
    Field::object(
        "data",
        &[
            Field::object(
                "object",
                &[
                    Field::text("status"),
                    Field::text("result"),
                    Field::text("authentication_type"),
                    Field::text("authentication_value"),
                    Field::text("policy_name"),
                    Field::text("reason_code"),
                ],
            ),
            Field::object("location", &[Field::text("id"), Field::text("name")]),
            Field::object(
                "device",
                &[
                    Field::text("id"),
                    Field::text("alias"),
                    Field::text("name"),
                    Field::text("device_type"),
                ],
            ),
            Field::object("actor", &[Field::text("id"), Field::text("name"), Field::text("type")]),
        ],
    ),
];

/// Map a UniFi Access envelope (webhook or WebSocket) to the normalized event.
pub fn normalize(request: &Request<'_>, verified: Verified) -> Result<Event, NormalizeError> {
    let mut body = json::pick(request.body, SHAPE)?;
    let event_type = body
        .take(&["event"])
        .ok_or_else(|| NormalizeError::Shape("no `event` field".into()))?;
    let mut object = |key: &str| body.take(&["data", "object", key]);
    let (status, result) = (object("status"), object("result"));
    let credential = object("authentication_type").map(|method| Credential {
        method: method.to_lowercase(),
        value: object("authentication_value"),
    });
    let (policy, reason_code) = (object("policy_name"), object("reason_code"));
    let occurred_at = verified.signed_at.map_or(request.received_at, |t| t * 1000);

    let (kind, cause) = kind_of(&event_type, status.as_deref(), result.as_deref());
    let mut event = request.event(VENDOR, &event_type, kind, occurred_at);
    if let Some(cause) = cause {
        event.attr("cause", cause);
    }
    if let Some(status) = status {
        event.attr("status", status);
    }
    event.door = body.has(&["data", "location"]).then(|| Door {
        id: body.take(&["data", "location", "id"]),
        name: body.take(&["data", "location", "name"]),
        location: None,
    });
    event.device = body.has(&["data", "device"]).then(|| Device {
        id: body.take(&["data", "device", "id"]),
        name: body
            .take(&["data", "device", "alias"])
            .or_else(|| body.take(&["data", "device", "name"])),
        model: body.take(&["data", "device", "device_type"]),
    });
    event.actor = body.has(&["data", "actor"]).then(|| Actor {
        id: body.take(&["data", "actor", "id"]),
        name: body.take(&["data", "actor", "name"]),
        email: None,
        phone: None,
        kind: body.take(&["data", "actor", "type"]),
    });
    event.credential = credential;
    if let Some(result) = result {
        if kind == Kind::AccessDenied {
            event.attr("reason", result.clone());
        }
        event.attr("result", result);
    }
    if let Some(policy) = policy {
        event.attr("policy", policy);
    }
    if let Some(code) = reason_code {
        if let Some(outcome) = doorbell_outcome(&code) {
            event.attr("outcome", outcome);
        }
        event.attr("reason_code", code);
    }
    Ok(event)
}

fn kind_of(event_type: &str, status: Option<&str>, result: Option<&str>) -> (Kind, Option<&'static str>) {
    let status = status.map(str::to_ascii_lowercase);
    let kind = match event_type {
        "access.door.unlock" => match result.map(str::to_ascii_lowercase) {
            Some(r) if r.contains("granted") => Kind::AccessGranted,
            // Denials are reported as "Access Denied" or "BLOCKED" (assumed).
            Some(r) if r.contains("denied") || r.contains("blocked") => Kind::AccessDenied,
            _ => Kind::DoorUnlocked,
        },
        "access.doorbell.incoming" | "access.doorbell.incoming.REN" => Kind::DoorbellRing,
        "access.doorbell.completed" => Kind::DoorbellEnded,
        // The door position sensor reports "open" / "close" (assumed).
        "access.device.dps_status" => match status.as_deref() {
            Some("open") => Kind::DoorOpened,
            Some("close" | "closed") => Kind::DoorClosed,
            _ => Kind::DeviceStatus,
        },
        // Emergency status: "lockdown"/"evacuation" on, "normal"/"none"/"off" off (assumed).
        "access.device.emergency_status" => match status.as_deref() {
            Some("normal" | "none" | "off" | "" | "disabled") | None => Kind::EmergencyEnded,
            Some(_) => Kind::EmergencyStarted,
        },
        "access.unlock_schedule.activate" => return (Kind::DoorUnlocked, Some("schedule")),
        "access.unlock_schedule.deactivate" => return (Kind::DoorLocked, Some("schedule")),
        "access.temporary_unlock.start" => return (Kind::DoorUnlocked, Some("temporary_unlock")),
        "access.temporary_unlock.end" => return (Kind::DoorLocked, Some("temporary_unlock")),
        "access.visitor.status.changed" => Kind::VisitorChanged,
        _ => Kind::Other,
    };
    (kind, None)
}

/// The doorbell reason codes UniFi documents.
pub(super) fn doorbell_outcome(code: &str) -> Option<&'static str> {
    Some(match code {
        "105" => "timed_out",
        "106" => "rejected",
        "107" => "unlocked",
        "108" => "cancelled",
        "400" => "answered_elsewhere",
        _ => return None,
    })
}

/// Sample events shaped as UniFi Access sends them, one per documented
/// webhook event (`examples/events/unifi-access/`).
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/unifi_access_samples.rs"));

/// The webhook events an endpoint may subscribe to (`vestibule connect`),
/// as the vendor documents them.
pub const EVENTS: &[&str] = &[
    "access.doorbell.incoming",
    "access.doorbell.completed",
    "access.doorbell.incoming.REN",
    "access.device.dps_status",
    "access.door.unlock",
    "access.device.emergency_status",
    "access.unlock_schedule.activate",
    "access.unlock_schedule.deactivate",
    "access.temporary_unlock.start",
    "access.temporary_unlock.end",
    "access.visitor.status.changed",
];

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;

    const SECRET: &str = "6601f1243d2ff70f";
    const T: i64 = 1695902233;
    const ID_KEY: crate::event::IdKey = crate::event::IdKey::new([0; 32]);

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8], now_s: i64) -> Request<'a> {
        Request {
            source: "office",
            headers,
            body,
            received_at: now_s * 1000,
            id_key: &ID_KEY,
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("Signature", value.parse().unwrap());
        h
    }

    struct Checked(Auth);

    impl Checked {
        fn verify(&self, request: &Request<'_>) -> Result<Verified, VerifyError> {
            UnifiAccess.verify(request, &self.0)
        }
    }

    fn vendor() -> Checked {
        Checked(Auth::with_secrets(&[SECRET], UnifiAccess.default_tolerance()))
    }

    #[test]
    fn signature_is_hmac_sha256_of_t_dot_body() {
        // Vector computed independently: printf '1695902233.{"event":"x"}' |
        //   openssl dgst -sha256 -hmac 6601f1243d2ff70f
        let header = sign(SECRET, T, br#"{"event":"x"}"#);
        assert_eq!(
            header,
            "t=1695902233,v1=dcd229cc80bfedc49f8b3466b2ecd5b756dc409c05544a6dd4822d3f56c42a23"
        );
    }

    #[test]
    fn genuine_request_verifies_within_tolerance() {
        let body = br#"{"event":"access.door.unlock"}"#;
        let h = headers(&sign(SECRET, T, body));
        assert_eq!(vendor().verify(&request(&h, body, T + 299)).unwrap().signed_at, Some(T));
    }

    #[test]
    fn uppercase_hex_and_spaces_after_commas_are_accepted() {
        let body = b"{}";
        let signed = sign(SECRET, T, body);
        let (t, v1) = signed.split_once(',').unwrap();
        let h = headers(&format!("{t}, {}", v1.to_uppercase().replace("V1=", "v1=")));
        assert!(vendor().verify(&request(&h, body, T)).is_ok());
    }

    #[test]
    fn each_failure_has_its_reason() {
        let body = b"{}";
        let v = vendor();
        let none = HeaderMap::new();
        assert_eq!(
            v.verify(&request(&none, body, T)).unwrap_err().reason(),
            "signature_missing"
        );

        let wrong = headers(&sign("another-secret", T, body));
        assert_eq!(
            v.verify(&request(&wrong, body, T)).unwrap_err().reason(),
            "signature_invalid"
        );

        let tampered = headers(&sign(SECRET, T, b"{\"x\":1}"));
        assert_eq!(
            v.verify(&request(&tampered, body, T)).unwrap_err().reason(),
            "signature_invalid"
        );

        let stale = headers(&sign(SECRET, T, body));
        assert_eq!(
            v.verify(&request(&stale, body, T + 301)).unwrap_err().reason(),
            "timestamp_out_of_range"
        );

        for garbled in ["v1=abcd", "t=1695902233", "t=soon,v1=00", "nonsense"] {
            let h = headers(garbled);
            assert_eq!(
                v.verify(&request(&h, body, T)).unwrap_err().reason(),
                "signature_invalid",
                "{garbled}"
            );
        }
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let body = b"{}";
        let rotating = Checked(Auth::with_secrets(
            &["old-secret", SECRET],
            UnifiAccess.default_tolerance(),
        ));
        assert!(
            rotating
                .verify(&request(&headers(&sign(SECRET, T, body)), body, T))
                .is_ok()
        );
        assert!(
            rotating
                .verify(&request(&headers(&sign("old-secret", T, body)), body, T))
                .is_ok()
        );
        assert_eq!(
            rotating
                .verify(&request(&headers(&sign("other", T, body)), body, T))
                .unwrap_err()
                .reason(),
            "signature_invalid"
        );
    }

    #[test]
    fn tolerance_is_configurable() {
        let body = b"{}";
        let h = headers(&sign(SECRET, T, body));
        let strict = Checked(Auth::with_secrets(&[SECRET], std::time::Duration::from_secs(10)));
        assert!(strict.verify(&request(&h, body, T + 10)).is_ok());
        assert_eq!(
            strict.verify(&request(&h, body, T + 11)).unwrap_err().reason(),
            "timestamp_out_of_range"
        );
    }

    fn sample(event_type: &str) -> Event {
        let body = SAMPLES.iter().find(|(t, _)| *t == event_type).unwrap().1.as_bytes();
        let h = HeaderMap::new();
        normalize(
            &request(&h, body, T),
            Verified {
                signed_at: Some(T),
                replayable_until: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn granted_unlock_is_normalized() {
        let e = sample("access.door.unlock");
        assert_eq!(e.kind, "access.granted");
        assert_eq!(e.vendor, "unifi-access");
        assert_eq!(e.vendor_event_type, "access.door.unlock");
        assert_eq!(e.occurred_at, T * 1000);
        assert_eq!(e.door.as_ref().unwrap().name.as_deref(), Some("Front Door"));
        assert_eq!(e.actor.as_ref().unwrap().name.as_deref(), Some("Ada Lovelace"));
        let credential = e.credential.as_ref().unwrap();
        assert_eq!(credential.method, "nfc");
        assert_eq!(credential.value.as_deref(), Some("04A1B2C3D4E5F6"));
        assert_eq!(e.device.as_ref().unwrap().model.as_deref(), Some("UAH-DOOR"));
        assert!(e.raw.contains("\"policy_name\": \"Staff\""));
    }

    #[test]
    fn denied_unlock_is_access_denied() {
        let body = super::super::sample(crate::config::VendorKind::UnifiAccess, "access.door.unlock")
            .unwrap()
            .replace("Access Granted", "Access Denied");
        let h = HeaderMap::new();
        let e = normalize(&request(&h, body.as_bytes(), T), Verified::default()).unwrap();
        assert_eq!(e.kind, "access.denied");
        assert_eq!(e.occurred_at, T * 1000, "no signed time: the receive time");
    }

    #[test]
    fn doorbell_and_dps_events_are_normalized() {
        assert_eq!(sample("access.doorbell.incoming").kind, "doorbell.ring");
        let ended = sample("access.doorbell.completed");
        assert_eq!(ended.kind, "doorbell.ended");
        assert!(
            ended
                .attributes
                .iter()
                .any(|a| a.key == "outcome" && a.value == "unlocked")
        );
        assert_eq!(sample("access.device.dps_status").kind, "door.opened");
    }

    #[test]
    fn unknown_events_pass_as_other_with_raw_payload() {
        let body = br#"{"event":"access.parking.spot.taken","data":{"spot":{"id":"p1"}}}"#;
        let h = HeaderMap::new();
        let e = normalize(&request(&h, body, T), Verified::default()).unwrap();
        assert_eq!(e.kind, "other");
        assert_eq!(e.raw.as_bytes(), body);
    }

    #[test]
    fn same_body_same_id() {
        assert_eq!(sample("access.door.unlock").id, sample("access.door.unlock").id);
        assert_ne!(sample("access.door.unlock").id, sample("access.doorbell.incoming").id);
    }

    #[test]
    fn bodies_that_are_not_events_are_refused() {
        let h = HeaderMap::new();
        let error = |body: &[u8]| normalize(&request(&h, body, T), Verified::default()).unwrap_err();
        assert!(matches!(error(b"not json"), NormalizeError::NotJson(_)));
        for body in [&b"[1,2]"[..], br#"{"data":{}}"#] {
            assert!(matches!(error(body), NormalizeError::Shape(_)), "{:?}", error(body));
        }
    }
}
