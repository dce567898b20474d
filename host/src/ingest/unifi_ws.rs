//! The UniFi Access notifications WebSocket: we dial the controller, and
//! every frame it pushes becomes an event.
//!
//! The controller's certificate is self-generated, so TLS trusts the system
//! roots by default, only a pinned CA with `ca_file`, or anything with an
//! explicit `accept_invalid_certs` (logged as a warning). The first frame may
//! be the plain text `Hello`; any frame, pings included, shows the link is
//! alive. After `silence` with no frame, or a drop, we reconnect with
//! exponential backoff and jitter (`backoff` doubling up to 60 s). The
//! backoff starts again from `backoff` only after a connection proved
//! healthy — it brought an event, or stayed up for `silence` — so a
//! controller that accepts and drops at once is not redialled every
//! second. A frame is an event like a webhook's body, and as large at most:
//! `[server] max_body`. Each change of state is logged once, not once per
//! retry.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

use crate::config::{Config, ConfigError, Secret};
use crate::store::{Journal, StoreError};
use crate::time::now_ms;
use crate::vendors::unifi_access_ws::Settings;
use crate::vendors::{self, unifi_access_ws};

const MAX_BACKOFF: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `vendor = "unifi-access-ws"` source.
#[derive(Clone)]
pub struct UnifiWs {
    pub name: String,
    url: String,
    token: Secret,
    /// `None` for a plain `ws://` URL.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The pinned CA's PEM as read, so a reload can tell it changed.
    ca_pem: Option<Vec<u8>>,
    accept_invalid_certs: bool,
    silence: Duration,
    backoff: Duration,
    /// The largest frame taken (`[server] max_body`).
    max_frame: usize,
}

/// How a connection attempt ended.
enum Ended {
    /// It never connected.
    Failed(String),
    /// It was connected, then this happened; whether it had proved healthy.
    Dropped { reason: String, healthy: bool },
    /// The host is stopping or the pipeline is gone.
    Stop,
}

impl UnifiWs {
    pub fn from_config(config: &Config, index: usize, source: &Settings) -> Result<UnifiWs, ConfigError> {
        let key = |k: &str| format!("sources[{index}].{k}");
        let token = config.secret(&key("token_env"), source.token_env.as_ref(), source.token_file.as_ref())?;
        // Checked when the config was parsed.
        let url = source.url.clone();
        let ca_pem = match &source.ca_file {
            Some(file) => {
                let file = config.resolve(file);
                let pem = crate::files::read(&file, crate::files::PEM_LIMIT)
                    .map_err(|e| config.error(key("ca_file"), format!("cannot read {}: {e}", file.display())))?;
                Some(pem)
            }
            None => None,
        };
        let tls = if url.starts_with("wss://") {
            let ca_file = source.ca_file.as_ref().map(|f| config.resolve(f).display().to_string());
            Some(Arc::new(
                crate::client_tls::config(ca_pem.as_deref(), source.accept_invalid_certs).map_err(|message| {
                    config.error(key("ca_file"), format!("{}: {message}", ca_file.unwrap_or_default()))
                })?,
            ))
        } else {
            None
        };
        Ok(UnifiWs {
            name: source.name.clone(),
            url,
            token,
            tls,
            ca_pem,
            accept_invalid_certs: source.accept_invalid_certs,
            silence: source.silence.map_or(Duration::from_secs(90), |d| d.0),
            backoff: source.backoff.map_or(Duration::from_secs(1), |d| d.0),
            max_frame: config.server.max_body.0 as usize,
        })
    }

    /// Whether `other` would connect the same way: then a reload keeps this
    /// connection open instead of dropping events while it reconnects.
    pub fn same_as(&self, other: &UnifiWs) -> bool {
        self.name == other.name
            && self.url == other.url
            && self.token == other.token
            && self.ca_pem == other.ca_pem
            && self.accept_invalid_certs == other.accept_invalid_certs
            && self.silence == other.silence
            && self.backoff == other.backoff
            && self.max_frame == other.max_frame
    }

    /// Stay connected until `stop` turns true, sending every event to `queue`.
    pub async fn run(self, journal: Arc<dyn Journal>, mut stop: watch::Receiver<bool>) {
        let source = &self.name;
        if self.accept_invalid_certs {
            tracing::warn!(%source, url = %self.url, "Accepting any TLS certificate from the controller (accept_invalid_certs); pin it with ca_file instead.");
        }
        let mut state = String::new();
        let mut backoff = self.backoff;
        loop {
            let ended = tokio::select! {
                ended = self.session(journal.as_ref(), &mut state) => ended,
                _ = stop.wait_for(|stop| *stop) => Ended::Stop,
            };
            match ended {
                Ended::Stop => return,
                Ended::Dropped { reason, healthy } => {
                    if healthy {
                        backoff = self.backoff;
                    }
                    log_change(
                        &mut state,
                        format!("dropped: {reason}"),
                        |s| tracing::warn!(%source, "Controller connection {s}; reconnecting."),
                    );
                }
                Ended::Failed(reason) => log_change(
                    &mut state,
                    format!("failed: {reason}"),
                    |s| tracing::warn!(%source, url = %self.url, "Controller connection {s}; retrying with backoff."),
                ),
            }
            let wait = jitter(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn session(&self, journal: &dyn Journal, state: &mut String) -> Ended {
        let mut request = match self.url.as_str().into_client_request() {
            Ok(request) => request,
            Err(e) => return Ended::Failed(e.to_string()),
        };
        let bearer = format!("Bearer {}", self.token.expose());
        match bearer.parse() {
            Ok(value) => request.headers_mut().insert(hyper::header::AUTHORIZATION, value),
            Err(_) => return Ended::Failed("the token is not a valid header value".into()),
        };
        let connector = match &self.tls {
            Some(tls) => Connector::Rustls(tls.clone()),
            None => Connector::Plain,
        };
        let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_frame))
            .max_frame_size(Some(self.max_frame));
        let connecting = connect_async_tls_with_config(request, Some(limits), true, Some(connector));
        let mut socket = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Err(_) => return Ended::Failed(format!("no answer in {CONNECT_TIMEOUT:?}")),
            Ok(Err(e)) => return Ended::Failed(crate::error_chain(&e)),
            Ok(Ok((socket, _))) => socket,
        };
        log_change(
            state,
            "connected".into(),
            |_| tracing::info!(source = %self.name, url = %self.url, "Connected to the controller."),
        );
        let connected = tokio::time::Instant::now();
        let mut brought_an_event = false;
        loop {
            let healthy = brought_an_event || connected.elapsed() >= self.silence;
            let dropped = |reason: String| Ended::Dropped { reason, healthy };
            let frame = match tokio::time::timeout(self.silence, socket.next()).await {
                Err(_) => return dropped(format!("nothing received for {:?}", self.silence)),
                Ok(None) => return dropped("closed by the controller".into()),
                Ok(Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e)))) => {
                    return dropped(format!(
                        "a frame over [server] max_body ({} bytes) was refused ({e})",
                        self.max_frame
                    ));
                }
                Ok(Some(Err(e))) => return dropped(crate::error_chain(&e)),
                Ok(Some(Ok(frame))) => frame,
            };
            let body = match &frame {
                Message::Text(text) if text.as_str().trim() == "Hello" => continue,
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes.as_ref(),
                Message::Close(_) => return dropped("closed by the controller".into()),
                // Pings are answered by the library; any frame means alive.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            brought_an_event = true;
            let headers = hyper::HeaderMap::new();
            let request = vendors::Request {
                source: &self.name,
                headers: &headers,
                body,
                received_at: now_ms(),
                id_key: journal.id_key(),
            };
            match unifi_access_ws::normalize(&request) {
                Ok(event) => {
                    tracing::debug!(source = %self.name, event = %event.id, kind = %event.kind, "Event received.");
                    // The controller does not resend: a frame the journal
                    // cannot take is lost, and said so.
                    match journal.append(event).await {
                        Ok(_) => {}
                        Err(StoreError::Closed) => return Ended::Stop,
                        Err(e) => {
                            tracing::error!(source = %self.name, error = %e, "Event lost: the journal could not store it.")
                        }
                    }
                }
                Err(e) => tracing::warn!(source = %self.name, error = %e, "Unreadable notification frame skipped."),
            }
        }
    }
}

/// Log `new` only if it differs from the last state logged.
fn log_change(state: &mut String, new: String, log: impl FnOnce(&str)) {
    if *state != new {
        log(&new);
        *state = new;
    }
}

/// `wait` plus up to a quarter more, so many hosts do not reconnect in step.
fn jitter(wait: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    wait + wait.mul_f64((random % 1000) as f64 / 4000.0)
}
