//! The vendors: how each proves a request is genuine, how its payload
//! becomes a normalized [`Event`], and what its `[[sources]]` table holds.
//! One vendor, one file; the `vendors!` list below names them.

pub mod auth;
pub mod bas_ip;
pub mod connect;
pub mod pdk;
pub mod source;
pub mod standard_webhooks;
pub mod time;
pub mod unifi_access;
pub mod unifi_access_ws;
pub mod unloc;
pub mod verkada;

use hmac::{Hmac, Mac};
use hyper::HeaderMap;

pub use auth::Auth;

use crate::event::{Event, Head, IdKey, Kind};
use crate::secrecy::Redact;
use crate::settings::{ConfigError, Context};
pub use source::{AuthSettings, BasicAuthConfig, OneOrMany, SignaturePolicy, SourceConfig, SourceSettings};

/// One request as a vendor module sees it.
pub struct Request<'a> {
    /// The configured source's name.
    pub source: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw body bytes: signatures are over these, never re-serialized JSON.
    pub body: &'a [u8],
    /// When we received it, ms since the epoch.
    pub received_at: i64,
    /// What ids the vendor does not send are derived with.
    pub id_key: &'a IdKey,
}

impl Request<'_> {
    /// A new event for this request, its id derived from the body; a vendor
    /// with an id of its own replaces it.
    pub fn event(&self, vendor: &str, vendor_event_type: &str, kind: Kind, occurred_at: i64) -> Event {
        Event::new(Head {
            source: self.source,
            id: self.id_key.derive(&[self.body]),
            vendor,
            vendor_event_type,
            kind,
            occurred_at,
            received_at: self.received_at,
            raw: self.body,
        })
    }
}

/// What verification established, for normalization to use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Verified {
    /// The signed timestamp, seconds since the epoch, if the scheme has one.
    pub signed_at: Option<i64>,
    /// For schemes that sign a timestamp: until when (ms) the same request
    /// would pass verification again, and so must be refused as a replay.
    pub replayable_until: Option<i64>,
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
    #[error("no {0}")]
    AuthMissing(&'static str),
    #[error("{0}")]
    AuthInvalid(&'static str),
    #[error("this signed request was accepted before")]
    Replayed,
}

impl VerifyError {
    /// The reason code sent back to the vendor.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::SignatureMissing(_) => "signature_missing",
            VerifyError::SignatureInvalid(_) => "signature_invalid",
            VerifyError::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            VerifyError::AuthMissing(_) => "auth_missing",
            VerifyError::AuthInvalid(_) => "auth_invalid",
            VerifyError::Replayed => "replayed",
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

/// A vendor's verification and mapping. Vendors hold no state: what a
/// source configures (secrets, tolerance) comes in as [`Auth`].
pub trait Vendor: Redact + Send + Sync {
    /// How the vendor is named in config and in `event.vendor`.
    fn name(&self) -> &'static str;
    /// The default timestamp tolerance, for schemes that sign a time.
    fn default_tolerance(&self) -> std::time::Duration {
        std::time::Duration::from_secs(300)
    }
    /// Check the request came from the vendor, before its body is parsed.
    /// Basic credentials and required headers were checked already.
    fn verify(&self, request: &Request<'_>, auth: &Auth) -> Result<Verified, VerifyError>;
    /// Map the body to the normalized event.
    fn normalize(&self, request: &Request<'_>, verified: Verified) -> Result<Event, NormalizeError>;
    /// Sample bodies by vendor event type, for `vestibule send` and tests.
    fn samples(&self) -> &'static [(&'static str, &'static str)];
    /// The headers the vendor would send with `body`, signed with `secret`
    /// at `now` (Unix seconds). Empty for vendors that do not sign.
    fn sign(&self, secret: &str, now: i64, body: &[u8]) -> Vec<(String, String)>;
}

/// The vendor whose events carry `name` in `event.vendor`.
pub fn by_name(name: &str) -> Option<&'static dyn Vendor> {
    VendorKind::ALL.iter().map(|kind| get(*kind)).find(|v| v.name() == name)
}

/// Every vendor, once: its kind, the file (module) with its settings, the
/// vendor's code, and its name in `vendor = "…"`.
macro_rules! vendors {
    ($($kind:ident: $module:ident, $vendor:expr, $name:literal;)*) => {
        /// The `vendor = "…"` of a source.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
        pub enum VendorKind {
            $(#[serde(rename = $name)] $kind,)*
        }

        impl VendorKind {
            /// Every vendor.
            pub const ALL: &[VendorKind] = &[$(VendorKind::$kind),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(VendorKind::$kind => $name,)*
                }
            }
        }

        /// A source's settings: each vendor's own.
        #[derive(Debug)]
        pub enum Settings {
            $($kind($module::Settings),)*
        }

        impl Settings {
            /// Read `table` (the `[[sources]]` table without `vendor`) as
            /// `kind`'s settings.
            fn read(kind: VendorKind, table: toml::de::ValueDeserializer<'_>) -> Result<Settings, toml::de::Error> {
                use serde::Deserialize;
                Ok(match kind {
                    $(VendorKind::$kind => Settings::$kind($module::Settings::deserialize(table)?),)*
                })
            }

            /// What every vendor's settings answer.
            pub fn source(&self) -> &dyn SourceSettings {
                match self {
                    $(Settings::$kind(settings) => settings,)*
                }
            }
        }

        /// The vendor's code for `kind`.
        pub fn get(kind: VendorKind) -> &'static dyn Vendor {
            match kind {
                $(VendorKind::$kind => $vendor,)*
            }
        }
    };
}

vendors! {
    UnifiAccess: unifi_access, &unifi_access::UnifiAccess, "unifi-access";
    Verkada: verkada, &verkada::Verkada, "verkada";
    Pdk: pdk, &pdk::Pdk, "pdk";
    Unloc: unloc, &unloc::Unloc, "unloc";
    BasIp: bas_ip, &bas_ip::BasIp, "bas-ip";
    StandardWebhooks: standard_webhooks, &standard_webhooks::StandardWebhooks, "standard-webhooks";
    // The notifications WebSocket: the webhooks' envelope, mapping and redaction.
    UnifiAccessWs: unifi_access_ws, &unifi_access::UnifiAccess, "unifi-access-ws";
}

impl VendorKind {
    /// The vendors that post to us: all but the last.
    pub const WEBHOOKS: &[VendorKind] = Self::ALL.split_at(Self::ALL.len() - 1).0;

    /// Whether we dial the vendor rather than it posting to us.
    pub const fn dials_out(self) -> bool {
        matches!(self, VendorKind::UnifiAccessWs)
    }

    /// Whether it signs its requests (the others authenticate otherwise).
    pub const fn signs(self) -> bool {
        !matches!(self, VendorKind::Unloc | VendorKind::UnifiAccessWs)
    }
}

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VendorKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let all = || VendorKind::ALL.iter().copied();
        all().find(|v| v.as_str() == text).ok_or_else(|| {
            let known: Vec<&str> = all().map(|v| v.as_str()).collect();
            format!("unknown vendor `{text}`; known: {}", known.join(", "))
        })
    }
}

/// The vendor and credentials of the webhook source at `sources[index]`.
pub fn build(
    ctx: &Context<'_>,
    index: usize,
    source: &SourceConfig,
) -> Result<(&'static dyn Vendor, Auth), ConfigError> {
    let vendor = get(source.vendor);
    let settings = source.settings.source().auth().unwrap_or_default();
    let auth = Auth::from_settings(ctx, index, &settings, vendor.default_tolerance())?;
    Ok((vendor, auth))
}

/// A body's sample by event type, with a helpful error naming the known ones.
pub fn sample(kind: VendorKind, event_type: &str) -> Result<&'static str, String> {
    let samples = get(kind).samples();
    samples
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, body)| *body)
        .ok_or_else(|| {
            let known: Vec<&str> = samples.iter().map(|(t, _)| *t).collect();
            format!("no {kind} sample `{event_type}`; known: {}", known.join(", "))
        })
}

/// HMAC-SHA256 of the concatenated `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of `body`.
pub fn hmac_sha1(key: &[u8], body: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Whether `given` is the hex encoding (either case) of `expected`, compared
/// in constant time.
pub fn hex_matches(expected: &[u8], given: &str) -> bool {
    match hex::decode(given.trim()) {
        Ok(given) => auth::ct_eq(&given, expected),
        Err(_) => false,
    }
}

/// The header's value as text, if present.
pub fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, VerifyError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| VerifyError::SignatureInvalid("signature header is not text")),
    }
}

/// What every timestamped scheme does once it has the signed time's text:
/// the signature must match under some configured secret (`matches` is
/// given each), then the time must be within tolerance. The signature is
/// checked first, so a forgery with a stale time is reported as a forgery.
pub fn verify_timestamped(
    request: &Request<'_>,
    auth: &Auth,
    t_text: &str,
    mismatch: &'static str,
    matches: impl Fn(&[u8]) -> bool,
) -> Result<Verified, VerifyError> {
    let signed_at: i64 = t_text
        .trim()
        .parse()
        .map_err(|_| VerifyError::SignatureInvalid("the signed timestamp is not a number"))?;
    if !auth.any_secret(matches) {
        return Err(VerifyError::SignatureInvalid(mismatch));
    }
    check_timestamp(signed_at, request.received_at, auth.tolerance)?;
    Ok(Verified {
        signed_at: Some(signed_at),
        replayable_until: Some((signed_at + auth.tolerance.as_secs() as i64 + 1) * 1000),
    })
}

/// Whether `signed_at` (seconds) is within `tolerance` of `now_ms`.
pub fn check_timestamp(signed_at: i64, now_ms: i64, tolerance: std::time::Duration) -> Result<(), VerifyError> {
    // Saturating: a signed time of i64::MIN must not overflow the subtraction.
    let skew_secs = now_ms.div_euclid(1000).saturating_sub(signed_at);
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
    use std::borrow::Cow;

    use serde::Deserialize;
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;

    /// Remove the value at `path` (object keys; `*` is every element of an
    /// array or every value of an object).
    pub fn remove(json: &mut Value, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            if let Value::Object(map) = json {
                map.remove(*first);
            }
            return;
        }
        match (json, *first) {
            (Value::Array(items), "*") => items.iter_mut().for_each(|item| remove(item, rest)),
            (Value::Object(map), "*") => map.values_mut().for_each(|value| remove(value, rest)),
            (Value::Object(map), key) => {
                if let Some(value) = map.get_mut(key) {
                    remove(value, rest);
                }
            }
            _ => {}
        }
    }

    /// The value at `path`, if every step exists.
    pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
        path.iter().try_fold(value, |v, key| v.get(key))
    }

    /// The time at `path` (seconds, milliseconds or ISO-8601) in ms.
    pub fn time(value: &Value, path: &[&str]) -> Option<i64> {
        super::time::from_json(at(value, path)?)
    }

    /// The string (or number, as text) at `path`; empty strings count as absent.
    pub fn text(value: &Value, path: &[&str]) -> Option<String> {
        match at(value, path)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A field a mapping reads: text (see [`text`]), or an object with
    /// fields of its own.
    #[derive(Debug)]
    pub struct Field {
        name: &'static str,
        fields: Option<&'static [Field]>,
    }

    impl Field {
        pub const fn text(name: &'static str) -> Field {
            Field { name, fields: None }
        }

        pub const fn object(name: &'static str, fields: &'static [Field]) -> Field {
            Field {
                name,
                fields: Some(fields),
            }
        }

        /// Slots this field and the fields under it take.
        fn slots(&self) -> usize {
            1 + self.fields.map_or(0, slots)
        }
    }

    fn slots(fields: &[Field]) -> usize {
        fields.iter().map(Field::slots).sum()
    }

    /// What [`pick`] read: one slot per field, in the order of the shape
    /// (an object's slot says whether it was there, then its fields').
    #[derive(Debug)]
    pub struct Picked {
        shape: &'static [Field],
        slots: Vec<Slot>,
    }

    #[derive(Debug, Default, Clone)]
    enum Slot {
        #[default]
        Absent,
        Object,
        Text(String),
    }

    /// Read the fields of `shape` from the JSON `body` in one pass, building
    /// nothing for what the shape does not name. It reads as
    /// [`text`] on a parsed [`Value`] does: a later duplicate key wins whole
    /// (an object given twice is the second one), an object field that holds
    /// something else is absent, and a body that is not an object has no
    /// fields. An error only when the body is not JSON.
    pub fn pick(body: &[u8], shape: &'static [Field]) -> Result<Picked, serde_json::Error> {
        let mut slots = vec![Slot::Absent; slots(shape)];
        let mut reader = serde_json::Deserializer::from_slice(body);
        Level {
            fields: shape,
            slots: &mut slots,
        }
        .deserialize(&mut reader)?;
        reader.end()?;
        Ok(Picked { shape, slots })
    }

    impl Picked {
        /// The slot of `path`, if the shape names it.
        fn slot(&self, path: &[&str]) -> Option<usize> {
            let mut fields = self.shape;
            let mut at = 0;
            for (depth, name) in path.iter().enumerate() {
                let mut found = None;
                for field in fields {
                    if field.name == *name {
                        found = Some(field);
                        break;
                    }
                    at += field.slots();
                }
                let field = found?;
                if depth + 1 == path.len() {
                    return Some(at);
                }
                fields = field.fields?;
                at += 1;
            }
            None
        }

        /// The text at `path`, taken out.
        pub fn take(&mut self, path: &[&str]) -> Option<String> {
            let at = self.slot(path)?;
            match std::mem::take(&mut self.slots[at]) {
                Slot::Text(text) => Some(text),
                _ => None,
            }
        }

        /// Whether the object at `path` was there.
        pub fn has(&self, path: &[&str]) -> bool {
            self.slot(path).is_some_and(|at| matches!(self.slots[at], Slot::Object))
        }
    }

    /// One object's fields, read into their slots.
    struct Level<'s> {
        fields: &'static [Field],
        slots: &'s mut [Slot],
    }

    impl<'de> DeserializeSeed<'de> for Level<'_> {
        /// Whether it was an object.
        type Value = bool;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Level<'_> {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            #[derive(Deserialize)]
            struct Key<'a>(#[serde(borrow)] Cow<'a, str>);
            self.slots.fill(Slot::Absent);
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                let mut at = 0;
                let field = self.fields.iter().find(|f| {
                    let found = f.name == key;
                    if !found {
                        at += f.slots();
                    }
                    found
                });
                let Some(field) = field else {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                };
                let slots = &mut self.slots[at..at + field.slots()];
                match field.fields {
                    None => slots[0] = map.next_value_seed(TextSeed)?.map_or(Slot::Absent, Slot::Text),
                    Some(fields) => {
                        let (own, under) = slots.split_first_mut().expect("an object has its own slot");
                        let object = map.next_value_seed(Level { fields, slots: under })?;
                        *own = if object { Slot::Object } else { Slot::Absent };
                        if !object {
                            under.fill(Slot::Absent);
                        }
                    }
                }
            }
            Ok(true)
        }

        // Whatever is not an object has no fields.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(false)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }

    /// A value read as [`text`] reads it: a non-empty string, or a number
    /// as text; anything else is nothing.
    struct TextSeed;

    impl<'de> DeserializeSeed<'de> for TextSeed {
        type Value = Option<String>;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<String>, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for TextSeed {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_str<E>(self, v: &str) -> Result<Option<String>, E> {
            Ok((!v.is_empty()).then(|| v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Option<String>, E> {
            Ok((!v.is_empty()).then_some(v))
        }
        // Numbers are written as a parsed `Value` writes them.
        fn visit_u64<E>(self, v: u64) -> Result<Option<String>, E> {
            Ok(Some(serde_json::Number::from(v).to_string()))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Option<String>, E> {
            Ok(Some(serde_json::Number::from(v).to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Option<String>, E> {
            Ok(serde_json::Number::from_f64(v).map(|n| n.to_string()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
}

/// A door from what the vendor sent; `None` when it sent nothing about it.
pub fn door(id: Option<String>, name: Option<String>, location: Option<String>) -> Option<crate::event::Door> {
    (id.is_some() || name.is_some() || location.is_some()).then_some(crate::event::Door { id, name, location })
}

/// A device from what the vendor sent; `None` when it sent nothing about it.
pub fn device(id: Option<String>, name: Option<String>, model: Option<String>) -> Option<crate::event::Device> {
    (id.is_some() || name.is_some() || model.is_some()).then_some(crate::event::Device { id, name, model })
}

/// Join first and last name when the vendor sends no full name.
pub fn full_name(first: Option<String>, last: Option<String>) -> Option<String> {
    match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (one, other) => one.or(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
    fn absurd_signed_times_are_out_of_range_not_a_panic() {
        let tol = std::time::Duration::from_secs(300);
        for t in [i64::MIN, i64::MAX, -1] {
            assert!(check_timestamp(t, 1_695_902_233_000, tol).is_err());
        }
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

    /// `pick` reads what a mapping reads exactly as `json::text` on a
    /// parsed `Value` does, whatever the vendor put there.
    #[test]
    fn picked_fields_read_as_a_parsed_value_reads() {
        use json::Field;
        const INNER: &[Field] = &[Field::text("a"), Field::text("j"), Field::text("status")];
        const SHAPE: &[Field] = &[
            Field::text("a"),
            Field::object("b", INNER),
            Field::text("c"),
            Field::text("d"),
            Field::text("e"),
            Field::text("f"),
            Field::text("g"),
            Field::text("h"),
            Field::object("i", INNER),
            Field::text("event"),
            Field::object(
                "data",
                &[Field::object("object", INNER), Field::object("location", INNER)],
            ),
        ];
        let bodies = [
            r#"{"a":"x","b":"","c":12.50,"d":-3,"e":1e3,"f":null,"g":true,"h":[1,"x"],"i":{"j":"k"}}"#,
            r#"{"a":"first","a":"second","b":{"a":1,"j":"gone"},"b":{"a":2},"i":{"j":"k"},"i":7}"#,
            r#" { "a" : "esc\"aped \u00e9\n" , "b" : { } , "c" : 18446744073709551615, "d": 0.1e-400, "\u0065vent": "x" } "#,
            r#"{"data":{"object":{"status":"open","result":"ACCESS GRANTED"},"location":"not an object"}}"#,
            r#"{"data":{"object":{"status":"open"}},"data":{"location":{"a":"x"}}}"#,
            r#"{"data":[{"object":1}],"event":7,"h":{"a":"b"}}"#,
            r#"["not", "an", "object"]"#,
            r#""a string""#,
            r#"12"#,
        ];
        for body in bodies {
            let value: Value = serde_json::from_str(body).unwrap();
            let mut picked = json::pick(body.as_bytes(), SHAPE).unwrap();
            let paths: &[&[&str]] = &[
                &["a"],
                &["c"],
                &["d"],
                &["e"],
                &["f"],
                &["g"],
                &["h"],
                &["event"],
                &["b", "a"],
                &["b", "j"],
                &["i", "j"],
                &["i", "a"],
                &["data", "object", "status"],
                &["data", "location", "a"],
                &["data", "object", "a"],
            ];
            for path in paths {
                let (parent, _) = path.split_at(path.len() - 1);
                let expected =
                    json::text(&value, path).filter(|_| json::at(&value, parent).is_some_and(Value::is_object));
                assert_eq!(picked.take(path), expected, "{path:?} in {body}");
            }
            for path in [
                &["b"][..],
                &["i"],
                &["data"],
                &["data", "object"],
                &["data", "location"],
            ] {
                let expected = json::at(&value, path).is_some_and(Value::is_object);
                assert_eq!(picked.has(path), expected, "{path:?} in {body}");
            }
            assert_eq!(picked.take(&["not", "in", "the", "shape"]), None);
        }
        assert!(json::pick(b"not json", SHAPE).is_err());
        assert!(json::pick(br#"{"a":1} trailing"#, SHAPE).is_err());
    }
}
