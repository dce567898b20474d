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
    /// `kind`: `"sqlite"` (the default: one file in the data folder, one
    /// machine) or `"nats"` (NATS JetStream: several nodes, one cluster).
    pub kind: StoreKind,
    /// `path`: the data folder (relative to the config file). Without it
    /// the journal is kept in memory and a crash loses what it held.
    /// SQLite only.
    pub path: Option<PathBuf>,
    /// `dedup_window`: an event whose (source, event id) was accepted this
    /// recently is acknowledged again but not processed again.
    pub dedup_window: Duration,
    /// `retention`: processed events and delivered or dropped commands
    /// older than this are deleted.
    pub retention: Duration,
    /// `servers`: the NATS servers, `nats://host:port` (or `tls://`); the
    /// client finds the rest of the cluster from any one of them.
    pub servers: Vec<String>,
    /// `token_env` / `token_file`: a NATS token.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// `user` with `password_env` / `password_file`.
    pub user: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `creds_file`: a NATS credentials file (JWT and nkey seed).
    pub creds_file: Option<PathBuf>,
    /// `nkey_env` / `nkey_file`: an nkey seed (`SU…`).
    pub nkey_env: Option<String>,
    pub nkey_file: Option<PathBuf>,
    /// `stream_prefix`: the streams are `<prefix>_EVENTS`, `<prefix>_COMMANDS`, …
    /// and their subjects `<prefix>.…`: two installations share a cluster
    /// under two prefixes.
    pub stream_prefix: String,
    /// `replicas`: copies of every stream, 1 for one NATS server, 3 for a
    /// three-server cluster (a majority must store a message before the
    /// vendor gets its 2xx).
    pub replicas: usize,
    /// `partitions`: events are spread over this many partitions by (source,
    /// door), and commands by (sink, door); each partition is worked on by
    /// one node at a time, in order. Change it only with the streams drained.
    pub partitions: u32,
    /// `ack_wait`: how long a node may go silent on an event or command
    /// it holds before the cluster hands it to another node.
    pub ack_wait: Duration,
    /// `lease`: how long a node owns its partitions without renewing
    /// them. A node that dies unannounced has its partitions taken by the
    /// others within about this long; one that stops hands them over at once.
    pub lease: Duration,
    /// `node`: this node's name in `/admin/status` (default: host name
    /// and process id).
    pub node: Option<String>,
}

/// `[store] kind`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Sqlite,
    Nats,
}

impl StoreKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Nats => "nats",
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sqlite,
            path: None,
            dedup_window: Duration(std::time::Duration::from_secs(24 * 3600)),
            retention: Duration(std::time::Duration::from_secs(7 * 86_400)),
            servers: Vec::new(),
            token_env: None,
            token_file: None,
            user: None,
            password_env: None,
            password_file: None,
            creds_file: None,
            nkey_env: None,
            nkey_file: None,
            stream_prefix: "VESTIBULE".into(),
            replicas: 1,
            partitions: 16,
            ack_wait: Duration(std::time::Duration::from_secs(30)),
            lease: Duration(std::time::Duration::from_secs(6)),
            node: None,
        }
    }
}

impl StoreConfig {
    /// The keys only `kind = "nats"` reads that this file sets.
    fn nats_keys(&self) -> Vec<&'static str> {
        let defaults = StoreConfig::default();
        let set = [
            ("servers", !self.servers.is_empty()),
            ("token_env", self.token_env.is_some()),
            ("token_file", self.token_file.is_some()),
            ("user", self.user.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_file", self.password_file.is_some()),
            ("creds_file", self.creds_file.is_some()),
            ("nkey_env", self.nkey_env.is_some()),
            ("nkey_file", self.nkey_file.is_some()),
            ("stream_prefix", self.stream_prefix != defaults.stream_prefix),
            ("replicas", self.replicas != defaults.replicas),
            ("partitions", self.partitions != defaults.partitions),
            ("ack_wait", self.ack_wait.0 != defaults.ack_wait.0),
            ("lease", self.lease.0 != defaults.lease.0),
            ("node", self.node.is_some()),
        ];
        set.into_iter().filter(|(_, set)| *set).map(|(key, _)| key).collect()
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
    /// `secrecy`: what the console shows of people's data, as a plugin's
    /// level (0, 1 or 2; default 1: no credentials).
    #[serde(default)]
    pub secrecy: crate::secrecy::Secrecy,
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
/// A duration as the config spells one: `"30d"`, `"90s"`, `"250ms"`.
fn spelled(duration: std::time::Duration) -> String {
    let (s, ms) = (duration.as_secs(), duration.subsec_millis());
    match (s, ms) {
        (s, 0) if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        (s, 0) if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        (s, 0) if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => format!("{}ms", duration.as_millis()),
    }
}

const MAX_BODY: u64 = 64 << 20;

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `refusal_summary`: refused requests are logged one line for the
    /// first of each source and reason, then one line this often with how
    /// many more there were, so that a flood cannot fill the disk.
    pub refusal_summary: Duration,
    /// `format`: `"text"` (the default) or `"json"`, one object a line with
    /// the same fields, for log shippers. Read at start.
    pub format: LogFormat,
}

/// `[log] format`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            refusal_summary: Duration(std::time::Duration::from_secs(60)),
            format: LogFormat::Text,
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
        self.validate_store(errors);
    }

    /// The `[store]` settings a running host keeps until it restarts: the
    /// data folder, or the cluster and the settings its streams were made
    /// with.
    pub fn store_identity(&self) -> String {
        let store = &self.store;
        match store.kind {
            StoreKind::Sqlite => format!("sqlite {:?}", store.path.as_ref().map(|p| self.resolve(p))),
            StoreKind::Nats => format!(
                "nats {:?} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                store.servers,
                store.stream_prefix,
                store.replicas,
                store.partitions,
                store.ack_wait.0,
                store.lease.0,
                store.dedup_window.0,
                store.retention.0,
                (
                    &store.token_env,
                    &store.token_file,
                    &store.user,
                    &store.password_env,
                    &store.password_file
                ),
                (&store.creds_file, &store.nkey_env, &store.nkey_file),
                store.node,
            ),
        }
    }

    fn validate_store(&self, errors: &mut Errors) {
        let store = &self.store;
        if store.dedup_window.0 > store.retention.0 {
            errors.push(self.error(
                "store.dedup_window",
                format!(
                    "\"{}\" is longer than store.retention (\"{}\"): an event cannot be remembered longer than it is kept",
                    spelled(store.dedup_window.0),
                    spelled(store.retention.0)
                ),
            ));
        }
        if store.kind == StoreKind::Sqlite {
            for key in store.nats_keys() {
                errors.push(self.error(
                    format!("store.{key}"),
                    "is a NATS setting; add `kind = \"nats\"` to use the cluster store, or remove it",
                ));
            }
            return;
        }
        if store.path.is_some() {
            errors.push(self.error(
                "store.path",
                "with `kind = \"nats\"` everything is kept in JetStream; remove `path`",
            ));
        }
        if store.servers.is_empty() {
            errors.push(self.error(
                "store.servers",
                "expected at least one server, such as `servers = [\"nats://127.0.0.1:4222\"]`",
            ));
        }
        for (i, server) in store.servers.iter().enumerate() {
            if let Err(e) = server.parse::<async_nats::ServerAddr>() {
                errors.push(self.error(format!("store.servers[{i}]"), format!("`{server}`: {e}")));
            }
        }
        let pairs = [
            ("token_env", store.token_env.is_some(), store.token_file.is_some()),
            (
                "password_env",
                store.password_env.is_some(),
                store.password_file.is_some(),
            ),
            ("nkey_env", store.nkey_env.is_some(), store.nkey_file.is_some()),
        ];
        for (key, env, file) in pairs {
            if env && file {
                let file_key = key.replace("_env", "_file");
                errors.push(self.error(
                    format!("store.{key}"),
                    format!("expected `{key}` or `{file_key}`, not both"),
                ));
            }
        }
        let password = store.password_env.is_some() || store.password_file.is_some();
        if store.user.is_some() != password {
            errors.push(self.error(
                "store.user",
                "expected `user` together with `password_env` or `password_file`",
            ));
        }
        let ways = [
            store.token_env.is_some() || store.token_file.is_some(),
            store.user.is_some(),
            store.creds_file.is_some(),
            store.nkey_env.is_some() || store.nkey_file.is_some(),
        ];
        if ways.iter().filter(|way| **way).count() > 1 {
            errors.push(self.error(
                "store.token_env",
                "expected one way to authenticate: a token, a user and password, a creds file or an nkey",
            ));
        }
        if !(1..=5).contains(&store.replicas) {
            errors.push(self.error("store.replicas", "expected 1 to 5 (JetStream's limit)"));
        }
        if !(1..=1024).contains(&store.partitions) {
            errors.push(self.error("store.partitions", "expected 1 to 1024"));
        }
        let prefix = &store.stream_prefix;
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            errors.push(self.error(
                "store.stream_prefix",
                format!("`{prefix}`: expected letters, digits, `_` and `-` only (it names streams and subjects)"),
            ));
        }
        if store.ack_wait.0 < std::time::Duration::from_secs(1) {
            errors.push(self.error("store.ack_wait", "expected at least 1s"));
        }
        if store.lease.0 < std::time::Duration::from_secs(1) {
            errors.push(self.error("store.lease", "expected at least 1s"));
        }
    }
}
