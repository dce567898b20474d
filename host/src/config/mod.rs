//! The host configuration: one typed tree read from a TOML file.
//!
//! Every table rejects keys it does not know, so a typo is an error that
//! names the file, the line and the key rather than a setting silently
//! ignored. Secrets are never written in the file itself: they are read from
//! an environment variable or a file the config names (see [`SecretRef`]).

mod parse;
mod plugin;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

pub use crate::settings::{
    ByteSize, ConfigError, Context, Duration, Errors, HeaderValue, Secret, SecretHeader, SecretRef, SecretValue,
};
pub use crate::sinks::{SinkConfig, SinkKind};
pub use crate::vendors::{BasicAuthConfig, OneOrMany, SignaturePolicy, SourceConfig, VendorKind};
pub use plugin::{Clock, MAX_INSTANCES, MAX_PLUGIN_MEMORY, OnError, PluginConfig, World};
pub use server::{AdminConfig, LogConfig, LogFormat, ReloadConfig, ServerConfig, StoreConfig, StoreKind, TlsConfig};

/// Paths under this are the host's own (`/admin/status`, `/admin/reload`),
/// never a source's.
pub const ADMIN_PREFIX: &str = "/admin/";

/// The host's other paths: the metrics, and the console with what it reads.
pub const METRICS_PATH: &str = "/metrics";
pub const CONSOLE_PATH: &str = "/console";

/// Whether `path` is one of the host's own (admin, metrics, console).
pub fn is_host_path(path: &str) -> bool {
    let under = |prefix: &str| path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
    path.starts_with(ADMIN_PREFIX) || under(METRICS_PATH) || under(CONSOLE_PATH)
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: where and how the ingest server listens.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[sources]]`: one per vendor system that sends events; each table
    /// is read by its vendor (see [`parse`]).
    #[serde(skip)]
    pub sources: Vec<SourceConfig>,
    /// `[[plugins]]`: the pipeline. Filters run first, then enrichers, then
    /// actions; within each role, in the order written here.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// `[[sinks]]`: where action plugins' commands are delivered; each
    /// table is read by its kind (see [`parse`]).
    #[serde(skip)]
    pub sinks: Vec<SinkConfig>,
    /// `[store]`: where accepted events and undelivered commands are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[admin]`: the `/admin/` endpoints (status, reload). Off without it.
    pub admin: Option<AdminConfig>,
    /// `[reload]`: how changes to the config and plugin files are picked up
    /// while the host runs.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// `[log]`: what the host's own log holds.
    #[serde(default)]
    pub log: LogConfig,
    /// The folder relative paths in the file are resolved against (the
    /// file's own folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file it was read from, for error messages.
    #[serde(skip)]
    pub file: PathBuf,
    /// SHA-256 of the file's text, hex: which version of it is running.
    #[serde(skip)]
    pub sha256: String,
}

impl Config {
    /// Read and parse `file`. Checks that need the outside world (secrets,
    /// plugin files) happen when the parts are built, see [`crate::app`].
    /// Every problem the file has is reported, not only the first.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        match Self::load_all(file) {
            (Some(config), errors) if errors.is_empty() => Ok(config),
            (_, errors) => Err(ConfigError::several(errors)),
        }
    }

    /// Parse `text` as if read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        match Self::parse_all(text, file) {
            (Some(config), errors) if errors.is_empty() => Ok(config),
            (_, errors) => Err(ConfigError::several(errors)),
        }
    }

    /// Read and parse `file` as far as it can be: the config with what was
    /// wrong left out (to check the rest with, as `vestibule check` does),
    /// and every problem found.
    pub fn load_all(file: &Path) -> (Option<Config>, Vec<ConfigError>) {
        match crate::files::read_text(file, crate::files::CONFIG_LIMIT) {
            Ok(text) => Self::parse_all(&text, file),
            Err(source) => (
                None,
                vec![ConfigError::Read {
                    file: file.to_path_buf(),
                    source,
                }],
            ),
        }
    }

    /// Parse `text` as if read from `file`, as far as it can be (see
    /// [`Config::load_all`]).
    pub fn parse_all(text: &str, file: &Path) -> (Option<Config>, Vec<ConfigError>) {
        let (config, mut errors) = parse::leniently(text, file);
        let Some(mut config) = config else {
            return (None, errors);
        };
        config.file = file.to_path_buf();
        config.base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        config.sha256 = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        errors.extend(config.validate());
        (Some(config), errors)
    }

    /// The file and folder this config was read from, for the parts that
    /// resolve paths, read secrets and report errors against it.
    pub fn context(&self) -> Context<'_> {
        Context {
            file: &self.file,
            base_dir: &self.base_dir,
        }
    }

    /// An error about `key` in this config's file.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        self.context().error(key, message)
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.context().resolve(path)
    }

    /// The secret named by `secret_env` / `secret_file` at `key`, read now.
    pub fn secret(&self, key: &str, env: Option<&String>, file: Option<&PathBuf>) -> Result<Secret, ConfigError> {
        self.context().secret(key, env, file)
    }

    /// Every secret named by `secret_env` / `secret_file` (each may be a
    /// list, for rotation), read now. Empty when neither is given.
    pub fn secrets<'a>(
        &self,
        key: &str,
        env: impl Iterator<Item = &'a String>,
        file: impl Iterator<Item = &'a PathBuf>,
    ) -> Result<Vec<Secret>, ConfigError> {
        self.context().secrets(key, env, file)
    }

    /// `value` at `key` must be from `min` to `max` bytes.
    fn in_range(&self, key: &str, value: ByteSize, min: u64, max: u64) -> Result<(), ConfigError> {
        if (min..=max).contains(&value.0) {
            return Ok(());
        }
        Err(self.error(
            key,
            format!("{value} is out of range: from {} to {}", ByteSize(min), ByteSize(max)),
        ))
    }

    /// Checks that need nothing but the file itself; every problem found.
    fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Errors::default();
        self.validate_host(&mut errors);
        let mut paths = BTreeMap::new();
        for (i, source) in self.sources.iter().enumerate() {
            let key = format!("sources[{i}]");
            errors.keep(check_name(self, &format!("{key}.name"), &source.name));
            errors.keep(source.settings.source().check(&self.context(), &key));
            if let Some(connect) = &source.connect {
                errors.keep(connect.check(&self.context(), &key, source));
            }
            let silences = source
                .silent_after
                .iter()
                .map(|after| ("silent_after".to_string(), after));
            let doors = source
                .silent_doors
                .iter()
                .map(|(door, after)| (format!("silent_doors.{door:?}"), after));
            for (name, after) in silences.chain(doors) {
                if after.0 < std::time::Duration::from_millis(100) {
                    errors.push(self.error(format!("{key}.{name}"), "expected at least 100ms"));
                }
            }
            if source.vendor.dials_out() {
                continue;
            }
            let path = source.path();
            if !path.starts_with('/') {
                errors.push(self.error(format!("{key}.path"), "must start with `/`"));
            } else if is_host_path(&path) {
                errors.push(self.error(
                    format!("{key}.path"),
                    format!("`{path}` is the host's own (`{ADMIN_PREFIX}`, `{METRICS_PATH}`, `{CONSOLE_PATH}`); choose another"),
                ));
            } else if let Some(other) = paths.insert(path.clone(), &source.name) {
                errors.push(self.error(
                    format!("{key}.path"),
                    format!("`{path}` is already used by source `{other}`"),
                ));
            }
        }
        errors.keep(unique(self, "sources", self.sources.iter().map(|s| &s.name)));
        errors.keep(unique(self, "plugins", self.plugins.iter().map(|p| &p.name)));
        errors.keep(unique(self, "sinks", self.sinks.iter().map(|s| &s.name)));
        for (i, plugin) in self.plugins.iter().enumerate() {
            errors.keep(self.validate_plugin(&format!("plugins[{i}]"), plugin));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            let key = format!("sinks[{i}]");
            errors.keep(check_name(self, &format!("{key}.name"), &sink.name));
            errors.keep(sink.check(&self.context(), &key));
        }
        errors.into_vec()
    }
}

fn check_name(config: &Config, key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(config.error(key, format!("`{name}`: use letters, digits, `-` and `_`")))
    }
}

fn unique<'a>(config: &Config, table: &str, names: impl Iterator<Item = &'a String>) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, name) in names.enumerate() {
        if !seen.insert(name) {
            return Err(config.error(format!("{table}[{i}].name"), format!("`{name}` is used twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/vestibule/test.toml"))
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/vestibule/test.toml: "), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("unknown field `lisen`"), "{err}");
    }

    #[test]
    fn a_parse_error_fits_on_one_line_for_logs() {
        let err = parse("[store]\npath = \"data\"\n  retain = \"7d\"\n").unwrap_err();
        assert_eq!(
            err.one_line(),
            "/etc/vestibule/test.toml: line 3, column 3 (`retain = \"7d\"`): unknown field `retain`, \
             expected one of `kind`, `path`, `dedup_window`, `retention`, `servers`, `token_env`, \
             `token_file`, `user`, `password_env`, `password_file`, `creds_file`, `nkey_env`, `nkey_file`, \
             `stream_prefix`, `replicas`, `partitions`, `ack_wait`, `lease`, `node`"
        );
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let config = parse(
            r#"
            [[sources]]
            name = "office"
            vendor = "unifi-access"
            secret_env = "X"
            "#,
        )
        .unwrap();
        assert_eq!(config.server.max_body.0, 1024 * 1024);
        assert_eq!(config.sources[0].path(), "/ingest/office");
        assert_eq!(config.base_dir, Path::new("/etc/vestibule"));
    }

    #[test]
    fn action_plugin_may_only_name_configured_sinks() {
        let err = parse(
            r#"
            [[plugins]]
            name = "lights"
            world = "action"
            path = "x.wasm"
            sinks = ["nowhere"]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "/etc/vestibule/test.toml: plugins[0].sinks: no sink named `nowhere` is configured"
        );
    }

    #[test]
    fn two_sources_cannot_share_a_path() {
        let err = parse(
            r#"
            [[sources]]
            name = "a"
            vendor = "unifi-access"
            path = "/hook"
            secret_env = "X"
            [[sources]]
            name = "b"
            vendor = "unifi-access"
            path = "/hook"
            secret_env = "X"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("sources[1].path: `/hook` is already used by source `a`"),
            "{err}"
        );
    }

    #[test]
    fn the_webhook_vendors_are_all_but_the_dialled_one() {
        assert!(VendorKind::WEBHOOKS.iter().all(|v| !v.dials_out()));
        let dialled: Vec<_> = VendorKind::ALL.iter().filter(|v| v.dials_out()).collect();
        assert_eq!(dialled, [&VendorKind::UnifiAccessWs]);
    }
}
