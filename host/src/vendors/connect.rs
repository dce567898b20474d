//! `[sources.connect]`: how `vestibule connect` reaches the vendor's API and
//! what it subscribes. One table for every vendor, so an unknown key is
//! refused with every key it could have been; a key that belongs to
//! another vendor is refused by [`ConnectSettings::check`], naming the
//! vendor it is for.

use std::path::PathBuf;

use serde::Deserialize;

use super::{OneOrMany, SourceConfig, VendorKind, bas_ip, pdk, unifi_access};
use crate::settings::{ConfigError, Context, Duration};

/// `[sources.connect]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSettings {
    /// `api`: the vendor's API, e.g. `https://192.168.1.1:12445`; ProdataKey
    /// and Unloc default to their cloud.
    pub api: Option<String>,
    /// `token_env` / `token_file`: the API's credentials.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `public_url`: where the vendor reaches this source, as the world
    /// sees it (behind a proxy, not the listener's own address).
    pub public_url: String,
    /// `events`: what to subscribe; default every event the vendor documents
    /// (ProdataKey: every panel event).
    pub events: Option<Vec<String>>,
    /// `name`: the subscription's name, how ours is told from others;
    /// default `vestibule-<source>`.
    pub name: Option<String>,
    /// `ca_file` / `accept_invalid_certs`: TLS to the API, as for the
    /// WebSocket source.
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// `timeout`: how long one API call may take; default 10s.
    pub timeout: Option<Duration>,

    // ProdataKey.
    /// `organization`: the organization id in `/api/ous/{organization}/hooks`.
    pub organization: Option<String>,
    /// `scope`: `"ou"`, `"ouRecursive"` (default) or a list of panel ids.
    pub scope: Option<OneOrMany<String>>,
    /// `secrecy_level`: 0, 1 (default) or 2.
    pub secrecy_level: Option<u8>,
    /// `expires_at`: ISO-8601; the vendor deactivates the hook then.
    pub expires_at: Option<String>,
    /// `ssl_verification`: whether the vendor checks our certificate.
    pub ssl_verification: Option<bool>,

    // Unloc.
    /// `project`: the project id in `/v2/projects/{project}/webhooks`.
    pub project: Option<String>,
    /// `lock_id`: the lock whose access events are sent.
    pub lock_id: Option<String>,

    // BAS-IP.
    /// `delivery_timeout`: how long the panel waits for us, 1–30 s.
    pub delivery_timeout: Option<Duration>,
    /// `max_retries`: the panel's retries after a failed delivery, ≤ 5.
    pub max_retries: Option<u8>,
}

/// The vendors `connect` can set up, and the keys only one of them takes.
const VENDOR_KEYS: &[(&str, VendorKind)] = &[
    ("organization", VendorKind::Pdk),
    ("scope", VendorKind::Pdk),
    ("secrecy_level", VendorKind::Pdk),
    ("expires_at", VendorKind::Pdk),
    ("ssl_verification", VendorKind::Pdk),
    ("project", VendorKind::Unloc),
    ("lock_id", VendorKind::Unloc),
    ("delivery_timeout", VendorKind::BasIp),
    ("max_retries", VendorKind::BasIp),
];

/// Characters RFC 3986 reserves, which Unloc's URL credentials must avoid.
pub const RFC3986_RESERVED: &str = ":/?#[]@!$&'()*+,;=";

/// ProdataKey's longest subscription name.
pub const PDK_MAX_NAME: usize = 70;

impl ConnectSettings {
    /// The subscription's name.
    pub fn name(&self, source: &str) -> String {
        self.name.clone().unwrap_or_else(|| format!("vestibule-{source}"))
    }

    /// The events to subscribe: as configured, or the vendor's default.
    pub fn events(&self, vendor: VendorKind) -> Vec<String> {
        match &self.events {
            Some(events) => events.clone(),
            None => {
                let all: &[&str] = match vendor {
                    VendorKind::UnifiAccess => unifi_access::EVENTS,
                    VendorKind::BasIp => bas_ip::EVENTS,
                    VendorKind::Pdk => pdk::PANEL_EVENTS,
                    _ => &[],
                };
                all.iter().map(|e| e.to_string()).collect()
            }
        }
    }

    /// What serde could not check; `key` is the source's (`sources[0]`).
    pub fn check(&self, ctx: &Context<'_>, key: &str, source: &SourceConfig) -> Result<(), ConfigError> {
        let key = format!("{key}.connect");
        let at = |k: &str| format!("{key}.{k}");
        let vendor = source.vendor;
        if !matches!(
            vendor,
            VendorKind::UnifiAccess | VendorKind::Pdk | VendorKind::Unloc | VendorKind::BasIp | VendorKind::Verkada
        ) {
            return Err(ctx.error(
                &key,
                format!("`vestibule connect` cannot set up {vendor} sources (unifi-access, pdk, unloc, bas-ip and verkada only)"),
            ));
        }
        for (name, owner) in VENDOR_KEYS {
            if *owner != vendor && self.is_set(name) {
                return Err(ctx.error(at(name), format!("is for {owner} sources, not {vendor}")));
            }
        }
        let api = vendor != VendorKind::Verkada;
        if !api {
            for (name, set) in [
                ("api", self.api.is_some()),
                ("token_env", self.token_env.is_some() || self.token_file.is_some()),
            ] {
                if set {
                    return Err(ctx.error(
                        at(name),
                        "verkada webhooks are set up in Verkada Command: there is no API to call",
                    ));
                }
            }
        } else {
            if self.token_env.is_some() == self.token_file.is_some() {
                return Err(ctx.error(
                    at("token_env"),
                    "expected `token_env = \"VAR\"` or `token_file = \"PATH\"` (the API's credentials)",
                ));
            }
            let default_api = matches!(vendor, VendorKind::Pdk | VendorKind::Unloc);
            match &self.api {
                None if !default_api => {
                    return Err(ctx.error(
                        at("api"),
                        "expected the API's URL, e.g. `api = \"https://192.168.1.1:12445\"`",
                    ));
                }
                Some(url)
                    if !(url.starts_with("https://") || url.starts_with("http://"))
                        || url.parse::<hyper::Uri>().is_err() =>
                {
                    return Err(ctx.error(at("api"), "expected an http:// or https:// URL"));
                }
                _ => {}
            }
        }
        if self.accept_invalid_certs && self.ca_file.is_some() {
            return Err(ctx.error(
                at("accept_invalid_certs"),
                "give either `ca_file` (trust that CA) or `accept_invalid_certs`, not both",
            ));
        }
        let https_only = matches!(vendor, VendorKind::Pdk | VendorKind::Unloc);
        let scheme_ok =
            self.public_url.starts_with("https://") || (!https_only && self.public_url.starts_with("http://"));
        if !scheme_ok || self.public_url.parse::<hyper::Uri>().is_err() || self.public_url.contains('@') {
            let expected = if https_only {
                "an https:// URL (the vendor requires HTTPS)"
            } else {
                "an http:// or https:// URL"
            };
            return Err(ctx.error(at("public_url"), format!("expected {expected}, without credentials")));
        }
        let name = self.name(source.settings.source().name());
        if vendor == VendorKind::Pdk && name.chars().count() > PDK_MAX_NAME {
            return Err(ctx.error(
                at("name"),
                format!("is longer than the {PDK_MAX_NAME} characters ProdataKey allows"),
            ));
        }
        if let Some(events) = &self.events {
            if events.is_empty() {
                return Err(ctx.error(at("events"), "expected at least one event"));
            }
            if let Some((all, family)) = documented(vendor) {
                if let Some(unknown) = events.iter().find(|e| !all.contains(&e.as_str())) {
                    return Err(ctx.error(
                        at("events"),
                        format!("`{unknown}` is not a {vendor} event; known: {}", all.join(", ")),
                    ));
                }
                if let Some(family) = family
                    && events.iter().any(|e| family(e)) != events.iter().all(|e| family(e))
                {
                    return Err(ctx.error(
                        at("events"),
                        "mixes organization and panel events, which one ProdataKey subscription cannot",
                    ));
                }
            }
        }
        match vendor {
            VendorKind::Pdk => {
                if self.organization.is_none() {
                    return Err(ctx.error(
                        at("organization"),
                        "expected the organization id, as in /api/ous/{organization}/hooks",
                    ));
                }
                if self.secrecy_level.is_some_and(|level| level > 2) {
                    return Err(ctx.error(at("secrecy_level"), "expected 0, 1 or 2"));
                }
                if let Some(at_) = &self.expires_at
                    && crate::time::parse_iso8601(at_).is_none()
                {
                    return Err(ctx.error(
                        at("expires_at"),
                        "expected an ISO-8601 time such as 2027-01-01T00:00:00Z",
                    ));
                }
            }
            VendorKind::Unloc if self.project.is_none() => {
                return Err(ctx.error(
                    at("project"),
                    "expected the project id, as in /v2/projects/{project}/webhooks",
                ));
            }
            VendorKind::BasIp => {
                if self
                    .delivery_timeout
                    .is_some_and(|d| !(1000..=30_000).contains(&d.0.as_millis()))
                {
                    return Err(ctx.error(at("delivery_timeout"), "expected 1s to 30s"));
                }
                if self.max_retries.is_some_and(|n| n > 5) {
                    return Err(ctx.error(at("max_retries"), "expected at most 5"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn is_set(&self, key: &str) -> bool {
        match key {
            "organization" => self.organization.is_some(),
            "scope" => self.scope.is_some(),
            "secrecy_level" => self.secrecy_level.is_some(),
            "expires_at" => self.expires_at.is_some(),
            "ssl_verification" => self.ssl_verification.is_some(),
            "project" => self.project.is_some(),
            "lock_id" => self.lock_id.is_some(),
            "delivery_timeout" => self.delivery_timeout.is_some(),
            "max_retries" => self.max_retries.is_some(),
            _ => false,
        }
    }
}

/// Which events are an organization's (ProdataKey's other family).
fn is_pdk_organization_event(event: &str) -> bool {
    pdk::ORGANIZATION_EVENTS.contains(&event)
}

/// The events `vendor` documents for its subscriptions (the default set
/// first), and for ProdataKey how to tell the two families apart.
type Family = fn(&str) -> bool;
fn documented(vendor: VendorKind) -> Option<(Vec<&'static str>, Option<Family>)> {
    match vendor {
        VendorKind::UnifiAccess => Some((unifi_access::EVENTS.to_vec(), None)),
        VendorKind::BasIp => Some((bas_ip::EVENTS.to_vec(), None)),
        VendorKind::Pdk => Some((
            pdk::PANEL_EVENTS
                .iter()
                .chain(pdk::ORGANIZATION_EVENTS)
                .copied()
                .collect(),
            Some(is_pdk_organization_event as Family),
        )),
        _ => None,
    }
}
