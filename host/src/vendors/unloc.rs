//! Unloc access events.
//!
//! Authentication: HTTP Basic, from the user and password embedded in the
//! registered URL (`[sources.basic_auth]`); Unloc signs nothing. The body is
//! a flat Access Event `{id, action, created, keyId, lockId, lockName,
//! appUserId, userName}`. Events made while the phone was offline arrive
//! late and out of order: they are never refused for age, and `occurred_at`
//! is their own `created`.

use super::json::remove;
use super::source::{AuthSettings, BasicAuthConfig, SourceSettings};
use crate::secrecy::{Redact, Secrecy};
use crate::settings::{ConfigError, Context, HeaderValue};
use serde_json::Value;

use super::{Auth, NormalizeError, Request, Vendor, Verified, VerifyError, door, json};
use crate::event::{Actor, Credential, Event, Kind};

pub const VENDOR: &str = "unloc";

/// `[[sources]]` with `vendor = "unloc"`: Unloc access events, authenticated with HTTP Basic from the registered URL.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `name`: how its events are labelled (`event.source`).
    pub name: String,
    /// `path`: the URL path it posts to; default `/ingest/<name>`.
    pub path: Option<String>,
    /// `[sources.basic_auth]`: the user and password in the URL registered
    /// with Unloc (required, see `check`).
    pub basic_auth: Option<BasicAuthConfig>,
    /// `[sources.headers]`: headers every request must carry with exactly
    /// this value.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, HeaderValue>,
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
            basic_auth: self.basic_auth.as_ref(),
            headers: Some(&self.headers),
            ..AuthSettings::default()
        })
    }

    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        if self.basic_auth.is_none() {
            return Err(ctx.error(
                format!("{key}.basic_auth"),
                "unloc authenticates with the user and password in the registered URL: add [sources.basic_auth]",
            ));
        }
        Ok(())
    }
}

pub struct Unloc;

impl Vendor for Unloc {
    fn name(&self) -> &'static str {
        VENDOR
    }

    fn verify(&self, _request: &Request<'_>, _auth: &Auth) -> Result<Verified, VerifyError> {
        // Basic auth was checked before the vendor is asked; the config
        // refuses an Unloc source without it.
        Ok(Verified::default())
    }

    fn normalize(&self, request: &Request<'_>, _verified: Verified) -> Result<Event, NormalizeError> {
        let body: Value = serde_json::from_slice(request.body)?;
        let action = json::text(&body, &["action"]).ok_or_else(|| NormalizeError::Shape("no `action` field".into()))?;
        let kind = match action.as_str() {
            "unlocked" => Kind::DoorUnlocked,
            "locked" => Kind::DoorLocked,
            _ => Kind::Other,
        };
        let occurred_at = json::time(&body, &["created"]).unwrap_or(request.received_at);
        let mut event = request.event(VENDOR, &action, kind, occurred_at);
        if let Some(id) = json::text(&body, &["id"]) {
            event.id = id;
        }
        event.door = door(json::text(&body, &["lockId"]), json::text(&body, &["lockName"]), None);
        let app_user = json::text(&body, &["appUserId"]);
        // appUserId may be a phone number: personal data, redacted like one.
        let phone = app_user.clone().filter(|id| id.starts_with('+'));
        if app_user.is_some() || json::text(&body, &["userName"]).is_some() {
            event.actor = Some(Actor {
                id: app_user,
                name: json::text(&body, &["userName"]),
                email: None,
                phone,
                kind: Some("app_user".into()),
            });
        }
        if let Some(key) = json::text(&body, &["keyId"]) {
            event.credential = Some(Credential {
                method: "mobile_key".into(),
                value: Some(key),
            });
        }
        if let Some(code) = json::text(&body, &["viewedCode"]) {
            event.attr("viewed_code", code);
        }
        Ok(event)
    }

    fn samples(&self) -> &'static [(&'static str, &'static str)] {
        SAMPLES
    }

    fn sign(&self, _secret: &str, _now: i64, _body: &[u8]) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl Redact for Unloc {
    fn redact(&self, raw: &mut serde_json::Value, level: Secrecy) {
        if level >= Secrecy::NoCredentials {
            remove(raw, &["keyId"]);
            remove(raw, &["viewedCode"]);
        }
        if level >= Secrecy::NoPeople && json::text(raw, &["appUserId"]).is_some_and(|id| id.starts_with('+')) {
            // The app user id is the person's phone number.
            remove(raw, &["appUserId"]);
        }
    }
}

/// Samples from Unloc's documentation (`examples/events/unloc/`).
pub const SAMPLES: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/unloc_samples.rs"));
