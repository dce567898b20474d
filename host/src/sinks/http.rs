//! The `http` sink: one request per command, on a pooled keep-alive client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::DeliveryError;
use super::settings::{Retries, check_url};
use crate::settings::{self as config, ConfigError, Context, Duration};
use crate::wit::sinks::Command;

/// Headers a plugin may not set: they belong to the operator or to HTTP
/// itself.
const RESERVED: &[&str] = &[
    "host",
    "idempotency-key",
    "authorization",
    "proxy-authorization",
    "cookie",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// `[[sinks]]` with `kind = "http"`: one request per command.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `name`: what action plugins address commands to.
    pub name: String,
    /// `url`: `http://host:port/path`.
    pub url: String,
    /// `method`: default `POST`.
    pub method: Option<String>,
    /// `[sinks.headers]`: sent with every command; values are plain
    /// strings or secret references (`{ secret_env = "HA_TOKEN", prefix =
    /// "Bearer " }`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, config::HeaderValue>,
    /// `timeout`: how long one delivery attempt may take (5 s).
    #[serde(default = "super::settings::default_timeout")]
    pub timeout: Duration,
    /// `attempts`, `give_up_after`, `backoff`, `backoff_max`, `max_age`:
    /// how the outbox retries (see [`super::settings::Retries`]).
    #[serde(default = "super::settings::default_attempts")]
    pub attempts: u32,
    #[serde(default = "super::settings::default_give_up_after")]
    pub give_up_after: Duration,
    #[serde(default = "super::settings::default_backoff")]
    pub backoff: Duration,
    #[serde(default = "super::settings::default_backoff_max")]
    pub backoff_max: Duration,
    pub max_age: Option<Duration>,
}

impl Settings {
    pub(super) fn retries(&self) -> Retries {
        Retries {
            timeout: self.timeout,
            attempts: self.attempts,
            give_up_after: self.give_up_after,
            backoff: self.backoff,
            backoff_max: self.backoff_max,
            max_age: self.max_age,
        }
    }

    pub(super) fn check(&self, ctx: &Context<'_>, key: &str) -> Result<(), ConfigError> {
        check_url(ctx, key, &self.url, "http", "http://HOST:PORT/PATH")?;
        if let Some(method) = &self.method
            && method.parse::<hyper::Method>().is_err()
        {
            return Err(ctx.error(format!("{key}.method"), "expected an HTTP method such as \"POST\""));
        }
        Ok(())
    }
}

pub struct HttpSink {
    url: Uri,
    method: Method,
    headers: HeaderMap,
    timeout: std::time::Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpSink {
    pub fn from_settings(ctx: &Context<'_>, index: usize, sink: &Settings) -> Result<HttpSink, ConfigError> {
        let config = ctx;
        let key = |k: &str| format!("sinks[{index}].{k}");
        let mut headers = HeaderMap::new();
        for (name, value) in &sink.headers {
            let header_key = key(&format!("headers.{name}"));
            let value = match value {
                config::HeaderValue::Plain(v) => v.clone(),
                config::HeaderValue::Secret(s) => {
                    let secret = config.secret(&header_key, s.secret_env.as_ref(), s.secret_file.as_ref())?;
                    format!("{}{}", s.prefix, secret.expose())
                }
            };
            let name: HeaderName = name
                .parse()
                .map_err(|_| config.error(&header_key, "not a valid header name"))?;
            let mut value: HeaderValue = value
                .parse()
                .map_err(|_| config.error(&header_key, "not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if !headers.contains_key(hyper::header::CONTENT_TYPE) {
            headers.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Ok(HttpSink {
            // Both checked when the config was parsed.
            url: sink.url.parse().map_err(|_| config.error(key("url"), "not a URL"))?,
            method: sink
                .method
                .as_deref()
                .unwrap_or("POST")
                .parse()
                .map_err(|_| config.error(key("method"), "not a method"))?,
            headers,
            timeout: sink.timeout.0,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// One attempt to deliver `command`, with its idempotency key.
    pub async fn deliver(&self, command: &Command, idempotency_key: &str) -> Result<(), DeliveryError> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.url.clone())
            .body(Full::new(Bytes::from(command.body.clone())))
            .map_err(|e| DeliveryError::BadCommand(e.to_string()))?;
        let headers = request.headers_mut();
        for (name, value) in &command.headers {
            let Ok(name) = name.parse::<HeaderName>() else {
                return Err(DeliveryError::BadCommand(format!("header name {name:?}")));
            };
            if RESERVED.contains(&name.as_str()) {
                return Err(DeliveryError::BadCommand(format!(
                    "header {name} is the operator's to set"
                )));
            }
            let Ok(value) = value.parse::<HeaderValue>() else {
                return Err(DeliveryError::BadCommand(format!("value of header {name}")));
            };
            headers.insert(name, value);
        }
        // The operator's headers win over the plugin's.
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let key = HeaderValue::from_str(idempotency_key)
            .map_err(|_| DeliveryError::BadCommand(format!("idempotency key {idempotency_key:?}")))?;
        headers.insert(HeaderName::from_static("idempotency-key"), key);

        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| DeliveryError::Connect(crate::error_chain(&e)))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            // Read the answer so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(DeliveryError::Status(status, retry_after))
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(DeliveryError::Timeout(self.timeout)))
    }
}

/// `Retry-After`: seconds, or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn retry_after(value: &str) -> Option<std::time::Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(std::time::Duration::from_secs(seconds));
    }
    let at = http_date(value)?;
    let now = crate::time::now_ms() / 1000;
    Some(std::time::Duration::from_secs(at.saturating_sub(now).max(0) as u64))
}

/// Seconds since the epoch of an IMF-fixdate, the one form HTTP senders
/// must use.
fn http_date(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let iso = format!("{year}-{month:02}-{:02}T{time}Z", day.parse::<u32>().ok()?);
    crate::time::parse_iso8601(&iso).map(|ms| ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after("120"), Some(std::time::Duration::from_secs(120)));
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
