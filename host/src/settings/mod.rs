//! What settings are made of, for every part that reads its own from the
//! config file: durations and sizes, secrets by reference, and errors that
//! say which file and which key. The config file as a whole is
//! [`crate::config`]; the parts (a vendor's source, a sink) read and build
//! theirs with a [`Context`].

mod errors;
mod secret;
mod units;

use std::path::{Path, PathBuf};

pub use errors::{ConfigError, Errors};
pub use secret::{HeaderValue, Secret, SecretHeader, SecretRef, SecretValue};
pub use units::{ByteSize, Duration};

/// The config file a setting was read from: paths in it resolve against
/// its folder, and errors name it.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub file: &'a Path,
    pub base_dir: &'a Path,
}

impl Context<'_> {
    /// An error about `key` in this config's file.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A path from the file, resolved against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// The secret named by `secret_env` / `secret_file` at `key`, read now.
    pub fn secret(&self, key: &str, env: Option<&String>, file: Option<&PathBuf>) -> Result<Secret, ConfigError> {
        match (env, file) {
            (Some(_), Some(_)) => Err(self.error(key, "give either `secret_env` or `secret_file`, not both")),
            _ => {
                let secrets = self.secrets(key, env.into_iter(), file.into_iter())?;
                secrets
                    .into_iter()
                    .next()
                    .ok_or_else(|| self.error(key, "expected `secret_env = \"VAR\"` or `secret_file = \"PATH\"`"))
            }
        }
    }

    /// Every secret named by `secret_env` / `secret_file` (each may be a
    /// list, for rotation), read now. Empty when neither is given.
    pub fn secrets<'a>(
        &self,
        key: &str,
        env: impl Iterator<Item = &'a String>,
        file: impl Iterator<Item = &'a PathBuf>,
    ) -> Result<Vec<Secret>, ConfigError> {
        env.map(|var| SecretRef::Env(var.clone()))
            .chain(file.map(|path| SecretRef::File(self.resolve(path))))
            .map(|reference| {
                // `key` names the `…_env` setting; a file's error names its `…_file`.
                let key = match (&reference, key.strip_suffix("_env")) {
                    (SecretRef::File(_), Some(stem)) => format!("{stem}_file"),
                    _ => key.to_string(),
                };
                reference.read_all().map_err(|message| self.error(key, message))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|all| all.into_iter().flatten().collect())
    }
}
