//! `vestibule send`: build a sample event of a vendor, sign or authenticate
//! it exactly as that vendor would, and post it. For integrators testing a
//! setup end to end.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::config::VendorKind;
use crate::time::now_ms;
use crate::vendors;

/// A request ready to post: body and the vendor's headers.
#[derive(Debug, Clone)]
pub struct Signed {
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// The vendor's sample event of type `event_type`.
pub fn sample(vendor: VendorKind, event_type: &str) -> anyhow::Result<&'static str> {
    vendors::sample(vendor, event_type).map_err(anyhow::Error::msg)
}

/// The sample with its door renamed to `door`, wherever the vendor names it.
pub fn with_door(body: &str, door: &str) -> anyhow::Result<String> {
    let mut value: Value = serde_json::from_str(body).map_err(|e| anyhow::anyhow!("the sample is not JSON: {e}"))?;
    rename_door(&mut value, door, false);
    Ok(serde_json::to_string_pretty(&value).expect("JSON values serialize"))
}

fn rename_door(value: &mut Value, door: &str, in_door_object: bool) {
    if let Value::Object(map) = value {
        for (key, child) in map.iter_mut() {
            let is_door_name = matches!(key.as_str(), "doorName" | "lockName" | "door_name" | "door")
                || (in_door_object && key == "name");
            if is_door_name && child.is_string() {
                *child = Value::String(door.to_string());
            } else {
                rename_door(child, door, matches!(key.as_str(), "location" | "door_info"));
            }
        }
    }
}

/// Sign `body` as `vendor` would, now. `basic` is `user:password` for
/// vendors that authenticate with HTTP Basic.
pub fn sign(vendor: VendorKind, secret: Option<&str>, basic: Option<&str>, body: Vec<u8>) -> Signed {
    let now = now_ms() / 1000;
    let mut headers = match secret {
        Some(secret) => vendors::get(vendor).sign(secret, now, &body),
        None => Vec::new(),
    };
    if let Some(credentials) = basic {
        let token = base64::engine::general_purpose::STANDARD.encode(credentials);
        headers.push(("Authorization".into(), format!("Basic {token}")));
    }
    Signed { body, headers }
}

/// Post `signed` to `url`; returns the status and the answer's body.
pub async fn post(url: &str, signed: &Signed) -> anyhow::Result<(u16, String)> {
    let uri: Uri = url.parse().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(anyhow::anyhow!("{url}: only http:// URLs are supported"));
    }
    let mut request = Request::post(uri).header("content-type", "application/json");
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(signed.body.clone())))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| {
        if e.is_connect() {
            // "client error (Connect)" says nothing its causes do not.
            let cause = std::error::Error::source(&e).map_or_else(|| e.to_string(), crate::error_chain);
            let at = uri_authority(url);
            anyhow::anyhow!("cannot connect to {at}: {cause} (is a Vestibule host listening there?)")
        } else {
            anyhow::anyhow!("{url}: {}", crate::error_chain(&e))
        }
    })?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The `host:port` of `url`, for messages.
fn uri_authority(url: &str) -> String {
    url.parse::<Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn door_is_renamed_wherever_the_vendor_names_it() {
        for (vendor, event) in [
            (VendorKind::UnifiAccess, "access.door.unlock"),
            (VendorKind::Verkada, "door_granted"),
            (VendorKind::Pdk, "door.request.allowed"),
            (VendorKind::Unloc, "unlocked"),
            (VendorKind::StandardWebhooks, "access.granted"),
        ] {
            let body = with_door(sample(vendor, event).unwrap(), "Loading Dock").unwrap();
            assert!(body.contains("\"Loading Dock\""), "{vendor}: {body}");
        }
    }

    #[test]
    fn basic_credentials_are_sent_as_a_header() {
        let signed = sign(VendorKind::Unloc, None, Some("user:pass"), b"{}".to_vec());
        assert_eq!(
            signed.headers,
            [("Authorization".to_string(), "Basic dXNlcjpwYXNz".to_string())]
        );
    }
}
