//! `[[sinks]]`: where action plugins' commands are delivered, and how hard
//! the outbox tries.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Config, ConfigError, Duration, HeaderValue, SecretValue, check_name};

/// `[[sinks]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `name`: what action plugins address commands to.
    pub name: String,
    /// `kind`: how commands are delivered.
    pub kind: SinkKind,
    /// `url`: `http://host:port/path` for an `http` sink,
    /// `mqtt://host:port` for an `mqtt` one.
    pub url: String,
    /// `method`: the HTTP method of an `http` sink, default `POST`.
    pub method: Option<String>,
    /// `[sinks.headers]`: sent with every command of an `http` sink; values
    /// are plain strings or secret references
    /// (`{ secret_env = "HA_TOKEN", prefix = "Bearer " }`).
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// `topic`: where an `mqtt` sink publishes.
    pub topic: Option<String>,
    /// `username`, `password`: credentials of an `mqtt` sink.
    pub username: Option<String>,
    pub password: Option<SecretValue>,
    /// `client_id`: of an `mqtt` sink, default `vestibule-<sink name>`.
    pub client_id: Option<String>,
    /// `timeout`: how long one delivery attempt may take.
    #[serde(default = "default_sink_timeout")]
    pub timeout: Duration,
    /// `attempts`: delivery attempts before a command is dead-lettered.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// `give_up_after`: time from the first attempt after which a command
    /// is dead-lettered however many attempts are left.
    #[serde(default = "default_give_up_after")]
    pub give_up_after: Duration,
    /// `backoff`: the longest wait before the first retry; it doubles with
    /// each attempt up to `backoff_max`, and the wait is a random time up
    /// to that (full jitter).
    #[serde(default = "default_backoff")]
    pub backoff: Duration,
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Duration,
    /// `max_age`: a command not delivered this long after its event was
    /// received is dead-lettered as `expired`, never sent late.
    pub max_age: Option<Duration>,
}

fn default_sink_timeout() -> Duration {
    Duration(std::time::Duration::from_secs(5))
}

fn default_attempts() -> u32 {
    10
}

fn default_give_up_after() -> Duration {
    Duration(std::time::Duration::from_secs(3600))
}

fn default_backoff() -> Duration {
    Duration(std::time::Duration::from_secs(1))
}

fn default_backoff_max() -> Duration {
    Duration(std::time::Duration::from_secs(300))
}

/// The `kind = "…"` of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    Http,
    Mqtt,
}

impl Config {
    /// Each kind of sink has its own keys; refuse the other kind's.
    pub(super) fn validate_sink(&self, key: &str, sink: &SinkConfig) -> Result<(), ConfigError> {
        check_name(self, &format!("{key}.name"), &sink.name)?;
        let (scheme, example, foreign) = match sink.kind {
            SinkKind::Http => (
                "http",
                "http://HOST:PORT/PATH",
                [
                    ("topic", sink.topic.is_some()),
                    ("username", sink.username.is_some()),
                    ("password", sink.password.is_some()),
                    ("client_id", sink.client_id.is_some()),
                ]
                .to_vec(),
            ),
            SinkKind::Mqtt => (
                "mqtt",
                "mqtt://HOST:1883",
                [("method", sink.method.is_some()), ("headers", !sink.headers.is_empty())].to_vec(),
            ),
        };
        let kind = match sink.kind {
            SinkKind::Http => "http",
            SinkKind::Mqtt => "mqtt",
        };
        if let Some((name, _)) = foreign.iter().find(|(_, set)| *set) {
            return Err(self.error(format!("{key}.{name}"), format!("not a setting of {kind} sinks")));
        }
        match sink.url.parse::<hyper::Uri>() {
            Ok(uri) if uri.scheme_str() == Some(scheme) && uri.host().is_some() => {}
            Ok(uri) if uri.scheme_str() == Some("https") || uri.scheme_str() == Some("mqtts") => {
                return Err(self.error(
                    format!("{key}.url"),
                    "TLS sinks are not supported yet; use a plain connection on a trusted network or a local TLS proxy",
                ));
            }
            _ => return Err(self.error(format!("{key}.url"), format!("expected {example}"))),
        }
        if let Some(method) = &sink.method
            && method.parse::<hyper::Method>().is_err()
        {
            return Err(self.error(format!("{key}.method"), "expected an HTTP method such as \"POST\""));
        }
        if sink.kind == SinkKind::Mqtt {
            match sink.topic.as_deref() {
                Some(topic) if !topic.is_empty() && !topic.contains(['+', '#']) => {}
                _ => {
                    return Err(self.error(
                        format!("{key}.topic"),
                        "expected the topic to publish to, such as \"building/alarms\" (no wildcards)",
                    ));
                }
            }
            if sink.password.is_some() && sink.username.is_none() {
                return Err(self.error(format!("{key}.username"), "a password needs a username"));
            }
        }
        if sink.attempts == 0 {
            return Err(self.error(format!("{key}.attempts"), "must be at least 1"));
        }
        for (name, value) in [("timeout", sink.timeout), ("backoff", sink.backoff)] {
            if value.0.is_zero() {
                return Err(self.error(format!("{key}.{name}"), "must be more than 0"));
            }
        }
        if sink.backoff_max.0 < sink.backoff.0 {
            return Err(self.error(format!("{key}.backoff_max"), "must be at least `backoff`"));
        }
        if sink.max_age.is_some_and(|d| d.0.is_zero()) {
            return Err(self.error(format!("{key}.max_age"), "must be more than 0"));
        }
        Ok(())
    }
}
