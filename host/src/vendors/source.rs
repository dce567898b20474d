//! `[[sources]]`: one per system that sends events. `vendor` says which
//! kind it is, and each vendor reads the rest of the table into settings of
//! its own, declared in its own file — so a key another vendor uses is
//! refused by serde with the file, line and key, like any typo. The list
//! of vendors is [`super::VENDORS`]-generated: adding one is its file and
//! a line there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::{Settings, VendorKind};
use crate::settings::{ConfigError, Context, Duration, HeaderValue};

/// `[[sources]]`
#[derive(Debug)]
pub struct SourceConfig {
    /// `name`: how events from this source are labelled (`event.source`).
    pub name: String,
    /// `vendor`: which system sends here, and so how requests are verified.
    pub vendor: VendorKind,
    /// `silent_after`: emit `source.silent` when nothing arrived for this
    /// long, and `source.back` when events resume.
    pub silent_after: Option<Duration>,
    /// `[sources.silent_doors]`: the same per door, by the door's name (or
    /// id, where it has no name) as `vestibule events list` shows it.
    pub silent_doors: BTreeMap<String, Duration>,
    /// `[sources.connect]`: how `vestibule connect` subscribes at the vendor.
    pub connect: Option<super::connect::ConnectSettings>,
    /// The rest of the table, as the vendor reads it.
    pub settings: Settings,
}

impl SourceConfig {
    /// Read one `[[sources]]` table. `table`'s spans point into the config
    /// file's text, so errors say where.
    pub fn read(table: Spanned<DeValue<'_>>) -> Result<SourceConfig, toml::de::Error> {
        /// The tag alone, read first, so that its errors point at it.
        #[derive(Deserialize)]
        struct Tag {
            vendor: VendorKind,
        }
        let Tag { vendor } = Tag::deserialize(ValueDeserializer::from(table.clone()))?;
        /// What every source may set, whatever its vendor: taken out of
        /// the table before the vendor reads the rest.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Watch {
            silent_after: Option<Duration>,
            #[serde(default)]
            silent_doors: BTreeMap<String, Duration>,
            connect: Option<super::connect::ConnectSettings>,
        }
        let span = table.span();
        let mut table = table.into_inner();
        let mut watch = toml::de::DeTable::new();
        if let DeValue::Table(entries) = &mut table {
            entries.remove("vendor");
            for key in ["silent_after", "silent_doors", "connect"] {
                if let Some((key, value)) = entries.remove_entry(key) {
                    watch.insert(key, value);
                }
            }
        }
        let watch = Watch::deserialize(ValueDeserializer::from(Spanned::new(
            span.clone(),
            DeValue::Table(watch),
        )))?;
        let settings = Settings::read(vendor, ValueDeserializer::from(Spanned::new(span, table)))?;
        Ok(SourceConfig {
            name: settings.source().name().to_string(),
            vendor,
            silent_after: watch.silent_after,
            silent_doors: watch.silent_doors,
            connect: watch.connect,
            settings,
        })
    }

    /// The URL path this source is served on (webhook sources).
    pub fn path(&self) -> String {
        self.settings
            .source()
            .path()
            .map_or_else(|| format!("/ingest/{}", self.name), str::to_string)
    }

    /// Every file a secret of this source is read from, as written.
    pub fn secret_files(&self) -> Vec<&PathBuf> {
        let Some(auth) = self.settings.source().auth() else {
            return Vec::new();
        };
        let mut files: Vec<&PathBuf> = auth.secret_file.iter().flat_map(|f| f.iter()).collect();
        files.extend(auth.basic_auth.and_then(|b| b.password_file.as_ref()));
        for value in auth.headers.into_iter().flat_map(|h| h.values()) {
            if let HeaderValue::Secret(secret) = value {
                files.extend(secret.secret_file.as_ref());
            }
        }
        files
    }

    /// Whether the host dials it rather than it posting to us.
    pub fn dials_out(&self) -> bool {
        self.vendor.dials_out()
    }
}

/// What every vendor's settings answer.
///
/// Each vendor's struct spells out the keys it shares with the others
/// (`name`, `path`, secrets, headers): serde cannot combine
/// `#[serde(flatten)]` with `deny_unknown_fields`, and a typo refused with
/// its line matters more than the repeated fields. Sinks' retry keys are
/// repeated for the same reason.
pub trait SourceSettings: std::fmt::Debug + Send + Sync {
    /// `name`.
    fn name(&self) -> &str;
    /// `path`: where a webhook source is served, if not `/ingest/<name>`.
    fn path(&self) -> Option<&str> {
        None
    }
    /// How its requests are authenticated: `None` for a source the host
    /// dials.
    fn auth(&self) -> Option<AuthSettings<'_>>;
    /// What else must hold, beyond what serde checked; `key` is the
    /// table's (`sources[0]`).
    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        let _ = (ctx, key);
        Ok(())
    }
}

/// What a webhook source may require of a request, from its settings.
#[derive(Debug, Default)]
pub struct AuthSettings<'a> {
    pub secret_env: Option<&'a OneOrMany<String>>,
    pub secret_file: Option<&'a OneOrMany<PathBuf>>,
    pub signature: SignaturePolicy,
    pub basic_auth: Option<&'a BasicAuthConfig>,
    pub headers: Option<&'a BTreeMap<String, HeaderValue>>,
    pub tolerance: Option<Duration>,
}

impl AuthSettings<'_> {
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

/// The message for a signing vendor's source without a secret.
pub(super) fn needs_secret(ctx: &Context<'_>, key: &str) -> ConfigError {
    ctx.error(
        format!("{key}.secret_env"),
        "expected `secret_env = \"VAR\"` or `secret_file = \"PATH\"` (a list of either accepts several)",
    )
}

/// A webhook source signed with a shared secret over a timestamp and the
/// body, with nothing else of its own to set: `unifi-access` and
/// `standard-webhooks`. Each vendor file names it as its `Settings`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedWebhook {
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
    /// `tolerance`: how far a signed timestamp may be from our clock;
    /// default the vendor's.
    pub tolerance: Option<Duration>,
}

impl SourceSettings for SignedWebhook {
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
            tolerance: self.tolerance,
            ..AuthSettings::default()
        })
    }

    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        match self.auth() {
            Some(auth) if !auth.has_secret() => Err(needs_secret(ctx, key)),
            _ => Ok(()),
        }
    }
}
