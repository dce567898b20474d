//! `vestibule send`: sign a sample (or your own) event exactly as the vendor
//! would, and post it. For integrators testing a setup end to end.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::VendorKind;
use crate::event::now_ms;
use crate::vendors::unifi_access;

/// A request ready to post: body and the vendor's headers.
#[derive(Debug, Clone)]
pub struct Signed {
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// The vendor's sample event of type `event_type`.
pub fn sample(vendor: VendorKind, event_type: &str) -> Result<&'static str, String> {
    let samples = match vendor {
        VendorKind::UnifiAccess => unifi_access::SAMPLES,
    };
    samples
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, body)| *body)
        .ok_or_else(|| {
            let known: Vec<&str> = samples.iter().map(|(t, _)| *t).collect();
            format!("no sample event `{event_type}`; known: {}", known.join(", "))
        })
}

/// Sign `body` as `vendor` would, now.
pub fn sign(vendor: VendorKind, secret: &str, body: Vec<u8>) -> Signed {
    let now = now_ms() / 1000;
    let headers = match vendor {
        VendorKind::UnifiAccess => vec![("Signature".to_string(), unifi_access::sign(secret, now, &body))],
    };
    Signed { body, headers }
}

/// Post `signed` to `url`; returns the status and the answer's body.
pub async fn post(url: &str, signed: &Signed) -> Result<(u16, String), String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url}: only http:// URLs are supported"));
    }
    let mut request = Request::post(uri).header("content-type", "application/json");
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(signed.body.clone())))
        .map_err(|e| e.to_string())?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.map_err(|e| format!("{url}: {e:#}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
