//! `[[sinks]]`: where action plugins' commands are delivered, and how hard
//! the outbox tries. `kind` says how; each kind reads the rest of the table
//! into settings of its own, declared in its own file, so a key of the
//! other kind is refused by serde with the file, line and key.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::{Policy, http, mqtt};
use crate::settings::{ConfigError, Context, Duration};

/// `[[sinks]]`
#[derive(Debug)]
pub struct SinkConfig {
    /// `name`: what action plugins address commands to.
    pub name: String,
    /// The rest, as its kind reads it.
    pub settings: SinkSettings,
}

/// A sink's settings, by `kind`.
#[derive(Debug)]
pub enum SinkSettings {
    Http(http::Settings),
    Mqtt(mqtt::Settings),
}

/// The `kind = "…"` of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    Http,
    Mqtt,
}

impl SinkKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkKind::Http => "http",
            SinkKind::Mqtt => "mqtt",
        }
    }
}

impl SinkConfig {
    /// Read one `[[sinks]]` table; spans point into the config file's text.
    pub fn read(table: Spanned<DeValue<'_>>) -> Result<SinkConfig, toml::de::Error> {
        /// The tag alone, read first, so that its errors point at it.
        #[derive(Deserialize)]
        struct Tag {
            kind: SinkKind,
        }
        let Tag { kind } = Tag::deserialize(ValueDeserializer::from(table.clone()))?;
        let span = table.span();
        let mut table = table.into_inner();
        if let DeValue::Table(entries) = &mut table {
            entries.remove("kind");
        }
        let table = ValueDeserializer::from(Spanned::new(span, table));
        let settings = match kind {
            SinkKind::Http => SinkSettings::Http(http::Settings::deserialize(table)?),
            SinkKind::Mqtt => SinkSettings::Mqtt(mqtt::Settings::deserialize(table)?),
        };
        let name = match &settings {
            SinkSettings::Http(s) => s.name.clone(),
            SinkSettings::Mqtt(s) => s.name.clone(),
        };
        Ok(SinkConfig { name, settings })
    }

    pub fn kind(&self) -> SinkKind {
        match self.settings {
            SinkSettings::Http(_) => SinkKind::Http,
            SinkSettings::Mqtt(_) => SinkKind::Mqtt,
        }
    }

    /// The keys every kind has: how the outbox tries.
    pub fn retries(&self) -> Retries {
        match &self.settings {
            SinkSettings::Http(s) => s.retries(),
            SinkSettings::Mqtt(s) => s.retries(),
        }
    }

    /// What must hold beyond what serde checked; `key` is `sinks[i]`.
    pub fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        match &self.settings {
            SinkSettings::Http(s) => s.check(ctx, key)?,
            SinkSettings::Mqtt(s) => s.check(ctx, key)?,
        }
        self.retries().check(ctx, key)
    }
}

/// How the outbox tries a sink's commands: the same keys for every kind,
/// declared in each kind's settings (`timeout`, `attempts`,
/// `give_up_after`, `backoff`, `backoff_max`, `max_age`; see
/// docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Retries {
    pub timeout: Duration,
    pub attempts: u32,
    pub give_up_after: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_age: Option<Duration>,
}

impl Retries {
    fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        if self.attempts == 0 {
            return Err(ctx.error(format!("{key}.attempts"), "must be at least 1"));
        }
        for (name, value) in [("timeout", self.timeout), ("backoff", self.backoff)] {
            if value.0.is_zero() {
                return Err(ctx.error(format!("{key}.{name}"), "must be more than 0"));
            }
        }
        if self.backoff_max.0 < self.backoff.0 {
            return Err(ctx.error(format!("{key}.backoff_max"), "must be at least `backoff`"));
        }
        if self.max_age.is_some_and(|d| d.0.is_zero()) {
            return Err(ctx.error(format!("{key}.max_age"), "must be more than 0"));
        }
        Ok(())
    }

    pub fn policy(&self) -> Policy {
        Policy {
            attempts: self.attempts,
            give_up_after: self.give_up_after.0,
            backoff: self.backoff.0,
            backoff_max: self.backoff_max.0,
            max_age: self.max_age.map(|d| d.0),
        }
    }
}

pub(super) fn default_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(5))
}

pub(super) fn default_attempts() -> u32 {
    10
}

pub(super) fn default_give_up_after() -> Duration {
    Duration(std::time::Duration::from_secs(3600))
}

pub(super) fn default_backoff() -> Duration {
    Duration(std::time::Duration::from_secs(1))
}

pub(super) fn default_backoff_max() -> Duration {
    Duration(std::time::Duration::from_secs(300))
}

/// `url` must be `scheme://HOST…`; TLS schemes are named as unsupported.
pub(super) fn check_url(
    ctx: &Context<'_>,
    key: &str,
    url: &str,
    scheme: &str,
    example: &str,
) -> Result<(), ConfigError> {
    match url.parse::<hyper::Uri>() {
        Ok(uri) if uri.scheme_str() == Some(scheme) && uri.host().is_some() => Ok(()),
        Ok(uri) if uri.scheme_str() == Some("https") || uri.scheme_str() == Some("mqtts") => Err(ctx.error(
            format!("{key}.url"),
            "TLS sinks are not supported yet; use a plain connection on a trusted network or a local TLS proxy",
        )),
        _ => Err(ctx.error(format!("{key}.url"), format!("expected {example}"))),
    }
}
