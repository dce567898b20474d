//! `[[sources]]`: the systems that send events, and how their requests are
//! authenticated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, ConfigError, HeaderValue};

/// `[[sources]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `name`: how events from this source are labelled (`event.source`).
    pub name: String,
    /// `vendor`: which system sends here, and so how requests are verified.
    pub vendor: VendorKind,
    /// `path`: the URL path the vendor posts to. Default `/ingest/<name>`.
    pub path: Option<String>,
    /// `secret_env`: the environment variable(s) holding the signing secret.
    /// A list accepts any of them, so a secret can be rotated without downtime.
    pub secret_env: Option<OneOrMany<String>>,
    /// `secret_file`: file(s) holding the signing secret (one line each).
    pub secret_file: Option<OneOrMany<PathBuf>>,
    /// `signature`: `"required"` (default) or `"optional"` for vendors that
    /// sign only when a secret is set on their side (Verkada, ProdataKey).
    #[serde(default)]
    pub signature: SignaturePolicy,
    /// `[sources.basic_auth]`: HTTP Basic credentials the sender must present.
    pub basic_auth: Option<BasicAuthConfig>,
    /// `[sources.headers]`: headers every request must carry with exactly
    /// this value (UniFi forwards the custom headers given at registration).
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// `tolerance`: how far a signed timestamp may be from our clock.
    /// Default: the vendor's.
    pub tolerance: Option<super::Duration>,
    /// `url` (unifi-access-ws): the controller's notifications WebSocket,
    /// `wss://HOST:12445/api/v1/developer/devices/notifications`.
    pub url: Option<String>,
    /// `token_env` / `token_file` (unifi-access-ws): the API token sent as
    /// `Authorization: Bearer …`.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `ca_file` (unifi-access-ws): trust only this CA (PEM), e.g. the
    /// controller's self-generated certificate.
    pub ca_file: Option<PathBuf>,
    /// `accept_invalid_certs` (unifi-access-ws): accept any certificate.
    /// Logged as a warning at start; prefer `ca_file`.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// `silence` (unifi-access-ws): reconnect when nothing arrived for this
    /// long. Default 90 s.
    pub silence: Option<super::Duration>,
    /// `backoff` (unifi-access-ws): the first wait before reconnecting; it
    /// doubles up to 60 s. Default 1 s.
    pub backoff: Option<super::Duration>,
}

impl SourceConfig {
    /// The URL path this source is served on.
    pub fn path(&self) -> String {
        self.path.clone().unwrap_or_else(|| format!("/ingest/{}", self.name))
    }

    /// Whether any secret is configured.
    pub fn has_secret(&self) -> bool {
        self.secret_env.is_some() || self.secret_file.is_some()
    }
}

/// A value or a list of them: `secret_env = "A"` or `secret_env = ["A", "B"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one).iter(),
            OneOrMany::Many(many) => many.iter(),
        }
    }
}

/// Whether a request without a signature is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignaturePolicy {
    #[default]
    Required,
    /// Unsigned requests pass; signed ones must verify.
    Optional,
}

/// `[sources.basic_auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// The `vendor = "…"` of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VendorKind {
    /// UniFi Access webhooks (`Signature: t=…,v1=…`).
    UnifiAccess,
    /// Verkada Access webhooks (`Verkada-Signature: ts|sig`).
    Verkada,
    /// ProdataKey webhooks (`X-PDK-Signature`, optional Basic auth).
    Pdk,
    /// Unloc access events (HTTP Basic auth).
    Unloc,
    /// BAS-IP intercom panels (`X-Webhook-Signature`).
    BasIp,
    /// Anything speaking Standard Webhooks (`webhook-signature: v1,…`).
    StandardWebhooks,
    /// UniFi Access WebSocket notifications: the host dials the controller.
    UnifiAccessWs,
}

impl VendorKind {
    /// Every vendor.
    pub const ALL: &[VendorKind] = &[
        VendorKind::UnifiAccess,
        VendorKind::Verkada,
        VendorKind::Pdk,
        VendorKind::Unloc,
        VendorKind::BasIp,
        VendorKind::StandardWebhooks,
        VendorKind::UnifiAccessWs,
    ];

    /// The vendors that post to us: all but the last.
    pub const WEBHOOKS: &[VendorKind] = Self::ALL.split_at(Self::ALL.len() - 1).0;

    /// Whether we dial the vendor rather than it posting to us.
    pub const fn dials_out(self) -> bool {
        matches!(self, VendorKind::UnifiAccessWs)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            VendorKind::UnifiAccess => "unifi-access",
            VendorKind::Verkada => "verkada",
            VendorKind::Pdk => "pdk",
            VendorKind::Unloc => "unloc",
            VendorKind::BasIp => "bas-ip",
            VendorKind::StandardWebhooks => "standard-webhooks",
            VendorKind::UnifiAccessWs => "unifi-access-ws",
        }
    }

    /// Which ways of authenticating this vendor supports.
    pub const fn signs(self) -> bool {
        !matches!(self, VendorKind::Unloc | VendorKind::UnifiAccessWs)
    }
}

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VendorKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let all = || VendorKind::ALL.iter().copied();
        all().find(|v| v.as_str() == text).ok_or_else(|| {
            let known: Vec<&str> = all().map(|v| v.as_str()).collect();
            format!("unknown vendor `{text}`; known: {}", known.join(", "))
        })
    }
}

impl Config {
    /// Each vendor authenticates its own way; refuse settings it cannot use
    /// and sources that would accept anyone.
    pub(super) fn validate_source_auth(&self, key: &str, source: &SourceConfig) -> Result<(), ConfigError> {
        let vendor = source.vendor;
        let dial_keys = [
            ("url", source.url.is_some()),
            ("token_env", source.token_env.is_some()),
            ("token_file", source.token_file.is_some()),
            ("ca_file", source.ca_file.is_some()),
            ("accept_invalid_certs", source.accept_invalid_certs),
            ("silence", source.silence.is_some()),
            ("backoff", source.backoff.is_some()),
        ];
        if vendor.dials_out() {
            let http_keys = [
                ("path", source.path.is_some()),
                ("secret_env", source.secret_env.is_some()),
                ("secret_file", source.secret_file.is_some()),
                ("basic_auth", source.basic_auth.is_some()),
                ("headers", !source.headers.is_empty()),
                ("tolerance", source.tolerance.is_some()),
            ];
            if let Some((name, _)) = http_keys.iter().find(|(_, set)| *set) {
                return Err(self.error(
                    format!("{key}.{name}"),
                    format!("{vendor} is dialled by the host; `{name}` is for sources that post to us"),
                ));
            }
            match source.url.as_deref().map(str::parse::<hyper::Uri>) {
                Some(Ok(uri)) if matches!(uri.scheme_str(), Some("wss" | "ws")) && uri.host().is_some() => {}
                _ => {
                    return Err(self.error(
                        format!("{key}.url"),
                        "expected wss://HOST:12445/api/v1/developer/devices/notifications",
                    ));
                }
            }
            if source.token_env.is_none() && source.token_file.is_none() {
                return Err(self.error(
                    format!("{key}.token_env"),
                    "expected `token_env = \"VAR\"` or `token_file = \"PATH\"`",
                ));
            }
            if source.accept_invalid_certs && source.ca_file.is_some() {
                return Err(self.error(
                    format!("{key}.accept_invalid_certs"),
                    "give either `ca_file` (trust that CA) or `accept_invalid_certs`, not both",
                ));
            }
            return Ok(());
        }
        if let Some((name, _)) = dial_keys.iter().find(|(_, set)| *set) {
            return Err(self.error(
                format!("{key}.{name}"),
                format!("only for unifi-access-ws sources, not {vendor}"),
            ));
        }
        if !vendor.signs() && source.has_secret() {
            return Err(self.error(
                format!("{key}.secret_env"),
                format!("{vendor} does not sign its requests; use [sources.basic_auth]"),
            ));
        }
        if vendor == VendorKind::Unloc && source.basic_auth.is_none() {
            return Err(self.error(
                format!("{key}.basic_auth"),
                "unloc authenticates with the user and password in the registered URL: add [sources.basic_auth]",
            ));
        }
        let secret_optional = matches!(vendor, VendorKind::Verkada | VendorKind::Pdk);
        if source.signature == SignaturePolicy::Optional && !secret_optional {
            return Err(self.error(
                format!("{key}.signature"),
                format!("{vendor} always signs; remove `signature`"),
            ));
        }
        if source.signature == SignaturePolicy::Optional && !source.has_secret() {
            return Err(self.error(
                format!("{key}.signature"),
                "`optional` needs a secret to check signed requests with",
            ));
        }
        let needs_secret = vendor.signs() && !(vendor == VendorKind::Pdk && source.basic_auth.is_some());
        if needs_secret && !source.has_secret() {
            return Err(self.error(
                format!("{key}.secret_env"),
                "expected `secret_env = \"VAR\"` or `secret_file = \"PATH\"` (a list of either accepts several)",
            ));
        }
        Ok(())
    }
}
