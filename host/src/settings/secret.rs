//! Secrets by reference: the config names where a secret is, never the
//! secret itself, and a secret never prints.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `secret_env = "VAR"`
    Env(String),
    /// `secret_file = "PATH"`
    File(PathBuf),
}

impl SecretRef {
    /// Read the secret: a file's first line (see [`SecretRef::read_all`]).
    /// The error says which variable or file, never the value.
    pub fn read(&self) -> Result<Secret, String> {
        Ok(self.read_all()?.swap_remove(0))
    }

    /// Every secret it holds: an environment variable holds one; a file
    /// one per line, the first the one in use and the others still
    /// accepted (a rotation's grace period, as `vestibule connect
    /// --rotate` writes it). Never empty.
    pub fn read_all(&self) -> Result<Vec<Secret>, String> {
        let values: Vec<Secret> = match self {
            SecretRef::Env(var) => {
                let value = std::env::var(var).map_err(|e| match e {
                    std::env::VarError::NotPresent => format!("environment variable `{var}` is not set"),
                    std::env::VarError::NotUnicode(_) => format!("environment variable `{var}` is not valid UTF-8"),
                })?;
                let value = value.trim();
                (!value.is_empty())
                    .then(|| Secret(value.to_string()))
                    .into_iter()
                    .collect()
            }
            SecretRef::File(path) => crate::files::read_secret(path)
                .map_err(|e| format!("cannot read secret file `{}`: {e}", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| Secret(line.to_string()))
                .collect(),
        };
        if values.is_empty() {
            let what = match self {
                SecretRef::Env(var) => format!("environment variable `{var}`"),
                SecretRef::File(path) => format!("secret file `{}`", path.display()),
            };
            return Err(format!("{what} is empty"));
        }
        Ok(values)
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

/// `{ secret_env = "VAR" }` or `{ secret_file = "PATH" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
}

/// A header value: literal, or read from a secret.
#[derive(Debug)]
pub enum HeaderValue {
    Plain(String),
    Secret(SecretHeader),
}

/// By hand rather than `untagged`, so a mistake inside the table is
/// reported as itself ("unknown field `prefx`") instead of "did not match
/// any variant".
impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HeaderValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, or a table such as { secret_env = \"VAR\", prefix = \"Bearer \" }")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<HeaderValue, E> {
                Ok(HeaderValue::Plain(value.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<HeaderValue, A::Error> {
                SecretHeader::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(HeaderValue::Secret)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// `{ secret_env = "…", prefix = "Bearer " }` as a header value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Text put before the secret, e.g. `"Bearer "`.
    #[serde(default)]
    pub prefix: String,
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
        assert_eq!(
            SecretRef::File(path.clone()).read().unwrap().expose(),
            "6601f1243d2ff70f"
        );
        std::fs::write(&path, "new-one\n\n old-one \n").unwrap();
        let all = SecretRef::File(path.clone()).read_all().unwrap();
        let all: Vec<&str> = all.iter().map(Secret::expose).collect();
        assert_eq!(all, ["new-one", "old-one"]);
        assert_eq!(SecretRef::File(path.clone()).read().unwrap().expose(), "new-one");
        std::fs::write(&path, "\n \n").unwrap();
        assert!(SecretRef::File(path).read().unwrap_err().ends_with("is empty"));
    }
}
