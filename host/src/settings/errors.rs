//! Configuration errors, and collecting them: checking goes on past the
//! first problem, so that one run of `vestibule check` shows them all.

use std::path::PathBuf;

/// A configuration problem, located as precisely as we can: the file, and
/// either the TOML parser's line and column or the key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    /// `message` is the TOML parser's, with the offending line quoted.
    #[error("{file}: {message}")]
    Parse {
        file: PathBuf,
        message: String,
        /// Where, what is wrong, and the line's text, for
        /// [`ConfigError::one_line`].
        line: usize,
        column: usize,
        reason: String,
        text: String,
    },
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
    /// More than one of the above, in the order found; each shown on a
    /// line of its own.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// One error for `errors` (at least one): itself, or [`ConfigError::Several`].
    pub fn several(mut errors: Vec<ConfigError>) -> ConfigError {
        match errors.len() {
            1 => errors.remove(0),
            _ => ConfigError::Several(errors),
        }
    }

    /// Each error, one by one, owned.
    pub fn into_each(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Several(errors) => errors,
            one => vec![one],
        }
    }

    /// Each error, one by one.
    pub fn each(&self) -> &[ConfigError] {
        match self {
            ConfigError::Several(errors) => errors,
            one => std::slice::from_ref(one),
        }
    }

    /// The error on one line, for logs and the status endpoint (the
    /// [`Display`](std::fmt::Display) form quotes the offending line of the
    /// file, for people at a terminal); several are joined with `; `.
    pub fn one_line(&self) -> String {
        match self {
            ConfigError::Parse {
                file,
                line,
                column,
                reason,
                text,
                ..
            } => format!("{}: line {line}, column {column} (`{text}`): {reason}", file.display()),
            ConfigError::Several(errors) => errors.iter().map(ConfigError::one_line).collect::<Vec<_>>().join("; "),
            other => other.to_string(),
        }
    }
}

/// Problems found so far.
#[derive(Debug, Default)]
pub struct Errors(Vec<ConfigError>);

impl Errors {
    /// `result`'s value, or `None` with its error kept.
    pub fn keep<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    pub fn push(&mut self, error: ConfigError) {
        match error {
            ConfigError::Several(errors) => self.0.extend(errors),
            one => self.0.push(one),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }

    /// `Ok` if nothing went wrong, else every error.
    pub fn into_result(self) -> Result<(), ConfigError> {
        self.or(|| ())
    }

    /// Every error, as one (call it when some went wrong).
    pub fn into_error(self) -> ConfigError {
        ConfigError::several(self.0)
    }

    /// `value` if nothing went wrong, else every error.
    pub fn or<T>(self, value: impl FnOnce() -> T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ConfigError::several(self.0))
        }
    }
}
