//! `[[sources]]`: the systems that send events, and how their requests are
//! authenticated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::HeaderValue;

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
    /// The vendors that post to us.
    pub const WEBHOOKS: &[VendorKind] = &[
        VendorKind::UnifiAccess,
        VendorKind::Verkada,
        VendorKind::Pdk,
        VendorKind::Unloc,
        VendorKind::BasIp,
        VendorKind::StandardWebhooks,
    ];

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
        let all = || VendorKind::WEBHOOKS.iter().copied().chain([VendorKind::UnifiAccessWs]);
        all().find(|v| v.as_str() == text).ok_or_else(|| {
            let known: Vec<&str> = all().map(|v| v.as_str()).collect();
            format!("unknown vendor `{text}`; known: {}", known.join(", "))
        })
    }
}
