//! What a source requires of a request besides the vendor's own signature
//! scheme: HTTP Basic credentials and fixed headers, and the secrets and
//! tolerance the vendor's check uses.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderName};
use subtle::ConstantTimeEq;

use super::VerifyError;
use super::source::{AuthSettings, SignaturePolicy};
use crate::settings::{ConfigError, Context, HeaderValue, Secret};

/// A source's credentials, read from the config at start.
pub struct Auth {
    /// Signing secrets; a signature made with any of them verifies, so a
    /// secret can be rotated without downtime.
    pub secrets: Vec<Secret>,
    pub signature: SignaturePolicy,
    /// How far a signed timestamp may be from our clock.
    pub tolerance: std::time::Duration,
    /// `Authorization: Basic …` values the sender may present, precomputed:
    /// one per password line, so a password can be rotated too.
    basic: Vec<Secret>,
    /// Headers the sender must present with exactly these values.
    headers: Vec<(HeaderName, Secret)>,
}

impl Auth {
    /// The credentials `settings` name, read now; `index` is the source's
    /// place in the config, for errors.
    pub fn from_settings(
        ctx: &Context<'_>,
        index: usize,
        settings: &AuthSettings<'_>,
        default_tolerance: std::time::Duration,
    ) -> Result<Auth, ConfigError> {
        let key = |k: &str| format!("sources[{index}].{k}");
        let secrets = ctx.secrets(
            &key("secret_env"),
            settings.secret_env.iter().flat_map(|s| s.iter()),
            settings.secret_file.iter().flat_map(|s| s.iter()),
        )?;
        let basic = match settings.basic_auth {
            None => Vec::new(),
            Some(basic) => {
                let key = key("basic_auth.password_env");
                if basic.password_env.is_some() == basic.password_file.is_some() {
                    return Err(ctx.error(key, "give either `password_env` or `password_file`"));
                }
                let passwords = ctx.secrets(&key, basic.password_env.iter(), basic.password_file.iter())?;
                passwords
                    .iter()
                    .map(|password| {
                        let token = STANDARD.encode(format!("{}:{}", basic.username, password.expose()));
                        Secret::new(format!("Basic {token}"))
                    })
                    .collect()
            }
        };
        let mut headers = Vec::new();
        for (name, value) in settings.headers.into_iter().flatten() {
            let header_key = key(&format!("headers.{name}"));
            let parsed: HeaderName = name
                .parse()
                .map_err(|_| ctx.error(&header_key, "not a valid header name"))?;
            let value = match value {
                HeaderValue::Plain(v) => Secret::new(v.clone()),
                HeaderValue::Secret(s) => {
                    let secret = ctx.secret(&header_key, s.secret_env.as_ref(), s.secret_file.as_ref())?;
                    Secret::new(format!("{}{}", s.prefix, secret.expose()))
                }
            };
            headers.push((parsed, value));
        }
        Ok(Auth {
            secrets,
            signature: settings.signature,
            tolerance: settings.tolerance.map_or(default_tolerance, |d| d.0),
            basic,
            headers,
        })
    }

    /// Credentials for tests and `vestibule send`.
    pub fn with_secrets(secrets: &[&str], tolerance: std::time::Duration) -> Auth {
        Auth {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            signature: SignaturePolicy::Required,
            tolerance,
            basic: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Check Basic credentials and required headers, whatever the vendor.
    pub fn check_request(&self, headers: &HeaderMap) -> Result<(), VerifyError> {
        if !self.basic.is_empty() {
            let given = headers
                .get(AUTHORIZATION)
                .ok_or(VerifyError::AuthMissing("Authorization"))?;
            // Every password is tried, as every secret is.
            let matched = self.basic.iter().fold(false, |found, expected| {
                ct_eq(given.as_bytes(), expected.expose().as_bytes()) | found
            });
            if !matched {
                return Err(VerifyError::AuthInvalid("Basic credentials do not match"));
            }
        }
        for (name, expected) in &self.headers {
            let given = headers.get(name).ok_or(VerifyError::AuthMissing("a required header"))?;
            if !ct_eq(given.as_bytes(), expected.expose().as_bytes()) {
                return Err(VerifyError::AuthInvalid("a required header has the wrong value"));
            }
        }
        Ok(())
    }

    /// Whether `matches` holds for any configured secret. Every secret is
    /// tried, so the time taken does not tell which one matched.
    pub fn any_secret(&self, matches: impl Fn(&[u8]) -> bool) -> bool {
        self.secrets
            .iter()
            .fold(false, |found, secret| matches(secret.expose().as_bytes()) | found)
    }
}

/// Equal, in time that depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
