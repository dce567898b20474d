//! The vendors: how each proves a request is genuine, and how its payload
//! becomes a normalized [`Event`]. One vendor, one file.

pub mod unifi_access;

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::{Config, ConfigError, SourceConfig, VendorKind};
use crate::event::Event;

/// One request as a vendor module sees it.
pub struct Request<'a> {
    /// The configured source's name.
    pub source: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw body bytes: signatures are over these, never re-serialized JSON.
    pub body: &'a [u8],
    /// When we received it, ms since the epoch.
    pub received_at: i64,
}

/// What verification established, for normalization to use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Verified {
    /// The signed timestamp, seconds since the epoch, if the scheme has one.
    pub signed_at: Option<i64>,
}

/// Why a request was not accepted as coming from the vendor. Each maps to a
/// 401 with the [`reason`](VerifyError::reason) as the body's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no {0} header")]
    SignatureMissing(&'static str),
    #[error("{0}")]
    SignatureInvalid(&'static str),
    #[error("signed {skew_secs} s away from our clock (tolerance {tolerance_secs} s)")]
    TimestampOutOfRange { skew_secs: i64, tolerance_secs: u64 },
}

impl VerifyError {
    /// The reason code sent back to the vendor.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::SignatureMissing(_) => "signature_missing",
            VerifyError::SignatureInvalid(_) => "signature_invalid",
            VerifyError::TimestampOutOfRange { .. } => "timestamp_out_of_range",
        }
    }
}

/// Why a genuine request's body could not be read as the vendor's event.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// A vendor's verification and mapping, built from a source's config.
pub trait Vendor: Send + Sync {
    /// Check the request came from the vendor, before its body is parsed.
    fn verify(&self, request: &Request<'_>) -> Result<Verified, VerifyError>;
    /// Map the body to the normalized event.
    fn normalize(&self, request: &Request<'_>, verified: Verified) -> Result<Event, NormalizeError>;
}

/// Build the vendor module for the source at `sources[index]`.
pub fn build(config: &Config, index: usize, source: &SourceConfig) -> Result<Box<dyn Vendor>, ConfigError> {
    match source.vendor {
        VendorKind::UnifiAccess => Ok(Box::new(unifi_access::UnifiAccess::from_config(config, index, source)?)),
    }
}

/// HMAC-SHA256 of the concatenated `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `given` is the hex encoding (either case) of `expected`, compared
/// in constant time.
pub fn hex_matches(expected: &[u8], given: &str) -> bool {
    match hex::decode(given.trim()) {
        Ok(given) => given.len() == expected.len() && bool::from(given.ct_eq(expected)),
        Err(_) => false,
    }
}

/// Whether `signed_at` (seconds) is within `tolerance` of `now_ms`.
pub fn check_timestamp(signed_at: i64, now_ms: i64, tolerance: std::time::Duration) -> Result<(), VerifyError> {
    let skew_secs = now_ms.div_euclid(1000) - signed_at;
    if skew_secs.unsigned_abs() > tolerance.as_secs() {
        return Err(VerifyError::TimestampOutOfRange {
            skew_secs,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}

/// Lenient reading of vendor JSON: vendors change field types (a number
/// today, a string tomorrow) and we would rather map what we can than refuse
/// an event.
pub mod json {
    use serde_json::Value;

    /// The value at `path`, if every step exists.
    pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
        path.iter().try_fold(value, |v, key| v.get(key))
    }

    /// The string (or number, as text) at `path`; empty strings count as absent.
    pub fn text(value: &Value, path: &[&str]) -> Option<String> {
        match at(value, path)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_comparison_accepts_either_case_and_rejects_junk() {
        let mac = hmac_sha256(b"key", &[b"message"]);
        let lower = hex::encode(mac);
        assert!(hex_matches(&mac, &lower));
        assert!(hex_matches(&mac, &lower.to_uppercase()));
        assert!(!hex_matches(&mac, &lower[..62]));
        assert!(!hex_matches(&mac, "zz"));
    }

    #[test]
    fn timestamps_within_tolerance_pass_either_side() {
        let tol = std::time::Duration::from_secs(300);
        let now_ms = 1_695_902_233_000;
        assert!(check_timestamp(1_695_902_233 - 300, now_ms, tol).is_ok());
        assert!(check_timestamp(1_695_902_233 + 300, now_ms, tol).is_ok());
        assert_eq!(
            check_timestamp(1_695_902_233 - 301, now_ms, tol).unwrap_err().reason(),
            "timestamp_out_of_range"
        );
        assert!(check_timestamp(1_695_902_233 + 301, now_ms, tol).is_err());
    }
}
