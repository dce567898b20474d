//! `[server]`, `[store]`, `[admin]` and `[reload]`: how the host itself runs.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Config, Duration, Errors};

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `listen`: address and port of the ingest server.
    pub listen: SocketAddr,
    /// `max_body`: request bodies above this are refused with 413.
    pub max_body: ByteSize,
    /// `queue`: events accepted but not yet through the pipeline. When full,
    /// senders get 503 and retry later.
    pub queue: usize,
    /// `header_timeout`: how long a connection may go without a request in
    /// progress — from when it opens (TLS handshake included) to its first
    /// request's headers, and between requests — whatever protocol it
    /// speaks; then it is closed.
    pub header_timeout: Duration,
    /// `body_timeout`: how long a client may take to send a request's body;
    /// then it gets 408.
    pub body_timeout: Duration,
    /// `max_header_size`: request headers above this get 431 (at least 8KiB).
    pub max_header_size: ByteSize,
    /// `max_connections`: connections open at once. One more takes the
    /// place of the connection idle the longest; only when none is idle is
    /// it answered 503 and closed.
    pub max_connections: usize,
    /// `[server.tls]`: serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `cert_file`: the certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// `key_file`: its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body: ByteSize(1024 * 1024),
            queue: 1024,
            header_timeout: Duration(std::time::Duration::from_secs(10)),
            body_timeout: Duration(std::time::Duration::from_secs(10)),
            max_header_size: ByteSize(16 * 1024),
            max_connections: 1024,
            tls: None,
        }
    }
}

/// `[store]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `path`: the data folder (relative to the config file). Without it
    /// the journal is kept in memory and a crash loses what it held.
    pub path: Option<PathBuf>,
    /// `dedup_window`: an event whose (source, event id) was accepted this
    /// recently is acknowledged again but not processed again.
    pub dedup_window: Duration,
    /// `retention`: processed events and delivered or dropped commands
    /// older than this are deleted.
    pub retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: None,
            dedup_window: Duration(std::time::Duration::from_secs(24 * 3600)),
            retention: Duration(std::time::Duration::from_secs(7 * 86_400)),
        }
    }
}

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `token_env` / `token_file`: the bearer token the `/admin/` endpoints
    /// require (`Authorization: Bearer …`).
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `public`: also answer requests from other machines. Off, the admin
    /// endpoints answer only over loopback (127.0.0.1, ::1), whatever
    /// address the server listens on.
    #[serde(default)]
    pub public: bool,
}

/// `[reload]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// `watch`: reload when the config file or a plugin file changes.
    /// Without it, reload on SIGHUP or `POST /admin/reload` only.
    pub watch: bool,
    /// `debounce`: how long the files must be quiet before a reload, so
    /// that an editor's or a build's several writes make one reload.
    pub debounce: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            debounce: Duration(std::time::Duration::from_millis(500)),
        }
    }
}

/// The largest `max_body`: no vendor's event comes near it.
const MAX_BODY: u64 = 64 << 20;

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `refusal_summary`: refused requests are logged one line for the
    /// first of each source and reason, then one line this often with how
    /// many more there were, so that a flood cannot fill the disk.
    pub refusal_summary: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            refusal_summary: Duration(std::time::Duration::from_secs(60)),
        }
    }
}

/// The smallest `max_header_size` the HTTP/1 parser works with.
const MIN_HEADER_SIZE: u64 = 8192;

/// The longest `[reload] debounce`: past it, a change waits longer than an
/// operator would believe it was noticed.
const MAX_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(10);

impl Config {
    pub(super) fn validate_host(&self, errors: &mut Errors) {
        if let Some(admin) = &self.admin
            && admin.token_env.is_some() == admin.token_file.is_some()
        {
            errors.push(self.error(
                "admin.token_env",
                "expected either `token_env = \"VAR\"` or `token_file = \"PATH\"`",
            ));
        }
        let debounce = self.reload.debounce.0;
        if debounce.is_zero() || debounce > MAX_DEBOUNCE {
            errors.push(self.error(
                "reload.debounce",
                format!("expected more than 0 and at most {MAX_DEBOUNCE:?}"),
            ));
        }
        if self.server.queue == 0 {
            errors.push(self.error("server.queue", "must be at least 1"));
        }
        if self.server.max_connections == 0 {
            errors.push(self.error("server.max_connections", "must be at least 1"));
        }
        errors.keep(self.in_range(
            "server.max_header_size",
            self.server.max_header_size,
            MIN_HEADER_SIZE,
            1 << 20,
        ));
        errors.keep(self.in_range("server.max_body", self.server.max_body, 1 << 10, MAX_BODY));
        for (key, value) in [
            ("server.header_timeout", self.server.header_timeout),
            ("server.body_timeout", self.server.body_timeout),
            ("log.refusal_summary", self.log.refusal_summary),
        ] {
            if value.0.is_zero() {
                errors.push(self.error(key, "must be more than 0"));
            }
        }
    }
}
