//! Secrets by reference: the config names where a secret is, never the
//! secret itself, and a secret never prints.

use std::fmt;
use std::path::PathBuf;

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `secret_env = "VAR"`
    Env(String),
    /// `secret_file = "PATH"`
    File(PathBuf),
}

impl SecretRef {
    /// Read the secret. The error says which variable or file, never the value.
    pub fn read(&self) -> Result<Secret, String> {
        let value = match self {
            SecretRef::Env(var) => std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => format!("environment variable `{var}` is not set"),
                std::env::VarError::NotUnicode(_) => format!("environment variable `{var}` is not valid UTF-8"),
            })?,
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file `{}`: {e}", path.display()))?
                .trim()
                .to_string(),
        };
        if value.is_empty() {
            let what = match self {
                SecretRef::Env(var) => format!("environment variable `{var}`"),
                SecretRef::File(path) => format!("secret file `{}`", path.display()),
            };
            return Err(format!("{what} is empty"));
        }
        Ok(Secret(value))
    }
}

/// A secret value. `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the code that signs or authenticates with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
    }

    #[test]
    fn missing_variable_is_named() {
        let err = SecretRef::Env("VESTIBULE_TEST_SURELY_UNSET".into()).read().unwrap_err();
        assert_eq!(err, "environment variable `VESTIBULE_TEST_SURELY_UNSET` is not set");
    }

    #[test]
    fn file_secret_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "6601f1243d2ff70f\n").unwrap();
        assert_eq!(SecretRef::File(path).read().unwrap().expose(), "6601f1243d2ff70f");
    }
}
