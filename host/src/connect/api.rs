//! One vendor API: JSON over HTTP/1.1, one connection per call (a run makes
//! a handful), TLS as `ca_file` / `accept_invalid_certs` say.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::ConnectError;
use crate::settings::Secret;

/// The most of an answer read: listings are small.
const ANSWER_LIMIT: usize = 4 << 20;

pub struct Api {
    /// `https://host:port`, without a trailing slash; paths are appended.
    base: String,
    host: String,
    port: u16,
    /// The base's own path, put before each call's.
    prefix: String,
    /// The value of `Authorization`, if the API takes it there.
    authorization: Option<Secret>,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

/// What the API answered.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Api {
    pub fn new(
        base: &str,
        authorization: Option<Secret>,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Api, ConnectError> {
        let uri: Uri = base
            .parse()
            .map_err(|_| ConnectError::Config(format!("`{base}` is not a URL")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| ConnectError::Config(format!("`{base}` has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            host,
            port,
            prefix: uri.path().trim_end_matches('/').to_string(),
            authorization,
            tls: if https { tls } else { None },
            timeout,
        })
    }

    /// The API's address, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// An answer that is not what the vendor documents.
    pub fn answer(&self, message: String) -> ConnectError {
        ConnectError::Answer {
            api: self.base.clone(),
            message,
        }
    }

    /// `method path` with `body` as JSON; the answer whatever its status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ConnectError> {
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| self.unreachable(e.to_string()))?;
            let stream: Box<dyn Io> = match &self.tls {
                None => Box::new(tcp),
                Some(tls) => {
                    let name = ServerName::try_from(self.host.clone())
                        .map_err(|_| ConnectError::Config(format!("`{}` is not a host name", self.host)))?;
                    let tls = tokio_rustls::TlsConnector::from(tls.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| {
                            let reason = crate::error_chain(&e);
                            if reason.contains("certificate") || reason.contains("Certificate") {
                                ConnectError::Certificate {
                                    api: self.base.clone(),
                                    reason,
                                }
                            } else {
                                self.unreachable(reason)
                            }
                        })?;
                    Box::new(tls)
                }
            };
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| self.unreachable(crate::error_chain(&e)))?;
            tokio::spawn(connection);
            let mut request = Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.prefix))
                .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
                .header(hyper::header::ACCEPT, "application/json");
            if let Some(authorization) = &self.authorization {
                let mut value = hyper::header::HeaderValue::from_str(authorization.expose())
                    .map_err(|_| ConnectError::Config("the API token is not a valid header value".into()))?;
                value.set_sensitive(true);
                request = request.header(hyper::header::AUTHORIZATION, value);
            }
            let body = match body {
                Some(json) => {
                    request = request.header(hyper::header::CONTENT_TYPE, "application/json");
                    Bytes::from(json.to_string())
                }
                None => Bytes::new(),
            };
            let request = request
                .body(Full::new(body))
                .map_err(|e| ConnectError::Config(e.to_string()))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.unreachable(crate::error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(self.unreachable(format!("no answer within {:?}", self.timeout))))
    }

    fn unreachable(&self, reason: String) -> ConnectError {
        ConnectError::Unreachable {
            api: self.base.clone(),
            reason,
        }
    }
}

impl Api {
    /// The error for an answer that is not a success: 401 and 403 are the
    /// credentials'; `message` is what the vendor said, as it said it.
    pub fn refused(&self, answer: &Answer, message: String) -> ConnectError {
        let status = answer.status.as_u16();
        let api = self.base.clone();
        match status {
            401 | 403 => ConnectError::Unauthorized { api, status, message },
            _ => ConnectError::Vendor { api, status, message },
        }
    }
}

/// What an error answer says: its `error`, `msg` or `message`, or the
/// first 200 bytes of it.
pub fn said(answer: &Answer) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
    let field = json.as_ref().and_then(|j| {
        ["error", "msg", "message"]
            .iter()
            .find_map(|k| j.get(*k).and_then(|v| v.as_str()).map(str::to_string))
    });
    field.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&answer.body);
        text.chars().take(200).collect()
    })
}
