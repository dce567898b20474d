//! The `http` sink: one request per command, on a pooled keep-alive client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::DeliveryError;
use crate::config::{self, Config, ConfigError, SinkConfig};
use crate::wit::sinks::Command;

/// Headers a plugin may not set: they belong to the operator or to HTTP
/// itself.
const RESERVED: &[&str] = &[
    "host",
    "authorization",
    "proxy-authorization",
    "cookie",
    "content-length",
    "transfer-encoding",
    "connection",
];

pub struct HttpSink {
    name: String,
    url: Uri,
    method: Method,
    headers: HeaderMap,
    timeout: std::time::Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpSink {
    pub fn from_config(config: &Config, index: usize, sink: &SinkConfig) -> Result<HttpSink, ConfigError> {
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
            name: sink.name.clone(),
            // Both checked when the config was parsed.
            url: sink.url.parse().map_err(|_| config.error(key("url"), "not a URL"))?,
            method: sink
                .method
                .parse()
                .map_err(|_| config.error(key("method"), "not a method"))?,
            headers,
            timeout: sink.timeout.0,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub async fn deliver(&self, command: &Command) -> Result<(), DeliveryError> {
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

        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| DeliveryError::Connect(crate::error_chain(&e)))?;
            let status = response.status();
            // Read the answer so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(DeliveryError::Status(status))
            }
        };
        let result = tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(DeliveryError::Timeout(self.timeout)));
        match &result {
            Ok(()) => tracing::debug!(sink = %self.name, "Command delivered."),
            Err(e) => tracing::warn!(sink = %self.name, error = %e, "Command not delivered."),
        }
        result
    }
}
